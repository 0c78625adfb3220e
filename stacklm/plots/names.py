"""The plots of an analysis by file stem, without importing matplotlib: the workflow's rule
definitions (read by every ``snakemake`` call, dry runs included) need only these names."""

#: every plot of an analysis: file stem -> suffix of its data table
PLOTS = {
    "pvalue_histogram": ".tsv",
    "qq": ".tsv",
    "volcano": ".tsv.gz",
    "md": ".tsv.gz",
    "sa": ".tsv.gz",
    "estimate_trend": ".tsv",
    "estimate_correlation": ".tsv",
    "pca_scree": ".tsv",
    "pca_associations": ".tsv",
    "pca_input": ".tsv",
    "pca_fitted": ".tsv",
    "pca_residuals": ".tsv",
    "sv_associations": ".tsv",
    "sample_density": ".tsv",
}
#: drawn only when a feature annotation table is configured
ANNOTATION_PLOTS = {"estimate_annotation": ".tsv"}
