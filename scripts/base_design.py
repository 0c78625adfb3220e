"""Snakemake entry point: rule base_design (see workflow/rules/design.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.analysis import analysis_design
from stacklm.io.outputs import write_json, write_tsv
from stacklm.io.samplesheet import match_samples, read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.workflow.steps import workflow_step

with workflow_step("base_design", snakemake.log[0]) as log:  # noqa: F821
    sheet = read_sample_sheet(snakemake.input.samples, snakemake.params.sample_id)  # noqa: F821
    store = open_binary_matrix(snakemake.input.store)  # noqa: F821
    match_samples(store.samples, sheet, "the matrix", snakemake.input.samples)  # noqa: F821
    design, dropped = analysis_design(sheet, store.samples, snakemake.params.analysis)  # noqa: F821
    if dropped:
        log.warning(
            "dropped %d sample(s) with missing formula variables: %s",
            len(dropped),
            ", ".join(dropped),
        )
    log.info("design: %d samples x %d columns (%s)", *design.shape, ", ".join(design.columns))
    write_tsv(design.rename_axis("sample_id"), snakemake.output.design, index=True)  # noqa: F821
    write_json(
        {
            "dropped_samples": dropped,
            "n_samples": len(design),
            "design_columns": list(design.columns),
        },
        snakemake.output.info,  # noqa: F821
    )
