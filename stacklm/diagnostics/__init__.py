"""The numbers behind the diagnostics (no drawing): chunked cross-products, sample PCA, associations
with sample covariates, per-feature and per-sample summaries, and summary.md."""
