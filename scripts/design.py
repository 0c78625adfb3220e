"""Snakemake entry point: rule design (base design + surrogate variables)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.analysis_steps import design_with_svs
from stacklm.workflow.steps import workflow_step

with workflow_step("design", snakemake.log[0]) as log:  # noqa: F821
    design_with_svs(snakemake.input.base, snakemake.input.sv, snakemake.output.design, log=log)  # noqa: F821
