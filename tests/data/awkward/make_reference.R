# R references for numerically awkward but valid data (limma 3.54.1, R 4.2.2, Debian).
# Run from this folder:  REFDATA=/path/to/shared/data Rscript make_reference.R
suppressPackageStartupMessages({ library(limma); library(jsonlite) })
root <- Sys.getenv("REFDATA", "../../../../shared/data")
fmt <- function(x) { if (is.numeric(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o } else as.character(x) }
write_tsv <- function(df, path) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
E <- as.matrix(read.delim(file.path(root, "bladderbatch/expression.tsv.gz"), row.names = 1, check.names = FALSE))
pheno <- read.delim(file.path(root, "bladderbatch/samples.tsv"), stringsAsFactors = FALSE)
stopifnot(identical(pheno$sample_id, colnames(E)))
pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))
design <- model.matrix(~ cancer + factor(batch), data = pheno)
colnames(design) <- c("Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5")

Y <- E[1:500, ]
# (exact fits: sigma is round-off, which differs between QR codes; tested without R)
Y[2, ] <- E[2, ] * 1e-150                                         # tiny magnitudes
Y[3, ] <- E[3, ] * 1e150                                          # huge magnitudes
# (p-values that underflow to 0: a shift of 1e7 makes small coefficients round-off; tested without R)
Y[5, ] <- 1e-300 * E[5, ]                                         # squares underflow
write_tsv(data.frame(feature_id = rownames(Y), Y, check.names = FALSE), "expression_awkward.tsv.gz")
write_tsv(data.frame(sample_id = rownames(design), design, check.names = FALSE), "design.tsv")

table_of <- function(eb, coefs_f) {
  out <- data.frame(feature_id = rownames(eb$coefficients), Amean = eb$Amean, sigma = eb$sigma,
                    df.residual = eb$df.residual, s2.prior = rep_len(eb$s2.prior, nrow(eb)),
                    df.prior = rep_len(eb$df.prior, nrow(eb)), s2.post = eb$s2.post, df.total = eb$df.total,
                    check.names = FALSE)
  for (k in colnames(eb$coefficients)) {
    out[[paste0("coefficients.", k)]] <- eb$coefficients[, k]
    out[[paste0("stdev.unscaled.", k)]] <- eb$stdev.unscaled[, k]
    out[[paste0("t.", k)]] <- eb$t[, k]
    out[[paste0("p.value.", k)]] <- eb$p.value[, k]
    out[[paste0("lods.", k)]] <- eb$lods[, k]
  }
  out$F.all <- eb$F; out$F.all.p.value <- eb$F.p.value
  tt <- topTable(eb, coef = coefs_f, number = Inf, sort.by = "none")
  out$F <- tt$F; out$F.p.value <- tt$P.Value
  out
}
meta <- function(eb) list(s2.prior = eb$s2.prior, df.prior = eb$df.prior, var.prior = eb$var.prior)
fit <- lmFit(Y, design)
eb <- eBayes(fit)
write_tsv(table_of(eb, 2:3), "awkward_ebayes.tsv.gz")
writeLines(toJSON(meta(eb), digits = NA, auto_unbox = TRUE), "awkward_ebayes.json")
# the whole matrix at 1e-150 and 1e150 (t, p and F are scale-free; the prior scales with the square)
for (s in c("tiny", "huge")) {
  f <- if (s == "tiny") 1e-150 else 1e150
  eb <- eBayes(lmFit(E[6:500, ] * f, design))
  write_tsv(table_of(eb, 2:3), sprintf("scaled_%s_ebayes.tsv.gz", s))
}
writeLines(c(R.version.string, paste("limma", packageVersion("limma"))), "versions.txt")
