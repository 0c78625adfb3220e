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
from scipy.stats import rankdata

from stacklm.limma.weightedlowess import weighted_loess_fit
from stacklm.multiple_testing.padjust import p_adjust
from stacklm.rstats.basic import quantile7
from stacklm.rstats.optimize import optimize
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


def _r_sum(a: np.ndarray) -> float:
    """R's ``sum`` of doubles: accumulated in long double, rounded once to double."""
    return float(np.sum(a, dtype=_LD))


# R's nmath gammafn / lgammacor Chebyshev coefficients (W. Fullerton), the terms R uses
_GAMCS = (
    +0.8571195590989331421920062399942e-2,
    +0.4415381324841006757191315771652e-2,
    +0.5685043681599363378632664588789e-1,
    -0.4219835396418560501012500186624e-2,
    +0.1326808181212460220584006796352e-2,
    -0.1893024529798880432523947023886e-3,
    +0.3606925327441245256578082217225e-4,
    -0.6056761904460864218485548290365e-5,
    +0.1055829546302283344731823509093e-5,
    -0.1811967365542384048291855891166e-6,
    +0.3117724964715322277790254593169e-7,
    -0.5354219639019687140874081024347e-8,
    +0.9193275519859588946887786825940e-9,
    -0.1577941280288339761767423273953e-9,
    +0.2707980622934954543266540433089e-10,
    -0.4646818653825730144081661058933e-11,
    +0.7973350192007419656460767175359e-12,
    -0.1368078209830916025799499172309e-12,
    +0.2347319486563800657233471771688e-13,
    -0.4027432614949066932766570534699e-14,
    +0.6910051747372100912138336975257e-15,
    -0.1185584500221992907052387126192e-15,
)  # ngam = 22
_ALGMCS = (
    +0.1666389480451863247205729650822e0,
    -0.1384948176067563840732986059135e-4,
    +0.9810825646924729426157171547487e-8,
    -0.1809129475572494194263306266719e-10,
    +0.6221098041892605227126015543416e-13,
)  # nalgm = 5
_M_LN_SQRT_2PI = 0.918938533204672741780329736406


def _chebyshev_eval(x: float, a) -> float:
    twox = x * 2
    b2 = b1 = b0 = 0.0
    for coef in reversed(a):
        b2 = b1
        b1 = b0
        b0 = twox * b1 - b2 + coef
    return (b0 - b2) * 0.5


def _r_lgamma_scalar(x: float) -> float:
    """R's ``lgammafn`` (nmath/lgamma.c) for x > 0, with the C library's log and exp (as R).

    Why not scipy's ``gammaln``: it differs from R by an ulp for many arguments, and the likelihood
    adds the same lgamma(d1 + d2) for every feature sharing a df, so such differences add up over
    the features (1e-10 of the objective on 22k features) and move optimize's parabolic steps."""
    if x < 1e-306:
        return -math.log(x)
    if x <= 10:
        # gammafn for 0 < x <= 10
        n = int(x)
        y = x - n
        n -= 1
        value = _chebyshev_eval(y * 2 - 1, _GAMCS) + 0.9375
        if n < 0:
            value /= x  # 0 < x < 1: n = -1, one division by (x + 0)
        else:
            for i in range(1, n + 1):
                value *= y + i
        return math.log(abs(value))
    if x > 1e17:
        return x * (math.log(x) - 1.0)
    if x > 4934720.0:
        return _M_LN_SQRT_2PI + (x - 0.5) * math.log(x) - x
    tmp = 10 / x
    lgammacor = _chebyshev_eval(tmp * tmp * 2 - 1, _ALGMCS) / x
    return _M_LN_SQRT_2PI + (x - 0.5) * math.log(x) - x + lgammacor


