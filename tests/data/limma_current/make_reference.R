# R references for limma 3.63.2's eBayes with unequal residual df (fitFDistUnequalDF1, the default
# since limma 3.62) and its legacy=TRUE variant, R's optimize, and limma's weightedLowess.
# R 4.2.2, limma 3.63.2 (built from ../shared/tools/limma_3.63.2.tar.gz), statmod 1.5.0.
# Run from this folder:
#   R_LIBS=/root/R/limma-3.63.2 REFDATA=/path/to/shared/data Rscript make_reference.R
suppressPackageStartupMessages(library(limma))
stopifnot(packageVersion("limma") == "3.63.2")
root <- Sys.getenv("REFDATA", "../../../../shared/data")
fmt <- function(x) { if (is.numeric(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o } else as.character(x) }
write_tsv <- function(df, path, digits = fmt) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, digits)), sep = "\t")), con)
}
# JSON with numbers at %.17g (jsonlite rounds to 15 digits); NA -> null, +-Inf -> +-Infinity
to_json <- function(x, indent = "") {
  if (is.null(x)) return("null")
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    if (!is.null(names(x)) && all(names(x) != "")) {
      items <- mapply(function(k, v) paste0(inner, '"', k, '": ', to_json(v, inner)), names(x), x)
      return(paste0("{\n", paste(items, collapse = ",\n"), "\n", indent, "}"))
    }
    items <- vapply(x, to_json, "", indent = inner)
    return(paste0("[\n", paste0(inner, items, collapse = ",\n"), "\n", indent, "]"))
  }
  v <- if (is.character(x)) paste0('"', x, '"') else if (is.logical(x)) ifelse(is.na(x), "null", tolower(x)) else {
    o <- sprintf("%.17g", x); o[is.na(x)] <- "null"; o[x %in% Inf] <- "Infinity"; o[x %in% -Inf] <- "-Infinity"; o }
  if (length(x) == 1 && is.null(names(x))) v else paste0("[", paste(v, collapse = ", "), "]")
}
write_json <- function(x, path) writeLines(to_json(x), path)

# --- input: the first 1000 probes of bladderbatch with 2% NA (they hold the probes observed in only
# 3 and 7 samples), rounded to 6 decimals to keep the folder small, then read back as the tests do
E <- as.matrix(read.delim(file.path(root, "bladderbatch/expression_na.tsv.gz"), row.names = 1, check.names = FALSE))
pheno <- read.delim(file.path(root, "bladderbatch/samples.tsv"), stringsAsFactors = FALSE)
stopifnot(identical(pheno$sample_id, colnames(E)))
E <- round(E[1:1000, ], 6)
stopifnot(all(c(3, 7) %in% rowSums(!is.na(E))))
write_tsv(data.frame(feature_id = rownames(E), E, check.names = FALSE), "expression.tsv.gz",
          digits = function(x) if (is.numeric(x)) { o <- sprintf("%.15g", x); o[is.na(x)] <- "NA"; o } else x)
E <- as.matrix(read.delim("expression.tsv.gz", row.names = 1, check.names = FALSE))
pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))
design <- model.matrix(~ cancer + factor(batch), data = pheno)
colnames(design) <- c("Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5")
rownames(design) <- colnames(E)
write_tsv(data.frame(sample_id = rownames(design), design, check.names = FALSE), "design.tsv")

# Per feature: the prior, posterior variance and total df; t, p-value and lods for three coefficients
# (the others come from the same code; slim tables: one coefficient); eBayes' F over all coefficients.
TEST_COEFS <- c("cancerCancer", "cancerNormal", "batch5")
table_of <- function(eb, slim = FALSE) {
  n <- nrow(eb$coefficients)
  out <- data.frame(feature_id = rownames(eb$coefficients), s2.prior = rep_len(eb$s2.prior, n),
                    df.prior = rep_len(eb$df.prior, n), s2.post = eb$s2.post, df.total = eb$df.total,
                    check.names = FALSE)
  for (k in if (slim) TEST_COEFS[1] else TEST_COEFS) {
    out[[paste0("t.", k)]] <- eb$t[, k]
    out[[paste0("p.value.", k)]] <- eb$p.value[, k]
    out[[paste0("lods.", k)]] <- eb$lods[, k]
  }
  if (!is.null(eb$F)) { out$F <- eb$F; out$F.p.value <- eb$F.p.value }
  out
}
scalars <- function(eb, call, fdist = NULL) {
  out <- list(call = call,
              s2.prior = if (length(eb$s2.prior) == 1) eb$s2.prior else NULL,
              df.prior = if (length(eb$df.prior) == 1) eb$df.prior else NULL,
              var.prior = setNames(as.list(eb$var.prior), colnames(eb$coefficients)),
              coefficients = colnames(eb$coefficients))
  if (!is.null(fdist)) out$fitFDistUnequalDF1 <- list(
    df2 = fdist$df2, scale = if (length(fdist$scale) == 1) fdist$scale else NULL,
    df2.outlier = fdist$df2.outlier, has.df2.shrunk = !is.null(fdist$df2.shrunk))
  out
}
fit <- suppressWarnings(lmFit(E, design))
stopifnot(length(unique(fit$df.residual)) > 1)
variants <- list(default = list(trend = FALSE, robust = FALSE), trend = list(trend = TRUE, robust = FALSE),
                 robust = list(trend = FALSE, robust = TRUE), trend_robust = list(trend = TRUE, robust = TRUE))
