"""Snakemake entry point: rule manhattan (the Manhattan plot of a genotype analysis; see
workflow/rules/genotype.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.manhattan_step import manhattan_step
from stacklm.workflow.steps import workflow_step

with workflow_step("manhattan", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    manhattan_step(
        snakemake.input.results,  # noqa: F821
        snakemake.input.summary,  # noqa: F821
        snakemake.output.png,  # noqa: F821
        snakemake.output.data,  # noqa: F821
        analysis_name=snakemake.wildcards.analysis,  # noqa: F821
    )
    log.info("Manhattan plot of %s written", snakemake.wildcards.analysis)  # noqa: F821
