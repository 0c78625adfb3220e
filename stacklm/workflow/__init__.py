"""The file-level steps of the Snakemake workflow (pipeline), config checks, provenance, the run
lock, logging of steps and the ``stacklm`` command line."""
