# R references for the workflow's counts and block paths (stacklm.workflow.weighting): the whole
# recipes of README "RNA-seq counts" and "Paired and repeated samples", on the 2,000-gene counts
# subset of ../counts (counts.tsv.gz, samples.tsv: 12 donors x before/after, 3 regions).
# R 4.2.2, limma 3.63.2 (R_LIBS=/root/R/limma-3.63.2), edgeR 3.40.2, statmod 1.5.0 (Debian).
# Run from this folder (needs nothing outside the repository):
#   R_LIBS=/root/R/limma-3.63.2 Rscript make_reference.R
suppressPackageStartupMessages({ library(limma); library(edgeR); library(statmod) })
stopifnot(as.character(packageVersion("limma")) == "3.63.2", as.character(packageVersion("edgeR")) == "3.40.2")
fmt <- function(x) {
  if (is.logical(x)) x <- as.integer(x)
  if (is.double(x)) { o <- sprintf("%.17g", x); o[is.na(x)] <- "NA"; o } else { o <- as.character(x); o[is.na(x)] <- "NA"; o }
}
write_tsv <- function(df, path) {
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(do.call(paste, c(unname(lapply(df, fmt)), sep = "\t")), con)
}
counts <- as.matrix(read.delim("../counts/counts.tsv.gz", row.names = 1, check.names = FALSE))
sheet <- read.delim("../counts/samples.tsv", stringsAsFactors = FALSE)
stopifnot(identical(sheet$sample_id, colnames(counts)))
n <- ncol(counts)
# a sample-weights column (deterministic): the workflow reads it from samples.tsv here
sheet$weight <- ((1:n) %% 5 + 1) / 3
write_tsv(sheet, "samples.tsv")
sheet$treatment <- factor(sheet$treatment, levels = c("before", "after"))
sheet$region <- factor(sheet$region, levels = c("Agadir", "Desert", "Mountain"))
design <- model.matrix(~ treatment + region + sex, data = sheet)
colnames(design) <- c("Intercept", "treatmentafter", "regionDesert", "regionMountain", "sexM")
block <- sheet$donor
sw <- sheet$weight

y <- DGEList(counts)
keep <- filterByExpr(y, design)
y <- y[keep, , keep.lib.sizes = FALSE]
y <- calcNormFactors(y, method = "TMM")
Fcoefs <- c("regionDesert", "regionMountain")
scalars <- list()
table_of <- function(fit, trend = FALSE) {
  eb <- eBayes(fit, trend = trend)
  tt <- topTable(eb, coef = Fcoefs, number = Inf, sort.by = "none")
  data.frame(feature_id = rownames(eb$coefficients), s2.post = eb$s2.post,
             coefficients.treatmentafter = eb$coefficients[, "treatmentafter"],
             t.treatmentafter = eb$t[, "treatmentafter"], p.value.treatmentafter = eb$p.value[, "treatmentafter"],
             F = tt$F, F.p.value = tt$P.Value, check.names = FALSE)
}

# 1. weights: voom, block: donor -- the limma User's Guide two-round recipe
v <- voom(y, design)
c1 <- duplicateCorrelation(v, design, block = block)
v2 <- voom(y, design, block = block, correlation = c1$consensus.correlation)
c2 <- duplicateCorrelation(v2, design, block = block)
write_tsv(table_of(lmFit(v2, design, block = block, correlation = c2$consensus.correlation)), "voom_block.tsv.gz")
write_tsv(data.frame(feature_id = rownames(v2), atanh.correlations = c2$atanh.correlations), "voom_block_atanh.tsv.gz")
scalars$voom_block.c1 <- c1$consensus.correlation
scalars$voom_block.c2 <- c2$consensus.correlation

# 2. weights: none, moderation.trend: true -- limma-trend on log-CPM
lcpm <- cpm(y, log = TRUE, prior.count = 2)
write_tsv(table_of(lmFit(lcpm, design), trend = TRUE), "logcpm_trend.tsv.gz")

# 3. weights: none, trend, block: donor
c3 <- duplicateCorrelation(lcpm, design, block = block)
write_tsv(table_of(lmFit(lcpm, design, block = block, correlation = c3$consensus.correlation), trend = TRUE),
          "logcpm_block_trend.tsv.gz")
scalars$logcpm_block.c <- c3$consensus.correlation

# 4. weights: voom_quality, block: donor
vq <- voomWithQualityWeights(y, design)
c4 <- duplicateCorrelation(vq, design, block = block)
vq2 <- voomWithQualityWeights(y, design, block = block, correlation = c4$consensus.correlation)
c5 <- duplicateCorrelation(vq2, design, block = block)
write_tsv(table_of(lmFit(vq2, design, block = block, correlation = c5$consensus.correlation)), "voomqw_block.tsv.gz")
scalars$voomqw_block.c1 <- c4$consensus.correlation
scalars$voomqw_block.c2 <- c5$consensus.correlation
scalars$voomqw_block.sample_weights <- vq2$targets$sample.weights

# 5. weights: voom, sample_weights: weight
v5 <- voom(y, design, weights = sw)
v5$weights <- t(sw * t(v5$weights))
write_tsv(table_of(lmFit(v5, design)), "voom_sample_weights.tsv.gz")

# 6. weights: none, array_weights: true, block: donor, trend
aw <- arrayWeights(lcpm, design)
c6 <- duplicateCorrelation(lcpm, design, block = block, weights = aw)
write_tsv(table_of(lmFit(lcpm, design, block = block, correlation = c6$consensus.correlation, weights = aw), trend = TRUE),
          "logcpm_aw_block_trend.tsv.gz")
scalars$logcpm_aw_block.c <- c6$consensus.correlation
scalars$logcpm_aw_block.sample_weights <- aw

# 7. weights: voom, block: donor, correlation: 0.3 (given)
v7 <- voom(y, design, block = block, correlation = 0.3)
write_tsv(table_of(lmFit(v7, design, block = block, correlation = 0.3)), "voom_block_given.tsv.gz")

con <- file("scalars.tsv", "w")
for (k in names(scalars)) writeLines(paste(k, paste(fmt(scalars[[k]]), collapse = ","), sep = "\t"), con)
close(con)
writeLines(c(R.version.string, paste("limma", packageVersion("limma")), paste("edgeR", packageVersion("edgeR")),
             paste("statmod", packageVersion("statmod")), paste("genes kept", sum(keep), "of", nrow(counts))),
           "versions.txt")
