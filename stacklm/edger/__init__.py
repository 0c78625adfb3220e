"""Ports of edgeR: filterByExpr, calcNormFactors (TMM, TMMwsp, upperquartile), cpm."""
