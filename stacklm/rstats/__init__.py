"""Ports of R (stats) functions whose exact numbers other ports depend on and which no Python
library reproduces to the last digits: lowess, density (with R's FFT), smooth.spline, natural
splines, uniroot (zeroin), approx, and the F / t tails used by limma."""
