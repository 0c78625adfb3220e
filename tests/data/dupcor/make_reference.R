# R references for stacklm's duplicateCorrelation (statmod::mixedModel2Fit) and block-correlated
# lmFit (gls.series) ports.  R 4.2.2, limma 3.63.2 (R_LIBS), statmod 1.5.0 (Debian r-cran-statmod).
# Run from this folder:
#   R_LIBS=/root/R/limma-3.63.2 REFDATA=/work/shared/data Rscript make_reference.R
# Inputs: a 1,500-gene subset of the shared counts study (ref/logcpm, ref/voom_E and the voom weights
# of the block recipe ref/voom_block_weights), design ~ treatment + region + sex, block = donor.
suppressPackageStartupMessages({ library(limma); library(statmod) })
stopifnot(as.character(packageVersion("limma")) == "3.63.2")
root <- Sys.getenv("REFDATA", "../../../../shared/data")
fmt <- function(x) {
  if (is.logical(x)) x <- as.integer(x)
  if (is.double(x)) { o <- sprintf("%.17g", x); o[is.na(x) & !is.nan(x)] <- "NA"; o }
  else { o <- as.character(x); o[is.na(x)] <- "NA"; o }
}
write_tsv <- function(df, path) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
read_mat <- function(path) as.matrix(read.delim(path, row.names = 1, check.names = FALSE))
write_mat <- function(m, path) write_tsv(data.frame(feature_id = rownames(m), m, check.names = FALSE), path)

sheet <- read.delim(file.path(root, "counts/samples.tsv"), stringsAsFactors = FALSE)
sheet$treatment <- factor(sheet$treatment, levels = c("before", "after"))
sheet$region <- factor(sheet$region, levels = c("Agadir", "Desert", "Mountain"))
design <- model.matrix(~ treatment + region + sex, data = sheet)
colnames(design) <- c("Intercept", "treatmentafter", "regionDesert", "regionMountain", "sexM")
rownames(design) <- sheet$sample_id
block <- sheet$donor

lcpm_all <- read_mat(file.path(root, "counts/ref/logcpm.tsv.gz"))
E_all <- read_mat(file.path(root, "counts/ref/voom_E.tsv.gz"))
W_all <- read_mat(file.path(root, "counts/ref/voom_block_weights.tsv.gz"))
stopifnot(identical(colnames(lcpm_all), sheet$sample_id), identical(rownames(E_all), rownames(W_all)))
genes <- round(seq(1, nrow(E_all), length.out = 1500))
write_mat(lcpm_all[genes, ], "logcpm.tsv.gz")
write_mat(E_all[genes, ], "voom_E.tsv.gz")
write_mat(W_all[genes, ], "voom_weights.tsv.gz")
write_tsv(data.frame(sample_id = sheet$sample_id, donor = block, design, check.names = FALSE), "design.tsv")
# read back what the tests read
lcpm <- read_mat("logcpm.tsv.gz"); E <- read_mat("voom_E.tsv.gz"); W <- read_mat("voom_weights.tsv.gz")
stopifnot(identical(unname(lcpm), unname(lcpm_all[genes, ])), identical(unname(W), unname(W_all[genes, ])))

# 3% of the cells missing, plus rows that reach limma's special cases; zero weights for some cells
set.seed(17)
G <- nrow(E); n <- ncol(E)
na <- sort(sample(G * n, round(0.03 * G * n)))
rowcol <- function(idx) data.frame(row = (idx - 1) %% G + 1, col = (idx - 1) %/% G + 1)
special <- rbind(
  data.frame(row = 1, col = 1:n),                                   # all missing
  data.frame(row = 2, col = 1:17),                                  # 7 observed: nobs <= nbeta + 2 -> NA
  data.frame(row = 3, col = seq(2, n, 2)),                          # one sample per block -> NA
  data.frame(row = 4, col = which(sheet$region == "Mountain")),     # regionMountain not estimable
  data.frame(row = 5, col = c(1, 3, 5, 7, 9, 11)),                  # six singleton blocks
  data.frame(row = 6, col = which(sheet$treatment == "after")[1:4]),
  data.frame(row = 7, col = 1:10))                                  # 14 observed
