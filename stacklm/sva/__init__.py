"""Ports of sva 3.46: num.sv (numsv), sva / irwsva.build (irwsva), f.pvalue (fpvalue), edge.lfdr
(edge), and associations of surrogate variables with sample covariates (associations)."""
