# R references for stacklm's NA path and contrasts (limma 3.54.1, R 4.2.2, Debian).
# Run from this folder:  REFDATA=/path/to/shared/data Rscript make_reference.R
# The NA matrix (expression_na.tsv.gz, written here) is made from the first 2,000 bladderbatch
# probes; the "complete" references are on the committed 1,000-probe subset ../bladder/expression.tsv.gz,
# so the tests need nothing beside the repository.
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
E <- E[1:2000, ]
pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))
design <- model.matrix(~ cancer + factor(batch), data = pheno)
colnames(design) <- c("Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5")

# --- the NA matrix: 2% of cells at random, plus special rows
set.seed(2024)
Y <- E
Y[matrix(runif(length(Y)) < 0.02, nrow(Y))] <- NA
Y[1, ] <- NA                                   # all missing
Y[2, ] <- 5                                    # constant: zero residual variance
Y[3, pheno$batch == 5] <- NA                   # batch5 not estimable on the observed samples
repeat { keep <- sort(sample(ncol(Y), 7)); if (qr(design[keep, ])$rank == 7) break }
Y[4, -keep] <- NA                              # 7 observed, rank 7: df.residual 0
repeat { keep <- sort(sample(ncol(Y), 8)); if (qr(design[keep, ])$rank == 7) break }
Y[5, -keep] <- NA                              # df.residual 1
Y[11:40, ] <- E[11:40, ]; Y[11:40, c(3, 17, 40)] <- NA   # one pattern shared by 30 rows
Y[41:43, ] <- E[41:43, ]; Y[41:43, c(5, 6)] <- NA        # a pattern shared by 3 rows
Y[44, pheno$cancer == "Normal"] <- NA          # cancerNormal not estimable
write_tsv(data.frame(feature_id = rownames(Y), Y, check.names = FALSE), "expression_na.tsv.gz")
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
    out[[paste0("adj.P.Val.", k)]] <- p.adjust(eb$p.value[, k], "BH")
    out[[paste0("lods.", k)]] <- eb$lods[, k]
  }
  if (!is.null(eb$F)) { out$F.all <- eb$F; out$F.all.p.value <- eb$F.p.value }
  tt <- topTable(eb, coef = coefs_f, number = Inf, sort.by = "none")
  out$F <- tt$F; out$F.p.value <- tt$P.Value; out$F.adj.P.Val <- tt$adj.P.Val
  out
}
meta <- function(eb) list(s2.prior = if (length(eb$s2.prior) == 1) eb$s2.prior else NULL,
                          df.prior = if (length(eb$df.prior) == 1) eb$df.prior else NULL,
                          var.prior = eb$var.prior, coefficients = colnames(eb$coefficients))
fit <- suppressWarnings(lmFit(Y, design))
for (mode in c("default", "trend", "robust")) {
  Yx <- if (mode == "trend") Y[-1, ] else Y   # limma's trend stops on the all-NA row's NaN Amean
  f <- if (mode == "trend") suppressWarnings(lmFit(Yx, design)) else fit
  eb <- suppressWarnings(eBayes(f, trend = mode == "trend", robust = mode == "robust"))
  write_tsv(table_of(eb, c("cancerCancer", "cancerNormal")), sprintf("na_ebayes_%s.tsv.gz", mode))
  writeLines(toJSON(meta(eb), digits = NA, auto_unbox = TRUE), sprintf("na_ebayes_%s.json", mode))
}
# contrasts on the NA fit and on complete data (the committed subset)
Ec <- as.matrix(read.delim("../bladder/expression.tsv.gz", row.names = 1, check.names = FALSE))
stopifnot(identical(colnames(Ec), pheno$sample_id), nrow(Ec) == 1000)
cm <- makeContrasts(CancerVsNormal = cancerCancer - cancerNormal, B5vsB4 = batch5 - batch4,
                    Mixed = (cancerCancer + cancerNormal) / 2 - 0.5 * batch2, levels = design)
for (what in c("na", "complete")) {
  f <- if (what == "na") fit else lmFit(Ec, design)
  eb <- suppressWarnings(eBayes(contrasts.fit(f, cm)))
  write_tsv(table_of(eb, c("CancerVsNormal", "B5vsB4")), sprintf("%s_contrasts_ebayes.tsv.gz", what))
  writeLines(toJSON(c(meta(eb), list(contrasts = as.data.frame(cm), cov.coefficients = eb$cov.coefficients)),
                    digits = NA, auto_unbox = TRUE), sprintf("%s_contrasts_ebayes.json", what))
}
writeLines(c(capture.output(sessionInfo())[1], paste("limma", packageVersion("limma"))), "versions.txt")
# trend and robust together (the trend is a lowess fit of the log-variances inside fitFDistRobustly)
for (what in c("complete", "na")) {
  f <- if (what == "na") suppressWarnings(lmFit(Y[-1, ], design)) else lmFit(Ec, design)
  eb <- suppressWarnings(eBayes(f, trend = TRUE, robust = TRUE))
  write_tsv(table_of(eb, c("cancerCancer", "cancerNormal")), sprintf("%s_trend_robust.tsv.gz", what))
}
