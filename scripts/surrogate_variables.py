"""Snakemake entry point: rule surrogate_variables (see workflow/rules/surrogate_variables.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.spec import AnalysisSpec
from stacklm.workflow.analysis_steps import surrogate_variables_step
from stacklm.workflow.steps import workflow_step

with workflow_step("surrogate_variables", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    surrogate_variables_step(
        snakemake.input.store,  # noqa: F821
        snakemake.input.base,  # noqa: F821
        snakemake.input.info,  # noqa: F821
        snakemake.input.samples,  # noqa: F821
        snakemake.params.sample_id,  # noqa: F821
        AnalysisSpec.from_settings(snakemake.wildcards.analysis, snakemake.params.analysis),  # noqa: F821
        snakemake.output.sv,  # noqa: F821
        snakemake.output.associations,  # noqa: F821
        log=log,
    )
