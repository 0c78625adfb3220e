# R references for stacklm.design.formula.design_matrix: R's model.matrix (treatment contrasts, the
# default na.action na.omit) for a battery of formulas on a small sample sheet made here.
# R 4.2.2 (stats::model.matrix; no other package). Run from this folder:  Rscript make_reference.R
# Writes samples.tsv (the sheet), cases.tsv (case, formula, levels) and model_matrix/<case>.tsv
# (sample_id + R's columns with R's names, values %.17g; rows are the samples R kept).
stopifnot(getRversion() == "4.2.2")
invisible(Sys.setlocale("LC_COLLATE", "C"))  # level order of text: code points, as sort() in C.UTF-8

set.seed(13)
cells <- expand.grid(geography = c("Agadir", "Desert", "Mountain"), sex = c("F", "M"),
                     flag = c(FALSE, TRUE), stringsAsFactors = FALSE)
cells <- cells[rep(1:12, 2), ][sample(24), ]  # shuffled: levels come from sorting, not appearance
sheet <- rbind(cells,
               data.frame(geography = c("Desert", NA), sex = c("M", "F"), flag = c(TRUE, FALSE)))
n <- nrow(sheet)  # 26
sheet <- data.frame(
  sample_id = sprintf("S%02d", 1:n),
  geography = sheet$geography,
  sex = sheet$sex,
  batch = rep(c(10L, 1L, 2L), length.out = n),   # numeric: a covariate unless 'levels' lists it
  lane = rep(c(2L, 10L, 1L, 1L), length.out = n), # a code held as Python ints (object): a factor
  age = round(runif(n, 20, 70), 1),
  weight = round(rnorm(n, 70, 10), 1),
  `cell type` = rep(c("T cell", "B cell", "B cell"), length.out = n),
  cell.kind = rep(c("y", "x"), length.out = n),
  flag = sheet$flag,
  check.names = FALSE
)
sheet$age[n - 1] <- NA                         # S25: dropped by formulas using age
write.table(sheet, "samples.tsv", sep = "\t", quote = FALSE, row.names = FALSE, na = "NA")

cases <- read.table(text = "
case|formula|levels
additive|~ geography + sex + batch + age|batch=1,2,10
factor_x_factor|~ geography * sex|
factor_x_factor_variable_order|~ sex + geography + geography:sex|
interaction_written_first|~ geography:sex + sex + geography|
duplicate_terms|~ geography * sex + sex:geography|
factor_x_numeric|~ geography * age|
numeric_x_factor|~ age * geography|
numeric_x_numeric|~ geography + age * weight|
no_intercept_zero|~ 0 + geography + sex|
no_intercept_minus_one|~ geography + sex - 1|
no_intercept_numeric_first|~ 0 + age + geography + sex|
no_intercept_interaction|~ 0 + geography * sex|
minus_one_first|~ -1 + sex * age|
zero_then_one|~ 0 + geography + 1|
minus_zero|~ geography - 0|
levels_given|~ geography + sex|geography=Mountain,Agadir,Desert;sex=M,F
numeric_as_factor|~ batch + age|batch=10,1,2
numeric_factor_interaction|~ batch * sex|batch=1,2,10
backticked_and_dotted|~ `cell type` * geography + cell.kind|
logical|~ flag + age|
numeric_code_factor|~ lane + sex|
three_way|~ geography * sex * flag|
three_way_without_two_way_margin|~ geography + sex + age + geography:age + geography:sex:age|
intercept_only|~ 1|
no_missing_variable|~ sex + weight|
", sep = "|", header = TRUE, stringsAsFactors = FALSE, na.strings = character(0))
write.table(cases, "cases.tsv", sep = "\t", quote = FALSE, row.names = FALSE)

data <- sheet
rownames(data) <- data$sample_id
data$lane <- factor(data$lane)  # levels 1, 2, 10: numeric order
dir.create("model_matrix", showWarnings = FALSE)
for (k in seq_len(nrow(cases))) {
  d <- data
  if (nzchar(cases$levels[k])) {
    for (spec in strsplit(cases$levels[k], ";")[[1]]) {
      parts <- strsplit(spec, "=")[[1]]
      d[[parts[1]]] <- factor(d[[parts[1]]], levels = strsplit(parts[2], ",")[[1]])
    }
  }
  X <- model.matrix(as.formula(cases$formula[k]), d)
  if (qr(X)$rank < ncol(X)) stop(cases$case[k], ": rank ", qr(X)$rank, " < ", ncol(X))
  out <- data.frame(sample_id = rownames(X), check.names = FALSE)
  for (j in seq_len(ncol(X))) out[[colnames(X)[j]]] <- formatC(X[, j], digits = 17, format = "g")
  write.table(out, file.path("model_matrix", paste0(cases$case[k], ".tsv")), sep = "\t",
              quote = FALSE, row.names = FALSE)
}
