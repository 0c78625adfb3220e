"""Snakemake entry point: rule fit_chunk (see workflow/rules/fit.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.pipeline import fit_chunk, read_design_table
from stacklm.workflow.steps import workflow_step

with workflow_step("fit_chunk", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    chunk = int(snakemake.wildcards.chunk)  # noqa: F821
    design = read_design_table(snakemake.input.design)  # noqa: F821  (arrays: no pandas here)
    if "state" in snakemake.input.keys():  # noqa: F821  (counts, weights or blocks: counts.smk)
        # imported here: the unweighted fit jobs do not load the weighting modules
        from stacklm.workflow.weighting.fit import weighted_fit_chunk

        n = weighted_fit_chunk(
            snakemake.input.store,  # noqa: F821
            snakemake.input.design,  # noqa: F821
            snakemake.input.state,  # noqa: F821
            chunk,
            snakemake.params.chunks,  # noqa: F821
            snakemake.output.fit,  # noqa: F821
            snakemake.output.crossprod,  # noqa: F821
            libraries_path=snakemake.input.get("libraries"),  # noqa: F821
            keep_path=snakemake.input.get("keep"),  # noqa: F821
            log=log,
        )
    elif snakemake.params.direct:  # noqa: F821  (the Parquet matrix read directly: direct.py)
        from stacklm.workflow.direct import direct_fit_chunk

        n = direct_fit_chunk(
            snakemake.input.matrix,  # noqa: F821
            design,
            chunk,
            snakemake.params.chunks,  # noqa: F821
            snakemake.output.fit,  # noqa: F821
            snakemake.output.crossprod,  # noqa: F821
            snakemake.output.piece,  # noqa: F821
            **snakemake.params.direct,  # noqa: F821  (its settings, by keyword)
        )
    else:
        n = fit_chunk(
            snakemake.input.store,  # noqa: F821
            design,
            chunk,
            snakemake.params.chunks,  # noqa: F821
            snakemake.output.fit,  # noqa: F821
            snakemake.output.crossprod,  # noqa: F821
        )
    log.info(
        "chunk %d: fitted %d features on %d samples x %d columns", chunk, n, *design.values.shape
    )
