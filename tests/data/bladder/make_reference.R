# A small bladderbatch subset with its R references, for tests that run on a fresh clone.
# R 4.2.2 (Debian), limma 3.54.1, sva 3.46.0, qvalue 2.30.0, jsonlite (versions.txt records them).
# Run from this folder:  REFDATA=/path/to/shared/data Rscript make_reference.R
#
# Inputs (REFDATA = the shared reference data, see its README.md):
#   bladderbatch/expression.tsv.gz     exprs(bladderEset), bladderbatch 1.36.0, 22283 x 57, %.17g
#   bladderbatch/expression_na.tsv.gz  the same with 2% NA (set.seed(2)), row 5 with 3 and row 6 with
#                                      7 observations (written by shared scripts/05_bladder_limma_current.R)
#   bladderbatch/samples.tsv           sample sheet (sample_id, sample, outcome, batch, cancer)
# Subset rule: features round(seq(1, 22283, length.out = n_features)), n_features = 1000 (every
# ~22.3rd probe, in input order; 2000 would make the folder 7.1 MB instead of 3.6 MB); all 57 samples.
# The R calls below are those of the shared scripts 02_bladder_limma.R, 03_bladder_sva.R and
# 04_bladder_qvalue.R, run on the subset; outputs have their file names and column layouts:
#   expression.tsv.gz, expression_na.tsv.gz (the subset rows plus rows 5 and 6), samples.tsv
#   limma/   = ref/bladder_limma   (design.tsv, ebayes_{default,trend,robust}.{tsv.gz,json})
#   sva/     = ref/bladder_sva     (num_sv.json, sv.tsv, pprob.tsv.gz, f_pvalue.tsv.gz, design.tsv,
#                                   limma_sv_ebayes_default.{tsv.gz,json}, sv_nsv_leek.tsv,
#                                   pprob_nsv_leek.tsv.gz)
#   qvalue/  = ref/bladder_qvalue  (qvalue.tsv.gz, qvalue.json)
# plus sva/num_sv_leek_rhat.tsv: num.sv(method = "leek")'s internal count matrix rhat (sva 3.46.0 code,
# repeated below), whose first row (threshold 0) counts eigenvalues that are zero up to rounding.
suppressPackageStartupMessages({ library(limma); library(sva); library(qvalue); library(jsonlite) })
root <- Sys.getenv("REFDATA", "../../../../shared/data")
n_features <- 1000