for (v in names(variants)) {
  tr <- variants[[v]]$trend; rb <- variants[[v]]$robust
  eb <- eBayes(fit, trend = tr, robust = rb)
  # the prior estimator on its own, as squeezeVar calls it
  fd <- fitFDistUnequalDF1(fit$sigma^2, fit$df.residual, covariate = if (tr) fit$Amean else NULL, robust = rb)
  stopifnot(isTRUE(all.equal(rep_len(fd$scale, nrow(E)), rep_len(eb$s2.prior, nrow(E)), tolerance = 0)))
  write_tsv(table_of(eb), sprintf("ebayes_%s.tsv.gz", v))
  write_json(scalars(eb, sprintf("eBayes(fit, trend=%s, robust=%s)", tr, rb), fd), sprintf("ebayes_%s.json", v))
  ebl <- eBayes(fit, trend = tr, robust = rb, legacy = TRUE)
  write_tsv(table_of(ebl, slim = TRUE), sprintf("ebayes_%s_legacy.tsv.gz", v))
  write_json(scalars(ebl, sprintf("eBayes(fit, trend=%s, robust=%s, legacy=TRUE)", tr, rb)), sprintf("ebayes_%s_legacy.json", v))
}
# legacy = FALSE on complete data (equal df): fitFDistUnequalDF1 with equal weights, whose trend is
# then R's lowess (loessFit treats equal weights as none)
Ec <- E[rowSums(is.na(E)) == 0, ]
fitc <- lmFit(Ec, design)
for (tr in c(FALSE, TRUE)) {
  eb <- eBayes(fitc, trend = tr, legacy = FALSE)
  v <- if (tr) "complete_trend_nolegacy" else "complete_nolegacy"
  write_tsv(table_of(eb, slim = TRUE), sprintf("%s.tsv.gz", v))
  write_json(c(scalars(eb, sprintf("eBayes(fit_complete, trend=%s, legacy=FALSE)", tr)), list(features = rownames(Ec))), sprintf("%s.json", v))
}

# --- contrasts on the NA fit (current estimator)
cm <- makeContrasts(CancerVsNormal = cancerCancer - cancerNormal, B5vsB4 = batch5 - batch4,
                    Mixed = (cancerCancer + cancerNormal) / 2 - 0.5 * batch2, levels = design)
ebc <- eBayes(contrasts.fit(fit, cm))
outc <- data.frame(feature_id = rownames(ebc$coefficients), s2.prior = ebc$s2.prior, s2.post = ebc$s2.post,
                   check.names = FALSE)
for (k in colnames(cm)) {
  outc[[paste0("t.", k)]] <- ebc$t[, k]; outc[[paste0("p.value.", k)]] <- ebc$p.value[, k]
  outc[[paste0("lods.", k)]] <- ebc$lods[, k]
}
outc$F <- ebc$F; outc$F.p.value <- ebc$F.p.value
write_tsv(outc, "contrasts_na.tsv.gz")
write_json(c(scalars(ebc, "eBayes(contrasts.fit(fit, cm))"), list(contrasts = c(list(levels = rownames(cm)), lapply(as.data.frame(cm), identity)))), "contrasts_na.json")

