"""Pieces of limma's ``topTable`` beyond :func:`stacklm.limma.toptable.top_table`: confidence
intervals (``confint=``), the ordinary t-statistic of the limma User's Guide, and topTable's row
order with its filters (``sort.by``, ``p.value``, ``lfc`` / ``fc``, ``number``).

Ported from limma 3.63.2's R/toptable.R (``topTable``, ``.topTableT``, ``.topTableF``) on whole
arrays.  Row orders are R's ``order()``, which is stable (ties keep input order, NA last): here a
stable ``np.argsort`` of the same key (negated where R sorts decreasing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from stacklm.limma.ftest import moderated_f
from stacklm.limma.marraylm import LinearModelFit
from stacklm.multiple_testing.padjust import p_adjust
from stacklm.rstats.distributions import _t_sf2

__all__ = ["confint_columns", "ordinary_t", "top_table_order"]

_INTERCEPT_NAMES = ("Intercept", "(Intercept)")


def _coef_positions(fit: LinearModelFit, coefs) -> list[int]:
    if coefs is None:
        return list(range(len(fit.coef_names)))
    if isinstance(coefs, str | int | np.integer):
        coefs = [coefs]
    return [int(c) if isinstance(c, int | np.integer) else fit.coef_index(c)[0] for c in coefs]


def _qt_upper_on_distinct(alpha: float, df: np.ndarray) -> np.ndarray:
    """R's ``qt(alpha, df)`` for a vector of df, evaluated once per distinct df (they take few
    values).  ``scipy.special.stdtrit`` (``scipy.stats.t.ppf``'s function; df = inf gives the
    normal quantile, as R's ``qt``)."""
    df = np.asarray(df, dtype=np.float64)
    if df.size and df.min() == df.max():
        return np.full(df.shape, special.stdtrit(df.flat[0], alpha))
    values, inverse = np.unique(df, return_inverse=True)
    return special.stdtrit(values, alpha)[inverse.reshape(df.shape)]


def confint_columns(
    fit: LinearModelFit, level: float | bool = 0.95, coefs=None
) -> tuple[np.ndarray, np.ndarray]:
    """``topTable(fit, coef, confint = level)``'s ``CI.L`` and ``CI.R`` for every feature (input
    order), as two G x k column-major arrays (k = ``coefs``, names or 0-based positions; default
    all).

    As .topTableT: ``margin = sqrt(s2.post) * stdev.unscaled * qt((1 + level) / 2, df.total)``,
    ``CI.L = logFC - margin``, ``CI.R = logFC + margin`` (``level=True`` means 0.95).  Needs a
    fit from ``e_bayes`` or ``treat`` (``s2_post``, ``df_total``).
    """
    if fit.s2_post is None or fit.df_total is None:
        raise ValueError("run e_bayes (or treat) first: s2.post and df.total are needed")
    if level is True:
        level = 0.95
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    alpha = (1 + level) / 2
    idx = _coef_positions(fit, coefs)
    q = _qt_upper_on_distinct(alpha, np.broadcast_to(fit.df_total, np.shape(fit.s2_post)))
    sd = np.sqrt(fit.s2_post)
    # column by column into column-major arrays (each column contiguous, as a results table
    # stores it), with the operations of sqrt(s2.post) * stdev.unscaled * qt in that order
    shape = (fit.coefficients.shape[0], len(idx))
    low, high = np.empty(shape, order="F"), np.empty(shape, order="F")
    for k, j in enumerate(idx):
        margin = sd * fit.stdev_unscaled[:, j] * q
        np.subtract(fit.coefficients[:, j], margin, out=low[:, k])
        np.add(fit.coefficients[:, j], margin, out=high[:, k])
    return low, high


def ordinary_t(fit: LinearModelFit, coefs=None) -> tuple[np.ndarray, np.ndarray]:
    """The ordinary (unmoderated) t-statistics and their two-sided p-values, as the limma User's
    Guide defines them: ``t = coefficients / stdev.unscaled / sigma`` and
    ``p = 2 * pt(-|t|, df = df.residual)``; G x k column-major arrays (k = ``coefs``, default
    all; each column contiguous, as a results table stores it, computed column by column instead
    of from G x k copies of the chosen columns).  Features with zero residual df (sigma NaN) get NaN.  Works on any fit
    (moderation not needed).
    """
    idx = _coef_positions(fit, coefs)
    sigma = np.asarray(fit.sigma, dtype=np.float64)
    t = np.empty((fit.coefficients.shape[0], len(idx)), order="F")
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, j in enumerate(idx):  # the operations of coef / stdev.unscaled / sigma, in order
            np.divide(fit.coefficients[:, j], fit.stdev_unscaled[:, j], out=t[:, k])
            np.divide(t[:, k], sigma, out=t[:, k])
        p = _t_sf2(t, np.asarray(fit.df_residual, dtype=np.float64))
    return t, p


_SORT_T = {
    "logFC": "logFC",
    "M": "logFC",
    "A": "AveExpr",
    "Amean": "AveExpr",
    "AveExpr": "AveExpr",
    "P": "P",
    "p": "P",
    "T": "t",
    "t": "t",
    "B": "B",
    "none": "none",
}


def _stable_order(key: np.ndarray) -> np.ndarray:
    """R's ``order(key)``: increasing, ties in input order, NaN last (also in input order)."""
    return np.argsort(key, kind="stable")


def top_table_order(
    fit: LinearModelFit,
    coef: str | int | Sequence[str | int] | None = None,
    sort_by: str = "P",
    number: int | None = None,
    adjust_method: str = "BH",
    p_value: float = 1.0,
    lfc: float | None = None,
    fc: float | None = None,
) -> np.ndarray:
    """The rows (0-based positions, in order) of ``topTable(fit, coef, number, adjust.method,
    sort.by, p.value = p_value, lfc, fc)``.

    One coefficient: ``sort_by`` ``"P"`` (``order(P.Value)``), ``"B"`` (``order(B, decreasing =
    TRUE)``), ``"t"`` (decreasing ``|t|``), ``"logFC"`` (decreasing ``|logFC|``), ``"AveExpr"``
    (decreasing), ``"none"``; rows kept where ``adj.P.Val <= p_value`` and ``|logFC| >= lfc`` (NA
    dropped).  Several coefficients (the moderated F, as ``.topTableF``): sorted by the F p-value
    (``sort_by`` ``"F"``, or ``"B"`` which topTable turns into ``"F"``; ``"P"`` is accepted here as
    the same order although R's topTable stops on it) or ``"none"``; rows kept where the adjusted
    F p-value is ``<= p_value`` and some ``|coefficient| > lfc``.  The F is recomputed on the
    chosen coefficients as ``fit[, coef]`` does (chi-square when df.total > 1e6) unless they are
    all of the fit's, when the fit's own ``F`` is used (as topTable).

    ``coef=None``: every coefficient but the intercept, or the last one for a treat fit, as
    topTable.  ``number=None`` keeps all rows (limma's default is 10).  Ties keep input order.
    """
    if fit.t is None and fit.F is None:
        raise ValueError("Need to run eBayes or treat first")
    is_treat = "treat_lfc" in fit.extra
    if coef is None:
        if is_treat:
            idx = [len(fit.coef_names) - 1]
        else:
            idx = [j for j, c in enumerate(fit.coef_names) if c not in _INTERCEPT_NAMES]
    else:
        idx = list(dict.fromkeys(_coef_positions(fit, coef)))
    if fc is None:
        lfc = 0.0 if lfc is None else float(lfc)
    else:
        if fc < 1:
            raise ValueError("fc must be greater than or equal to 1")
        lfc = float(np.log2(fc))
    n_rows = fit.coefficients.shape[0]
    if number is None:
        number = n_rows

    if len(idx) > 1:
        if is_treat:
            raise ValueError("Treat p-values can only be displayed for single coefficients")
        if sort_by == "B":
            sort_by = "F"
        if sort_by in ("P", "p"):
            sort_by = "F"
        if sort_by not in ("F", "none"):
            raise ValueError(
                f"sort_by {sort_by!r} is not valid for several coefficients (F or none)"
            )
        if len(idx) < len(fit.coef_names):
            _, fp = moderated_f(fit, [fit.coef_names[j] for j in idx], use_chisq_for_large_df=True)
        else:
            if fit.F_p_value is None:
                raise ValueError("F-statistics not found in fit")
            fp = np.asarray(fit.F_p_value, dtype=np.float64)
        keep = np.ones(n_rows, dtype=bool)
        if lfc > 0 or p_value < 1:
            if lfc > 0:
                with np.errstate(invalid="ignore"):
                    keep &= (np.abs(fit.coefficients[:, idx]) > lfc).sum(axis=1) > 0
            if p_value < 1:
                with np.errstate(invalid="ignore"):
                    keep &= p_adjust(fp, adjust_method) <= p_value
        rows = np.flatnonzero(keep)
        if sort_by == "F":
            rows = rows[_stable_order(fp[rows])]
        return rows[: max(number, 0)]

    j = idx[0]
    key = _SORT_T.get(sort_by)
    if key is None:
        raise ValueError(f"sort_by {sort_by!r} is not one of {', '.join(_SORT_T)}")
    if key == "B" and fit.lods is None:
        raise ValueError("Trying to sort.by B, but B-statistic (lods) not found in MArrayLM object")
    m = fit.coefficients[:, j]
    p = fit.p_value[:, j]
    rows = np.arange(n_rows)
    if p_value < 1 or lfc > 0:
        with np.errstate(invalid="ignore"):
            sig = (p_adjust(p, adjust_method) <= p_value) & (np.abs(m) >= lfc)
        if not sig.any():
            return rows[:0]
        rows = rows[sig]
    if key == "logFC":
        order_key = -np.abs(m[rows])
    elif key == "AveExpr":
        order_key = -np.asarray(fit.amean, dtype=np.float64)[rows]
    elif key == "P":
        order_key = p[rows]
    elif key == "t":
        order_key = -np.abs(fit.t[rows, j])
    elif key == "B":
        order_key = -fit.lods[rows, j]
    else:
        return rows[: max(number, 0)]
    return rows[_stable_order(order_key)][: max(number, 0)]
