# R references for stacklm's edgeR ports (filterByExpr, calcNormFactors, cpm) and limma's voom and
# weighted lmFit (lm.series with lm.wfit).
# R 4.2.2, limma 3.63.2 (R_LIBS=/root/R/limma-3.63.2), edgeR 3.40.2 (Debian).
# Input: the first 2,000 genes of the shared simulated counts (shared/data/counts, seed 7, 24 samples),
# design ~ treatment + region + sex (as shared/data/counts/README.txt).
# Run from this folder:
#   R_LIBS=/root/R/limma-3.63.2 REFDATA=/work/shared/data Rscript make_reference.R
root <- normalizePath(Sys.getenv("REFDATA", "../../../../shared/data"), mustWork = TRUE)
source(file.path(root, "scripts", "common.R"))   # write_tsv (%.17g), write_matrix_tsv, limma_table
suppressPackageStartupMessages(library(edgeR))
stopifnot(packageVersion("limma") == "3.63.2", packageVersion("edgeR") == "3.40.2")
out <- "."

counts <- as.matrix(read.delim(file.path(root, "counts/counts.tsv.gz"), row.names = 1, check.names = FALSE))
sheet <- read.delim(file.path(root, "counts/samples.tsv"), stringsAsFactors = FALSE)
stopifnot(identical(sheet$sample_id, colnames(counts)))
counts <- counts[1:2000, ]
storage.mode(counts) <- "integer"
n <- ncol(counts)
sheet$treatment <- factor(sheet$treatment, levels = c("before", "after"))
sheet$region <- factor(sheet$region, levels = c("Agadir", "Desert", "Mountain"))
design <- model.matrix(~ treatment + region + sex, data = sheet)
colnames(design) <- c("Intercept", "treatmentafter", "regionDesert", "regionMountain", "sexM")
df <- data.frame(feature_id = rownames(counts), check.names = FALSE)
for (j in seq_len(n)) df[[colnames(counts)[j]]] <- counts[, j]
write_tsv(df, file.path(out, "counts.tsv.gz"))
write_tsv(sheet, file.path(out, "samples.tsv"))
write_design(design, sheet$sample_id, file.path(out, "design.tsv"))

# ---- filterByExpr --------------------------------------------------------------------------------
y0 <- DGEList(counts)
design0 <- model.matrix(~ 0 + region + treatment, data = sheet)
lib13 <- colSums(counts) * 1.3
flags <- data.frame(
  feature_id = rownames(counts),
  design = filterByExpr(y0, design),
  group_region = filterByExpr(y0, group = sheet$region),
  group_sex = filterByExpr(counts, group = sheet$sex),
  none = suppressMessages(filterByExpr(counts)),
  design_mincount5 = filterByExpr(y0, design, min.count = 5),
  design_noint = filterByExpr(counts, design0),
  design_largen5 = filterByExpr(counts, design, large.n = 5, min.prop = 0.5, min.total.count = 40),
  design_libsize = filterByExpr(counts, design, lib.size = lib13),
  check.names = FALSE)
write_tsv(flags, file.path(out, "filter_by_expr.tsv.gz"))
write_tsv(data.frame(sample_id = sheet$sample_id, lib13 = lib13), file.path(out, "lib13.tsv"))
keep <- flags$design

# ---- calcNormFactors -----------------------------------------------------------------------------
yk <- y0[keep, , keep.lib.sizes = FALSE]
xk <- yk$counts
nf <- data.frame(
  sample_id = sheet$sample_id,
  lib.size.kept = yk$samples$lib.size,
  TMM = calcNormFactors(xk, method = "TMM"),
  TMMwsp = calcNormFactors(xk, method = "TMMwsp"),
  upperquartile = calcNormFactors(xk, method = "upperquartile"),
  none = calcNormFactors(xk, method = "none"),
  TMM_unfiltered = calcNormFactors(counts, method = "TMM"),
  TMMwsp_unfiltered = calcNormFactors(counts, method = "TMMwsp"),
  upperquartile_unfiltered = calcNormFactors(counts, method = "upperquartile"),
  TMM_noweight = calcNormFactors(xk, method = "TMM", doWeighting = FALSE),
  TMMwsp_noweight = calcNormFactors(counts, method = "TMMwsp", doWeighting = FALSE),
  TMM_ref6 = calcNormFactors(xk, method = "TMM", refColumn = 6),
  TMM_trim = calcNormFactors(counts, method = "TMM", logratioTrim = 0.2, sumTrim = 0.1, Acutoff = -20),
  TMM_libsize = calcNormFactors(counts, lib.size = lib13, method = "TMM"),
  uq_p90 = calcNormFactors(counts, method = "upperquartile", p = 0.9),
  check.names = FALSE)
