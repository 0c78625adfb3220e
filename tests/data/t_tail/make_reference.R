# Two-sided t tail probabilities from R, for tests/test_fast_paths.py (stacklm's interpolated t tail).
# Run from this directory: Rscript make_reference.R   (R 4.2.2)
t <- c(0, 1e-6, 10^seq(-3, log10(80), length.out = 397), 100, 1e3)
nu <- c(1.5, 3, 4.27, 9, 14.3, 47.5, 96.27, 250.1, 1e3 + 0.3, 2.5e4, 7.7e5, 3e7)
g <- expand.grid(t = t, nu = nu)
g$p <- 2 * pt(-g$t, g$nu)
out <- data.frame(t = sprintf("%.17g", g$t), nu = sprintf("%.17g", g$nu), p = sprintf("%.17g", g$p))
write.table(out, "t_tail.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
