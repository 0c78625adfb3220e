# R references for stacklm's limma result functions: treat / topTreat, decideTests (+ summary),
# topTable confidence intervals and row orders, the ordinary t, removeBatchEffect.
# limma 3.63.2 (Bioconductor, current), R 4.2.2 (Debian) -- see versions.txt.
# Run from this folder:
#   R_LIBS=$HOME/R/limma-3.63.2 REFDATA=/path/to/shared/data Rscript make_reference.R
# (OUT=<dir> writes elsewhere; run with Debian's limma 3.54.1 (plain Rscript) to check that the
# legacy=TRUE references of 3.63.2 equal 3.54.1: there legacy does not exist and every set is legacy.)
#
# Input: the first 1500 probes of bladderbatch (expression.tsv.gz), rounded to 7 significant digits
# (written so, and read back before any fit: both R and Python see the same doubles), with 8 rows
# replaced by copies of others (renamed "<id>_copy") so that statistics tie exactly and the tie
# order of topTable/topTreat is tested. The NA set is the same matrix with the NA cells of the
# same probes in bladderbatch/expression_na.tsv.gz (2% NA, set.seed(2); probe 5 has 3 observations,
# probe 6 has 7), na_mask.tsv.gz lists them (copies carry their source's NA cells).
# Sets: complete (3.63.2), na (3.63.2 current estimator: fitFDistUnequalDF1), na_legacy (3.63.2
# legacy=TRUE, which is limma <= 3.60, e.g. Debian's 3.54.1).
suppressPackageStartupMessages(library(limma))
root <- Sys.getenv("REFDATA", "../../../../shared/data")
out <- Sys.getenv("OUT", ".")
dir.create(out, showWarnings = FALSE, recursive = TRUE)
has_legacy <- "legacy" %in% names(formals(eBayes))
fmt <- function(x) {
  if (is.double(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; return(o) }
  o <- as.character(x); o[is.na(x)] <- "NA"; o
}
write_tsv <- function(df, path, f = fmt) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, f)), sep = "\t")), con)
}
read_matrix <- function(path) as.matrix(read.delim(path, row.names = 1, check.names = FALSE,
                                                   colClasses = c(feature_id = "character")))

E0 <- read_matrix(file.path(root, "bladderbatch/expression.tsv.gz"))
Ena0 <- read_matrix(file.path(root, "bladderbatch/expression_na.tsv.gz"))
pheno <- read.delim(file.path(root, "bladderbatch/samples.tsv"), stringsAsFactors = FALSE,
                    colClasses = c(sample_id = "character"))
stopifnot(identical(pheno$sample_id, colnames(E0)), identical(dimnames(E0), dimnames(Ena0)))
G <- 1500
E <- E0[1:G, ]
M <- is.na(Ena0[1:G, ])
# ties: copies of rows (source -> destination), later copies of earlier rows and the reverse
copies <- rbind(c(4, 1400), c(1200, 20), c(100, 101), c(777, 1499), c(9, 10), c(1300, 30),
                c(600, 1100), c(200, 900))
for (i in seq_len(nrow(copies))) {
  E[copies[i, 2], ] <- E[copies[i, 1], ]; M[copies[i, 2], ] <- M[copies[i, 1], ]
  rownames(E)[copies[i, 2]] <- paste0(rownames(E)[copies[i, 1]], "_copy")
}
stopifnot(!anyDuplicated(rownames(E)))
con <- gzfile(file.path(out, "expression.tsv.gz"), "w", compression = 9)
writeLines(paste(c("feature_id", colnames(E)), collapse = "\t"), con)
writeLines(paste(rownames(E), apply(E, 1, function(r) paste(sprintf("%.7g", r), collapse = "\t")),
                 sep = "\t"), con)
close(con)
E <- read_matrix(file.path(out, "expression.tsv.gz"))   # the doubles Python reads
na_cells <- which(M, arr.ind = TRUE)
na_cells <- na_cells[order(na_cells[, 1], na_cells[, 2]), , drop = FALSE]
write_tsv(data.frame(feature_id = rownames(E)[na_cells[, 1]], sample_id = colnames(E)[na_cells[, 2]]),
          file.path(out, "na_mask.tsv.gz"))
Ena <- E; Ena[M] <- NA

pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))
design <- model.matrix(~ cancer + factor(batch), data = pheno)
colnames(design) <- c("Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5")
pheno$second_batch <- rep(c("b", "a", "c"), length.out = ncol(E))     # a second (made-up) batch factor
pheno$covariate <- round(seq(-1, 1, length.out = ncol(E))^2, 3)  # a numeric covariate to remove
write_tsv(data.frame(sample_id = pheno$sample_id, batch = pheno$batch, cancer = as.character(pheno$cancer),
                     second_batch = pheno$second_batch, covariate = pheno$covariate, design, check.names = FALSE),
          file.path(out, "samples.tsv"))

coefs <- c("cancerCancer", "cancerNormal", "batch2")
order_of <- function(tab, G) { o <- match(rownames(tab), rownames(E)); length(o) <- G; o }  # 1-based, NA-padded
results <- function(Y, legacy, nm) {
  L <- if (has_legacy && legacy) list(legacy = TRUE) else list()
  fit <- suppressWarnings(lmFit(Y, design))
  eb <- suppressWarnings(do.call(eBayes, c(list(fit), L)))
  ebr <- suppressWarnings(do.call(eBayes, c(list(fit, robust = TRUE), L)))
  tr <- suppressWarnings(do.call(treat, c(list(fit, fc = 1.5), L)))
  trt <- suppressWarnings(do.call(treat, c(list(fit, lfc = 0.5, trend = TRUE), L)))
  trr <- suppressWarnings(do.call(treat, c(list(fit, robust = TRUE), L)))
  tab <- data.frame(feature_id = rownames(Y), check.names = FALSE)
  tab$treat.s2.post <- tr$s2.post; tab$treat.df.total <- tr$df.total
  for (k in coefs) {
    tab[[paste0("treat.t.", k)]] <- tr$t[, k]; tab[[paste0("treat.p.value.", k)]] <- tr$p.value[, k]
    tt <- topTreat(tr, coef = k, number = Inf)               # sort.by = "p"
    tab[[paste0("topTreat.order.", k)]] <- order_of(tt, nrow(Y))
  }
  tab$treat_trend.t.cancerNormal <- trt$t[, "cancerNormal"]
  tab$treat_trend.p.value.cancerNormal <- trt$p.value[, "cancerNormal"]
  tab$treat_robust.t.cancerNormal <- trr$t[, "cancerNormal"]
  tab$treat_robust.p.value.cancerNormal <- trr$p.value[, "cancerNormal"]
  # (to keep the folder small: 90% intervals only for complete data, the ordinary t (no prior) not
  # for na_legacy, where it equals na's; a treat fit's intervals equal the eBayes fit's: checked)
  for (k in coefs[1:2]) {
    for (lev in if (nm == "complete") c(0.95, 0.9) else 0.95) {
      tt <- topTable(eb, coef = k, number = Inf, sort.by = "none", confint = lev)
      stopifnot(identical(rownames(tt), rownames(Y)))
      tab[[paste0("CI.L.", lev, ".", k)]] <- tt$CI.L; tab[[paste0("CI.R.", lev, ".", k)]] <- tt$CI.R
    }
    tt <- topTable(tr, coef = k, number = Inf, sort.by = "none", confint = TRUE)  # treat fit, 95%
    stopifnot(identical(tt$CI.L, tab[[paste0("CI.L.0.95.", k)]]), identical(tt$CI.R, tab[[paste0("CI.R.0.95.", k)]]))
    if (nm != "na_legacy") {
      t_ord <- eb$coefficients[, k] / eb$stdev.unscaled[, k] / eb$sigma
      tab[[paste0("t.ordinary.", k)]] <- t_ord
      tab[[paste0("p.ordinary.", k)]] <- suppressWarnings(2 * pt(-abs(t_ord), df = eb$df.residual))
    }
  }
  # topTable row orders (ties as R's order(): stable)
  tab$order.F <- order_of(topTable(eb, coef = c("cancerCancer", "cancerNormal"), number = Inf), nrow(Y))
  tab$order.F.robust <- order_of(topTable(ebr, coef = c("cancerCancer", "cancerNormal"), number = Inf), nrow(Y))
  tab$order.F.fdr05 <- order_of(topTable(eb, coef = c("cancerCancer", "cancerNormal"), number = Inf,
                                         p.value = 0.05), nrow(Y))
  tab$order.F.lfc1 <- order_of(topTable(eb, coef = c("cancerCancer", "cancerNormal"), number = Inf,
                                        lfc = 1), nrow(Y))
  for (k in coefs[1:2]) {
    for (s in c("B", "P", "t", "logFC", "AveExpr"))
      tab[[paste0("order.", s, ".", k)]] <- order_of(topTable(eb, coef = k, number = Inf, sort.by = s), nrow(Y))
    tab[[paste0("order.P.fdr05.", k)]] <- order_of(topTable(eb, coef = k, number = Inf, sort.by = "P",
                                                            p.value = 0.05), nrow(Y))
    tab[[paste0("order.P.fdr05.lfc1.", k)]] <- order_of(topTable(eb, coef = k, number = Inf, sort.by = "P",
                                                                 p.value = 0.05, lfc = 1), nrow(Y))
    tab[[paste0("order.B.top50.", k)]] <- order_of(topTable(eb, coef = k, number = 50), nrow(Y))
  }
  # decideTests; methods that stop on NA F p-values (nestedF, hierarchical) on the rows without them
  sub <- c("cancerCancer", "cancerNormal")
  ok <- !is.na(eb[, sub]$F.p.value)
  summ <- NULL
  dec <- function(name, obj, rows, ...) {
    d <- decideTests(obj[rows, sub], ...)
    for (k in sub) { v <- rep(NA_integer_, nrow(Y)); v[rows] <- as.integer(d[, k]); tab[[paste0("decide.", name, ".", k)]] <<- v }
    s <- summary(d)
    summ <<- rbind(summ, data.frame(call = name, level = rownames(s), matrix(as.integer(s), nrow(s),
                   dimnames = list(NULL, colnames(s))), check.names = FALSE))
  }
  all <- rep(TRUE, nrow(Y))
  dec("separate", eb, all)
  dec("global", eb, all, method = "global")
  dec("nestedF", eb, ok, method = "nestedF")
  dec("hierarchical", eb, ok, method = "hierarchical")
  dec("separate_lfc1", eb, all, lfc = 1)
  dec("global_lfc1", eb, all, method = "global", lfc = 1)
  dec("nestedF_lfc1", eb, ok, method = "nestedF", lfc = 1)
  dec("separate_holm_p01", eb, all, adjust.method = "holm", p.value = 0.01)
  dec("nestedF_holm", eb, ok, method = "nestedF", adjust.method = "holm")
  dec("hierarchical_bonferroni", eb, ok, method = "hierarchical", adjust.method = "bonferroni")
  dec("nestedF_none_p001", eb, ok, method = "nestedF", adjust.method = "none", p.value = 0.001)
  dec("nestedF_robust", ebr, ok, method = "nestedF")
  dec("separate_treat", tr, all)
  list(tab = tab, summ = summ, scalars = c(df.prior = eb$df.prior[1], s2.prior = eb$s2.prior[1],
                                           treat.df.prior = tr$df.prior[1]))
}