# ---- writers (as the shared scripts/common.R: %.17g, NA, exact JSON doubles) ------------------
fmt_col <- function(x) {
  if (is.factor(x)) x <- as.character(x)
  if (is.double(x)) { out <- sprintf("%.17g", x); out[is.na(x) & !is.nan(x)] <- "NA"; return(out) }
  out <- as.character(x); out[is.na(x)] <- "NA"; out
}
write_tsv <- function(df, path) {
  lines <- do.call(paste, c(unname(lapply(df, fmt_col)), sep = "\t"))
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  on.exit(close(con))
  writeLines(paste(names(df), collapse = "\t"), con)
  writeLines(lines, con)
}
write_matrix_tsv <- function(m, path) {
  df <- data.frame(feature_id = rownames(m), stringsAsFactors = FALSE, check.names = FALSE)
  for (j in seq_len(ncol(m))) df[[colnames(m)[j]]] <- as.double(m[, j])
  write_tsv(df, path)
}
write_design <- function(design, sample_ids, path) {
  df <- data.frame(sample_id = sample_ids, stringsAsFactors = FALSE, check.names = FALSE)
  for (j in seq_len(ncol(design))) df[[colnames(design)[j]]] <- as.double(design[, j])
  write_tsv(df, path)
}
json_exact <- function(x) {
  if (is.list(x)) return(lapply(x, json_exact))
  if (is.double(x)) {
    s <- sprintf("%.17g", x)
    s[is.na(x)] <- "null"
    s[is.infinite(x)] <- ifelse(x[is.infinite(x)] > 0, "\"Inf\"", "\"-Inf\"")
    txt <- if (length(x) == 1 && is.null(names(x))) s else
      if (is.null(names(x))) paste0("[", paste(s, collapse = ","), "]") else
        paste0("{", paste0("\"", names(x), "\":", s, collapse = ","), "}")
    return(structure(txt, class = "json"))
  }
  x
}
write_json_file <- function(x, path) {
  writeLines(toJSON(json_exact(x), auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null",
                    json_verbatim = TRUE), path)
}
# the per-feature eBayes table of the shared references (common.R's limma_table)
limma_table <- function(eb, Fcoefs) {
  cn <- colnames(eb$coefficients)
  df <- data.frame(feature_id = rownames(eb$coefficients), stringsAsFactors = FALSE, check.names = FALSE)
  df[["Amean"]] <- eb$Amean
  df[["sigma"]] <- eb$sigma
  df[["df.residual"]] <- as.double(eb$df.residual)
  if (length(eb$s2.prior) > 1) df[["s2.prior"]] <- eb$s2.prior
  if (length(eb$df.prior) > 1) df[["df.prior"]] <- eb$df.prior
  df[["s2.post"]] <- eb$s2.post
  df[["df.total"]] <- eb$df.total
  for (k in cn) {
    df[[paste0("coefficients.", k)]] <- eb$coefficients[, k]
    df[[paste0("stdev.unscaled.", k)]] <- eb$stdev.unscaled[, k]
    df[[paste0("t.", k)]] <- eb$t[, k]
    df[[paste0("p.value.", k)]] <- eb$p.value[, k]
    adj <- unname(p.adjust(eb$p.value[, k], method = "BH"))
    df[[paste0("adj.P.Val.", k)]] <- adj
    df[[paste0("lods.", k)]] <- eb$lods[, k]
    t_ord <- eb$coefficients[, k] / eb$stdev.unscaled[, k] / eb$sigma
    df[[paste0("t.ordinary.", k)]] <- t_ord
    df[[paste0("p.ordinary.", k)]] <- 2 * pt(-abs(t_ord), df = eb$df.residual)
    tt <- topTable(eb, coef = k, number = Inf, sort.by = "none")
    stopifnot(identical(rownames(tt), df$feature_id), isTRUE(all.equal(tt$t, unname(eb$t[, k]))),
              isTRUE(all.equal(tt$adj.P.Val, adj)), isTRUE(all.equal(tt$B, unname(eb$lods[, k]))))
  }
  df[["F.all"]] <- eb$F
  df[["F.all.p.value"]] <- eb$F.p.value
  ttF <- topTable(eb, coef = Fcoefs, number = Inf, sort.by = "none")
  stopifnot(identical(rownames(ttF), df$feature_id), !is.null(ttF$F))
  df[["F"]] <- ttF$F
  df[["F.p.value"]] <- ttF$P.Value
  df[["F.adj.P.Val"]] <- ttF$adj.P.Val
  df
}
limma_scalars <- function(eb, Fcoefs, extra = list()) {
  c(list(
    s2.prior = if (length(eb$s2.prior) == 1) eb$s2.prior else "per-feature column s2.prior",
    df.prior = if (length(eb$df.prior) == 1) eb$df.prior else "per-feature column df.prior",
    var.prior = setNames(as.list(eb$var.prior), colnames(eb$coefficients)),
    proportion = 0.01,
    coefficients = colnames(eb$coefficients),
    F.coefficients = Fcoefs,
    n.features = nrow(eb$coefficients),
    n.samples = if (!is.null(eb$design)) nrow(eb$design) else NA,
    df.residual.max = max(eb$df.residual),
    R.version = R.version.string,
    limma.version = as.character(packageVersion("limma"))
  ), extra)
}
save_limma <- function(eb, dir, name, Fcoefs, extra = list()) {
  write_tsv(limma_table(eb, Fcoefs), file.path(dir, paste0(name, ".tsv.gz")))
  write_json_file(limma_scalars(eb, Fcoefs, extra), file.path(dir, paste0(name, ".json")))
}
for (d in c("limma", "sva", "qvalue")) dir.create(d, showWarnings = FALSE)

# ---- the subset ---------------------------------------------------------------------------------
read_matrix <- function(name) {
  as.matrix(read.delim(gzfile(file.path(root, "bladderbatch", name)), row.names = 1,
                       check.names = FALSE, colClasses = c(feature_id = "character")))
}
E_full <- read_matrix("expression.tsv.gz")
stopifnot(identical(dim(E_full), c(22283L, 57L)))
rows <- round(seq(1, nrow(E_full), length.out = n_features))
edata <- E_full[rows, ]
write_matrix_tsv(edata, "expression.tsv.gz")
NA_full <- read_matrix("expression_na.tsv.gz")
stopifnot(identical(dimnames(NA_full), dimnames(E_full)), sum(!is.na(NA_full[5, ])) == 3,
          sum(!is.na(NA_full[6, ])) == 7)
