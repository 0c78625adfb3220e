"""limma's ``fitFDist`` (moment estimation of a scaled F prior for sample variances) and
``trigammaInverse`` (limma 3.54.1 = the ``legacy`` estimator of 3.62+ when residual df differ)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

from stacklm.rstats.qr import estimable_columns
from stacklm.rstats.splines import NaturalSplineBasis


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
