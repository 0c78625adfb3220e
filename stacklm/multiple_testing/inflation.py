"""Genomic inflation factor (lambda GC) of p-values."""

from __future__ import annotations

import numpy as np
from scipy import special

from stacklm.multiple_testing.qvalue import _check_pvalues

# --------------------------------------------------------------------------------------------
# genomic inflation
# --------------------------------------------------------------------------------------------


def genomic_inflation(p, df1: float = 1) -> float:
    """Genomic control inflation factor lambda_GC of p-values (Devlin & Roeder 1999).

    ``lambda_GC = median(qchisq(1 - p, df1)) / qchisq(0.5, df1)``: the median of the chi-square
    (``df1`` degrees of freedom) statistics equivalent to the p-values, over the median of that
    chi-square distribution.  1 under the global null; > 1 suggests inflation (unmodelled
    structure, batch effects) or widespread true signal.  The quantiles are the inverse survival
    function (``qchisq(p, df1, lower.tail = FALSE)``), exact for tiny p where ``1 - p`` would
    round to 1.  For a moderated F test with ``df1`` numerator degrees of freedom, pass that
    df1 (the median of F * df1 is compared with the chi-square(df1) median; this is the usual
    convention, approximate when the denominator df is small).  NaN p-values are ignored; NaN
    if none remain.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    p = p[~np.isnan(p)]
    if p.size == 0:
        return float("nan")
    _check_pvalues(p, "genomic_inflation")
    if not df1 > 0:
        raise ValueError("genomic_inflation: df1 must be positive")
    # the quantile is decreasing in p, so the median statistic comes from the middle p-value(s):
    # two quantile evaluations instead of one per feature (same value as the full transform)
    m = p.size
    half = m // 2
    if m % 2:
        stat = special.chdtri(df1, np.partition(p, half)[half])
    else:
        mid = np.partition(p, [half - 1, half])[[half - 1, half]]
        stat = np.mean(special.chdtri(df1, mid))
    return float(stat / special.chdtri(df1, 0.5))