sets <- list(complete = list(Y = E, legacy = FALSE), na = list(Y = Ena, legacy = FALSE),
             na_legacy = list(Y = Ena, legacy = TRUE))
scal <- NULL
for (nm in names(sets)) {
  r <- results(sets[[nm]]$Y, sets[[nm]]$legacy, nm)
  write_tsv(r$tab, file.path(out, paste0("results_", nm, ".tsv.gz")))
  write_tsv(r$summ, file.path(out, paste0("summary_", nm, ".tsv")))
  scal <- rbind(scal, data.frame(set = nm, t(r$scalars), check.names = FALSE))
}
write_tsv(scal, file.path(out, "scalars.tsv"))

# removeBatchEffect on the first 60 probes (with the NA set: probes 5, 6 have 3 and 7 observations)
rbe_rows <- 1:60
kept <- c("Intercept", "cancerCancer", "cancerNormal"); adj <- c("batch2", "batch3", "batch4", "batch5")
for (nm in c("complete", "na")) {
  Y <- sets[[nm]]$Y[rbe_rows, ]
  calls <- list(
    covariates = removeBatchEffect(Y, covariates = design[, adj], design = design[, kept]),
    batch = removeBatchEffect(Y, batch = pheno$batch, design = design[, kept]),
    batch2_cov = removeBatchEffect(Y, batch = pheno$batch, batch2 = pheno$second_batch, covariates = pheno$covariate),
    # batch also in the design: the batch columns are not estimable (NA, counted as 0)
    batch_aliased = suppressMessages(removeBatchEffect(Y, batch = pheno$batch, design = design)))
  for (v in names(calls))
    write_tsv(data.frame(feature_id = rownames(Y), calls[[v]], check.names = FALSE),
              file.path(out, paste0("rbe_", nm, "_", v, ".tsv.gz")))
}
writeLines(c(R.version.string, paste("limma", packageVersion("limma"))), file.path(out, "versions.txt"))
