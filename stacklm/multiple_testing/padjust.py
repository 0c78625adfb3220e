"""R's ``p.adjust`` (BH/fdr, BY, holm, hochberg, bonferroni, none)."""

from __future__ import annotations

import numpy as np

P_ADJUST_METHODS = ("BH", "fdr", "BY", "holm", "hochberg", "bonferroni", "none")

# --------------------------------------------------------------------------------------------
# p.adjust
# --------------------------------------------------------------------------------------------


def _decreasing_order(P: np.ndarray) -> np.ndarray:
    """An order of decreasing p along each row, as R's ``order(p, decreasing = TRUE)`` up to the
    order of ties.

    Ties may come in any order: every caller takes a cumulative minimum along this order of a
    value that only grows within a run of tied p (``n / i * p`` and the like, with the rank i
    falling along the run), so each tied p gets the value at the run's first position whichever of
    them stands there, and the results are R's bit for bit.  Unstable sorting is ~4x faster than
    stable sorting of floats (0.05 s instead of 0.19 s for 10^6 values)."""
    return np.argsort(P, axis=-1)[..., ::-1]


def _method(method: str) -> str:
    """The p.adjust method (``"fdr"`` is ``"BH"``), refusing unknown names."""
    if method == "fdr":
        return "BH"
    if method not in P_ADJUST_METHODS:
        raise ValueError(
            f"p_adjust: unknown method {method!r}; choose one of {', '.join(P_ADJUST_METHODS)}"
        )
    return method


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
    method = _method(method)
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
    flat[keep] = _adjust_rows(pv[None, :], method, n)[0]
    return out


def p_adjust_rows(P, method: str = "BH") -> np.ndarray:
    """``p.adjust(P[g, ], method)`` for every row g of a matrix without NaN (each row its own set
    of ``ncol(P)`` tests), as limma's ``decideTests`` applies it across coefficients."""
    method = _method(method)
    P = np.asarray(P, dtype=np.float64)
    if method == "none" or P.shape[1] <= 1:
        return P.copy()
    return _adjust_rows(P, method, P.shape[1])


def _adjust_rows(P: np.ndarray, method: str, n: int) -> np.ndarray:
    """p.adjust's arithmetic, operation by operation, on each row of ``P`` (m x k, no NaN) with
    ``n >= k`` tests per row."""
    k = P.shape[1]
    n_f = float(n)
    if method == "bonferroni":
        return np.minimum(1.0, n_f * P)
    if method == "holm":
        order = np.argsort(P, axis=1)  # ties in any order: (n + 1 - i) p falls along a run of ties
        i = np.arange(1, k + 1, dtype=np.float64)
        ordered = np.take_along_axis(P, order, 1)
        adj = np.minimum(1.0, np.maximum.accumulate((n_f + 1.0 - i) * ordered, axis=1))
    else:
        order = _decreasing_order(P)
        i = np.arange(k, 0, -1, dtype=np.float64)
        ordered = np.take_along_axis(P, order, 1)
        if method == "hochberg":
            scaled = (n_f + 1.0 - i) * ordered
        elif method == "BH":
            scaled = n_f / i * ordered
        else:  # BY: R's sum() accumulates in long double, in order
            scaled = harmonic_sum(n) * n_f / i * ordered
        adj = np.minimum(1.0, np.minimum.accumulate(scaled, axis=1))
    out = np.empty_like(P)
    np.put_along_axis(out, order, adj, axis=1)
    return out
