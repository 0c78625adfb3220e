# R references for stacklm.normalize (limma 3.54.1, R 4.2.2, Debian).
# Run from this folder:  Rscript make_reference.R
# Inputs: the committed 1,000-probe bladderbatch subset ../bladder/expression.tsv.gz (exprs(bladderEset)
# of bladderbatch 1.36.0, rows round(seq(1, 22283, length.out = 1000)), %.17g: R and Python read the
# same doubles) and small seeded synthetic matrices.
suppressPackageStartupMessages({ library(limma) })
fmt <- function(x) { if (is.numeric(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o } else as.character(x) }
write_tsv <- function(df, path) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
write_matrix <- function(m, path) {
  df <- data.frame(feature_id = rownames(m), stringsAsFactors = FALSE, check.names = FALSE)
  for (j in seq_len(ncol(m))) df[[colnames(m)[j]]] <- as.double(m[, j])
  write_tsv(df, path)
}

E <- as.matrix(read.delim("../bladder/expression.tsv.gz", row.names = 1, check.names = FALSE))
stopifnot(identical(dim(E), c(1000L, 57L)))

# --- quantile, complete: 1000 features x 57 samples
Q <- E
write_matrix(normalizeBetweenArrays(Q, method = "quantile"), "quantile_bladder.tsv.gz")

# --- quantile with 2% NA: 1000 features x 30 samples; NA cells listed in na_mask.tsv (1-based)
set.seed(20240611)
Y <- E[, 1:30]
na <- matrix(runif(length(Y)) < 0.02, nrow(Y))
na[7, ] <- TRUE                       # one feature entirely missing
na[8, -c(3, 9)] <- TRUE               # one with only two observed values
na[sample(nrow(Y), 40), 5] <- TRUE    # one sample with more missing values
Y[na] <- NA
idx <- which(na, arr.ind = TRUE)
write_tsv(data.frame(row = as.integer(idx[, 1]), col = as.integer(idx[, 2]))[order(idx[, 2], idx[, 1]), ],
          "na_mask.tsv")
write_matrix(normalizeBetweenArrays(Y, method = "quantile"), "quantile_na.tsv.gz")

# --- quantile with heavy ties (integer data) and NA: synthetic 300 x 6
set.seed(7)
Ti <- matrix(round(rnorm(300 * 6, sd = 2)), 300, 6,
             dimnames = list(sprintf("t%03d", 1:300), sprintf("s%d", 1:6)))
Ti[matrix(runif(length(Ti)) < 0.05, nrow(Ti))] <- NA
write_matrix(Ti, "ties_input.tsv")
write_matrix(normalizeQuantiles(Ti), "quantile_ties.tsv")

# --- cyclic loess
L <- E[, 1:20]
write_matrix(normalizeBetweenArrays(L, method = "cyclicloess"), "cyclicloess_fast.tsv.gz")   # cyclic.method = "fast"
P <- E[, 1:8]
write_matrix(normalizeCyclicLoess(P, method = "pairs"), "cyclicloess_pairs.tsv.gz")
write_matrix(normalizeCyclicLoess(P, method = "affy", span = 0.5, iterations = 2), "cyclicloess_affy.tsv.gz")
Yl <- Y[, 1:12]                       # with the NA pattern above
write_matrix(normalizeCyclicLoess(Yl, method = "fast"), "cyclicloess_fast_na.tsv.gz")
write_matrix(normalizeCyclicLoess(Y[1:300, 1:5], method = "pairs"), "cyclicloess_pairs_na.tsv")

# --- lowess itself (unsorted x with ties, outliers; several f / iter / delta)
set.seed(11)
n <- 400
x <- round(runif(n, 0, 10), 1)        # many ties
y <- sin(x) + rnorm(n, sd = 0.3)
y[sample(n, 12)] <- y[sample(n, 12)] + 5
cases <- list(list("default", 2/3, 3L, NULL), list("f0.3", 0.3, 3L, NULL),
              list("f0.1_iter0", 0.1, 0L, NULL), list("f0.5_delta0", 0.5, 2L, 0),
              list("f0.05_delta1", 0.05, 4L, 1), list("tiny_f", 0.001, 3L, NULL))
out <- NULL
for (cs in cases) {
  lo <- if (is.null(cs[[4]])) lowess(x, y, f = cs[[2]], iter = cs[[3]]) else
    lowess(x, y, f = cs[[2]], iter = cs[[3]], delta = cs[[4]])
  o <- order(x)
  out <- rbind(out, data.frame(case = cs[[1]], f = cs[[2]], iter = cs[[3]],
                               delta = if (is.null(cs[[4]])) NA_real_ else cs[[4]],
                               x = x[o], y = y[o], fitted = lo$y, stringsAsFactors = FALSE))
}
write_tsv(out, "lowess_cases.tsv")

# --- beta -> M
set.seed(3)
B <- matrix(runif(200 * 5), 200, 5, dimnames = list(sprintf("cg%03d", 1:200), sprintf("s%d", 1:5)))
B[1, ] <- c(0, 1, 1e-9, 1 - 1e-9, 0.5)
B[2, 3] <- NA
eps <- 1e-6
Bc <- pmin(pmax(B, eps), 1 - eps)
write_matrix(B, "beta_input.tsv")
write_matrix(log2(Bc / (1 - Bc)), "beta_m.tsv")

# --- filters: per-feature statistics computed by R on a synthetic matrix with varied missingness
set.seed(5)
Fm <- matrix(rnorm(400 * 10, mean = rep(seq(-1, 3, length.out = 400), 10),
                   sd = rep(seq(0.01, 2, length.out = 400), 10)), 400, 10,
             dimnames = list(sprintf("f%03d", 1:400), sprintf("s%d", 1:10)))
for (i in 1:400) { k <- sample(0:10, 1, prob = c(20, rep(1, 10))); if (k) Fm[i, sample(10, k)] <- NA }
Fm[1, ] <- NA
Fm[2, -4] <- NA
write_matrix(Fm, "filter_input.tsv")
write_tsv(data.frame(feature_id = rownames(Fm),
                     missing_fraction = rowMeans(is.na(Fm)),
                     average = rowMeans(Fm, na.rm = TRUE),
                     variance = apply(Fm, 1, var, na.rm = TRUE)), "filter_stats.tsv")

writeLines(c(R.version.string, paste("limma", packageVersion("limma")),
             "bladderbatch 1.36.0 (via ../bladder/expression.tsv.gz)"), "versions.txt")
