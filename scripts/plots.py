"""Snakemake entry point: rule plots (diagnostic plots and summary.md of one analysis; see
workflow/rules/plots.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.io.samplesheet import read_sample_sheet
from stacklm.plots.analysis import run_plots
from stacklm.spec import AnalysisSpec
from stacklm.workflow.steps import workflow_step

with workflow_step("plots", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    run_plots(
        Path(out.summary_md).parent / "plots",
        results_path=inp.results,
        summary_path=inp.summary,
        design_path=inp.design,
        design_info_path=inp.design_info,
        sheet=read_sample_sheet(inp.samples, p.sample_id),
        spec=AnalysisSpec.from_settings(snakemake.wildcards.analysis, p.analysis),  # noqa: F821
        cross_product_paths=list(inp.crossprods),
        sv_path=inp.sv,
        sv_associations_path=inp.sv_associations,
        densities_path=inp.densities,
        features_path=inp.get("features"),
        summary_md_path=out.summary_md,
        summary_html_path=out.summary_html,
        analysis_name=snakemake.wildcards.analysis,  # noqa: F821
        workers=snakemake.threads,  # noqa: F821
    )
    log.info("plots of %s written", snakemake.wildcards.analysis)  # noqa: F821
