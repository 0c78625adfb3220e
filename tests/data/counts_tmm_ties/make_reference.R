# R references for stacklm's calcNormFactors on tie-heavy counts (TMM's trims by average ranks of
# log ratios and A values, where integer counts make ties frequent at the trim boundaries).
# R 4.2.2, edgeR 3.40.2 (Debian).  Self-contained (the counts are simulated here, seed 16).
# Run from this folder:  Rscript make_reference.R
suppressPackageStartupMessages(library(edgeR))
stopifnot(packageVersion("edgeR") == "3.40.2")
set.seed(16)
g <- 3000; n <- 30
# low means (most counts 0-20): log ratios and A values tie in large groups
mu <- exp(rnorm(g, log(4), 1.3)) %o% runif(n, 0.5, 2)
counts <- matrix(rnbinom(g * n, mu = mu, size = 3), g, n)
counts[1:40, ] <- 0L                       # all-zero genes (dropped by calcNormFactors)
counts[, 7] <- counts[, 3]                 # a sample equal to another
counts[, 12] <- 2L * counts[, 5]           # proportions equal to another sample's: ratio ties
storage.mode(counts) <- "integer"
rownames(counts) <- sprintf("g%04d", seq_len(g))
colnames(counts) <- sprintf("s%02d", seq_len(n))
fmt <- function(x) sprintf("%.17g", x)
con <- gzfile("counts.tsv.gz", "w")
writeLines(paste(c("feature_id", colnames(counts)), collapse = "\t"), con)
writeLines(paste(rownames(counts), apply(counts, 1, paste, collapse = "\t"), sep = "\t"), con)
close(con)
frac <- counts / 3                         # non-integer counts (e.g. estimated counts)
f <- list(
  TMM = calcNormFactors(counts, method = "TMM"),
  TMM_ref1 = calcNormFactors(counts, method = "TMM", refColumn = 1),
  TMM_ref7 = calcNormFactors(counts, method = "TMM", refColumn = 7),
  TMM_trim = calcNormFactors(counts, method = "TMM", logratioTrim = 0.45, sumTrim = 0.2),
  TMM_noweight = calcNormFactors(counts, method = "TMM", doWeighting = FALSE),
  TMM_acutoff = calcNormFactors(counts, method = "TMM", Acutoff = -12),
  TMM_frac = calcNormFactors(frac, method = "TMM"),
  TMMwsp = calcNormFactors(counts, method = "TMMwsp"),
  upperquartile = calcNormFactors(counts, method = "upperquartile"),
  uq_p33 = calcNormFactors(counts, method = "upperquartile", p = 1 / 3)
)
df <- data.frame(sample_id = colnames(counts), check.names = FALSE)
for (nm in names(f)) df[[nm]] <- fmt(f[[nm]])
write.table(df, "norm_factors.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
