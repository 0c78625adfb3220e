"""R's ``p.adjust`` (BH/fdr, BY, holm, hochberg, bonferroni, none)."""

from __future__ import annotations

import numpy as np

P_ADJUST_METHODS = ("BH", "fdr", "BY", "holm", "hochberg", "bonferroni", "none")

# --------------------------------------------------------------------------------------------
# p.adjust
# --------------------------------------------------------------------------------------------


def _decreasing_order(p: np.ndarray) -> np.ndarray:
    """An order of decreasing p, as R's ``order(p, decreasing = TRUE)`` up to the order of ties.

    Ties may come in any order: every caller takes a cumulative minimum along this order of a
    value that only grows within a run of tied p (``n / i * p`` and the like, with the rank i
    falling along the run), so each tied p gets the value at the run's first position whichever of
    them stands there, and the results are R's bit for bit.  Unstable sorting is ~4x faster than
    stable sorting of floats (0.05 s instead of 0.19 s for 10^6 values)."""
    return np.argsort(p)[::-1]


def harmonic_sum(n: int) -> float:
    """``sum(1 / (1:n))`` as R computes it for the BY method: accumulated in order in long double,
    rounded once to double."""
    return float(np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64), dtype=np.longdouble)[-1])


def p_adjust(p, method: str = "BH", n: int | None = None) -> np.ndarray:
    """Adjusted p-values as R's ``p.adjust(p, method, n)``.

    ``method``: ``"BH"`` (alias ``"fdr"``), ``"BY"``, ``"holm"``, ``"hochberg"``,
    ``"bonferroni"`` or ``"none"`` (R's ``"hommel"`` is not ported).  NaN p-values are ignored:
    ``n`` defaults to the number of non-missing p-values and NaN stays NaN.  The arithmetic is
    R's, operation by operation (e.g. BH is ``min(1, cummin(n / i * p))`` along decreasing p;
    the BY constant ``sum(1 / (1:n))`` is accumulated in extended precision as R's ``sum``), so
    the results are R's bit for bit.  Any array shape is accepted and kept.
    """
    if method == "fdr":
        method = "BH"
    if method not in P_ADJUST_METHODS:
        raise ValueError(
            f"p_adjust: unknown method {method!r}; choose one of {', '.join(P_ADJUST_METHODS)}"
        )
    p = np.asarray(p, dtype=np.float64)
    out = p.copy()
    flat = out.reshape(-1)
    keep = ~np.isnan(flat)
    pv = flat[keep]
    lp = pv.size
    if n is None:
        n = lp
    if n < lp:
        raise ValueError(f"p_adjust: n = {n} is smaller than the number of p-values ({lp})")
    if n <= 1 or method == "none":
        return out
    n_f = float(n)
    if method == "bonferroni":
        adj = np.minimum(1.0, n_f * pv)
    elif method == "holm":
        order = np.argsort(pv)  # ties in any order: (n + 1 - i) p falls along a run of ties
        i = np.arange(1, lp + 1, dtype=np.float64)
        adj = np.empty(lp)
        adj[order] = np.minimum(1.0, np.maximum.accumulate((n_f + 1.0 - i) * pv[order]))
    else:
        order = _decreasing_order(pv)
        i = np.arange(lp, 0, -1, dtype=np.float64)
        if method == "hochberg":
            scaled = (n_f + 1.0 - i) * pv[order]
        elif method == "BH":
            scaled = n_f / i * pv[order]
        else:  # BY: R's sum() accumulates in long double, in order
            harmonic = harmonic_sum(n)
            scaled = harmonic * n_f / i * pv[order]
        adj = np.empty(lp)
        adj[order] = np.minimum(1.0, np.minimum.accumulate(scaled))
    flat[keep] = adj
    return out
