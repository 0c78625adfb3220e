"""limma's ``fitFDistRobustly``: the scaled F prior from Winsorized variances, with per-feature
prior df for outliers (``eBayes(robust=TRUE)``)."""

from __future__ import annotations

import warnings

import numpy as np

from stacklm.limma.fitfdist import FDistFit, fit_f_dist
from stacklm.limma.loessfit import loess_fit
from stacklm.rstats.approx import approx, mean_ties
from stacklm.rstats.distributions import _f_cdf_log, _f_isf_log, _f_pdf, _f_ppf, _f_ppf_log, _f_sf
from stacklm.rstats.lazy import stats
from stacklm.rstats.zeroin import _zeroin


def _gauss_uniform_nodes(n: int = 128):
    """Gauss-Legendre nodes and weights on [0, 1] (statmod's gauss.quad.prob(n, "uniform"))."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1) / 2, w / 2


def _winsorized_moments(df1, df2, tail_p, nodes, weights):
    fq = np.array([_f_ppf(tail_p[0], df1, df2), _f_ppf(1 - tail_p[1], df1, df2)])
    zq = np.log(fq)
    q = fq / (1 + fq)
    qn = q[0] + (q[1] - q[0]) * nodes
    fnodes = qn / (1 - qn)
    znodes = np.log(fnodes)
    f = _f_pdf(fnodes, df1, df2) / (1 - qn) ** 2
    q21 = q[1] - q[0]
    m = q21 * np.sum(weights * f * znodes) + np.sum(zq * tail_p)
    v = q21 * np.sum(weights * f * (znodes - m) ** 2) + np.sum((zq - m) ** 2 * tail_p)
    return m, v


def _r_trimmed_mean(z, trim):
    n = z.size
    lo = int(np.floor(n * trim))
    zs = np.sort(z)
    return np.mean(zs[lo : n - lo])


def fit_f_dist_robustly(x, df1, covariate=None, winsor_tail_p=(0.05, 0.1)) -> FDistFit:
    """Robust estimation of the prior (limma 3.54.1 ``fitFDistRobustly``), with per-feature
    shrunken prior df ``df2_shrunk`` that down-weights outlier variances.

    A covariate (``trend=TRUE, robust=TRUE``) is fitted with R's ``lowess`` through
    :func:`stacklm.normalize.loess_fit`, as limma's ``loessFit`` does.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 2:
        return FDistFit(np.nan, np.nan, np.array([np.nan]))
    if n == 2:
        return fit_f_dist(x, df1, covariate)
    df1 = np.asarray(df1, dtype=np.float64)
    if df1.ndim > 0 and df1.size not in (1, n):
        raise ValueError("x and df1 are different lengths")
    cov = None if covariate is None else np.asarray(covariate, dtype=np.float64)
    if cov is not None and not np.all(np.isfinite(cov)):
        raise ValueError("covariate contains NA or infinite values")
    df1v = np.broadcast_to(df1, (n,)) if df1.ndim else np.full(n, float(df1))
    ok = ~np.isnan(x) & np.isfinite(df1v) & (df1v > 1e-6)
    if not ok.all():
        fit = fit_f_dist_robustly(
            x[ok], df1v[ok] if df1.ndim else df1, None if cov is None else cov[ok], winsor_tail_p
        )
        df2_shrunk = x.copy()
        df2_shrunk[ok] = fit.df2_shrunk
        df2_shrunk[~ok] = fit.df2
        if cov is None:
            scale = fit.scale
        else:
            scale = x.copy()
            scale[ok] = fit.scale
            scale[~ok] = np.exp(approx(*mean_ties(cov[ok], np.log(fit.scale)), cov[~ok], rule=2))
        return FDistFit(scale, fit.df2, df2_shrunk)

    x = x.copy()
    m = np.median(x)
    if m <= 0:
        raise ValueError("Variances are mostly <= 0")
    tiny = x < m * 1e-12
    if tiny.any():
        warnings.warn(
            f"{int(tiny.sum())} very small variances detected, have been offset away from zero",
            stacklevel=2,
        )
        x[tiny] = m * 1e-12
    non_robust = fit_f_dist(x, df1, cov)
    tail_p = np.resize(np.asarray(winsor_tail_p, dtype=np.float64), 2)
    prob = np.array([tail_p[0], 1 - tail_p[1]])
    if np.all(tail_p < 1 / n):
        return FDistFit(non_robust.scale, non_robust.df2, np.full(n, non_robust.df2))

    if df1.ndim and df1.size > 1:
        df1max = df1.max()
        i = df1 < (df1max - 1e-14)
        if i.any():
            s = non_robust.scale if cov is None else np.asarray(non_robust.scale)[i]
            f = x[i] / s
            df2 = non_robust.df2
            pupper = _f_sf(f, df1[i], df2, log=True)
            plower = np.asarray(_f_cdf_log(f, df1[i], df2), dtype=np.float64)
            up = pupper < plower
            f = f.copy()
            if up.any():
                f[up] = _f_isf_log(pupper[up], df1max, df2)
            if (~up).any():
                f[~up] = _f_ppf_log(plower[~up], df1max, df2)
            x[i] = f * s
            d1 = float(df1max)
        else:
            d1 = float(df1[0])
    else:
        d1 = float(df1)

    z = np.log(x)
    if cov is None:
        ztrend = _r_trimmed_mean(z, tail_p[1])
        zresid = z - ztrend
    else:
        ztrend = loess_fit(z, cov, span=0.4)
        zresid = z - ztrend
    zrq = np.quantile(zresid, prob)
    zwins = np.clip(zresid, zrq[0], zrq[1])
    zwmean = np.mean(zwins)
    zwvar = np.mean((zwins - zwmean) ** 2) * n / (n - 1)

    nodes, weights = _gauss_uniform_nodes(128)
    mom_inf = _winsorized_moments(d1, np.inf, tail_p, nodes, weights)
    funval_inf = np.log(zwvar / mom_inf[1])
    if funval_inf <= 0:
        df2 = np.inf
        ztrendcorrected = ztrend + zwmean - mom_inf[0]
        s20 = np.exp(ztrendcorrected)
        fstat = np.exp(z - ztrendcorrected)
        tail = stats.chi2.sf(fstat * d1, d1)
        r = stats.rankdata(fstat)
        emp = (n - r + 0.5) / n
        prob_not_outlier = np.minimum(tail / emp, 1)
        df_pooled = n * d1
        df2_shrunk = np.full(n, df2)
        o_mask = prob_not_outlier < 1
        if o_mask.any():
            df2_shrunk[o_mask] = prob_not_outlier[o_mask] * df_pooled
            o = np.argsort(tail, kind="stable")
            df2_shrunk[o] = np.maximum.accumulate(df2_shrunk[o])
        return FDistFit(s20, df2, df2_shrunk)

    def fun(xlink):
        d2 = xlink / (1 - xlink)
        return np.log(zwvar / _winsorized_moments(d1, d2, tail_p, nodes, weights)[1])

    if non_robust.df2 == np.inf:
        return FDistFit(non_robust.scale, non_robust.df2, np.full(n, non_robust.df2))
    rbx = non_robust.df2 / (1 + non_robust.df2)
    funval_low = fun(rbx)
    if funval_low >= 0:
        df2 = non_robust.df2
    else:
        root = _zeroin(fun, rbx, 1.0, funval_low, funval_inf, tol=1e-8)
        df2 = root / (1 - root)
    mom = _winsorized_moments(d1, df2, tail_p, nodes, weights)
    ztrendcorrected = ztrend + zwmean - mom[0]
    s20 = np.exp(ztrendcorrected)
    zresid = z - ztrendcorrected
    fstat = np.exp(zresid)
    log_tail = _f_sf(fstat, d1, df2, log=True)
    r = stats.rankdata(fstat)
    log_emp = np.log(n - r + 0.5) - np.log(n)
    log_not_outlier = np.minimum(log_tail - log_emp, 0)
    prob_not_outlier = np.exp(log_not_outlier)
    prob_outlier = -np.expm1(log_not_outlier)
    if np.any(log_not_outlier < 0):
        min_log_tail = log_tail.min()
        if min_log_tail == -np.inf:
            df2_shrunk = prob_not_outlier * df2
        else:
            df2_outlier = np.log(0.5) / min_log_tail * df2
            new_log_tail = _f_sf(fstat.max(), d1, df2_outlier, log=True)
            df2_outlier = np.log(0.5) / float(new_log_tail) * df2_outlier
            df2_shrunk = prob_not_outlier * df2 + prob_outlier * df2_outlier
        o = np.argsort(log_tail, kind="stable")
        ordered = df2_shrunk[o]
        cm = np.cumsum(ordered) / np.arange(1, n + 1)
        imin = int(np.argmin(cm))
        ordered[: imin + 1] = cm[imin]
        df2_shrunk = np.empty(n)
        df2_shrunk[o] = np.maximum.accumulate(ordered)
    else:
        df2_shrunk = np.full(n, df2)
    return FDistFit(s20, float(df2), df2_shrunk)