na_cells <- unique(rbind(rowcol(na), special))
na_cells <- na_cells[order(na_cells$col, na_cells$row), ]
write_tsv(na_cells, "na_cells.tsv")
zero_cells <- data.frame(row = c(20, 21, 21, 22, 30), col = c(3, 5, 6, 24, 1))
write_tsv(zero_cells, "zero_weight_cells.tsv")
lcpm_na <- lcpm; lcpm_na[as.matrix(na_cells)] <- NA
E_na <- E; E_na[as.matrix(na_cells)] <- NA
W_0 <- W; W_0[as.matrix(zero_cells)] <- 0

# ---- duplicateCorrelation, with an instrumented copy of its per-gene loop that also records
# glmgam.fit's iterations and final convergence criterion crossprod(dl, dbeta) (same code otherwise;
# its correlations are checked to be identical to duplicateCorrelation's)
gg <- statmod::glmgam.fit
b <- body(gg)
b[[length(b)]] <- quote(list(coefficients = beta, fitted.values = as.vector(mu), deviance = dev,
                             iter = iter, crit = drop(crossprod(dl, dbeta)), damped = lambda / maxinfo > 1e+15))
body(gg) <- b
mm <- statmod::mixedModel2Fit
txt <- deparse(body(statmod::mixedModel2Fit))
txt <- sub("glmgam.fit(", "gg(", txt, fixed = TRUE)
txt <- sub("out <- list(varcomp = dfit$coefficients)",
           "out <- list(varcomp = dfit$coefficients, iter = if (is.null(dfit$iter)) 0L else dfit$iter, crit = if (is.null(dfit$crit)) NA_real_ else dfit$crit, damped = isTRUE(dfit$damped))", txt, fixed = TRUE)
mm <- eval(parse(text = paste("function(y, X, Z, w = NULL, only.varcomp = FALSE, tol = 1e-06, maxit = 50, trace = FALSE)",
                              paste(txt, collapse = "\n"))))
environment(mm) <- environment()
environment(gg) <- asNamespace("statmod")
diag_loop <- function(M, design, block, weights = NULL) {
  if (!is.null(weights)) { weights[weights <= 0] <- NA; M[!is.finite(weights)] <- NA }
  nbeta <- ncol(design)
  out <- data.frame(rho = rep(NA_real_, nrow(M)), iter = NA_integer_, crit = NA_real_, damped = NA,
                    varcomp.Residual = NA_real_, varcomp.Block = NA_real_)
  for (i in seq_len(nrow(M))) {
    y <- drop(M[i, ]); o <- is.finite(y); A <- factor(block[o]); nobs <- sum(o); nblocks <- length(levels(A))
    if (nobs > (nbeta + 2L) && nblocks > 1L && nblocks < (nobs - 1L)) {
      y <- y[o]; X <- design[o, , drop = FALSE]; Z <- model.matrix(~ 0 + A)
      w <- if (is.null(weights)) NULL else drop(weights[i, ])[o]
      s <- tryCatch(suppressWarnings(mm(y, X, Z, w, only.varcomp = TRUE, maxit = 20)), error = function(e) NULL)
      if (!is.null(s) && !is.na(s$varcomp[1])) {
        out$rho[i] <- s$varcomp[2] / sum(s$varcomp); out$iter[i] <- s$iter; out$crit[i] <- s$crit; out$damped[i] <- s$damped
        out$varcomp.Residual[i] <- s$varcomp[1]; out$varcomp.Block[i] <- s$varcomp[2]
        # the instrumented copy gives statmod's own numbers
        s0 <- suppressWarnings(statmod::mixedModel2Fit(y, X, Z, w, only.varcomp = TRUE, maxit = 20)$varcomp)
        stopifnot(identical(unname(s0), unname(s$varcomp)))
      }
    }
  }
  out
}

