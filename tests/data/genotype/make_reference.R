# Reference for tests/genotype: R lm on the PLINK subset testdata_chr16_22.bed written by
# make_reference.sh (snpStats testdata, chromosomes 16-22: 1,986 SNPs x 400 subjects).
# R 4.2.2, snpStats 1.48.0 (Debian). Run from this folder via make_reference.sh.
#
# For SNP j, x_j = copies of the .bim's allele 2 ("B"; snpStats' as(G, "numeric")), NA if missing:
#   lm(cc ~ x_j + sex + region)   (case/control 0/1: the linear probability model of the shared
#                                  reference ../shared/data/snpstats/testdata_lm_reference.tsv.gz)
#   lm(qt ~ x_j + sex + region)   (qt: a quantitative trait simulated here, set.seed(18))
# on the subjects with a call; row "x" of summary(): Estimate, Std. Error, t value, Pr(>|t|), df.
suppressPackageStartupMessages(library(snpStats))
args <- commandArgs(TRUE)
sheet_in <- if (length(args)) args[1] else "/work/shared/data/snpstats/testdata_samples.tsv"
pl <- read.plink("testdata_chr16_22.bed", "testdata_chr16_22.bim", "testdata_chr16_22.fam")
G <- pl$genotypes
X <- as(G, "numeric")                                   # subjects x SNPs, copies of allele 2
stopifnot(identical(colnames(X), as.character(pl$map$snp.name)))
s <- read.delim(sheet_in, colClasses = c(sample_id = "character"))
s <- s[match(rownames(X), s$sample_id), ]
stopifnot(identical(s$sample_id, rownames(X)))
s$region <- factor(s$region)
s$sex <- factor(s$sex)

# quantitative trait: two causal SNPs (the first two SNPs with all 400 calls and MAF >= 0.3),
# sex and region effects, normal noise
maf <- col.summary(G)$MAF
cr <- col.summary(G)$Call.rate
causal <- which(cr == 1 & maf >= 0.3)[1:2]
set.seed(18)
reg_eff <- setNames(rnorm(nlevels(s$region), sd = 0.5), levels(s$region))
s$qt <- 0.4 * X[, causal[1]] - 0.3 * X[, causal[2]] + 0.5 * (s$sex == "Female") +
  reg_eff[as.character(s$region)] + rnorm(nrow(s))

fit_all <- function(y) {
  res <- t(vapply(seq_len(ncol(X)), function(j) {
    d <- data.frame(y = y, x = X[, j], sex = s$sex, region = s$region)
    # no calls at all: lm() fails (as in the shared reference's script, NA)
    f <- tryCatch(summary(lm(y ~ x + sex + region, data = d)), error = function(e) NULL)
    if (is.null(f) || !("x" %in% rownames(f$coefficients))) return(c(NA, NA, NA, NA, NA))
    cf <- f$coefficients["x", ]
    c(cf[["Estimate"]], cf[["Std. Error"]], cf[["t value"]], cf[["Pr(>|t|)"]], f$df[2])
  }, numeric(5)))
  colnames(res) <- c("beta_snp", "se_snp", "t", "p", "df_residual")
  res
}
cc <- fit_all(s$cc)
qt <- fit_all(s$qt)
f17 <- function(v) { o <- sprintf("%.17g", v); o[is.na(v)] <- "NA"; o }
tab <- data.frame(feature_id = colnames(X), n_called = colSums(!is.na(X)))
for (nm in colnames(cc)) tab[[paste0("cc_", nm)]] <- f17(cc[, nm])
for (nm in colnames(qt)) tab[[paste0("qt_", nm)]] <- f17(qt[, nm])
con <- gzfile("lm_reference.tsv.gz", "w")
write.table(tab, con, sep = "\t", quote = FALSE, row.names = FALSE)
close(con)

out <- data.frame(sample_id = s$sample_id, cc = s$cc, sex = as.character(s$sex),
                  region = as.character(s$region), qt = f17(s$qt))
write.table(out, "samples.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
# plink2 inputs: phenotype file, and covariates as 0/1 dummies (sex Male, region levels 2..10,
# the same treatment contrasts as R's model.matrix)
fam <- pl$fam
write.table(data.frame(FID = fam$pedigree, IID = fam$member, qt = f17(s$qt)), "plink2_pheno.txt",
            sep = "\t", quote = FALSE, row.names = FALSE)
mm <- model.matrix(~ sex + region, data = s)[, -1]
colnames(mm) <- make.names(colnames(mm))
write.table(data.frame(FID = fam$pedigree, IID = fam$member, mm, check.names = FALSE),
            "plink2_covar.txt", sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(c(paste("causal SNPs of qt:", paste(colnames(X)[causal], collapse = ", ")),
             R.version.string, paste("snpStats", packageVersion("snpStats"))), "versions.txt")
cat("done", ncol(X), "SNPs x", nrow(X), "subjects\n")
