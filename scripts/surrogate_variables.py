"""Snakemake entry point: rule surrogate_variables (see workflow/rules/surrogate_variables.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.io.samplesheet import read_sample_sheet
from stacklm.workflow.pipeline import estimate_surrogate_variables, read_design
from stacklm.workflow.steps import workflow_step

with workflow_step("surrogate_variables", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    estimate_surrogate_variables(
        snakemake.input.store,  # noqa: F821
        read_design(snakemake.input.base),  # noqa: F821
        read_sample_sheet(snakemake.input.samples, snakemake.params.sample_id),  # noqa: F821
        snakemake.params.analysis,  # noqa: F821
        snakemake.output.sv,  # noqa: F821
        snakemake.output.associations,  # noqa: F821
        log=log,
    )