write_tsv(nf, file.path(out, "norm_factors.tsv"))

# ---- cpm -----------------------------------------------------------------------------------------
y <- calcNormFactors(yk, method = "TMM")
top <- 1:200
wm <- function(m, path, rows = seq_len(nrow(m))) {
  dimnames(m) <- dimnames(y$counts)[c(nrow(m) == nrow(y), TRUE)] %||% list(NULL, NULL)
  if (is.null(rownames(m))) rownames(m) <- rownames(y)
  write_matrix_tsv(m[rows, , drop = FALSE], path)
}
wm(cpm(y, log = TRUE), file.path(out, "cpm_log.tsv.gz"), top)                 # prior.count 2
wm(cpm(y, log = TRUE, prior.count = 0.5), file.path(out, "cpm_log_prior05.tsv.gz"), top)
wm(cpm(y), file.path(out, "cpm_raw.tsv.gz"), top)

# ---- voom ----------------------------------------------------------------------------------------
v <- voom(y, design, save.plot = TRUE)
wm(v$E, file.path(out, "voom_E.tsv.gz"), top)
wm(v$weights, file.path(out, "voom_weights.tsv.gz"))
write_tsv(data.frame(sx = v$voom.xy$x, sy = v$voom.xy$y, line_x = v$voom.line$x, line_y = v$voom.line$y),
          file.path(out, "voom_trend.tsv.gz"))
Fcoefs <- c("regionDesert", "regionMountain")
tab <- limma_table(eBayes(lmFit(v, design)), Fcoefs)
cols <- c("feature_id", "Amean", "sigma", "df.residual", "s2.post",
          grep("^(coefficients|stdev[.]unscaled|t|p[.]value)[.][^.]+$", names(tab), value = TRUE),
          "F", "F.p.value")
write_tsv(tab[, cols], file.path(out, "voom_ebayes.tsv.gz"))
write_json_file(limma_scalars(eBayes(lmFit(v, design)), Fcoefs), file.path(out, "voom_ebayes.json"))
# variants (weights of the first 200 kept genes; the trend is fitted on all of them)
sw <- ((1:n) %% 5 + 1) / 3                                     # prior sample weights
v_sw <- voom(y, design, weights = sw)
v_adapt <- voom(y, design, adaptive.span = TRUE)
v_nodesign <- voom(y)                                          # DGEList without groups: intercept only
v_matrix <- voom(y$counts, design)                             # a matrix: lib.size = colSums
v_span <- voom(y, design, span = 0.3)
yu <- calcNormFactors(y0)                                      # unfiltered, with all-zero genes
v_unf <- voom(yu, design)
variants <- list(sw = v_sw, adaptive = v_adapt, nodesign = v_nodesign, matrix = v_matrix, span03 = v_span)
for (k in names(variants)) wm(variants[[k]]$weights, file.path(out, paste0("voom_weights_", k, ".tsv.gz")), top)
# block = donor with the consensus correlation of duplicateCorrelation on the first voom (the
# User's Guide recipe's second voom): the fit is limma's gls.series
c1 <- duplicateCorrelation(v, design, block = sheet$donor)
v_block <- voom(y, design, block = sheet$donor, correlation = c1$consensus.correlation)
wm(v_block$weights, file.path(out, "voom_weights_block.tsv.gz"), top)
w_unf <- v_unf$weights; dimnames(w_unf) <- dimnames(counts)
write_matrix_tsv(w_unf[1:200, ], file.path(out, "voom_weights_unfiltered.tsv.gz"))
write_json_file(list(adaptive.span = v_adapt$span, n.kept = sum(keep), allzero.first2000 = sum(rowSums(counts) == 0),
                     norm.factors.unfiltered = yu$samples$norm.factors, sample.weights = sw,
                     block.correlation = c1$consensus.correlation),
                file.path(out, "voom_scalars.json"))

