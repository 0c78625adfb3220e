# R references for tests/test_diagnostics.py (stacklm.diagnostics).
# Run from this folder: Rscript make_reference.R   (R 4.2.2, limma 3.54.1)
suppressPackageStartupMessages(library(limma))
set.seed(7)
G <- 400; n <- 16
samples <- data.frame(
  sample_id = sprintf("S%02d", 1:n),
  group = rep(c("A", "B", "C"), length.out = n),
  x = round(runif(n, 0, 10), 2),
  batch = rep(c("b1", "b2", "b3", "b4"), each = 4),
  quality = round(rnorm(n, 7, 1), 2),
  stringsAsFactors = FALSE
)
samples$quality[3] <- NA  # a missing covariate value
design <- model.matrix(~ group + x, data = samples)
colnames(design)[1] <- "Intercept"
rownames(design) <- samples$sample_id
amean <- runif(G, 4, 12)
batch_effect <- outer(rnorm(G, 0, 0.6), as.numeric(factor(samples$batch)) - 2.5)
quality_effect <- outer(rnorm(G, 0, 0.4), samples$quality - 7)
quality_effect[is.na(quality_effect)] <- 0
E <- amean + outer(rnorm(G, 0, 1) * (runif(G) < 0.2), samples$group == "B") +
  outer(rnorm(G, 0, 0.05), samples$x) + batch_effect + quality_effect +
  matrix(rnorm(G * n, 0, 0.5), G, n) * sqrt(rchisq(G, 4) / 4)
E[matrix(runif(G * n) < 0.03, G, n)] <- NA
E[5, ] <- NA                                   # all missing
E[9, samples$group == "C"] <- NA               # groupC not estimable for this feature
E[12, 1:14] <- NA                              # two observed values: df 0 after refit
dimnames(E) <- list(sprintf("f%03d", 1:G), samples$sample_id)

w <- function(x, file, ...) write.table(x, file, sep = "\t", quote = FALSE, na = "NA", ...)
fmt <- function(m) { out <- m; out[] <- ifelse(is.na(m), NA, sprintf("%.17g", m)); out }
w(cbind(feature_id = rownames(E), fmt(E)), "expression.tsv", row.names = FALSE)
w(samples, "samples.tsv", row.names = FALSE)
w(cbind(sample_id = rownames(design), fmt(design)), "design.tsv", row.names = FALSE)

fit <- lmFit(E, design)
coef0 <- fit$coefficients; coef0[is.na(coef0)] <- 0
fitted <- coef0 %*% t(design)
obs <- !is.na(E)
centre <- function(M) {                        # row-centre over observed entries, missing -> 0
  M[!obs] <- NA
  M <- M - rowMeans(M, na.rm = TRUE)
  M[is.na(M)] <- 0
  M
}
mats <- list(input = centre(E), fitted = centre(fitted), residuals = centre(E - fitted))
for (name in names(mats)) {
  pc <- prcomp(t(mats[[name]]), center = TRUE, scale. = FALSE)
  k <- sum(pc$sdev^2 > 1e-10 * pc$sdev[1]^2)
  w(data.frame(component = paste0("PC", seq_len(k)), sdev = sprintf("%.17g", pc$sdev[1:k])),
    sprintf("pca_%s_sdev.tsv", name), row.names = FALSE)
  x <- pc$x[, 1:min(k, 6), drop = FALSE]
  w(cbind(sample_id = rownames(x), fmt(x)), sprintf("pca_%s_scores.tsv", name), row.names = FALSE)
  # associations of the top components with each covariate (R^2 and the F-test p-value)
  rows <- list()
  for (j in seq_len(ncol(x))) for (cov in c("group", "x", "batch", "quality")) {
    m <- lm(x[, j] ~ samples[[cov]])
    rows[[length(rows) + 1]] <- data.frame(component = colnames(x)[j], covariate = cov,
      r2 = sprintf("%.17g", summary(m)$r.squared), p_value = sprintf("%.17g", anova(m)$"Pr(>F)"[1]))
  }
  w(do.call(rbind, rows), sprintf("pca_%s_associations.tsv", name), row.names = FALSE)
}

# plotSA's outlier colouring under robust eBayes (code of limma 3.54.1 plotSA)
eb <- eBayes(fit, robust = TRUE)
df2 <- max(eb$df.prior)
s2 <- eb$sigma^2 / eb$s2.prior
pdn <- pf(s2, df1 = eb$df.residual, df2 = df2)
pup <- pf(s2, df1 = eb$df.residual, df2 = df2, lower.tail = FALSE)
FDR <- p.adjust(2 * pmin(pdn, pup), method = "BH")
w(data.frame(feature_id = rownames(E), average = sprintf("%.17g", eb$Amean),
  sigma = sprintf("%.17g", eb$sigma), df_residual = sprintf("%.17g", eb$df.residual),
  s2_prior = sprintf("%.17g", eb$s2.prior), df_prior = sprintf("%.17g", eb$df.prior),
  sqrt_sigma = sprintf("%.17g", sqrt(eb$sigma)), prior_line = sprintf("%.17g", sqrt(sqrt(eb$s2.prior))),
  outlier_fdr = sprintf("%.17g", FDR), outlier = FDR <= 0.5),
  "plotsa_robust.tsv", row.names = FALSE)
