# R references for stacklm's arrayWeights and voomWithQualityWeights ports.
# R 4.2.2, limma 3.63.2 (R_LIBS=/root/R/limma-3.63.2), edgeR 3.40.2 (Debian).
# Input: the first 2,000 genes of the shared simulated counts (shared/data/counts, seed 7, 24 samples),
# design ~ treatment + region + sex, filterByExpr then TMM (as shared/data/counts/README.txt).
# Run from this folder:
#   R_LIBS=/root/R/limma-3.63.2 REFDATA=/work/shared/data Rscript make_reference.R
root <- normalizePath(Sys.getenv("REFDATA", "../../../../shared/data"), mustWork = TRUE)
source(file.path(root, "scripts", "common.R"))   # write_tsv (%.17g), save_limma (eBayes table)
suppressPackageStartupMessages(library(edgeR))
stopifnot(packageVersion("limma") == "3.63.2")
out <- "."

counts <- as.matrix(read.delim(file.path(root, "counts/counts.tsv.gz"), row.names = 1, check.names = FALSE))
sheet <- read.delim(file.path(root, "counts/samples.tsv"), stringsAsFactors = FALSE)
stopifnot(identical(sheet$sample_id, colnames(counts)))
counts <- counts[1:2000, ]
sheet$treatment <- factor(sheet$treatment, levels = c("before", "after"))
sheet$region <- factor(sheet$region, levels = c("Agadir", "Desert", "Mountain"))
design <- model.matrix(~ treatment + region + sex, data = sheet)
colnames(design) <- c("Intercept", "treatmentafter", "regionDesert", "regionMountain", "sexM")

y <- DGEList(counts)
keep <- filterByExpr(y, design)
y <- y[keep, , keep.lib.sizes = FALSE]
y <- calcNormFactors(y, method = "TMM")
# kept genes' counts, library sizes and TMM factors: the inputs of voom / voomWithQualityWeights
df <- data.frame(feature_id = rownames(y), check.names = FALSE)
for (j in seq_len(ncol(y))) df[[colnames(y)[j]]] <- as.integer(y$counts[, j])
write_tsv(df, file.path(out, "counts_kept.tsv.gz"))
write_tsv(data.frame(sample_id = sheet$sample_id, region = as.character(sheet$region),
                     lib.size = y$samples$lib.size, norm.factors = y$samples$norm.factors),
          file.path(out, "libraries.tsv"))
write_design(design, sheet$sample_id, file.path(out, "design.tsv"))

v <- voom(y, design)
# voom's E is log2((count + 0.5) / (lib.size * norm.factors + 1) * 1e6): recomputed in the tests;
# its weights are an input of the arrayWeights tests
E <- v$E
W <- v$weights
G <- nrow(E); n <- ncol(E)
emat <- function(m, path) { dimnames(m) <- dimnames(y$counts); write_matrix_tsv(m, path) }
emat(W, file.path(out, "voom_weights.tsv.gz"))

# missing values: 1% of the cells, one gene with 3 observations, one with 7 (df.residual 2)
set.seed(16)
na <- which(matrix(runif(G * n) < 0.01, G, n), arr.ind = TRUE)
na <- rbind(na, cbind(row = 5L, col = 4:24), cbind(row = 9L, col = c(1:3, 11:24)))
na <- unique(na)
Ena <- E; Ena[na] <- NA
# zero observation weights (limma sets those observations to NA)
zero <- which(matrix(runif(G * n) < 0.01, G, n), arr.ind = TRUE)
Wz <- W; Wz[zero] <- 0
write_tsv(data.frame(row = na[, 1], col = na[, 2]), file.path(out, "na_cells.tsv"))
write_tsv(data.frame(row = zero[, 1], col = zero[, 2]), file.path(out, "zero_weight_cells.tsv"))

vg <- sheet$region
vd <- cbind(loglib = log(y$samples$lib.size), after = as.numeric(sheet$treatment == "after"))
rankdef <- cbind(design, dup = design[, "regionDesert"] + design[, "regionMountain"])
aw <- list(
  gbg_w = arrayWeights(v, design, method = "genebygene"),
  reml_w = arrayWeights(v, design, method = "reml"),
  gbg_w_vg = arrayWeights(v, design, method = "genebygene", var.group = vg),
  reml_w_vg = arrayWeights(v, design, method = "reml", var.group = vg),
  gbg_w_vd = arrayWeights(v, design, method = "genebygene", var.design = vd),
  reml_w_vd = arrayWeights(v, design, method = "reml", var.design = vd),
  auto_E = arrayWeights(E, design),
  gbg_E = arrayWeights(E, design, method = "genebygene"),
  auto_E_vg = arrayWeights(E, design, var.group = vg),
  auto_E_nodesign = arrayWeights(E),
  auto_E_rankdef = arrayWeights(E, rankdef),
  reml_E_prior3 = arrayWeights(E, design, prior.n = 3, method = "reml"),
  auto_Ena = arrayWeights(Ena, design),
  reml_Ena = suppressMessages(arrayWeights(Ena, design, method = "reml")),
  auto_Ena_w = arrayWeights(Ena, design, weights = W),
  auto_E_wz = arrayWeights(E, design, weights = Wz),
  reml_E_wz = suppressMessages(arrayWeights(E, design, weights = Wz, method = "reml"))
)
aw_df <- data.frame(sample_id = sheet$sample_id, check.names = FALSE)
for (k in names(aw)) aw_df[[k]] <- unname(aw[[k]])
write_tsv(aw_df, file.path(out, "array_weights.tsv"))

vq <- voomWithQualityWeights(y, design)
vq_reml <- voomWithQualityWeights(y, design, method = "reml", var.group = vg)
write_tsv(data.frame(sample_id = sheet$sample_id, genebygene = vq$targets$sample.weights,
                     reml_vg = vq_reml$targets$sample.weights),
          file.path(out, "voomqw_sample_weights.tsv"))
emat(vq$weights, file.path(out, "voomqw_weights.tsv.gz"))
# eBayes table (columns as shared/data's save_limma), cut to the statistics the tests check (size)
Fcoefs <- c("regionDesert", "regionMountain")
eb <- eBayes(lmFit(vq, design))
tab <- limma_table(eb, Fcoefs)
cols <- c("feature_id", "sigma", "s2.post", grep("^(coefficients|t|p[.]value)[.][^.]+$", names(tab), value = TRUE),
          "F.all", "F.all.p.value", "F", "F.p.value")
write_tsv(tab[, cols], file.path(out, "voomqw_ebayes.tsv.gz"))
write_json_file(limma_scalars(eb, Fcoefs), file.path(out, "voomqw_ebayes.json"))
writeLines(c(session_lines(), paste("edgeR", packageVersion("edgeR")),
             paste("genes kept", G, "of 2000")), file.path(out, "versions.txt"))
