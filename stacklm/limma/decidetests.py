"""limma's ``decideTests`` (for fits), ``classifyTestsF`` and ``summary(decideTests(...))``.

A port of limma 3.63.2's R/decidetests.R.  R loops over genes in ``classifyTestsF`` (the nestedF
step-down) and ``.classifyTestsP`` (hierarchical); here the same steps run on all genes at once:
the step-down loops over the coefficients (at most k steps, a mask for the genes still going), the
row-wise ``p.adjust`` sorts along rows.  Results are float arrays with -1, 0, 1 and NaN (R's NA).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from stacklm.limma.ebayes import e_bayes
from stacklm.limma.ftest import moderated_f, row_major
from stacklm.limma.marraylm import LinearModelFit
from stacklm.multiple_testing.padjust import harmonic_sum, p_adjust, p_adjust_rows
from stacklm.rstats.lazy import stats

__all__ = ["classify_tests_f", "decide_tests", "summary_decide_tests"]

DECIDE_METHODS = ("separate", "global", "hierarchical", "nestedF")
ADJUST_METHODS = ("none", "bonferroni", "holm", "BH", "fdr", "BY")


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x)  # R's sign: -1, 0, 1, NaN stays NaN


def _cor_from_cov(cov: np.ndarray) -> np.ndarray:
    """classifyTestsF's correlation matrix: zero variances (all-zero contrasts) set to 1 first."""
    cov = np.array(cov, dtype=np.float64)
    d = np.diag(cov).copy()
    if d.min() == 0:
        cov[np.diag_indices_from(cov)] = np.where(d == 0, 1.0, d)
    sd = np.sqrt(np.diag(cov))
    return cov / sd[:, None] / sd[None, :]


def _f_isf(p: float, df1: int, df2: np.ndarray) -> np.ndarray:
    """R's ``qf(p, df1, df2, lower.tail = FALSE)`` for a vector df2 (inf: chi-square / df1),
    evaluated once per distinct df2."""
    df2 = np.asarray(df2, dtype=np.float64)
    values, inverse = np.unique(df2, return_inverse=True)
    out = np.empty(values.shape)
    inf = np.isinf(values)
    out[inf] = stats.chi2.isf(p, df1) / df1
    out[~inf] = stats.f.isf(p, df1, values[~inf])
    return out[inverse.reshape(df2.shape)]


def _q_matrix(cor: np.ndarray | None, ntests: int) -> tuple[np.ndarray, int]:
    if cor is None:
        return np.eye(ntests) / np.sqrt(ntests), ntests
    values, vectors = np.linalg.eigh(cor)
    values, vectors = values[::-1], vectors[:, ::-1]  # decreasing, as R's eigen
    r = int(np.sum(values / values[0] > 1e-8))
    return vectors[:, :r] / np.sqrt(values[:r])[None, :] / np.sqrt(r), r


def classify_tests_f(
    fit: LinearModelFit | np.ndarray,
    cor_matrix: np.ndarray | None = None,
    df=None,
    p_value: float = 0.01,
    fstat_only: bool = False,
):
    """limma's ``classifyTestsF``: classify each gene's t-statistics with nested F-tests.

    ``fit`` is a fit with ``t`` (then ``cor_matrix`` defaults to the correlation of
    ``cov_coefficients`` and ``df`` to ``df_prior + df_residual``) or a G x k matrix of
    t-statistics (``df`` defaults to inf, ``cor_matrix`` to the identity).  ``fstat_only=True``
    returns ``(F, df1, df2)``, the overall moderated F.  Otherwise a G x k array of -1/0/1 (NaN
    for genes with a NaN t): a gene whose F exceeds ``qf(p_value, r, df, lower.tail = FALSE)`` gets
    the sign of its largest |t|; the next largest is declared too if the F still exceeds it after
    setting the larger ones to its |t|, and so on (R's step-down, the same arithmetic).
    """
    if isinstance(fit, LinearModelFit):
        if fit.t is None:
            raise ValueError("tstat cannot be extracted from object")
        if cor_matrix is None and fit.cov_coefficients is not None:
            cor_matrix = _cor_from_cov(fit.cov_coefficients)
        if df is None and fit.df_prior is not None and fit.df_residual is not None:
            df = np.asarray(fit.df_prior, dtype=np.float64) + np.asarray(
                fit.df_residual, dtype=np.float64
            )
        tstat = np.asarray(fit.t, dtype=np.float64)
    else:
        tstat = np.asarray(fit, dtype=np.float64)
    if tstat.ndim == 1:
        tstat = tstat[:, None]
    tstat = row_major(tstat)  # its products with Q as of a row-major t, whatever its layout
    if df is None:
        df = np.inf
    ngenes, ntests = tstat.shape
    df_v = np.broadcast_to(np.asarray(df, dtype=np.float64), (ngenes,))
    if ntests == 1:
        if fstat_only:
            return tstat[:, 0] ** 2, 1, df
        with np.errstate(invalid="ignore"):
            p = 2 * special.stdtr(df_v[:, None], -np.abs(tstat))
            return _sign(tstat) * (p < p_value)
    Q, r = _q_matrix(cor_matrix, ntests)
    if fstat_only:
        tq = tstat @ Q
        return np.sum(tq * tq, axis=1), r, df
    qf = _f_isf(p_value, r, df_v)
    result = np.zeros((ngenes, ntests))
    has_na = np.isnan(tstat).any(axis=1)
    result[has_na] = np.nan
    ok = ~has_na
    tq = tstat[ok] @ Q
    rows = np.flatnonzero(ok)[np.sum(tq * tq, axis=1) > qf[ok]]
    if rows.size == 0:
        return result
    x = tstat[rows]
    ax = np.abs(x)
    sx = _sign(x)
    ordr = np.argsort(-ax, axis=1, kind="stable")  # order(abs(x), decreasing = TRUE)
    first = ordr[:, 0]
    ar = np.arange(rows.size)
    result[rows, first] = sx[ar, first]
    active = ar
    for j in range(1, ntests):
        oj = ordr[active, j]
        level = ax[active, oj]  # |x[ord[j]]|
        bigger = ordr[active, :j]
        xm = x[active].copy()
        np.put_along_axis(
            xm, bigger, np.take_along_axis(sx[active], bigger, axis=1) * level[:, None], axis=1
        )
        tq = xm @ Q
        passed = np.sum(tq * tq, axis=1) > qf[rows[active]]
        active = active[passed]
        if active.size == 0:
            break
        oj = oj[passed]
        result[rows[active], oj] = sx[active, oj]
    return result


