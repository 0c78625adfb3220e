"""Empirical Bayes moderation, as limma 3.54.1's ``squeezeVar``, ``fitFDist``, ``fitFDistRobustly``
and ``eBayes``, and the moderated F-statistic of ``classifyTestsF`` / ``topTable``.

Moderation is global: run it once on the merged fit of all features (chunked fits are concatenated
first with :func:`stacklm.fit.concat_fits`).  limma 3.54.1 is followed where features have unequal
residual df (missing values): the prior is estimated with ``fitFDist``'s moment method on all
features, each with its own df (the "legacy" estimator, before limma 3.62's fitFDistUnequalDF1).

Speed without changing the numbers: t-statistics sharing a df (all of them when nothing is missing)
get their p-values from an interpolation table built on exact values (:class:`_TwoSidedTTail`, within
~1e-12 of ``stats.t.sf`` and R's ``pt``); tmixture.vector converts and sorts only the features that
can be among its top ones; elementwise passes run over row blocks that stay in cache.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from scipy.stats import rankdata

from .fit import LinearModelFit, estimable_columns
from .splines import NaturalSplineBasis

_EPS = np.finfo(float).eps


# --------------------------------------------------------------------------------------------
# special functions
# --------------------------------------------------------------------------------------------
def _trigamma(x):
    return special.polygamma(1, x)


def _on_distinct(func, x: np.ndarray) -> np.ndarray:
    """``func(x)`` elementwise, evaluated once per distinct value of ``x`` (degrees of freedom take
    few values: one when there are no missing values).  Same numbers as ``func(x)``."""
    if x.size == 0:
        return func(x)
    lo, hi = x.min(), x.max()
    if lo == hi:
        return np.full(x.shape, func(x[:1])[0])
    values, inverse = np.unique(x, return_inverse=True)
    return func(values)[inverse.reshape(x.shape)]


def trigamma_inverse(x):
    """Solve ``trigamma(y) = x`` for y > 0 (limma's ``trigammaInverse``, same Newton iteration)."""
    x = np.asarray(x, dtype=np.float64)
    scalar = x.ndim == 0
    x = np.atleast_1d(x).copy()
    y = np.full_like(x, np.nan)
    neg = x < 0
    big = x > 1e7
    small = x < 1e-6
    y[big] = 1.0 / np.sqrt(x[big])
    y[small & ~neg] = 1.0 / x[small & ~neg]
    todo = np.isfinite(x) & ~neg & ~big & ~small
    if todo.any():
        xv = x[todo]
        yv = 0.5 + 1.0 / xv
        for _ in range(51):
            tri = special.polygamma(1, yv)
            dif = tri * (1.0 - tri / xv) / special.polygamma(2, yv)
            yv = yv + dif
            if np.max(-dif / yv) < 1e-8:
                break
        else:
            warnings.warn("trigamma_inverse: iteration limit exceeded", stacklevel=2)
        y[todo] = yv
    return float(y[0]) if scalar else y


def _f_sf(x, df1, df2, log=False):
    """Upper tail of F(df1, df2), with df2 = inf meaning chi-square(df1)/df1 (as R's pf)."""
    x, df1, df2 = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(df1, float), np.asarray(df2, float)
    )
    out = np.empty(x.shape)
    inf = np.isinf(df2)
    if log:
        out[inf] = stats.chi2.logsf(x[inf] * df1[inf], df1[inf])
        out[~inf] = stats.f.logsf(x[~inf], df1[~inf], df2[~inf])
    elif inf.any():
        out[inf] = stats.chi2.sf(x[inf] * df1[inf], df1[inf])
        fin = ~inf
        out[fin] = special.fdtrc(df1[fin], df2[fin], np.maximum(x[fin], 0.0))
    else:
        # stats.f.sf's own function, without its argument checks and copies (same numbers;
        # x < 0, outside the support, is clipped to 0 where stats.f.sf returns 1)
        special.fdtrc(df1, df2, np.maximum(x, 0.0), out=out)
    return out


def _f_cdf_log(x, df1, df2):
    if np.isinf(df2):
        return stats.chi2.logcdf(x * df1, df1)
    return stats.f.logcdf(x, df1, df2)


def _f_ppf(q, df1, df2):
    if np.isinf(df2):
        return stats.chi2.ppf(q, df1) / df1
    return stats.f.ppf(q, df1, df2)