write_matrix_tsv(NA_full[sort(union(rows, c(5, 6))), ], "expression_na.tsv.gz")

samples <- read.delim(file.path(root, "bladderbatch", "samples.tsv"), check.names = FALSE,
                      colClasses = c(sample_id = "character"))
stopifnot(identical(samples$sample_id, colnames(edata)))
write_tsv(samples, "samples.tsv")
pheno <- samples
rownames(pheno) <- pheno$sample_id
pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))   # pData's levels

# ---- limma (02_bladder_limma.R) -------------------------------------------------------------------
design <- model.matrix(~ cancer + factor(batch), data = pheno)
r_names <- colnames(design)
colnames(design) <- c("Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5")
stopifnot(qr(design)$rank == ncol(design))
write_design(design, rownames(pheno), file.path("limma", "design.tsv"))
Fcoefs <- c("cancerCancer", "cancerNormal")
extra <- list(design.formula = "~ cancer + factor(batch)",
              R.model.matrix.colnames = setNames(as.list(r_names), colnames(design)),
              levels = list(cancer = levels(pheno$cancer), batch = levels(factor(pheno$batch))),
              subset = sprintf("features round(seq(1, 22283, length.out = %d)) of bladderbatch", n_features))
fit <- lmFit(edata, design)
variants <- list(ebayes_default = function(f) eBayes(f),
                 ebayes_trend = function(f) eBayes(f, trend = TRUE),
                 ebayes_robust = function(f) eBayes(f, robust = TRUE))
calls <- c(ebayes_default = "eBayes(fit)", ebayes_trend = "eBayes(fit, trend=TRUE)",
           ebayes_robust = "eBayes(fit, robust=TRUE)")
for (nm in names(variants)) {
  eb <- variants[[nm]](fit)
  save_limma(eb, "limma", nm, Fcoefs, c(extra, list(eBayes.call = calls[[nm]])))
}

# ---- qvalue (04_bladder_qvalue.R) -----------------------------------------------------------------
eb <- eBayes(lmFit(edata, design))
tt <- topTable(eb, coef = c("cancerCancer", "cancerNormal"), number = Inf, sort.by = "none")
p <- tt$P.Value
set.seed(1)
q_smooth <- qvalue(p)
set.seed(1)
q_boot <- qvalue(p, pi0.method = "bootstrap")
write_tsv(data.frame(feature_id = rownames(tt), p = p, qvalues = q_smooth$qvalues, lfdr = q_smooth$lfdr,
                     qvalues.bootstrap = q_boot$qvalues, lfdr.bootstrap = q_boot$lfdr,
                     stringsAsFactors = FALSE), file.path("qvalue", "qvalue.tsv.gz"))
write_json_file(list(
  pi0 = q_smooth$pi0, pi0.bootstrap = q_boot$pi0,
  lambda = q_smooth$lambda, pi0.lambda = q_smooth$pi0.lambda,
  pi0.lambda.bootstrap = q_boot$pi0.lambda, pi0.smooth = q_smooth$pi0.smooth,
  n.qvalue.le.0.05 = sum(q_smooth$qvalues <= 0.05),
  qvalue.version = as.character(packageVersion("qvalue")),
  defaults = "qvalue(p): lambda = seq(0.05, 0.95, 0.05), pi0.method = 'smoother', smooth.df = 3, smooth.log.pi0 = FALSE, pfdr = FALSE; lfdr: trunc = TRUE, monotone = TRUE, transf = 'probit', adj = 1.5, eps = 1e-8"
), file.path("qvalue", "qvalue.json"))

# ---- sva (03_bladder_sva.R) -----------------------------------------------------------------------
mod <- model.matrix(~ cancer, data = pheno)
mod0 <- model.matrix(~ 1, data = pheno)
colnames(mod) <- c("Intercept", "cancerCancer", "cancerNormal")
colnames(mod0) <- "Intercept"
set.seed(1)
n_be <- num.sv(edata, mod, method = "be")          # default B = 20, sv.sig = 0.1; permutes -> seeded
n_leek <- num.sv(edata, mod, method = "leek")
set.seed(1)
sv_out <- sva(edata, mod, mod0, n.sv = n_be)
cat("\n")
sv <- as.matrix(sv_out$sv)
colnames(sv) <- paste0("sv", seq_len(ncol(sv)))
write_design(sv, rownames(pheno), file.path("sva", "sv.tsv"))
write_tsv(data.frame(feature_id = rownames(edata), pprob.gam = sv_out$pprob.gam, pprob.b = sv_out$pprob.b,
                     stringsAsFactors = FALSE), file.path("sva", "pprob.tsv.gz"))
