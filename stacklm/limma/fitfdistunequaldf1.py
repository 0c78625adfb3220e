"""limma 3.63.2's ``fitFDistUnequalDF1`` (Smyth and Chen, 2024): the scaled F prior of sample
variances whose residual df1 differ between features, by profile maximum likelihood for the prior df.

limma >= 3.62 uses it in ``squeezeVar`` / ``eBayes`` / ``treat`` whenever the residual df differ
(any feature with missing values) unless ``legacy = TRUE``.  Ported from the R source because
every step decides the numbers: statmod's ``logmdigamma``, R's ``optimize`` (its coarse tolerance
makes the result depend on Brent's exact iterates, see :mod:`stacklm.rstats.optimize`) and, for a
covariate (``trend = TRUE``), ``loessFit`` with weights, i.e. limma's C ``weighted_lowess``
(:mod:`stacklm.limma.weightedlowess`).

Cost is O(features) per likelihood evaluation (about 25 evaluations): the log-gamma terms are
evaluated once per distinct df1, sums are accumulated in extended precision as R's ``sum``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from stacklm.limma.loessfit import choose_lowess_span
from stacklm.limma.weightedlowess import weighted_loess_fit
from stacklm.multiple_testing.padjust import p_adjust
from stacklm.rstats.basic import quantile7
from stacklm.rstats.gamma import lgamma, lgamma_scalar, trigamma
from stacklm.rstats.lazy import stats
from stacklm.rstats.optimize import optimize
from stacklm.rstats.sums import r_sum
from stacklm.statmod.logmdigamma import logmdigamma

_LD = np.longdouble


@dataclass
class FDistUnequalDF1Fit:
    """``fitFDistUnequalDF1``'s list: ``scale`` (s0^2, scalar or one per feature with a covariate)
    and ``df2`` (d0); with ``robust=True`` and outliers also ``df2_outlier`` and ``df2_shrunk``
    (per-feature prior df), else those are None (limma's list then lacks them)."""

    scale: np.ndarray | float
    df2: float
    df2_outlier: float | None = None
    df2_shrunk: np.ndarray | None = None


def _pf_upper(x, df1, df2):
    return special.fdtrc(df1, df2, np.maximum(x, 0.0))


def _pf_lower(x, df1, df2):
    return special.fdtr(df1, df2, np.maximum(x, 0.0))


def _pf_upper_log(x: float, df1: float, df2: float) -> float:
    return float(np.log(special.fdtrc(df1, df2, max(x, 0.0))))


def _distinct(values: np.ndarray):
    """Distinct values and the index of each element into them."""
    if values.size and values.min() == values.max():
        return values[:1].copy(), np.zeros(values.size, dtype=np.intp)
    u, inv = np.unique(values, return_inverse=True)
    return u, inv.ravel()


def fit_f_dist_unequal_df1(
    x, df1, covariate=None, robust: bool = False, prior_weights=None
) -> FDistUnequalDF1Fit:
    """limma 3.63.2 ``fitFDistUnequalDF1(x, df1, covariate = NULL, robust = FALSE,
    prior.weights = NULL)``: scale and df2 of the scaled F distribution of the variances ``x``
    given their numerator df ``df1`` (scalar or per feature).

    As R: NaN ``x`` and ``df1 < 0.01`` get prior weight 0 (x -> 0, df1 -> 1); fewer than two
    positive informative values give NaN scale and df2.  ``log(x)`` adjusted by
    ``logmdigamma(df1/2)`` is averaged with weights ``1/trigamma(df1/2)`` (or smoothed against the
    covariate by weighted lowess, span ``chooseLowessSpan(n, small.n=500)``, one iteration), then
    ``df2/2 = par/(1-par)`` maximises the profile likelihood over par in (1/2, 0.9998) with R's
    ``optimize``.  ``robust=True`` re-fits with the BH FDR of two-sided outlier p-values as prior
    weights and shrinks the prior df of right outliers (``df2_shrunk``).

    Where R stops on a missing covariate (the all-missing features' NaN ``Amean``), the features
    with a non-finite covariate are set aside: the fit is the one without them (as R on the data
    without those rows) and they get a NaN scale (and the common ``df2`` in ``df2_shrunk``).
    """
    x = np.array(x, dtype=np.float64).ravel()
    n = x.size
    df1 = np.asarray(df1, dtype=np.float64).ravel()
    if df1.size not in (1, n):
        raise ValueError("x and df1 are different lengths")
    if np.isnan(df1).any():
        raise ValueError("NA df1 values")
    df1 = np.broadcast_to(df1, (n,)).copy() if df1.size == 1 else df1.copy()
    cov = None
    if covariate is not None:
        cov = np.asarray(covariate, dtype=np.float64).ravel()
        if cov.size != n:
            raise ValueError("x and covariate are different lengths")
        bad = ~np.isfinite(cov)
        if bad.any():
            return _set_aside(x, df1, cov, robust, prior_weights, bad)
    pw = None
    if prior_weights is not None:
        pw = np.array(prior_weights, dtype=np.float64).ravel()
        if pw.size != n:
            raise ValueError("x and prior.weights are different lengths")
        if np.isnan(pw).any():
            raise ValueError("prior.weights contain NA values")
        if pw.min() < 0:
            raise ValueError("prior.weights are negative")

    # NA x values are uninformative
    na = np.isnan(x)
    if na.any():
        if pw is None:
            pw = (~na).astype(np.float64)
        else:
            pw[na] = 0.0
        x[na] = 0.0
    # small df1 values are uninformative
    if df1.min() < 0.01:
        small = df1 < 0.01
        if pw is None:
            pw = (~small).astype(np.float64)
        else:
            pw[small] = 0.0
        df1[small] = 1.0
    has_pw = pw is not None

    informative = x > 0
    if has_pw:
        informative &= pw != 0
    n_informative = int(np.count_nonzero(informative))
    if n_informative < 2:
        return FDistUnequalDF1Fit(np.nan, np.nan)
    if n_informative == 2:
        cov = None
        robust = False
        pw = None  # as R, which keeps its PriorWeights flag (weights then act as empty vectors)

    # avoid exactly zero x values
    m = np.median(x[informative])
    xpos = np.maximum(x, 1e-12 * m)
    z = np.log(xpos)

    # average log(F) adjusted for d1
    d1 = df1 / 2
    d1_values, d1_index = _distinct(d1)
    e = z + logmdigamma(d1_values)[d1_index]
    w = (1 / trigamma(d1_values))[d1_index]
    if has_pw:
        if pw is None:  # R: w * NULL is empty, so the mean is 0/0 and the likelihood is 0
            return _degenerate()
        w = w * pw
    if cov is None:
        emean = r_sum(w * e) / r_sum(w)
    else:
        span = choose_lowess_span(n, small_n=500)
        wq = quantile7(np.sort(w), 0.75)
        emean = weighted_loess_fit(
            e, cov, weights=w / wq, min_weight=1e-8, max_weight=1e2, span=span, iterations=1
        )

    d1x = d1 * xpos
    scalar_mean = np.ndim(emean) == 0
    # scalars through the math module: the C library's exp and log, as R
    exp = math.exp if scalar_mean else np.exp
    log = math.log if scalar_mean else np.log

    def minus_twice_log_lik(par: float) -> float:
        d2 = par / (1 - par)
        d2s20 = d2 * exp(emean - logmdigamma(d2))
        a = -(d1_values + d2)  # per distinct d1, as lgamma(d1 + d2)
        lg = lgamma(d1_values + d2)
        term = a[d1_index] * np.log1p(d1x / d2s20)
        term -= d1 * log(d2s20)
        term += lg[d1_index]
        term -= lgamma_scalar(d2)
        if has_pw:
            term *= pw
        return -2 * r_sum(term)

    out = optimize(minus_twice_log_lik, (1 / 2, 0.9998))
    d2 = out.minimum / (1 - out.minimum)
    s20 = exp(emean - logmdigamma(d2))
    if not robust:
        return FDistUnequalDF1Fit(s20, 2 * d2)

    # two-sided outliers by FDR: the FDR is an approximate probability of not being an outlier
    df2 = 2 * d2
    fstat = x / s20
    right_p = _pf_upper(fstat, df1, df2)
    left_p = 1 - right_p
    if left_p.min() < 0.001:
        i = left_p < 0.001
        left_p[i] = _pf_lower(fstat[i], df1[i], df2)
    two_sided_p = 2 * np.minimum(left_p, right_p)
    fdr = p_adjust(two_sided_p, "BH")
    fdr[fdr > 0.3] = 1.0
    if fdr.min() == 1.0:
        return FDistUnequalDF1Fit(s20, df2)

    # re-fit with the FDR as prior weights
    outpw = fit_f_dist_unequal_df1(x, df1, covariate=cov, robust=False, prior_weights=fdr)
    s20 = outpw.scale
    df2 = outpw.df2

    # qq-plot type identification of right outliers
    r = stats.rankdata(fstat)
    uniform_p = (n - r + 0.5) / n
    prob_not_outlier = np.minimum(right_p / uniform_p, 1.0)
    if prob_not_outlier.min() == 1.0:
        return outpw

    # posterior df for right outliers: df2.outlier makes the largest F the median
    i = int(np.argmin(right_p))
    min_right_p = right_p[i]
    if min_right_p == 0:
        df2_outlier = 0.0
        df2_shrunk = prob_not_outlier * df2
    else:
        df2_outlier = np.log(0.5) / np.log(min_right_p) * df2
        new_log_right_p = _pf_upper_log(fstat[i], df1[i], df2_outlier)
        df2_outlier = np.log(0.5) / new_log_right_p * df2_outlier
        df2_shrunk = prob_not_outlier * df2 + (1 - prob_not_outlier) * df2_outlier

    # df2_shrunk monotonic in right_p
    o = np.argsort(right_p, kind="stable")
    ordered = df2_shrunk[o]
    cm = np.cumsum(ordered.astype(_LD)).astype(np.float64) / np.arange(1, n + 1)
    imin = int(np.argmin(cm))
    ordered[: imin + 1] = cm[imin]
    df2_shrunk = np.empty(n)
    df2_shrunk[o] = np.maximum.accumulate(ordered)
    return FDistUnequalDF1Fit(s20, df2, float(df2_outlier), df2_shrunk)


def _degenerate() -> FDistUnequalDF1Fit:
    """R's result when exactly two values are informative and prior weights were in play: the
    weighted mean is NaN and the likelihood constant 0, so optimize ends at its golden-section
    point sequence for a flat function and the scale is NaN."""
    out = optimize(lambda par: 0.0, (1 / 2, 0.9998))
    return FDistUnequalDF1Fit(np.nan, 2 * (out.minimum / (1 - out.minimum)))


def _set_aside(x, df1, cov, robust, prior_weights, bad) -> FDistUnequalDF1Fit:
    good = ~bad
    pw = None if prior_weights is None else np.asarray(prior_weights, dtype=np.float64)[good]
    sub = fit_f_dist_unequal_df1(x[good], df1[good], cov[good], robust, pw)
    scale = np.full(x.size, np.nan)
    scale[good] = sub.scale
    shrunk = None
    if sub.df2_shrunk is not None:
        shrunk = np.full(x.size, sub.df2)
        shrunk[good] = sub.df2_shrunk
    return FDistUnequalDF1Fit(scale, sub.df2, sub.df2_outlier, shrunk)