cases <- list(
  logcpm = list(M = lcpm, W = NULL, trend = TRUE),
  voom = list(M = E, W = W, trend = FALSE),
  logcpm_na = list(M = lcpm_na, W = NULL, trend = TRUE),
  voom_na = list(M = E_na, W = W_0, trend = FALSE))
scalars <- list()
Fcoefs <- c("regionDesert", "regionMountain")
# the moderated statistics only (t, p for every coefficient, eBayes' F over all coefficients and
# topTable's F over the region coefficients), to keep the folder small
half_rows <- function(m) sort(unique(c(1:30, seq(2, m, 2))))  # the tables keep these rows
fit_table <- function(eb, rows = seq_len(nrow(eb))) {
  out <- data.frame(feature_id = rownames(eb$coefficients), df.residual = eb$df.residual, check.names = FALSE)
  for (k in colnames(eb$coefficients)) {
    out[[paste0("t.", k)]] <- eb$t[, k]
    out[[paste0("p.value.", k)]] <- eb$p.value[, k]
  }
  out$F.all <- eb$F; out$F.all.p.value <- eb$F.p.value
  tt <- topTable(eb, coef = Fcoefs, number = Inf, sort.by = "none")
  out$F <- tt$F; out$F.p.value <- tt$P.Value
  out[rows, ]
}
for (name in names(cases)) {
  cs <- cases[[name]]
  dc <- duplicateCorrelation(cs$M, design, block = block, weights = cs$W)
  dg <- diag_loop(cs$M, design, block, cs$W)
  rhomin <- 1 / (1 - max(table(block))) + 0.01
  r <- pmin(pmax(dg$rho, rhomin), 0.99)
  stopifnot(identical(atanh(r), dc$atanh.correlations))
  # iter, crit (3 digits) and damped: glmgam.fit's iterations, its last crossprod(dl, dbeta) and
  # whether it stopped for too much damping; varcomp: mixedModel2Fit's (NA where
  # duplicateCorrelation gives NA)
  write_tsv(data.frame(feature_id = rownames(cs$M), atanh.correlations = dc$atanh.correlations,
                       iter = dg$iter, crit = ifelse(is.na(dg$crit), "NA", sprintf("%.3g", dg$crit)),
                       damped = dg$damped, varcomp.Residual = dg$varcomp.Residual,
                       varcomp.Block = dg$varcomp.Block),
            paste0("dupcor_", name, ".tsv.gz"))
  scalars[[paste0("consensus.", name)]] <- dc$consensus.correlation
  fit <- lmFit(cs$M, design, block = block, correlation = dc$consensus.correlation, weights = cs$W)
  # eBayes stops on the all-missing row (NaN Amean, NA df): it is fitted (all NA) but not moderated
  eb <- eBayes(fit[rowSums(is.finite(cs$M)) > 0, ], trend = cs$trend)
  write_tsv(fit_table(eb, half_rows(nrow(eb))), paste0("gls_", name, ".tsv.gz"))
  scalars[[paste0("cov.coefficients.", name)]] <- as.vector(fit$cov.coefficients)
}
# correlation given: the NA matrix at correlation 0.5 with voom weights; log-CPM with array weights
# (the fast path of gls.series) at correlation -0.05
aw <- read.delim(file.path(root, "counts/ref/voomqw_sample_weights.tsv"))$sample.weights
write_tsv(data.frame(sample_id = sheet$sample_id, weight = aw), "array_weights.tsv")
aw <- read.delim("array_weights.tsv")$weight
given <- list(
  voom_na_rho0.5 = list(M = E_na, W = W_0, rho = 0.5, trend = FALSE),
  logcpm_aw_rhoneg = list(M = lcpm, W = aw, rho = -0.05, trend = TRUE))