def _subset_coefficients(
    fit: LinearModelFit, idx: list[int], with_f: bool = True
) -> LinearModelFit:
    """``fit[, j]`` as limma's ``[.MArrayLM``: the per-coefficient fields subset, F recomputed
    (unless ``with_f`` is false: the separate and global methods never read it)."""
    sub = fit.subset_coefficients(idx)
    if with_f and fit.F is not None and fit.t is not None and idx:
        sub.F, sub.F_p_value = moderated_f(sub, use_chisq_for_large_df=True)
    return sub


def _separate_adjusted(fit, idx, adjusted_p, p_value: float) -> np.ndarray:
    """The separate method's calls from the caller's adjusted p-values (a G x k array or its k
    columns), column by column into a column-major array: ``sign(coef) * (adj.p < p_value)``, NA
    where the p-value is."""
    coef = fit.coefficients
    idx = list(range(coef.shape[1])) if idx is None else idx
    want = (coef.shape[0], len(idx))
    if isinstance(adjusted_p, list | tuple):
        columns = list(adjusted_p)
        if len(columns) != want[1] or any(np.shape(c) != want[:1] for c in columns):
            raise ValueError(f"adjusted_p must be {want} or its {want[1]} columns")
    else:
        p = np.asarray(adjusted_p, dtype=np.float64)
        if p.shape != want:
            raise ValueError(f"adjusted_p must be {want}, got {p.shape}")
        columns = list(p.T)
    results = np.empty((coef.shape[0], len(idx)), order="F")
    with np.errstate(invalid="ignore"):
        for k, (j, p) in enumerate(zip(idx, columns, strict=True)):
            p = np.asarray(p, dtype=np.float64)
            np.multiply(
                _sign(np.asarray(coef[:, j], np.float64)),
                np.where(np.isnan(p), np.nan, p < p_value),
                out=results[:, k],
            )
    return results


def _threshold_factor(adjust_method: str, n_sel: int, n: int) -> float:
    if adjust_method == "none":
        return 1.0
    if adjust_method == "bonferroni":
        return 1.0 / n
    if adjust_method == "holm":
        return 1.0 / (n - n_sel + 1)
    if adjust_method == "BH":
        return n_sel / n
    harmonic = harmonic_sum(n)
    return n_sel / n / harmonic  # BY