pv <- f.pvalue(edata, mod, mod0)
write_tsv(data.frame(feature_id = rownames(edata), f.pvalue = unname(pv), stringsAsFactors = FALSE),
          file.path("sva", "f_pvalue.tsv.gz"))
design_sv <- cbind(mod, sv)
write_design(design_sv, rownames(pheno), file.path("sva", "design.tsv"))
eb <- eBayes(lmFit(edata, design_sv))
save_limma(eb, "sva", "limma_sv_ebayes_default", Fcoefs,
           list(design = "cbind(model.matrix(~cancer), sv_out$sv)", eBayes.call = "eBayes(fit)"))
set.seed(1)
sv_leek <- sva(edata, mod, mod0, n.sv = n_leek)
cat("\n")
svl <- as.matrix(sv_leek$sv)
colnames(svl) <- paste0("sv", seq_len(ncol(svl)))
write_design(svl, rownames(pheno), file.path("sva", "sv_nsv_leek.tsv"))
write_tsv(data.frame(feature_id = rownames(edata), pprob.gam = sv_leek$pprob.gam, pprob.b = sv_leek$pprob.b,
                     stringsAsFactors = FALSE), file.path("sva", "pprob_nsv_leek.tsv.gz"))
# num.sv(method = "leek")'s count matrix, computed with the statements of sva 3.46.0's num.sv
leek_rhat <- function(dat, mod) {
  dims <- dim(dat); a <- seq(0, 2, length = 100); n <- floor(dims[1] / 10)
  rhat <- matrix(0, nrow = 100, ncol = 10)
  P <- (diag(dims[2]) - mod %*% solve(t(mod) %*% mod) %*% t(mod))
  for (j in 1:10) {
    dats <- dat[1:(j * n), ]
    ee <- eigen(t(dats) %*% dats)
    sigbar <- ee$values[dims[2]] / (j * n)
    R <- dats %*% P
    wm <- (1 / (j * n)) * t(R) %*% R - P * sigbar
    ee <- eigen(wm)
    v <- c(rep(TRUE, 100), rep(FALSE, dims[2]))
    v <- v[order(c(a * (j * n)^(-1/3) * dims[2], ee$values), decreasing = TRUE)]
    u <- 1:length(v); w <- 1:100
    rhat[, j] <- rev((u[v == TRUE] - w))
  }
  ss <- apply(rhat, 1, var)
  bumpstart <- which.max(ss > (2 * ss[1]))
  start <- which.max(c(rep(1e+05, bumpstart), ss[(bumpstart + 1):100]) < 0.5 * ss[1])
  finish <- which.max(ss * c(rep(0, start), rep(1, 100 - start)) > ss[1])
  if (finish == 1) finish <- 100
  tab <- table(rhat[start:finish, 10])
  stopifnot(as.numeric(names(tab)[which.max(tab)]) == n_leek)   # num.sv's modefunc
  data.frame(a = a, rhat = rhat, check.names = FALSE)
}
rh <- leek_rhat(edata, mod)
names(rh) <- c("a", paste0("rows", floor(nrow(edata) / 10) * (1:10)))
write_tsv(rh, file.path("sva", "num_sv_leek_rhat.tsv"))
be_by_seed <- sapply(1:5, function(s) { set.seed(s); num.sv(edata, mod, method = "be") })
write_json_file(list(num.sv.be.seeds.1to5 = as.integer(be_by_seed), num.sv.be = n_be, num.sv.leek = n_leek,
                     n.sv.used = sv_out$n.sv,
                     seed = "set.seed(1) before num.sv(method='be') and again before sva()",
                     sva.version = as.character(packageVersion("sva"))),
                file.path("sva", "num_sv.json"))
cat("num.sv be:", n_be, " leek:", n_leek, " be for seeds 1..5:", be_by_seed,
    " pi0:", q_smooth$pi0, q_boot$pi0, "\n")
writeLines(c(R.version.string, paste("limma", packageVersion("limma")), paste("sva", packageVersion("sva")),
             paste("qvalue", packageVersion("qvalue"))), "versions.txt")
