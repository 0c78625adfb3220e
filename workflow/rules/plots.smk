# Diagnostic plots per analysis and the Snakemake report: `snakemake --report results/report.html`.
from stacklm.plots.names import ANNOTATION_PLOTS, PLOTS

# the report's front page
report: "../report/workflow.rst"


# plot stem -> report subcategory (captions are workflow/report/<stem>.rst)
PLOT_SECTIONS = {
    "pvalue_histogram": "2 Tests",
    "qq": "2 Tests",
    "volcano": "2 Tests",
    "md": "3 Estimates",
    "sa": "2 Tests",
    "estimate_trend": "3 Estimates",
    "estimate_correlation": "3 Estimates",
    "estimate_annotation": "3 Estimates",
    "pca_scree": "4 Sample structure",
    "pca_associations": "4 Sample structure",
    "pca_input": "4 Sample structure",
    "pca_fitted": "4 Sample structure",
    "pca_residuals": "4 Sample structure",
    "sv_associations": "4 Sample structure",
    "sample_density": "5 Sample QC",
}


# Named outputs of rule plots: every PNG (marked for the report) and its data table.
PLOT_OUTPUTS = {}
for _stem, _suffix in dict(PLOTS, **(ANNOTATION_PLOTS if config.get("features") else {})).items():
    PLOT_OUTPUTS[_stem] = report(
        f"results/{{analysis}}/plots/{_stem}.png",
        caption=f"../report/{_stem}.rst",
        category="{analysis}",
        subcategory=PLOT_SECTIONS[_stem],
    )
    PLOT_OUTPUTS[f"{_stem}_data"] = f"results/{{analysis}}/plots/{_stem}{_suffix}"


rule plots:
    """Diagnostic plots of one analysis (tests, estimates, PCA of input / fitted values /
    residuals from the chunks' cross-products, SVs, sample densities) and summary.md."""
    input:
        unpack(
            lambda wildcards: {"features": config["features"]} if config.get("features") else {}
        ),
        results=rules.moderate.output.results,
        summary=rules.moderate.output.summary,
        design=rules.design.output.design,
        design_info=rules.design.output.info,
        samples=config["samples"],
        crossprods=chunk_cross_products,
        sv=rules.design.output.sv,
        sv_associations=rules.design.output.associations,
        densities=rules.normalize.output.densities,
    output:
        **PLOT_OUTPUTS,
        summary_md="results/{analysis}/summary.md",
        summary_html=report(
            "results/{analysis}/summary.html",
            caption="../report/summary.rst",
            category="{analysis}",
            subcategory="1 Summary",
        ),
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
    log:
        "logs/{analysis}/plots.log",
    benchmark:
        "logs/{analysis}/plots.benchmark.tsv",
    threads: 2  # the figures are drawn on two processes
    resources:
        # the results table (~8x its gzip size in memory), three n x n matrices, matplotlib
        mem_mb=lambda wildcards, input, attempt: int(
            1500 + attempt * 8 * os.path.getsize(input.results) / 1e6
        ),
        runtime=60,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/plots.py"
