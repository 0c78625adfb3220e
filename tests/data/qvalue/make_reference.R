# R references for stacklm.multiple_testing (p_adjust, pi0_est, lfdr, qvalue).
# R 4.2.2 (Debian), qvalue 2.30.0. Run from this folder:  Rscript make_reference.R
# Numbers are written with sprintf("%.17g") (exact round trip); NA as "NA".
suppressPackageStartupMessages({ library(qvalue); library(jsonlite) })

fmt <- function(x) {
  if (is.logical(x)) { o <- ifelse(x, "TRUE", "FALSE"); o[is.na(x)] <- "NA"; return(o) }
  o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o
}
write_tsv <- function(df, path) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
# doubles pre-rendered with %.17g (jsonlite would round to 15 digits)
json_exact <- function(x) {
  if (is.list(x)) return(lapply(x, json_exact))
  if (is.double(x)) {
    s <- sprintf("%.17g", x); s[is.na(x)] <- "null"
    txt <- if (length(x) == 1) s else paste0("[", paste(s, collapse = ","), "]")
    return(structure(txt, class = "json"))
  }
  x
}
write_json_file <- function(x, path) {
  writeLines(toJSON(json_exact(x), auto_unbox = TRUE, pretty = TRUE, null = "null",
                    json_verbatim = TRUE), path)
}

## ---- p.adjust: 300 p-values with NA, ties, exact 0 and 1 ------------------------------------
set.seed(11)
p <- c(runif(200)^3, rep(0.01, 7), rep(0.5, 5), 0, 0, 1, 1, rbeta(80, 0.4, 4), rep(NA, 6))
p <- p[sample(length(p))]
pa <- data.frame(p = p)
for (m in c("BH", "fdr", "BY", "holm", "hochberg", "bonferroni", "none")) pa[[m]] <- p.adjust(p, m)
for (m in c("BH", "BY", "holm", "hochberg", "bonferroni")) pa[[paste0(m, ".n500")]] <- p.adjust(p, m, n = 500)
write_tsv(pa, "p_adjust.tsv")

## ---- qvalue on simulated p-values -------------------------------------------------------------
cases <- list()
set.seed(1)
p <- c(runif(4000), rbeta(1000, 0.3, 6)); p[sample(5000, 50)] <- NA
cases$mix <- p                                   # 80% nulls, 50 NA
set.seed(2)
cases$fewnulls <- c(runif(300), rbeta(2700, 0.1, 10))   # 10% nulls
set.seed(3)
cases$null <- runif(2000)                        # all null: pi0 estimate clipped at 1
set.seed(4)
cases$edges <- c(0, 0, 0, 1, 1, round(runif(1500), 3), round(rbeta(500, 0.2, 5), 4))  # ties, 0, 1
set.seed(5)
cases$small <- c(runif(45), rbeta(15, 0.5, 6))   # m = 60
stopifnot(all(sapply(cases, function(p) max(p, na.rm = TRUE) >= 0.95)))

# variant name -> extra arguments of qvalue()
variants <- list(
  default = list(),
  bootstrap = list(pi0.method = "bootstrap"),
  logpi0 = list(smooth.log.pi0 = TRUE),
  df5 = list(smooth.df = 5),
  pfdr = list(pfdr = TRUE),
  lambda05 = list(lambda = 0.5),
  lambda_grid = list(lambda = seq(0.1, 0.9, 0.1)),
  fdr10 = list(fdr.level = 0.1),
  logit = list(transf = "logit"),
  raw_lfdr = list(trunc = FALSE, monotone = FALSE),
  adj1 = list(adj = 1)
)
case_variants <- list(mix = names(variants), fewnulls = c("default", "bootstrap", "logpi0"),
                      null = c("default", "bootstrap"), edges = c("default", "bootstrap", "logit"),
                      small = c("default", "bootstrap"))
for (nm in names(cases)) {
  p <- cases[[nm]]
  tab <- data.frame(p = p)
  meta <- list()
  for (v in case_variants[[nm]]) {
    args <- variants[[v]]
    set.seed(1)
    q <- do.call(qvalue, c(list(p = p), args))
    tab[[paste0("qvalues.", v)]] <- q$qvalues
    tab[[paste0("lfdr.", v)]] <- q$lfdr
    if (!is.null(q$significant)) {
      sig <- rep(FALSE, length(p)); sig[!is.na(p)] <- q$significant
      tab[[paste0("significant.", v)]] <- sig
    }
    meta[[v]] <- list(args = lapply(args, function(a) if (is.double(a)) a else a),
                      pi0 = q$pi0, pi0.lambda = q$pi0.lambda, lambda = q$lambda,
                      pi0.smooth = if (is.null(q$pi0.smooth)) NULL else q$pi0.smooth)
  }
  write_tsv(tab, paste0(nm, ".tsv.gz"))
  write_json_file(meta, paste0(nm, ".json"))
}

## ---- smooth.spline intermediates (the two smoothers of qvalue) on case 'mix' --------------------
p <- cases$mix; p <- p[!is.na(p)]
est <- pi0est(p)
s3 <- smooth.spline(est$lambda, est$pi0.lambda, df = 3)
x <- qnorm(pmin(pmax(p, 1e-8), 1 - 1e-8))
myd <- density(x, adjust = 1.5)
mys <- smooth.spline(x = myd$x, y = myd$y)
write_tsv(data.frame(x = myd$x, y = myd$y, fitted = mys$y), "mix_density.tsv.gz")
write_json_file(list(
  pi0_spline = list(spar = s3$spar, df = s3$df, lambda = s3$lambda, crit = s3$crit,
                    iterations = s3$iparms[["iter"]], fitted = s3$y),
  density = list(bw = myd$bw),
  density_spline = list(spar = mys$spar, df = mys$df, lambda = mys$lambda, crit = mys$crit,
                        cv.crit = mys$cv.crit, iterations = mys$iparms[["iter"]],
                        nknots = mys$fit$nk - 2L)
), "mix_splines.json")

## ---- genomic inflation: median(qchisq(p, df1, lower.tail = FALSE)) / qchisq(0.5, df1) ---------
gc <- list()
for (nm in c("mix", "fewnulls", "null")) for (df1 in c(1, 3)) {
  p <- cases[[nm]]; p <- p[!is.na(p)]
  gc[[paste0(nm, ".df", df1)]] <- median(qchisq(p, df1, lower.tail = FALSE)) / qchisq(0.5, df1)
}
write_json_file(gc, "genomic_inflation.json")

## ---- degenerate inputs where R still succeeds (all p = 1, only 0 and 1, m = 2 or 3) ----------
degenerate <- list(ones = rep(1, 100), zero_one = c(0, 1), zeros_ones = c(rep(0, 30), rep(1, 30)),
                   three = c(0.2, 0.5, 0.97), two = c(0.2, 0.97))
deg <- list()
for (nm in names(degenerate)) {
  p <- degenerate[[nm]]
  q <- qvalue(p)
  deg[[nm]] <- list(p = p, pi0 = q$pi0, qvalues = q$qvalues, lfdr = q$lfdr)
}
write_json_file(deg, "degenerate.json")

## ---- a case where R's pi0est stops (smoothed pi0 <= 0): the Python fallback gives pi0 = 1 ----
bad <- c(rep(1e-5, 10000), rep(0.2, 300), rep(0.55, 60), 0.96)
stopifnot(inherits(try(pi0est(bad), silent = TRUE), "try-error"))

writeLines(c(R.version.string, paste("qvalue", packageVersion("qvalue")),
             paste("jsonlite", packageVersion("jsonlite"))), "versions.txt")