# ---- lmFit with observation weights (lm.series -> lm.wfit per gene) ----------------------------
# Y = voom's E of the first 400 kept genes; deterministic weights (exact in any language),
# zero and NA weights and NA values at deterministic cells, and rows made rank deficient.
E <- v$E[1:400, ]
G <- nrow(E)
I <- matrix(1:G, G, n); J <- matrix(1:n, G, n, byrow = TRUE)
W <- (1 + (37 * I + 101 * J) %% 97) / 16
W[(7 * I + 3 * J) %% 53 == 0] <- 0
W[(5 * I + 11 * J) %% 61 == 0] <- NA
E[(13 * I + J) %% 71 == 0] <- NA
reg <- as.character(sheet$region); trt <- as.character(sheet$treatment); sx <- sheet$sex
W[101, reg == "Desert"] <- 0                                   # regionDesert not estimable
W[102, reg == "Mountain"] <- NA; W[102, 1] <- 0                # regionMountain not estimable
W[103, -c(1, 4, 8, 13, 22)] <- 0                               # 5 observations: df 0
W[104, -c(2, 9, 17)] <- NA                                     # 3 observations: rank 3
W[105, ] <- 0                                                  # nothing observed
W[106, trt == "before"] <- 0                                   # treatmentafter = intercept
W[107, sx == "M"] <- NA                                        # sexM all zero
W[108, ] <- 8^((((1:n) * 7) %% 13) - 6)                        # weights 8^-6 .. 8^6 (exact)
W[109, reg != "Desert"] <- 0; W[109, reg == "Desert" & trt == "after"] <- 1e-3
E[110, reg != "Desert"] <- NA                                  # only Desert: regions aliased
W[111, ] <- 1e-300 * W[111, ]                                  # tiny weights
write_tsv(data.frame(row = I[is.na(E)], col = J[is.na(E)]), file.path(out, "wfit_na_cells.tsv"))
fw <- lmFit(E, design, weights = W)
wfit_table <- function(f) {
  d <- data.frame(feature_id = rownames(f$coefficients), Amean = f$Amean, sigma = f$sigma,
                  df.residual = as.double(f$df.residual), check.names = FALSE)
  for (k in colnames(f$coefficients)) d[[paste0("coefficients.", k)]] <- f$coefficients[, k]
  for (k in colnames(f$coefficients)) d[[paste0("stdev.unscaled.", k)]] <- f$stdev.unscaled[, k]
  d
}
write_tsv(wfit_table(fw), file.path(out, "wfit_observation.tsv.gz"))
Wout <- W; dimnames(Wout) <- dimnames(E)
# sample weights: one lm.wfit for all genes when nothing is missing (weighted cov.coefficients),
# the per-gene loop when values are missing or a weight is zero
E0 <- v$E[1:400, ]
fs <- lmFit(E0, design, weights = sw)
fs_na <- lmFit(E, design, weights = sw)
sw0 <- sw; sw0[c(3, 10)] <- 0
fs_zero <- lmFit(E0, design, weights = sw0)
write_tsv(wfit_table(fs), file.path(out, "wfit_sample.tsv.gz"))
write_tsv(wfit_table(fs_na), file.path(out, "wfit_sample_na.tsv.gz"))
write_tsv(wfit_table(fs_zero), file.path(out, "wfit_sample_zero.tsv.gz"))
write_json_file(list(cov.sample = as.vector(fs$cov.coefficients), cov.sample_na = as.vector(fs_na$cov.coefficients),
                     cov.observation = as.vector(fw$cov.coefficients), sample.weights.zero = sw0),
                file.path(out, "wfit_scalars.json"))
writeLines(c(R.version.string, paste("limma", packageVersion("limma")), paste("edgeR", packageVersion("edgeR")),
             paste("genes kept", sum(keep), "of 2000")), file.path(out, "versions.txt"))