def _f_isf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.isf(p, df1) / df1
    return stats.f.isf(p, df1, df2)


def _f_ppf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.ppf(p, df1) / df1
    return stats.f.ppf(p, df1, df2)


def _f_pdf(x, df1, df2):
    if np.isinf(df2):
        return stats.chi2.pdf(x * df1, df1) * df1
    return stats.f.pdf(x, df1, df2)


def _zeroin(f, ax, bx, fa, fb, tol, maxit=1000):
    """R's ``uniroot`` (R_zeroin2, Brent's method), so roots agree with R to the last iterate."""
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    warnings.warn("root finding did not converge", stacklevel=2)
    return b


# --------------------------------------------------------------------------------------------
# fitFDist, fitFDistRobustly, squeezeVar
# --------------------------------------------------------------------------------------------
@dataclass
class FDistFit:
    """Scaled F-distribution fitted to sample variances: prior scale ``s0^2`` and prior df ``d0``."""

    scale: np.ndarray | float
    df2: float
    df2_shrunk: np.ndarray | None = None


def _lm_fitted(design: np.ndarray, y: np.ndarray):
    keep = estimable_columns(design)
    X = design[:, keep]
    q, r = np.linalg.qr(X)
    effects = q.T @ y
    fitted = q @ effects
    coef = np.full(design.shape[1], np.nan)
    coef[keep] = np.linalg.solve(r, effects)
    rss = np.sum((y - fitted) ** 2)
    return fitted, coef, keep, rss, X.shape[1]


def fit_f_dist(x, df1, covariate=None) -> FDistFit:
    """Moment estimation of a scaled F distribution for sample variances (limma ``fitFDist``).

    ``x`` are the variances, ``df1`` their degrees of freedom (scalar or per feature), ``covariate`` an
    optional per-feature covariate (e.g. average log-expression) for a natural-spline trend in the
    prior scale.  Returns ``scale`` (s0^2, scalar or per feature) and ``df2`` (d0, possibly inf).
    Features with non-finite x or df1 <= 1e-15 do not inform the estimate; with a covariate they
    get the trend evaluated at their covariate.  Where limma stops on a missing covariate, the
    features concerned get a NaN prior instead (they are the all-missing rows, with no variance).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return FDistFit(np.nan, np.nan)
    if n == 1:
        return FDistFit(x.copy(), 0.0)
    df1 = np.asarray(df1, dtype=np.float64)
    if df1.ndim == 0:
        if not (np.isfinite(df1) and df1 > 1e-15):
            return FDistFit(np.nan, np.nan)
        df1 = np.full(n, float(df1))
    elif df1.size != n:
        raise ValueError("x and df1 have different lengths")
    ok = np.isfinite(df1) & (df1 > 1e-15)
    cov = None
    if covariate is not None:
        cov = np.asarray(covariate, dtype=np.float64).copy()
        if cov.size != n:
            raise ValueError("x and covariate must be of same length")
        fin = np.isfinite(cov)
        if not fin.all():
            isinf = np.isinf(cov)
            if fin.any():
                lo, hi = cov[fin].min(), cov[fin].max()
                cov[cov == -np.inf] = lo - 1
                cov[cov == np.inf] = hi + 1
            else:
                cov[isinf] = np.sign(cov[isinf])
        ok &= ~np.isnan(cov)
    ok &= np.isfinite(x) & (x > -1e-15)
    nok = int(ok.sum())
    if nok == 1:
        return FDistFit(x[ok][0], 0.0)
    notallok = nok < n
    xo = x[ok]
    d1 = df1[ok]
    splinedf = 1
    if cov is not None:
        cov_ok = cov[ok]
        splinedf = 1 + int(nok >= 3) + int(nok >= 6) + int(nok >= 30)
        splinedf = min(splinedf, np.unique(cov_ok).size)
        if splinedf < 2:
            out = fit_f_dist(xo, d1)
            return FDistFit(np.full(n, out.scale), out.df2)
    xo = np.maximum(xo, 0.0)
    m = np.median(xo)
    if m == 0:
        warnings.warn(
            "More than half of residual variances are exactly zero: eBayes unreliable", stacklevel=2
        )
        m = 1.0
    elif np.any(xo == 0):
        warnings.warn(
            "Zero sample variances detected, have been offset away from zero", stacklevel=2
        )
    xo = np.maximum(xo, 1e-5 * m)
    z = np.log(xo)
    e = z - _on_distinct(special.digamma, d1 / 2) + np.log(d1 / 2)
    if cov is None:
        emean = np.mean(e)
        evar = np.sum((e - emean) ** 2) / (nok - 1)
    else:
        basis = NaturalSplineBasis(cov_ok, df=splinedf, intercept=True)
        design = basis.evaluate(cov_ok)
        fitted, coef, keep, rss, rank = _lm_fitted(design, e)
        if notallok:
            emean = np.full(n, np.nan)
            emean[ok] = fitted
            notok = ~ok & ~np.isnan(cov)
            if notok.any():
                emean[notok] = basis.evaluate(cov[notok])[:, keep] @ coef[keep]
        else:
            emean = fitted
        evar = rss / (nok - rank)
    evar = evar - np.mean(_on_distinct(_trigamma, d1 / 2))
    if evar > 0:
        df2 = 2 * trigamma_inverse(evar)
        s20 = np.exp(emean + special.digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        s20 = np.mean(xo) if cov is None else np.exp(emean)
    return FDistFit(s20, float(df2))


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
            scale[~ok] = np.exp(_approx_rule2_mean_ties(cov[ok], np.log(fit.scale), cov[~ok]))
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
        from .normalize import loess_fit

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
        r = rankdata(fstat)
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
    r = rankdata(fstat)
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


def _approx_rule2_mean_ties(x, y, xout):
    """R's ``approx(x, y, xout, rule = 2, ties = mean)``."""
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    return np.interp(xout, ux, uy)


