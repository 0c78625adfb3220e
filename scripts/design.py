"""Snakemake entry point: rule design (base design, surrogate variables, the design as fitted; see
workflow/rules/design.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.spec import AnalysisSpec
from stacklm.workflow.design_steps import design_step
from stacklm.workflow.steps import workflow_step

with workflow_step("design", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    design_step(
        snakemake.input.samples,  # noqa: F821
        snakemake.params.sample_id,  # noqa: F821
        snakemake.input.data,  # noqa: F821  (the store with SVs, else the matrix file)
        AnalysisSpec.from_settings(snakemake.wildcards.analysis, snakemake.params.analysis),  # noqa: F821
        snakemake.output.design,  # noqa: F821
        snakemake.output.info,  # noqa: F821
        snakemake.output.sv,  # noqa: F821
        snakemake.output.associations,  # noqa: F821
        log=log,
        matrix_format=snakemake.params.matrix_format,  # noqa: F821
    )
