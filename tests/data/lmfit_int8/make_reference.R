# Reference for tests/limma/test_lmfit_int8.py: limma's lmFit on allele counts with missing calls,
# the stacked SNP model dosage ~ y + sex + pc1..pc4 (one row per SNP, each fitted on its called
# samples: limma's lm.series calls lm.fit per row with NA).
# R 4.2.2, limma 3.54.1 (Debian). Run here: Rscript make_reference.R
# Writes genotypes.tsv.gz (SNPs x samples, 0/1/2, NA = missing call), design.tsv and
# lmfit.tsv.gz (coefficients, stdev.unscaled, sigma, df.residual, Amean; %.17g).
suppressPackageStartupMessages(library(limma))
set.seed(20261201)
n <- 400
G <- 300
sex <- rbinom(n, 1, 0.5)
pcs <- matrix(rnorm(n * 4), n, 4, dimnames = list(NULL, paste0("pc", 1:4)))
y <- 0.3 * sex + drop(pcs %*% rep(0.2, 4)) + rnorm(n)
design <- cbind("(Intercept)" = 1, y = y, sexM = sex, pcs)
rownames(design) <- sprintf("S%03d", seq_len(n))
# allele frequencies of the counted allele from 0.003 (rare) to 0.997 (the major allele counted)
freq <- c(runif(G - 20, 0.02, 0.98), runif(10, 0.003, 0.01), runif(10, 0.99, 0.997))
geno <- t(sapply(freq, function(q) rbinom(n, 2, q)))
geno[matrix(runif(G * n) < 0.005, G, n)] <- NA             # 0.5% missing at random
geno[1:10, ][matrix(runif(10 * n) < 0.4, 10, n)] <- NA      # 40% missing: heavy missingness
geno[11, sex == 1] <- NA                                    # sexM not estimable
geno[12, -(1:9)] <- NA                                      # 9 calls: df.residual 2
geno[13, -(1:7)] <- NA                                      # 7 calls: df.residual 0
geno[14, ] <- NA                                            # no call at all
geno[15, !is.na(geno[15, ])] <- 1L                          # constant dosage: sigma 0
rownames(geno) <- sprintf("snp%03d", seq_len(G))
colnames(geno) <- rownames(design)
fit <- suppressWarnings(lmFit(geno, design))
f17 <- function(v) { o <- sprintf("%.17g", v); o[is.na(v)] <- "NA"; o }
tab <- data.frame(feature_id = rownames(geno))
for (j in colnames(design)) tab[[paste0("coef_", j)]] <- f17(fit$coefficients[, j])
for (j in colnames(design)) tab[[paste0("stdev_", j)]] <- f17(fit$stdev.unscaled[, j])
tab$sigma <- f17(fit$sigma)
tab$df_residual <- fit$df.residual
tab$amean <- f17(fit$Amean)
con <- gzfile("lmfit.tsv.gz", "w")
write.table(tab, con, sep = "\t", quote = FALSE, row.names = FALSE)
close(con)
g <- data.frame(feature_id = rownames(geno), geno, check.names = FALSE)
con <- gzfile("genotypes.tsv.gz", "w")
write.table(g, con, sep = "\t", quote = FALSE, row.names = FALSE, na = "NA")
close(con)
d <- data.frame(sample_id = rownames(design), apply(design, 2, f17), check.names = FALSE)
write.table(d, "design.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(c(R.version.string, paste("limma", packageVersion("limma"))), "versions.txt")