def decide_tests(
    fit: LinearModelFit,
    method: str = "separate",
    adjust_method: str = "BH",
    p_value: float = 0.05,
    lfc: float = 0.0,
    coefs: Sequence[str | int] | None = None,
    adjusted_p: np.ndarray | None = None,
) -> np.ndarray:
    """Up (1), down (-1) or not significant (0) per feature and coefficient, as limma's
    ``decideTests(fit, method, adjust.method, p.value, lfc)`` on an ``MArrayLM``.

    ``coefs`` (names or 0-based positions) stands for R's ``decideTests(fit[, coefs])``: the fit
    is subset as ``[.MArrayLM`` does, which recomputes the F over those coefficients (used by the
    nestedF and hierarchical methods).  Returns a G x k float array (NaN where R gives NA).

    - ``"separate"``: BH (or ``adjust_method``) per coefficient over the non-NA p-values;
      ``sign(coef) * (adj.p < p_value)``.
    - ``"global"``: one adjustment over all non-NA p-values of the matrix.
    - ``"hierarchical"``: features selected by the adjusted F p-value; within them
      ``.classifyTestsP`` (per-feature adjustment of the t p-values at df.residual + df.prior)
      at ``p_value`` times the selection factor (BH: selected / total).
    - ``"nestedF"``: the same selection, then :func:`classify_tests_f` at that level.
    ``lfc > 0`` then zeroes the calls with ``|coef| <= lfc``.  nestedF and hierarchical stop on NA
    F p-values, as limma.  A fit without p-values is first moderated with ``e_bayes``.

    ``adjusted_p`` (``"separate"`` only): the G x k per-coefficient adjusted p-values (or a list
    of its k columns), when the caller has them already (``p_adjust`` of each column of
    ``fit.p_value[:, coefs]`` with ``adjust_method``); they are not recomputed, and the calls are
    made column by column into a column-major array.
    """
    if method not in DECIDE_METHODS:
        raise ValueError(f"method must be one of {', '.join(DECIDE_METHODS)}, got {method!r}")
    if adjust_method not in ADJUST_METHODS:
        raise ValueError(
            f"adjust_method must be one of {', '.join(ADJUST_METHODS)}, got {adjust_method!r}"
        )
    if adjust_method == "fdr":
        adjust_method = "BH"
    if fit.p_value is None:
        fit = e_bayes(fit)
    if adjusted_p is not None and method != "separate":
        raise ValueError("adjusted_p is for the separate method only")
    idx = None
    if coefs is not None:
        if isinstance(coefs, str | int | np.integer):
            coefs = [coefs]
        idx = [int(c) if isinstance(c, int | np.integer) else fit.coef_index(c)[0] for c in coefs]
        if adjusted_p is None:
            fit = _subset_coefficients(fit, idx, with_f=method not in ("separate", "global"))
            idx = None
    if adjusted_p is not None:  # only the coefficients are read: the fit is not subset
        results = _separate_adjusted(fit, idx, adjusted_p, p_value)
    elif method in ("separate", "global"):
        coef = np.asarray(fit.coefficients, np.float64)
        if method == "separate":
            p = np.array(fit.p_value, dtype=np.float64)
            for j in range(p.shape[1]):  # per coefficient, over its non-NA p-values
                p[:, j] = p_adjust(p[:, j], adjust_method)
        else:  # over all non-NA p-values of the matrix
            p = p_adjust(np.array(fit.p_value, dtype=np.float64), adjust_method)
        with np.errstate(invalid="ignore"):
            results = _sign(coef) * np.where(np.isnan(p), np.nan, p < p_value)
    else:
        fp = fit.F_p_value
        if fp is None:
            _, fp = moderated_f(fit, use_chisq_for_large_df=True)
        fp = np.asarray(fp, dtype=np.float64)
        if np.isnan(fp).any():
            raise ValueError(f"{method} method can't handle NA p-values")
        sel = p_adjust(fp, adjust_method) < p_value
        n_sel, n = int(sel.sum()), sel.size
        a = _threshold_factor(adjust_method, n_sel, n)
        results = np.zeros(fit.t.shape)
        if sel.any():
            sub_t = fit.t[sel]
            df_prior = np.asarray(fit.df_prior, dtype=np.float64)
            df = np.asarray(fit.df_residual, dtype=np.float64)[sel] + (
                df_prior[sel] if df_prior.ndim else df_prior
            )
            if method == "nestedF":
                cor = None if fit.cov_coefficients is None else _cor_from_cov(fit.cov_coefficients)
                results[sel] = classify_tests_f(sub_t, cor_matrix=cor, df=df, p_value=p_value * a)
            else:  # .classifyTestsP
                with np.errstate(invalid="ignore"):
                    pt = 2 * special.stdtr(df[:, None], -np.abs(sub_t))
                padj = p_adjust_rows(pt, adjust_method)
                results[sel] = _sign(sub_t) * (padj < p_value * a)
    if lfc > 0:
        coef = np.asarray(fit.coefficients if idx is None else fit.coefficients[:, idx], np.float64)
        with np.errstate(invalid="ignore"):
            big = np.where(np.isnan(coef), np.nan, np.abs(coef) > lfc)
        results = results * big
    return results


def summary_decide_tests(
    results: np.ndarray, coef_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """``summary(decideTests(...))``: the number of ``Down`` (-1), ``NotSig`` (0) and ``Up`` (1)
    calls per coefficient (NA not counted), rows Down / NotSig / Up."""
    results = np.asarray(results, dtype=np.float64)
    if results.ndim == 1:
        results = results[:, None]
    if coef_names is None:
        coef_names = [f"Coef{j + 1}" for j in range(results.shape[1])]
    counts = np.vstack([(results == v).sum(axis=0) for v in (-1.0, 0.0, 1.0)]).astype(np.int64)
    return pd.DataFrame(counts, index=["Down", "NotSig", "Up"], columns=list(coef_names))
