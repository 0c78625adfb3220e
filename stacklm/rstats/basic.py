"""Small R primitives whose exact numbers other ports depend on: ``seq``, ``dnorm``, ``qnorm``,
``sd``, ``quantile(type=7)``, ``bw.nrd0``."""

from __future__ import annotations

import math
import sys

import numpy as np

from stacklm.rstats.sums import r_mean

#: C's DBL_EPSILON (2^-52), as R's C code uses it (optimize, uniroot, polygamma)
DBL_EPSILON = sys.float_info.epsilon

# --------------------------------------------------------------------------------------------
# seq.int, dnorm, qnorm, sd, quantile, bw.nrd0, approx
# --------------------------------------------------------------------------------------------


def seq(start: float, stop: float, length: int) -> np.ndarray:
    """R's ``seq.int(from, to, length.out = length)`` (finite, real-valued case)."""
    out = np.empty(length)
    out[0] = start
    if length > 1:
        out[-1] = stop
    if length > 2:
        by = (stop - start) / (length - 1)
        out[1:-1] = start + np.arange(1, length - 1, dtype=np.float64) * by
    return out


_M_1_SQRT_2PI = 0.398942280401432677939946059934


def dnorm(x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """R's ``dnorm(x, 0, sigma)`` (nmath/dnorm.c, including its split for |x| >= 5)."""
    z = np.abs(np.asarray(x, dtype=np.float64) / sigma)
    out = _M_1_SQRT_2PI * np.exp(-0.5 * z * z) / sigma
    big = z >= 5
    if np.any(big):
        zb = z[big]
        x1 = np.ldexp(np.rint(np.ldexp(zb, 16)), -16)
        x2 = zb - x1
        vals = _M_1_SQRT_2PI / sigma * (np.exp(-0.5 * x1 * x1) * np.exp((-0.5 * x2 - x1) * x2))
        vals[zb > math.sqrt(-2 * math.log(2) * (-1021 + 1 - 53))] = 0.0
        out[big] = vals
    return out


def qnorm(p: np.ndarray) -> np.ndarray:
    """R's ``qnorm(p)`` (Wichura's AS 241 as in R 4.2's nmath/qnorm.c), vectorised.

    Ported rather than ``scipy.special.ndtri``: ndtri (Cephes) is a different algorithm and differs
    from R in the last bit on 69% of inputs (max 1.0e-15 relative, measured on 1.2M values); qvalue's
    lfdr and sva's edge.lfdr transform p-values with qnorm, and those bits reach the results."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    if np.any(central):
        qc = q[central]
        r = 0.180625 - qc * qc
        out[central] = (
            qc
            * (
                (
                    (
                        (
                            (
                                (
                                    (r * 2509.0809287301226727 + 33430.575583588128105) * r
                                    + 67265.770927008700853
                                )
                                * r
                                + 45921.953931549871457
                            )
                            * r
                            + 13731.693765509461125
                        )
                        * r
                        + 1971.5909503065514427
                    )
                    * r
                    + 133.14166789178437745
                )
                * r
                + 3.387132872796366608
            )
            / (
                (
                    (
                        (
                            (
                                (
                                    (r * 5226.495278852854561 + 28729.085735721942674) * r
                                    + 39307.89580009271061
                                )
                                * r
                                + 21213.794301586595867
                            )
                            * r
                            + 5394.1960214247511077
                        )
                        * r
                        + 687.1870074920579083
                    )
                    * r
                    + 42.313330701600911252
                )
                * r
                + 1.0
            )
        )
    tail = ~central & (p > 0) & (p < 1)
    if np.any(tail):
        pt = p[tail]
        qt = q[tail]
        r = np.where(qt > 0, 0.5 - pt + 0.5, pt)
        r = np.sqrt(-np.log(r))
        val = np.empty_like(r)
        mid = r <= 5.0
        rm = r[mid] - 1.6
        val[mid] = (
            (
                (
                    (
                        (
                            (
                                (rm * 7.7454501427834140764e-4 + 0.0227238449892691845833) * rm
                                + 0.24178072517745061177
                            )
                            * rm
                            + 1.27045825245236838258
                        )
                        * rm
                        + 3.64784832476320460504
                    )
                    * rm
                    + 5.7694972214606914055
                )
                * rm
                + 4.6303378461565452959
            )
            * rm
            + 1.42343711074968357734
        ) / (
            (
                (
                    (
                        (
                            (
                                (rm * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * rm
                                + 0.0151986665636164571966
                            )
                            * rm
                            + 0.14810397642748007459
                        )
                        * rm
                        + 0.68976733498510000455
                    )
                    * rm
                    + 1.6763848301838038494
                )
                * rm
                + 2.05319162663775882187
            )
            * rm
            + 1.0
        )
        far = ~mid
        rf = r[far] - 5.0
        val[far] = (
            (
                (
                    (
                        (
                            (
                                (rf * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * rf
                                + 0.0012426609473880784386
                            )
                            * rf
                            + 0.026532189526576123093
                        )
                        * rf
                        + 0.29656057182850489123
                    )
                    * rf
                    + 1.7848265399172913358
                )
                * rf
                + 5.4637849111641143699
            )
            * rf
            + 6.6579046435011037772
        ) / (
            (
                (
                    (
                        (
                            (
                                (rf * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * rf
                                + 1.8463183175100546818e-5
                            )
                            * rf
                            + 7.868691311456132591e-4
                        )
                        * rf
                        + 0.0148753612908506148525
                    )
                    * rf
                    + 0.13692988092273580531
                )
                * rf
                + 0.59983220655588793769
            )
            * rf
            + 1.0
        )
        val[qt < 0] = -val[qt < 0]
        out[tail] = val
    out[np.isnan(p) | (p < 0) | (p > 1)] = np.nan
    out[p == 0] = -np.inf
    out[p == 1] = np.inf
    return out


def sd(x: np.ndarray) -> float:
    """R's ``sd(x)``: C ``cov`` with extended-precision (x87 long double) sums, in R's order.

    The mean is R's two-pass mean (:func:`stacklm.rstats.sums.r_mean`: ``sum / n`` corrected by
    the mean of the residuals, both sums accumulated in long double); the sum of squared deviations
    likewise.
    """
    n = x.size
    ld = np.longdouble
    dev = x - r_mean(x)
    ss = np.cumsum((dev * dev).astype(ld))[-1]
    return math.sqrt(float(ss / ld(n - 1)))


def quantile7(x_sorted: np.ndarray, prob: float) -> float:
    """R's ``quantile(x, prob, type = 7)`` on already sorted data."""
    n = x_sorted.size
    index = 1 + (n - 1) * prob
    lo = math.floor(index)
    hi = math.ceil(index)
    qs = x_sorted[lo - 1]
    if index > lo and x_sorted[hi - 1] != qs:
        h = index - lo
        qs = (1 - h) * qs + h * x_sorted[hi - 1]
    return float(qs)


def bw_nrd0(x: np.ndarray) -> float:
    """R's ``bw.nrd0(x)``: ``0.9 * min(sd, IQR / 1.34) * n^-0.2``.

    ``sd`` is R's extended-precision :func:`sd`; the IQR comes from type-7 quantiles, of which
    only the four order statistics involved are selected (``np.partition``: the same values as
    a full sort, in linear time).  Falls back as R to ``sd``, ``|x[1]|`` or 1 when the
    minimum is 0.
    """
    x = np.asarray(x, dtype=np.float64)
    hi = sd(x)
    n = x.size
    kth = {f(1 + (n - 1) * q) - 1 for q in (0.25, 0.75) for f in (math.floor, math.ceil)}
    xs = np.partition(x, sorted(kth))
    lo = min(hi, (quantile7(xs, 0.75) - quantile7(xs, 0.25)) / 1.34)
    if not lo:
        lo = hi or abs(float(x[0])) or 1.0
    return 0.9 * lo * n ** (-0.2)