@dataclass
class SqueezedVariances:
    var_post: np.ndarray
    var_prior: np.ndarray | float
    df_prior: np.ndarray | float


def squeeze_var(
    var, df, covariate=None, robust=False, winsor_tail_p=(0.05, 0.1)
) -> SqueezedVariances:
    """Posterior variances ``(df*var + d0*s0^2) / (df + d0)`` with the prior estimated from all
    features (limma ``squeezeVar``).  Features with ``df == 0`` do not inform the prior and get
    the prior as their posterior."""
    var = np.asarray(var, dtype=np.float64).copy()
    n = var.size
    if n == 0:
        raise ValueError("var is empty")
    if n == 1:
        return SqueezedVariances(var, var, 0.0)
    df = np.asarray(df, dtype=np.float64)
    if df.ndim and df.size > 1:
        var[df == 0] = 0.0
    if robust:
        fit = fit_f_dist_robustly(var, df, covariate=covariate, winsor_tail_p=winsor_tail_p)
        df_prior = fit.df2_shrunk
    else:
        fit = fit_f_dist(var, df, covariate=covariate)
        df_prior = fit.df2
    if np.any(np.isnan(df_prior)):
        raise ValueError("Could not estimate prior df")
    var_post = _posterior_var(var, df, fit.scale, df_prior)
    return SqueezedVariances(var_post, fit.scale, df_prior)


def _posterior_var(var, df, var_prior, df_prior):
    df_prior_a = np.asarray(df_prior, dtype=np.float64)
    n = var.size
    if np.all(np.isfinite(df_prior_a)):
        return (df * var + df_prior_a * var_prior) / (df + df_prior_a)
    var_post = np.broadcast_to(np.asarray(var_prior, dtype=np.float64), (n,)).copy()
    isfin = np.broadcast_to(np.isfinite(df_prior_a), (n,))
    if isfin.any():
        dfi = np.broadcast_to(df, (n,))[isfin]
        dpi = np.broadcast_to(df_prior_a, (n,))[isfin]
        var_post[isfin] = (dfi * var[isfin] + dpi * var_post[isfin]) / (dfi + dpi)
    return var_post


# --------------------------------------------------------------------------------------------
# eBayes
# --------------------------------------------------------------------------------------------
def _t_logsf(t, df):
    return stats.t.logsf(t, df)


def _log_t_density_at_zero(nu: float) -> float:
    """log of the t density at 0, log(Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi))), accurate for
    large nu (where the difference of log-gammas cancels) through its asymptotic series."""
    if nu < 100:
        return float(-0.5 * np.log(nu) - special.betaln(nu / 2, 0.5))
    x = nu / 2
    r = 1 / (x * x)
    series = (-1 / 8 + r * (1 / 192 + r * (-1 / 640 + r * (17 / 14336 - r * 31 / 18432)))) / x
    return float(0.5 * np.log(x) + series - 0.5 * np.log(nu * np.pi))


