"""R's ``lgamma`` (nmath/lgamma.c, ``lgammafn``) and ``trigamma`` (nmath/polygamma.c, ``dpsifn``)
for positive arguments, with the C library's log, exp and pow, as R computes them.

Ported rather than scipy's ``gammaln`` / ``polygamma(1, .)``: those differ from R by an ulp for
many arguments, and where the same value enters every feature's term (limma's
``fitFDistUnequalDF1``: ``lgamma(d1 + d2)`` and the weights ``1 / trigamma(d1 / 2)`` per distinct
df) such differences add up and move ``optimize``'s parabolic steps.  The vector forms use the port
for up to a few hundred distinct values (one Python call each) and scipy beyond (same to ~1e-15).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from stacklm.rstats.basic import DBL_EPSILON

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


def lgamma_scalar(x: float) -> float:
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


def lgamma(values: np.ndarray) -> np.ndarray:
    """R's ``lgamma`` of positive values: the port for up to a few hundred distinct values (degrees
    of freedom), scipy's ``gammaln`` beyond (same to ~1e-15)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size > 256:
        return special.gammaln(values)
    return np.array([lgamma_scalar(float(v)) for v in values.ravel()]).reshape(values.shape)


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


def trigamma_scalar(x: float) -> float:
    """R's ``trigamma`` (nmath/polygamma.c: ``dpsifn(x, n=1, kode=1, m=1)``, D. E. Amos) for
    x > 0, with the C library's log, exp and pow (as R).

    Why not scipy's ``polygamma(1, x)``: it differs from R by an ulp for many arguments; the
    weights ``1/trigamma(df1/2)`` are shared by all features with the same df, so such differences
    move the weighted mean (and the trend) of the log-variances systematically."""
    if not x > 0:
        return math.nan
    xln = math.log(x)
    if x > 1 / (2.0 * DBL_EPSILON):  # n * lrg with n = 1
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


def trigamma(values: np.ndarray) -> np.ndarray:
    """R's ``trigamma`` of positive values: the port for up to a few hundred distinct values,
    scipy's ``polygamma(1, .)`` beyond (same to ~1e-15)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size > 256:
        return special.polygamma(1, values)
    return np.array([trigamma_scalar(float(v)) for v in values.ravel()]).reshape(values.shape)
