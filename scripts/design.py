"""Snakemake entry point: rule design (base design + surrogate variables)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.io.outputs import write_tsv
from stacklm.workflow.pipeline import read_design
from stacklm.workflow.steps import workflow_step

with workflow_step("design", snakemake.log[0]) as log:  # noqa: F821
    design = read_design(snakemake.input.base)  # noqa: F821
    sv = read_design(snakemake.input.sv)  # noqa: F821
    if sv.shape[1]:
        design = design.join(sv.loc[design.index])
        log.info("appended %d surrogate variables", sv.shape[1])
    write_tsv(design.rename_axis("sample_id"), snakemake.output.design, index=True)  # noqa: F821