# --- special rows: all missing, 7 observations with rank 7 (df 0), constant (zero variance), after the
# first 300 probes; R's trend stops on the all-missing row's NaN Amean, so trend runs without it
set.seed(11)
repeat { keep <- sort(sample(ncol(E), 7)); if (qr(design[keep, ])$rank == 7) break }
S <- matrix(NA_real_, 3, ncol(E), dimnames = list(c("all_missing", "df_zero", "constant"), colnames(E)))
S["constant", ] <- 5
S["df_zero", keep] <- E[400, keep]
write_tsv(data.frame(feature_id = rownames(S), S, check.names = FALSE), "special_rows.tsv")
Y <- rbind(E[1:300, ], S)
fits <- suppressWarnings(lmFit(Y, design))
stopifnot(fits$df.residual[302] == 0, fits$df.residual[301] == 0, is.nan(fits$Amean[301]))
fits_t <- suppressWarnings(lmFit(Y[-301, ], design))
for (v in names(variants)) {
  tr <- variants[[v]]$trend; rb <- variants[[v]]$robust
  eb <- suppressWarnings(eBayes(if (tr) fits_t else fits, trend = tr, robust = rb))
  write_tsv(table_of(eb), sprintf("special_%s.tsv.gz", v))
  write_json(scalars(eb, sprintf("eBayes(fit_special%s, trend=%s, robust=%s)", if (tr) "[-all_missing]" else "", tr, rb)),
             sprintf("special_%s.json", v))
}

# --- R's optimize: every evaluation point, the result and its objective
trace_opt <- function(name, f, interval, maximum = FALSE, tol = .Machine$double.eps^0.25) {
  xs <- numeric(0)
  g <- function(x) { xs <<- c(xs, x); f(x) }
  o <- suppressWarnings(optimize(g, interval, maximum = maximum, tol = tol))
  xs <- xs[-length(xs)]  # the last call is optimize's own f(val) for the objective
  list(trace = data.frame(case = name, i = seq_along(xs), x = xs),
       result = list(case = name, x = if (maximum) o$maximum else o$minimum, objective = o$objective,
                     maximum = maximum, tol = tol, interval = interval))
}
cases <- list(
  trace_opt("quadratic", function(x) (x - 1/3)^2, c(0, 1)),
  trace_opt("sin", function(x) sin(x), c(0, 2 * pi)),
  trace_opt("abs", function(x) abs(x - 0.7), c(0, 2)),
  trace_opt("flat", function(x) 0, c(1/2, 0.9998)),
  trace_opt("quartic_tol", function(x) x^4 - 3 * x^3 + 2, c(-1, 4), tol = 1e-10),
  trace_opt("max_xexp", function(x) x * exp(-x), c(0, 5), maximum = TRUE),
  trace_opt("nan_region", function(x) if (x < 0.4) NaN else (x - 0.5)^2, c(0, 1)),
  trace_opt("boundary", function(x) x, c(0, 1)),
  trace_opt("loglik_like", function(p) { d <- p / (1 - p); -2 * (d * log(d) - lgamma(d) - 3 * d) }, c(1/2, 0.9998))
)
write_tsv(do.call(rbind, lapply(cases, `[[`, "trace")), "optimize_trace.tsv")
write_json(lapply(cases, `[[`, "result"), "optimize.json")

# --- weightedLowess: ties, small weights, 1 and 4 iterations, with and without interpolation
set.seed(5)
n <- 600
x <- round(rnorm(n, 6, 2), 2)
y <- sin(x) + rnorm(n, sd = 0.3)
w <- c(rep(1e-8, 10), runif(n - 10, 0.2, 3))
wl <- data.frame(x = x, y = y, w = w)
for (it in c(1L, 4L)) {
  f <- weightedLowess(x, y, w, span = 0.4, iterations = it)
  wl[[paste0("fitted.iter", it)]] <- f$fitted
  wl[[paste0("robustness.iter", it)]] <- f$weights
  attr(wl, paste0("delta", it)) <- f$delta
}
small <- weightedLowess(x[1:150], y[1:150], w[1:150], span = 0.3, iterations = 1L)  # npts >= n: delta 0
wl$fitted.small <- c(small$fitted, rep(NA, n - 150))
lf <- loessFit(y, x, weights = w, span = 0.4, iterations = 1L, min.weight = 1e-8, max.weight = 1e2)
wl$loessfit <- lf$fitted
write_tsv(wl, "weighted_lowess.tsv.gz")
write_json(list(delta = f$delta, span = 0.4, small.span = 0.3, small.n = 150), "weighted_lowess.json")

# --- statmod's logmdigamma and R's lgamma (both ported), chooseLowessSpan
xs <- c(1e-300, 1e-5, 0.005, 0.3, 0.5, 1, 1.5, 2, 2.5, 3, 4.999, 5, 5.5, 7.3, 9.99, 10, 10.001, 24.5, 100,
        2499.5, 4999, 5e6, 1e18)
write_tsv(data.frame(x = xs, logmdigamma = statmod::logmdigamma(xs), lgamma = lgamma(xs),
                     chooseLowessSpan = chooseLowessSpan(xs * 1000, small.n = 500)), "special_functions.tsv")

writeLines(c(capture.output(sessionInfo())[1], paste("limma", packageVersion("limma")),
             paste("statmod", packageVersion("statmod"))), "versions.txt")
