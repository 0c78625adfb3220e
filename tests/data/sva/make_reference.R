# R reference for stacklm.sva.sv_associations (R 4.2.2, Debian).
# Run from this folder:  Rscript make_reference.R
# For every surrogate variable of ../bladder/sva/sv.tsv (R's sva 3.46.0 on the committed 1,000-probe
# bladderbatch subset, 6 SVs) and every covariate, drop the samples where the covariate is NA, fit
# lm(sv ~ covariate) and report summary()$r.squared and anova()'s F-test p-value.
fmt <- function(x) { if (is.numeric(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o } else as.character(x) }
write_tsv <- function(df, path) {
  con <- file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
sv <- read.delim("../bladder/sva/sv.tsv", row.names = 1, check.names = FALSE)
pheno <- read.delim("../bladder/samples.tsv", stringsAsFactors = FALSE)
stopifnot(identical(pheno$sample_id, rownames(sv)))
covariates <- list(
  outcome = pheno$outcome,                       # character -> one-way ANOVA
  batch = pheno$batch,                           # numeric -> linear regression
  cancer = pheno$cancer,
  batch_factor = factor(pheno$batch),            # the same batch as a factor
  batch_na = replace(as.numeric(pheno$batch), c(1, 5, 9), NA),
  cancer_na = replace(pheno$cancer, c(2, 3, 40), NA)
)
rows <- list()
for (k in colnames(sv)) {
  for (cv in names(covariates)) {
    x <- covariates[[cv]]
    keep <- !is.na(x)
    y <- sv[[k]][keep]
    xx <- x[keep]
    if (is.character(xx)) xx <- factor(xx)
    fit <- lm(y ~ xx)
    rows[[length(rows) + 1]] <- data.frame(
      sv = k, covariate = cv, kind = if (is.numeric(xx)) "numeric" else "categorical",
      r2 = summary(fit)$r.squared, p_value = anova(fit)[["Pr(>F)"]][1], n = sum(keep))
  }
}
write_tsv(do.call(rbind, rows), "sv_associations.tsv")
writeLines(c(R.version.string), "versions.txt")