# with the trend: s2.prior per feature, df.prior a single number (no outlier colouring)
# (limma stops on the all-missing feature 5 with trend = TRUE: it is left out)
ebt <- eBayes(fit[-5, ], trend = TRUE)
w(data.frame(feature_id = rownames(E)[-5], average = sprintf("%.17g", ebt$Amean),
  sigma = sprintf("%.17g", ebt$sigma), df_residual = sprintf("%.17g", ebt$df.residual),
  s2_prior = sprintf("%.17g", ebt$s2.prior), df_prior = sprintf("%.17g", rep(ebt$df.prior, G - 1)),
  prior_line = sprintf("%.17g", sqrt(sqrt(ebt$s2.prior)))), "plotsa_trend.tsv", row.names = FALSE)

# binned trend of coefficient groupB on Amean: 20 equal-count bins of the sorted average,
# the first (m %% 20) bins one longer; quantiles of type 7
ok <- is.finite(eb$Amean) & is.finite(eb$coefficients[, "groupB"])
a <- eb$Amean[ok]; b <- eb$coefficients[ok, "groupB"]
o <- order(a); a <- a[o]; b <- b[o]
m <- length(a); k <- 20; base <- m %/% k; r <- m %% k
bin <- rep(1:k, times = c(rep(base + 1, r), rep(base, k - r)))
tr <- do.call(rbind, lapply(1:k, function(i) {
  yi <- b[bin == i]; xi <- a[bin == i]
  q <- quantile(yi, c(0.25, 0.75, 0.05, 0.95), type = 7)
  data.frame(bin = i, x_low = min(xi), x_high = max(xi), x_median = median(xi), n = length(yi),
    y_mean = mean(yi), y_median = median(yi), y_q25 = q[1], y_q75 = q[2], y_q05 = q[3], y_q95 = q[4])
}))
tr[] <- lapply(tr, function(v) if (is.double(v)) sprintf("%.17g", v) else v)
w(tr, "binned_trend_groupB.tsv", row.names = FALSE)

# p-value histogram (hist with breaks 0, 0.05, ..., 1) and QQ quantities for the moderated F
p <- eb$F.p.value
p <- p[is.finite(p)]
h <- hist(p, breaks = seq(0, 1, by = 0.05), plot = FALSE)
w(data.frame(count = h$counts, density = sprintf("%.17g", h$density)), "pvalue_histogram.tsv",
  row.names = FALSE)
ps <- sort(p); mm <- length(ps); i <- seq_len(mm)
w(data.frame(rank = i, p = sprintf("%.17g", ps), expected = sprintf("%.17g", -log10(ppoints(mm))),
  band_low = sprintf("%.17g", -log10(qbeta(0.975, i, mm - i + 1))),
  band_high = sprintf("%.17g", -log10(qbeta(0.025, i, mm - i + 1)))), "qq.tsv", row.names = FALSE)

# correlation of the estimates across features (complete rows) and implied by the design
C <- cbind(diag(4), c(0, 1, -1, 0))
dimnames(C) <- list(colnames(design), c(colnames(design), "BvsC"))
est <- cbind(eb$coefficients, BvsC = as.vector(eb$coefficients %*% C[, 5]))
keep <- c("groupB", "groupC", "x", "BvsC")
cc <- cor(est[complete.cases(est), keep])
dc <- cov2cor(t(C[, keep]) %*% solve(crossprod(design)) %*% C[, keep])
w(cbind(name = keep, fmt(cc)), "estimate_correlation.tsv", row.names = FALSE)
w(cbind(name = keep, fmt(dc)), "design_correlation.tsv", row.names = FALSE)

# per-sample quantiles (type 7) and bw.nrd0 of the observed values
qs <- t(apply(E, 2, function(v) quantile(v, c(0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1), na.rm = TRUE)))
bw <- apply(E, 2, function(v) bw.nrd0(v[!is.na(v)]))
w(cbind(sample = colnames(E), n_values = colSums(!is.na(E)), fmt(qs), bw_nrd0 = sprintf("%.17g", bw)),
  "sample_quantiles.tsv", row.names = FALSE)
writeLines(c(R.version.string, paste("limma", packageVersion("limma"))), "versions.txt")