class _TwoSidedTTail:
    """``2 P(T_nu > |t|)`` for many t and one nu, fast: scipy's ``stdtr`` (the function
    ``stats.t.sf`` calls) is evaluated exactly on the grid t_i = i h of [0, t_hi), and in between
    log p is interpolated by the quintic Hermite polynomial that matches log p and its first two
    derivatives (from the t density) at both ends: p(t) = p(t_i) exp(r(t)).  The table is only
    used if, at every midpoint of the grid, it agrees with ``stdtr`` to ``rtol`` (relative); ``stdtr``
    itself agrees with R's ``pt`` to ~4e-13 for large nu, and the table with R to the same level.
    t beyond the grid (p < ``p_min`` or t >= ``t_max``), NaN and inf use ``stdtr`` directly.
    """

    def __init__(self, nu: float, h=1 / 64, t_max=64.0, p_min=1e-280, rtol=1e-12):
        self.nu = nu
        self.ok = False
        t_lim = -special.stdtrit(nu, p_min / 2)
        t_hi = min(t_max, t_lim) if np.isfinite(t_lim) else t_max
        n_int = int(np.floor(t_hi / h))
        if n_int < 2:
            return
        t = np.arange(n_int + 1) * h
        p1 = special.stdtr(nu, -t)  # one-sided upper tail
        logp1 = np.log(p1)
        hazard = np.exp(
            _log_t_density_at_zero(nu) - (nu + 1) / 2 * np.log1p(t * t / nu) - logp1
        )  # density / tail
        d1 = -hazard * h  # h d(log p)/dt
        d2 = hazard * ((nu + 1) * t / (nu + t * t) - hazard) * (h * h)  # h^2 d2(log p)/dt2
        dy = np.diff(logp1)
        a1, b1, a2, b2 = d1[:-1], d1[1:], d2[:-1], d2[1:]
        self.coef = (
            2 * p1[:-1],
            a1,
            0.5 * a2,
            10 * dy - 6 * a1 - 4 * b1 - 1.5 * a2 + 0.5 * b2,
            -15 * dy + 8 * a1 + 7 * b1 + 1.5 * a2 - b2,
            6 * dy - 3 * a1 - 3 * b1 - 0.5 * a2 + 0.5 * b2,
        )
        self.inv_h = 1.0 / h
        self.t_hi = n_int * h
        mid = t[:-1] + h / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.abs(self._interpolate(mid) / (2 * special.stdtr(nu, -mid)) - 1)
        self.max_error = float(np.max(err))
        self.ok = bool(np.all(err <= rtol))

    def _interpolate(self, t, out=None):
        u = t * self.inv_h
        with np.errstate(invalid="ignore"):
            i = u.astype(np.intp)
        s = u - i
        c0, c1, c2, c3, c4, c5 = (np.take(c, i, mode="clip") for c in self.coef)
        r = c5 * s
        r += c4
        r *= s
        r += c3
        r *= s
        r += c2
        r *= s
        r += c1
        r *= s
        np.exp(r, out=r)
        return np.multiply(c0, r, out=out)

    def __call__(self, abs_t: np.ndarray, block: int = 16384) -> np.ndarray:
        """Two-sided p-values of a 1-D array of |t| values."""
        out = np.empty(abs_t.shape)
        for a in range(0, abs_t.size, block):
            self._interpolate(abs_t[a : a + block], out=out[a : a + block])
        beyond = ~(abs_t < self.t_hi)
        if beyond.any():
            out[beyond] = 2 * special.stdtr(self.nu, -abs_t[beyond])
        return out


#: a finite df shared by at least this many t-statistics is evaluated through _TwoSidedTTail
T_TABLE_MIN_SIZE = 20000

_T_TABLES: dict[float, _TwoSidedTTail] = {}


def _t_table(nu: float) -> _TwoSidedTTail | None:
    """The interpolation table for nu (cached), or None where it does not apply."""
    if not (np.isfinite(nu) and nu > 0) or (nu <= 2 and nu == int(nu)):
        return None  # df 1 and 2 have cheap closed forms in stdtr
    table = _T_TABLES.get(nu)
    if table is None:
        table = _TwoSidedTTail(nu)
        if len(_T_TABLES) > 64:
            _T_TABLES.clear()
        _T_TABLES[nu] = table
    return table if table.ok else None