def _r_lgamma(values: np.ndarray) -> np.ndarray:
    """R's ``lgamma`` of positive values: the port for up to a few hundred distinct values (degrees
    of freedom), scipy's ``gammaln`` beyond (same to ~1e-15)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size > 256:
        return special.gammaln(values)
    return np.array([_r_lgamma_scalar(float(v)) for v in values.ravel()]).reshape(values.shape)


_BVALUES = (  # Bernoulli numbers of R's dpsifn
    1.00000000000000000e00,
    -5.00000000000000000e-01,
    1.66666666666666667e-01,
    -3.33333333333333333e-02,
    2.38095238095238095e-02,
    -3.33333333333333333e-02,
    7.57575757575757576e-02,
    -2.53113553113553114e-01,
    1.16666666666666667e00,
    -7.09215686274509804e00,
    5.49711779448621554e01,
    -5.29124242424242424e02,
    6.19212318840579710e03,
    -8.65802531135531136e04,
    1.42551716666666667e06,
    -2.72982310678160920e07,
    6.01580873900642368e08,
    -1.51163157670921569e10,
    4.29614643061166667e11,
    -1.37116552050883328e13,
    4.88332318973593167e14,
    -1.92965793419400681e16,
)
_R1M5 = 0.301029995663981195  # Rf_d1mach(5) = log10(2)
_WDTOL = max(2.0**-53, 0.5e-18)
_ELIM = 2.302 * (1021 * _R1M5 - 3.0)
_RLN = min(_R1M5 * 53, 18.06)


def _r_trigamma_scalar(x: float) -> float:
    """R's ``trigamma`` (nmath/polygamma.c: ``dpsifn(x, n=1, kode=1, m=1)``, D. E. Amos) for
    x > 0, with the C library's log, exp and pow (as R).

    Why not scipy's ``polygamma(1, x)``: it differs from R by an ulp for many arguments; the
    weights ``1/trigamma(df1/2)`` are shared by all features with the same df, so such differences
    move the weighted mean (and the trend) of the log-variances systematically."""
    if not x > 0:
        return math.nan
    xln = math.log(x)
    if x > 1 / (2.0 * 2.220446049250313e-16):  # n * lrg with n = 1
        return math.exp(-xln)
    n = 1
    fn = 1
    if abs(2 * xln) > _ELIM and 2 * xln <= 0.0:
        return math.nan  # ierr = 2: overflow
    if x < _WDTOL:
        return 1.0 / (x * x)  # R_pow_di(x, -2)
    fln = max(_RLN, 3.0) - 3.0
    yint = 3.50 + 0.40 * fln
    slope = 0.21 + fln * (0.0006038 * fln + 0.008677)
    xm = yint + slope * fn
    xmin = float(int(xm) + 1)
    xm = -2.302 * _RLN - min(0.0, xln)
    arg = min(0.0, xm / n)
    eps = math.exp(arg)
    xm = -arg if abs(arg) < 1.0e-3 else 1.0 - eps
    fln = x * xm / eps
    xm = xmin - x
    if xm > 7.0 and fln < 15.0:
        # the series sum((x+k)^-2)
        nn = int(fln) + 1
        t = math.exp(-(n + 1) * xln)
        s = t
        den = x
        for _ in range(nn):
            den += 1.0
            s += math.pow(den, -2.0)
        return s
    xdmy = x
    xinc = 0.0
    if x < xmin:
        xinc = xmin - int(x)
        xdmy = x + xinc
        xdmln = math.log(xdmy)
    else:
        xdmln = xln
    # asymptotic expansion at xdmy (the underflow branch is unreachable for x <= 2^52)
    t = fn * xdmln
    tss = math.exp(-t)
    tt = 0.5 / xdmy
    t1 = tt + 1.0 / fn  # nn = 1
    tst = _WDTOL * tt
    rxsq = 1.0 / (xdmy * xdmy)
    ta = 0.5 * rxsq
    t = (fn + 1) * ta
    s = t * _BVALUES[2]
    if abs(s) >= tst:
        tk = 2.0
        for k in range(4, 23):
            t = t * ((tk + fn + 1) / (tk + 1.0)) * ((tk + fn) / (tk + 2.0)) * rxsq
            trm = t * _BVALUES[k - 1]
            if abs(trm) < tst:
                break
            s += trm
            tk += 2.0
    s = (s + t1) * tss
    if xinc != 0.0:
        # backward recursion from xdmy to x
        nx = int(xinc)
        xm = xinc - 1.0
        fx = x + xm
        for _ in range(nx):
            s += math.pow(fx, -2.0)
            xm -= 1.0
            fx = x + xm
    return s


def _r_trigamma(values: np.ndarray) -> np.ndarray:
    """R's ``trigamma`` of positive values: the port for up to a few hundred distinct values,
    scipy's ``polygamma(1, .)`` beyond (same to ~1e-15)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size > 256:
        return special.polygamma(1, values)
    return np.array([_r_trigamma_scalar(float(v)) for v in values.ravel()]).reshape(values.shape)


def choose_lowess_span(n, small_n: float = 50, min_span: float = 0.3, power: float = 1 / 3):
    """limma ``chooseLowessSpan(n, small.n, min.span, power)``."""
    return min(min_span + (1 - min_span) * (small_n / n) ** power, 1.0)


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
    w = (1 / _r_trigamma(d1_values))[d1_index]
    if has_pw:
        if pw is None:  # R: w * NULL is empty, so the mean is 0/0 and the likelihood is 0
            return _degenerate()
        w = w * pw
    if cov is None:
        emean = _r_sum(w * e) / _r_sum(w)
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
        lg = _r_lgamma(d1_values + d2)
        term = a[d1_index] * np.log1p(d1x / d2s20)
        term -= d1 * log(d2s20)
        term += lg[d1_index]
        term -= _r_lgamma_scalar(d2)
        if has_pw:
            term *= pw
        return -2 * _r_sum(term)

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
    r = rankdata(fstat)
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