for (name in names(given)) {
  cs <- given[[name]]
  fit <- lmFit(cs$M, design, block = block, correlation = cs$rho, weights = cs$W)
  # eBayes stops on the all-missing row (NaN Amean, NA df): it is fitted (all NA) but not moderated
  eb <- eBayes(fit[rowSums(is.finite(cs$M)) > 0, ], trend = cs$trend)
  write_tsv(fit_table(eb, half_rows(nrow(eb))), paste0("gls_", name, ".tsv.gz"))
  scalars[[paste0("cov.coefficients.", name)]] <- as.vector(fit$cov.coefficients)
}
# unbalanced blocks (sizes 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1 over the 24 samples, crossing donors):
# the first 300 genes without and with the voom weights
ublock <- c(1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13)[c(seq(1, 24, 2), seq(2, 24, 2))]
write_tsv(data.frame(sample_id = sheet$sample_id, block = ublock), "unbalanced_block.tsv")
for (name in c("logcpm", "voom")) {
  cs <- cases[[name]]
  M <- cs$M[1:300, ]; Wu <- if (is.null(cs$W)) NULL else cs$W[1:300, ]
  dc <- duplicateCorrelation(M, design, block = ublock, weights = Wu)
  dg <- diag_loop(M, design, ublock, Wu)
  stopifnot(identical(atanh(pmin(pmax(dg$rho, 1 / (1 - 4) + 0.01), 0.99)), dc$atanh.correlations))
  write_tsv(data.frame(feature_id = rownames(M), atanh.correlations = dc$atanh.correlations,
                       iter = dg$iter, varcomp.Residual = dg$varcomp.Residual, varcomp.Block = dg$varcomp.Block),
            paste0("dupcor_unbalanced_", name, ".tsv.gz"))
  scalars[[paste0("consensus.unbalanced_", name)]] <- dc$consensus.correlation
}

# duplicate spots instead of blocks: ndups = 2 (spacing 1) on the first 600 log-CPM rows
dn <- duplicateCorrelation(lcpm[1:600, ], design, ndups = 2)
write_tsv(data.frame(gene = seq_along(dn$atanh.correlations), atanh.correlations = dn$atanh.correlations),
          "dupcor_ndups2.tsv.gz")
scalars$consensus.ndups2 <- dn$consensus.correlation

# statmod::glmgam.fit on its own: 40 gamma GLMs on a 3-column design (identity link), started as
# mixedModel2Fit starts it; tol and maxit vary so that some stop at maxit
set.seed(5)
k <- 30
Xg <- cbind(1, runif(k), runif(k)^2)
gl <- list()
for (i in 1:40) {
  b <- c(1, runif(1, -0.8, 2), runif(1, -0.5, 1))
  mu <- pmax(drop(Xg %*% b), 0.05)
  y <- rgamma(k, shape = c(0.5, 2, 10)[1 + i %% 3], scale = mu / c(0.5, 2, 10)[1 + i %% 3])
  if (i == 40) y[1:5] <- 0
  f0 <- lm.fit(Xg, y)
  start <- if (all(f0$fitted.values >= 0)) f0$coefficients else c(mean(y), 0, 0)
  maxit <- if (i %% 4 == 0) 3 else 50
  tol <- if (i %% 5 == 0) 1e-10 else 1e-6
  f <- statmod::glmgam.fit(Xg, y, coef.start = start, tol = tol, maxit = maxit)
  gl[[i]] <- data.frame(fit = i, tol = tol, maxit = maxit, start1 = start[1], start2 = start[2], start3 = start[3],
                        coef1 = f$coefficients[1], coef2 = f$coefficients[2], coef3 = f$coefficients[3],
                        deviance = f$deviance, iter = f$iter, t(setNames(y, paste0("y", 1:k))))
}
write_tsv(do.call(rbind, gl), "glmgam.tsv.gz")
write_tsv(data.frame(x1 = Xg[, 1], x2 = Xg[, 2], x3 = Xg[, 3]), "glmgam_design.tsv")

scalars$R.version <- R.version.string
scalars$limma.version <- as.character(packageVersion("limma"))
scalars$statmod.version <- as.character(packageVersion("statmod"))
con <- file("scalars.tsv", "w")
for (k in names(scalars)) writeLines(paste(k, paste(fmt(scalars[[k]]), collapse = ","), sep = "\t"), con)
close(con)
writeLines(c(R.version.string, paste("limma", packageVersion("limma")), paste("statmod", packageVersion("statmod"))), "versions.txt")