def _t_sf2_exact(abs_t, df):
    out = np.empty(np.broadcast_shapes(np.shape(abs_t), np.shape(df)))
    abs_t, df = np.broadcast_arrays(abs_t, df)
    inf = np.isinf(df)
    out[inf] = 2 * stats.norm.sf(abs_t[inf])
    fin = ~inf
    out[fin] = 2 * special.stdtr(df[fin], -abs_t[fin])  # stats.t.sf's function, without its checks
    return out


def _t_sf2_shared(abs_t: np.ndarray, nu: float) -> np.ndarray:
    """Two-sided p-values of a 1-D array of |t| sharing the df nu."""
    table = _t_table(float(nu)) if abs_t.size >= T_TABLE_MIN_SIZE else None
    if table is None:
        return _t_sf2_exact(abs_t, nu)
    return table(abs_t)


def _t_sf2(t, df):
    """Two-sided p-value 2*P(T > |t|), with df = inf as the normal distribution (R's ``2*pt(-|t|, df)``).

    ``df`` is a scalar or one value per row of ``t``.  Rows are grouped by df: a df shared by many
    t-statistics (all of them when no value is missing and the prior df is common) goes through the
    interpolation table of :class:`_TwoSidedTTail` (same numbers as ``stats.t.sf`` to ~1e-12
    relative, about ten times faster), the others through ``stats.t.sf``.
    """
    t = np.abs(np.asarray(t, dtype=np.float64))
    df = np.asarray(df, dtype=np.float64)
    if df.ndim == 0 or (df.size and df.min() == df.max()):
        nu = float(df.flat[0]) if df.size else float(df)
        if t.ndim == 0:
            return _t_sf2_exact(t, nu)
        return _t_sf2_shared(np.ascontiguousarray(t).ravel(), nu).reshape(t.shape)
    if df.ndim != 1 or t.ndim != 2 or df.size != t.shape[0]:
        return _t_sf2_exact(t, np.reshape(df, df.shape + (1,) * (t.ndim - df.ndim)))
    values, inverse, counts = np.unique(df, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    shared = counts * t.shape[1] >= T_TABLE_MIN_SIZE
    out = np.empty(t.shape)
    rest = ~shared[inverse]
    if rest.any():
        out[rest] = _t_sf2_exact(t[rest], df[rest][:, None])
    if shared.any():
        rows = np.flatnonzero(~rest)
        rows = rows[np.argsort(inverse[rows], kind="stable")]
        bounds = np.flatnonzero(np.diff(inverse[rows])) + 1
        for group in np.split(rows, bounds):
            nu = values[inverse[group[0]]]
            out[group] = _t_sf2_shared(t[group].ravel(), nu).reshape(group.size, t.shape[1])
    return out


def _top_candidates(abs_t, lower, p_value, ntarget):
    """Indices (increasing) of a subset of features that surely holds the ``ntarget`` largest
    t-statistics after tmixture.vector's conversion of lower-df t's to the maximal df, and all ties.

    That conversion keeps each feature's tail probability, so the order is the order of the
    one-sided log tail probability log(p/2), available from the p-values; features within a small
    margin of the threshold are kept so that the exact conversion decides their order.
    """
    n = abs_t.size
    k = n - ntarget
    if k <= 0:
        return np.arange(n)
    if not lower.any():
        threshold = np.partition(abs_t, k)[k]
        return np.flatnonzero(abs_t >= threshold)
    with np.errstate(divide="ignore"):
        score = np.where(p_value > 1e-290, np.log(p_value / 2), -np.inf)
    threshold = np.partition(score, ntarget - 1)[ntarget - 1]
    margin = 1e-9 * max(1.0, abs(threshold)) if np.isfinite(threshold) else 0.0
    return np.flatnonzero(score <= threshold + margin)


def _tmixture_vector(tstat, stdev_unscaled, df, proportion, v0_lim, p_value=None):
    """limma's ``tmixture.vector``: the prior variance of the non-zero coefficients, from the
    ``ntarget`` most significant t-statistics.

    Only the features that can be among those are converted and sorted (see
    :func:`_top_candidates`; ``p_value`` are the two-sided p-values of ``tstat`` at ``df``), which
    gives the numbers of converting and sorting all of them, as limma does.
    """
    keep = ~np.isnan(tstat)
    df = np.asarray(df, dtype=np.float64)
    if keep.all():
        tstat = np.abs(tstat)
        su = stdev_unscaled
    else:
        tstat = np.abs(tstat[keep])
        su = stdev_unscaled[keep]
        df = df[keep]
    ngenes = tstat.size
    ntarget = int(np.ceil(proportion / 2 * ngenes))
    if ntarget < 1:
        return np.nan
    p = max(ntarget / ngenes, proportion)
    max_df = df.max()
    lower = df < max_df
    if p_value is None and lower.any():
        p_value = _t_sf2(tstat, df)
    elif p_value is not None and not keep.all():
        p_value = p_value[keep]
    cand = _top_candidates(tstat, lower, p_value, ntarget)
    tc = tstat[cand]
    lc = lower[cand]
    if lc.any():
        tail = _t_logsf(tc[lc], df[cand][lc])
        tc[lc] = stats.t.isf(np.exp(tail), max_df)
    o = np.argsort(-tc, kind="stable")[:ntarget]
    tstat = tc[o]
    v1 = su[cand[o]] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * stats.t.sf(tstat, max_df)
    ptarget = ((r - 0.5) / ngenes - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    if pos.any():
        qtarget = stats.t.isf(ptarget[pos] / 2, max_df)
        v0[pos] = v1[pos] * ((tstat[pos] / qtarget) ** 2 - 1)
    if v0_lim is not None:
        v0 = np.minimum(np.maximum(v0, v0_lim[0]), v0_lim[1])
    return float(np.mean(v0))


def _row_blocks(n_rows: int, n_cols: int, values: int = 1 << 16):
    """Row slices of about ``values`` elements: elementwise passes stay in cache."""
    step = max(1, values // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def e_bayes(
    fit: LinearModelFit,
    proportion: float = 0.01,
    stdev_coef_lim=(0.1, 4.0),
    trend=False,
    robust: bool = False,
    winsor_tail_p=(0.05, 0.1),
) -> LinearModelFit:
    """Empirical Bayes moderated t-statistics, p-values, B-statistics (lods) and the moderated F over
    all coefficients, as limma's ``eBayes``.

    ``trend=True`` uses the features' average (``amean``) as the covariate for a spline trend in the
    prior variance; a numeric array gives the covariate directly.  ``robust=True`` uses
    ``fitFDistRobustly`` (per-feature prior df).  Returns a new fit with ``s2_prior``, ``df_prior``,
    ``s2_post``, ``df_total``, ``var_prior``, ``t``, ``p_value``, ``lods``, ``F``, ``F_p_value``.
    """
    coef = fit.coefficients
    su = fit.stdev_unscaled
    sigma = fit.sigma
    dfr = np.asarray(fit.df_residual, dtype=np.float64)
    if np.nanmax(dfr) == 0:
        raise ValueError("No residual degrees of freedom in linear model fits")
    if not np.any(np.isfinite(sigma)):
        raise ValueError("No finite residual standard deviations")
    if isinstance(trend, bool | np.bool_):
        covariate = np.asarray(fit.amean, dtype=np.float64) if trend else None
    else:
        covariate = np.asarray(trend, dtype=np.float64)
        if covariate.size != sigma.size:
            raise ValueError("a numeric trend must have one value per feature")
    sq = squeeze_var(sigma**2, dfr, covariate=covariate, robust=robust, winsor_tail_p=winsor_tail_p)
    s2_prior = sq.var_prior
    s2_post = sq.var_post
    df_prior = sq.df_prior
    n_rows, n_coef = coef.shape
    sd_post = np.sqrt(s2_post)
    t = np.empty(coef.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for rows in _row_blocks(n_rows, n_coef):
            np.divide(coef[rows], su[rows], out=t[rows])
            t[rows] /= sd_post[rows, None]
    df_total = dfr + df_prior
    df_pooled = np.nansum(dfr)
    df_total = np.minimum(df_total, df_pooled)
    df_total_v = np.broadcast_to(df_total, sigma.shape)
    p_value = _t_sf2(t, df_total_v)

    var_prior_lim = np.asarray(stdev_coef_lim, dtype=np.float64) ** 2 / np.median(s2_prior)
    var_prior = np.array(
        [
            _tmixture_vector(
                t[:, j], su[:, j], df_total_v, proportion, var_prior_lim, p_value=p_value[:, j]
            )
            for j in range(n_coef)
        ]
    )
    if np.isnan(var_prior).any():
        warnings.warn("Estimation of var.prior failed - set to default value", stacklevel=2)
        var_prior[np.isnan(var_prior)] = 1 / np.atleast_1d(s2_prior)[0]
    inf_df_all = np.broadcast_to(np.asarray(df_prior) > 1e6, sigma.shape)
    log_odds_prior = np.log(proportion / (1 - proportion))
    lods = np.empty(coef.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for rows in _row_blocks(n_rows, n_coef):
            su2 = su[rows] ** 2
            r = (su2 + var_prior[None, :]) / su2
            t2 = t[rows] ** 2
            dtot = df_total_v[rows, None]
            inf_df = inf_df_all[rows]
            kernel = (1 + dtot) / 2 * np.log((t2 + dtot) / (t2 / r + dtot))
            if inf_df.any():
                kernel = np.where(inf_df[:, None], t2 * (1 - 1 / r) / 2, kernel)
            lods[rows] = log_odds_prior - np.log(r) / 2 + kernel

    out = fit.replace(
        s2_prior=s2_prior,
        df_prior=df_prior,
        s2_post=s2_post,
        df_total=df_total_v.copy(),
        var_prior=var_prior,
        proportion=proportion,
        t=t,
        p_value=p_value,
        lods=lods,
    )
    if fit.design is None or estimable_columns(fit.design).all():
        F, F_p = moderated_f(out, use_chisq_for_large_df=False)
        out.F, out.F_p_value = F, F_p
    return out


def moderated_f(fit: LinearModelFit, coefs=None, use_chisq_for_large_df: bool = True):
    """Moderated F-statistic over a set of coefficients and its p-value.

    As limma's ``classifyTestsF(fstat.only=TRUE)`` on ``fit[, coefs]``: the t-statistics are
    combined through the correlation matrix of the coefficients (``cov.coefficients`` of the
    design, also for features with missing values), df1 is the rank of that correlation matrix, and
    df2 = df.prior + df.residual.  ``topTable`` (``use_chisq_for_large_df=True``) switches to the
    chi-square distribution when the first df2 exceeds 1e6; ``eBayes`` calls ``pf`` directly.
    """
    if fit.t is None:
        raise ValueError("run e_bayes first")
    idx = list(range(len(fit.coef_names))) if coefs is None else fit.coef_index(coefs)
    if idx and idx == list(range(idx[0], idx[0] + len(idx))):
        t = fit.t[:, idx[0] : idx[0] + len(idx)]  # a view, not a copy
    else:
        t = fit.t[:, idx]
    df2 = np.asarray(fit.df_prior, dtype=np.float64) + np.asarray(fit.df_residual, dtype=np.float64)
    df2 = np.broadcast_to(df2, (t.shape[0],))
    if t.shape[1] == 1:
        F = t[:, 0] ** 2
        df1 = 1
    else:
        values, vectors = _correlation_eigen(fit, idx)
        df1 = int(np.sum(values / values[0] > 1e-8))
        Q = vectors[:, :df1] / np.sqrt(values[:df1])[None, :] / np.sqrt(df1)
        tq = t @ Q
        np.multiply(tq, tq, out=tq)
        F = np.sum(tq, axis=1)
    if use_chisq_for_large_df and df2[0] > 1e6:
        p = stats.chi2.sf(df1 * F, df1)
    else:
        p = _f_sf(F, df1, df2)
    return F, p


def _correlation_eigen(fit: LinearModelFit, idx):
    """Eigen-decomposition (decreasing) of the coefficients' correlation matrix, as classifyTestsF."""
    cov = fit.cov_coefficients[np.ix_(idx, idx)].copy()
    d = np.diag(cov).copy()
    if d.min() == 0:
        cov[np.diag_indices_from(cov)] = np.where(d == 0, 1.0, d)
    sd = np.sqrt(np.diag(cov))
    values, vectors = np.linalg.eigh(cov / sd[:, None] / sd[None, :])
    return values[::-1], vectors[:, ::-1]


def f_test_df1(fit: LinearModelFit, coefs) -> int:
    """Numerator df of the moderated F over ``coefs``: the rank of their correlation matrix."""
    idx = fit.coef_index(coefs)
    if len(idx) == 1:
        return 1
    values, _ = _correlation_eigen(fit, idx)
    return int(np.sum(values / values[0] > 1e-8))
