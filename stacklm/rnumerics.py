"""Ports of the R numerical routines behind sva's ``edge.lfdr`` and qvalue's ``pi0est``/``lfdr``.

One implementation of each routine, shared by :mod:`stacklm.sva` and
:mod:`stacklm.multiple_testing`.  Every port reproduces R 4.2.2 (the version of the committed
references in tests/data/qvalue and ref/bladder_sva) operation by operation, so that results
are R's to the last bit, not merely close:

- :func:`seq`        -> ``seq.int(from, to, length.out = n)`` (base, seq.c)
- :func:`dnorm`      -> ``dnorm(x, 0, sigma)`` (nmath/dnorm.c, with its split for |x| >= 5)
- :func:`qnorm`      -> ``qnorm(p)`` (nmath/qnorm.c: Wichura's AS 241)
- :func:`sd`         -> ``sd(x)`` (C ``cov``: two-pass mean and sums in long double)
- :func:`quantile7`  -> ``quantile(x, prob, type = 7)``
- :func:`bw_nrd0`    -> ``bw.nrd0(x)``
- :func:`approx`     -> ``approx(x, y, xout)$y`` (linear interpolation)
- :func:`fft`        -> ``fft(z, inverse)`` for n = 4^k (Singleton's mixed-radix FFT,
  src/appl/fft.c)
- :func:`bin_dist`   -> the C ``BinDist`` of ``density()`` (linear binning, point by point)
- :func:`density`    -> ``density(x, adjust = adjust)`` (gaussian kernel, ``bw.nrd0``,
  ``n = 512``, ``cut = 3``)
- :func:`smooth_spline` -> ``smooth.spline(x, y)`` (GCV) and ``smooth.spline(x, y, df = df)``
  (stats smspline.R with sbart.c, sslvrg.f, sgram.f, stxwx.f, sinerp.f, bsplvd.f, bvalue.f
  and LINPACK ``dpbfa``/``dpbsl``), unit weights, distinct sorted x;
  :meth:`SmoothSpline.predict` -> ``predict(fit, x)$y`` inside the fitted range.

What bit-exactness takes, beyond R's formulas: ``density()`` needs R's extended-precision
``sd`` in the bandwidth, R's binning order, R's own FFT and the complex product written out in
real arithmetic (numpy's complex multiply may use fused multiply-adds); with numpy's FFT the
density differs by ~1e-17 absolute, which moves the GCV ``spar`` of a spline fitted to it by
~1e-9 and qvalue's lfdr by up to ~1e-12 relative.  ``smooth.spline`` keeps the Fortran order
of every sum (sequential ``cumsum``, never pairwise ``sum``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SmoothSpline",
    "SplineFailure",
    "approx",
    "bin_dist",
    "bw_nrd0",
    "density",
    "dnorm",
    "fft",
    "qnorm",
    "quantile7",
    "sd",
    "seq",
    "smooth_spline",
]

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
    """R's ``qnorm(p)`` (Wichura's AS 241 as in R 4.2's nmath/qnorm.c), vectorised."""
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

    The mean is R's two-pass mean (``sum / n`` corrected by the mean of the residuals), both
    sums accumulated in long double; the sum of squared deviations likewise.
    """
    n = x.size
    ld = np.longdouble
    total = np.cumsum(x.astype(ld))[-1]
    tmp = total / ld(n)
    if np.isfinite(tmp):
        tmp = tmp + np.cumsum(x.astype(ld) - tmp)[-1] / ld(n)
    mean = float(tmp)
    dev = x - mean
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


def approx(x: np.ndarray, y: np.ndarray, xout: np.ndarray) -> np.ndarray:
    """R's ``approx(x, y, xout)$y`` (linear, x sorted and distinct, xout inside the range)."""
    i = np.searchsorted(x, xout, side="right") - 1
    i = np.clip(i, 0, x.size - 2)
    j = i + 1
    out = y[i] + (y[j] - y[i]) * ((xout - x[i]) / (x[j] - x[i]))
    out = np.where(xout == x[j], y[j], out)
    out = np.where(xout == x[i], y[i], out)
    out[(xout < x[0]) | (xout > x[-1])] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# density() with R's FFT
# --------------------------------------------------------------------------------------------


def _digit_reversal4(n: int) -> np.ndarray:
    """Base-4 digit reversal of 0..n-1 (the output order of Singleton's radix-4 passes)."""
    k = round(math.log(n, 4))
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for _ in range(k):
        rev = rev * 4 + idx % 4
        idx //= 4
    return rev


def fft(re: np.ndarray, im: np.ndarray, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """R's ``fft(z, inverse)`` (Singleton's mixed-radix FFT, src/appl/fft.c) for n = 4^k.

    For n = 4^k R factors n into radix-4 passes only; this is the radix-4 branch of ``fftmx``
    operation by operation (twiddle factors by the same recurrence, recomputed with sin/cos
    every 32 steps), with R's interleaved storage (index increment 2), followed by the final
    permutation (base-4 digit reversal).  Unnormalised in both directions, as R.  The
    ``density()`` FFT always has n = 1024; the work is fixed (5 passes of 256 butterflies).
    """
    n = re.size
    if n < 4 or 4 ** round(math.log(n, 4)) != n:
        raise ValueError("fft: n must be a power of 4")
    a = [0.0] * (2 * n + 2)
    b = [0.0] * (2 * n + 2)
    a[1 : 2 * n : 2] = re.tolist()
    b[1 : 2 * n : 2] = im.tolist()
    isn = 2 if inverse else -2
    inc = 2
    nt = inc * n
    ks = inc * n
    rad = math.pi / 4 if isn > 0 else -math.pi / 4
    kspan = ks
    jc = ks // n
    klim = 32 * jc
    c1 = s1 = c2 = s2 = c3 = s3 = 0.0
    while True:  # L_start: one radix-4 pass
        dr = (8.0 * jc) / kspan
        cd = math.sin(0.5 * dr * rad)
        cd = 2.0 * cd * cd
        sd = math.sin(dr * rad)
        kk = 1
        kspan //= 4
        state = 120
        mm = 0
        while True:
            if state == 120:
                c1, s1 = 1.0, 0.0
                mm = min(kspan, klim)
            elif state == 130:
                c2 = c1 - (cd * c1 + sd * s1)
                s1 = (sd * c1 - cd * s1) + s1
                c1 = c2
            if state in (130, 140):
                c2 = c1 * c1 - s1 * s1
                s2 = c1 * s1 * 2.0
                c3 = c2 * c1 - s2 * s1
                s3 = c2 * s1 + s2 * c1
            while True:  # L150: the butterflies sharing these twiddle factors
                k1 = kk + kspan
                k2 = k1 + kspan
                k3 = k2 + kspan
                akp = a[kk] + a[k2]
                akm = a[kk] - a[k2]
                ajp = a[k1] + a[k3]
                ajm = a[k1] - a[k3]
                a[kk] = akp + ajp
                ajp = akp - ajp
                bkp = b[kk] + b[k2]
                bkm = b[kk] - b[k2]
                bjp = b[k1] + b[k3]
                bjm = b[k1] - b[k3]
                b[kk] = bkp + bjp
                bjp = bkp - bjp
                if isn < 0:
                    akp = akm + bjm
                    akm = akm - bjm
                    bkp = bkm - ajm
                    bkm = bkm + ajm
                else:
                    akp = akm - bjm
                    akm = akm + bjm
                    bkp = bkm + ajm
                    bkm = bkm - ajm
                if s1 == 0.0:
                    a[k1], b[k1] = akp, bkp
                    a[k2], b[k2] = ajp, bjp
                    a[k3], b[k3] = akm, bkm
                else:
                    a[k1] = akp * c1 - bkp * s1
                    b[k1] = akp * s1 + bkp * c1
                    a[k2] = ajp * c2 - bjp * s2
                    b[k2] = ajp * s2 + bjp * c2
                    a[k3] = akm * c3 - bkm * s3
                    b[k3] = akm * s3 + bkm * c3
                kk = k3 + kspan
                if kk > nt:
                    break
            kk = kk - nt + jc  # L170
            if kk <= mm:
                state = 130
            elif kk < kspan:
                s1 = ((kk - 1) // jc) * dr * rad
                c1 = math.cos(s1)
                s1 = math.sin(s1)
                mm = min(kspan, mm + klim)
                state = 140
            else:
                kk = kk - kspan + inc
                if kk <= jc:
                    state = 120
                else:
                    break
        if kspan == jc:
            break
    order = _digit_reversal4(n)
    return np.array(a[1 : 2 * n : 2])[order], np.array(b[1 : 2 * n : 2])[order]


def bin_dist(x: np.ndarray, weight: float, lo: float, hi: float, n: int) -> np.ndarray:
    """R's C ``BinDist(x, w, lo, hi, n)`` with equal weights: linear binning onto 2n cells.

    R adds each point's two weights, ``w (1 - fx)`` to its cell and ``w fx`` to the next, before
    the next point; one ``bincount`` over the interleaved (cell, weight) pairs accumulates in
    the same order.  As in R, a point in the cell left of ``lo`` (index -1) gives only its
    right-hand weight to cell 0, a point at index n - 1 only its left-hand weight to cell
    n - 1; other points outside [lo, hi] and non-finite points are dropped.
    """
    x = np.asarray(x, dtype=np.float64)
    xdelta = (hi - lo) / (n - 1)
    xpos = (x - lo) / xdelta
    ix_f = np.floor(xpos)
    with np.errstate(invalid="ignore"):  # inf - inf at non-finite x, dropped below
        fx = xpos - ix_f
    cells = np.empty(2 * x.size, dtype=np.int64)
    wts = np.empty(2 * x.size)
    wts[0::2] = weight * (1 - fx)
    wts[1::2] = weight * fx
    inside = (ix_f >= 0) & (ix_f <= n - 2)
    if np.all(inside):
        ix = ix_f.astype(np.int64)
        cells[0::2] = ix
        cells[1::2] = ix + 1
        return np.bincount(cells, weights=wts, minlength=2 * n)
    kept = np.isfinite(xpos) & (ix_f >= -1) & (ix_f <= n - 1)
    ix = np.where(kept, ix_f, -2).astype(np.int64)
    cells[0::2] = ix
    cells[1::2] = ix + 1
    keep = np.repeat(kept, 2) & (cells >= 0) & (cells <= n - 1)
    return np.bincount(cells[keep], weights=wts[keep], minlength=2 * n)


def density(x: np.ndarray, adjust: float = 1.0, n: int = 512, cut: float = 3.0):
    """R's ``density(x, adjust = adjust)``: gaussian kernel, ``bw.nrd0``, 512 points.

    Returns the grid ``x`` and the density values ``y`` of R's result.  Bit for bit R's:
    ``x`` is binned in the given order (:func:`bin_dist`), the bandwidth uses R's
    extended-precision ``sd`` (:func:`bw_nrd0`), the convolution uses R's own FFT
    (:func:`fft`) and R's complex product (written out in real arithmetic: numpy's complex
    multiply may use fused multiply-adds).  ``x`` must be finite and non-empty; ``n`` other
    than 512 is supported only where ``2 n`` is a power of 4 (the FFT port's case; R rounds
    ``n > 512`` up to a power of 2).
    """
    x = np.asarray(x, dtype=np.float64)
    bw = adjust * bw_nrd0(x)
    start = float(x.min()) - cut * bw
    stop = float(x.max()) + cut * bw
    lo = start - 4 * bw
    up = stop + 4 * bw
    y = bin_dist(x, 1.0 / x.size, lo, up, n)
    kords = seq(0.0, 2 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    kords = dnorm(kords, bw)
    zeros = np.zeros(2 * n)
    yr, yi = fft(y, zeros, inverse=False)
    kr, ki = fft(kords, zeros, inverse=False)
    ki = -ki  # Conj()
    pr = yr * kr - yi * ki
    pi = yr * ki + yi * kr
    conv, _ = fft(pr, pi, inverse=True)
    dens = np.maximum(0.0, conv[:n] / y.size)
    xords = seq(lo, up, n)
    grid = seq(start, stop, n)
    return grid, approx(xords, dens, grid)


# --------------------------------------------------------------------------------------------
# smooth.spline (R stats: smspline.R, sbart.c, sslvrg.f, sgram.f, stxwx.f, sinerp.f,
# bsplvd.f, bvalue.f, LINPACK dpbfa/dpbsl). Knot vectors are used with 1-based indexing:
# ``t1[0]`` is a dummy so that ``t1[i]`` is Fortran's ``t(i)``.
# --------------------------------------------------------------------------------------------


def _nknots_smspl(n: int) -> int:
    """R's ``.nknots.smspl(n)``."""
    if n < 50:
        return n
    a1, a2, a3, a4 = math.log2(50), math.log2(100), math.log2(140), math.log2(200)
    if n < 200:
        val = 2 ** (a1 + (a2 - a1) * (n - 50) / 150)
    elif n < 800:
        val = 2 ** (a2 + (a3 - a2) * (n - 200) / 600)
    elif n < 3200:
        val = 2 ** (a3 + (a4 - a3) * (n - 800) / 2400)
    else:
        val = 200 + (n - 3200) ** 0.2
    return int(math.trunc(val))


class _BsplvbState:
    """The Fortran SAVEd variables of ``bsplvb`` (j, deltal, deltar), one per point."""

    def __init__(self, n_points: int, jmax: int = 20):
        self.j = 1
        self.deltal = np.zeros((n_points, jmax + 1))
        self.deltar = np.zeros((n_points, jmax + 1))


def _bsplvb(t1, jhigh, index, x, left, biatx, state: _BsplvbState) -> None:
    """de Boor's ``bsplvb``, vectorised over points (biatx is (points, >= jhigh + 1))."""
    if index == 1:
        state.j = 1
        biatx[:, 1] = 1.0
        if state.j >= jhigh:
            return
    while True:
        j = state.j
        jp1 = j + 1
        state.deltar[:, j] = t1[left + j] - x
        state.deltal[:, j] = x - t1[left + 1 - j]
        saved = np.zeros(x.shape)
        for i in range(1, j + 1):
            term = biatx[:, i] / (state.deltar[:, i] + state.deltal[:, jp1 - i])
            biatx[:, i] = saved + state.deltar[:, i] * term
            saved = state.deltal[:, jp1 - i] * term
        biatx[:, jp1] = saved
        state.j = jp1
        if state.j >= jhigh:
            return


def _bsplvd(t1, x, left, nderiv: int, k: int = 4) -> np.ndarray:
    """de Boor's ``bsplvd``: values and derivatives of the k B-splines non-zero at x.

    Returns an array (points, k + 1, nderiv + 1) indexed 1-based like ``dbiatx(i, m)``.
    """
    x = np.asarray(x, dtype=np.float64)
    left = np.asarray(left, dtype=np.int64)
    npts = x.size
    mhigh = max(min(nderiv, k), 1)
    kp1 = k + 1
    dbiatx = np.zeros((npts, k + 1, mhigh + 1))
    col1 = np.zeros((npts, k + 2))
    state = _BsplvbState(npts)
    _bsplvb(t1, kp1 - mhigh, 1, x, left, col1, state)
    if mhigh > 1:
        ideriv = mhigh
        for _m in range(2, mhigh + 1):
            jp1mid = 1
            for j in range(ideriv, k + 1):
                dbiatx[:, j, ideriv] = col1[:, jp1mid]
                jp1mid += 1
            ideriv -= 1
            _bsplvb(t1, kp1 - ideriv, 2, x, left, col1, state)
    dbiatx[:, 1:, 1] = col1[:, 1 : k + 1]
    if mhigh == 1:
        return dbiatx
    a = np.zeros((npts, k + 1, k + 1))
    for i in range(1, k + 1):
        a[:, i, i] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in range(2, mhigh + 1):
            kp1mm = kp1 - m
            fkp1mm = float(kp1mm)
            il = left.copy()
            i = k
            for _ in range(kp1mm):
                factor = fkp1mm / (t1[il + kp1mm] - t1[il])
                for j in range(1, i + 1):
                    a[:, i, j] = (a[:, i, j] - a[:, i - 1, j]) * factor
                il = il - 1
                i -= 1
            new = np.zeros((npts, k + 1))
            for i in range(1, k + 1):
                s = np.zeros(npts)
                for j in range(max(i, m), k + 1):
                    s = a[:, j, i] * dbiatx[:, j, m] + s
                new[:, i] = s
            dbiatx[:, 1:, m] = new[:, 1:]
    return dbiatx


def _interv(t1, n_knots_used: int, x) -> tuple[np.ndarray, np.ndarray]:
    """R's ``interv(t, n, x, 0, 0, ...)``: max i <= n with t(i) <= x, and mflag."""
    tk = t1[1 : n_knots_used + 1]
    i = np.searchsorted(tk, x, side="right")
    mflag = np.where(i == 0, -1, np.where(x >= tk[-1], 1, 0))
    return i, mflag


def _sgram(t1, nb: int):
    """``sgram``: banded Gram matrix of B'' (note R's 0.3330 instead of 1/3)."""
    sg = np.zeros((4, nb + 1))  # sg[d, i] = sg{d}(i), 1-based i
    pts = t1[1 : nb + 1]
    ileft, _ = _interv(t1, nb + 1, pts)
    vl = _bsplvd(t1, pts, ileft, 3)[:, :, 3]
    vr = _bsplvd(t1, t1[2 : nb + 2], ileft, 3)[:, :, 3]
    for idx in range(nb):
        i = idx + 1
        lft = int(ileft[idx])
        yw1 = vl[idx]
        yw2 = vr[idx] - yw1
        wpt = t1[i + 1] - t1[i]
        if lft >= 4:
            nterm, off = 4, lft - 4
        elif lft == 3:
            nterm, off = 3, lft - 3
        elif lft == 2:
            nterm, off = 2, lft - 2
        else:
            nterm, off = 1, lft - 1
        for ii in range(1, nterm + 1):
            for d in range(4):
                jj = ii + d
                if jj > nterm:
                    break
                sg[d, off + ii] = sg[d, off + ii] + wpt * (
                    yw1[ii] * yw1[jj]
                    + (yw2[ii] * yw1[jj] + yw2[jj] * yw1[ii]) * 0.5
                    + yw2[ii] * yw2[jj] * 0.3330
                )
    return sg[:, 1:]


def _stxwx(x, z, w, t1, nk: int):
    """``stxwx``: X'W^2 z and the 4 bands of X'W^2 X for the cubic B-spline basis."""
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 0.1e-9
    at_right = mflag == 1
    if np.any(at_right & ~(x <= t1[np.minimum(ileft, nk + 1)] + eps)):
        raise RuntimeError("smooth.spline: data point beyond the last knot")
    ileft = np.where(at_right, ileft - 1, ileft)
    v = _bsplvd(t1, x, ileft, 1)[:, :, 1]
    w2 = w**2
    # per point, the Fortran terms in their order of accumulation
    y_terms = (w2 * z)[:, None] * v[:, 1:5]  # (w^2 z) v_c
    h_terms = [w2[:, None] * v[:, 1:5] ** 2] + [
        (w2[:, None] * v[:, 1 : 5 - d]) * v[:, 1 + d : 5] for d in range(1, 4)
    ]
    y = [0.0] * (nk + 1)
    hs = [[0.0] * (nk + 1) for _ in range(4)]
    y_terms = y_terms.tolist()
    h_terms = [h.tolist() for h in h_terms]
    for i, lft in enumerate(ileft.tolist()):
        for c in range(4):
            j = lft - 3 + c
            y[j] = y[j] + y_terms[i][c]
            for d in range(4 - c):
                hs[d][j] = hs[d][j] + h_terms[d][i][c]
    return np.array(y[1:]), np.array(hs)[:, 1:]


def _dpbfa(abd: np.ndarray) -> int:
    """LINPACK ``dpbfa`` for bandwidth m = 3, in place on ``abd`` (4 x nk, 0-based rows)."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()  # a[col][row]
    for j in range(1, nk + 1):
        s = 0.0
        ik = m + 1
        jk = max(j - m, 1)
        mu = max(m + 2 - j, 1)
        for k in range(mu, m + 1):
            dot = 0.0
            col_jk = a[jk - 1]
            col_j = a[j - 1]
            for ll in range(k - mu):
                dot = dot + col_jk[ik - 1 + ll] * col_j[mu - 1 + ll]
            t = (col_j[k - 1] - dot) / col_jk[m]
            col_j[k - 1] = t
            s = s + t * t
            ik -= 1
            jk += 1
        s = a[j - 1][m] - s
        if s <= 0.0:
            abd[:] = np.array(a).T
            return j
        a[j - 1][m] = math.sqrt(s)
    abd[:] = np.array(a).T
    return 0


def _dpbsl(abd: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LINPACK ``dpbsl`` (m = 3): solve R'R x = b with the factor from :func:`_dpbfa`."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()
    x = [float(v) for v in b]
    for k in range(1, nk + 1):
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        t = 0.0
        for ll in range(lm):
            t = t + a[k - 1][la - 1 + ll] * x[lb - 1 + ll]
        x[k - 1] = (x[k - 1] - t) / a[k - 1][m]
    for kb in range(1, nk + 1):
        k = nk + 1 - kb
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        x[k - 1] = x[k - 1] / a[k - 1][m]
        t = -x[k - 1]
        for ll in range(lm):
            x[lb - 1 + ll] = x[lb - 1 + ll] + t * a[k - 1][la - 1 + ll]
    return np.array(x)


def _sinerp(abd: np.ndarray) -> np.ndarray:
    """``sinerp`` pass 1: the 4 bands of (R'R)^{-1} (p1ip, 4 x nk, 0-based rows)."""
    nk = abd.shape[1]
    a = abd.T.tolist()
    p1 = [[0.0] * 4 for _ in range(nk)]
    wjm3 = [0.0, 0.0, 0.0]
    wjm2 = [0.0, 0.0]
    wjm1 = [0.0]
    c1 = c2 = c3 = 0.0
    for i in range(1, nk + 1):
        j = nk - i + 1
        c0 = 1.0 / a[j - 1][3]
        if j <= nk - 3:
            c1 = a[j + 2][0] * c0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 2:
            c1 = 0.0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 1:
            c1 = 0.0
            c2 = 0.0
            c3 = a[j][2] * c0
        else:
            c1 = c2 = c3 = 0.0
        col = p1[j - 1]
        col[0] = 0.0 - (c1 * wjm3[0] + c2 * wjm3[1] + c3 * wjm3[2])
        col[1] = 0.0 - (c1 * wjm3[1] + c2 * wjm2[0] + c3 * wjm2[1])
        col[2] = 0.0 - (c1 * wjm3[2] + c2 * wjm2[1] + c3 * wjm1[0])
        col[3] = (
            c0 * c0
            + c1 * c1 * wjm3[0]
            + 2.0 * c1 * c2 * wjm3[1]
            + 2.0 * c1 * c3 * wjm3[2]
            + c2 * c2 * wjm2[0]
            + 2.0 * c2 * c3 * wjm2[1]
            + c3 * c3 * wjm1[0]
        )
        wjm3[0] = wjm2[0]
        wjm3[1] = wjm2[1]
        wjm3[2] = col[1]
        wjm2[0] = wjm1[0]
        wjm2[1] = col[2]
        wjm1[0] = col[3]
    return np.array(p1).T


def _bvalue(t1, bcoef: np.ndarray, n: int, x: np.ndarray) -> np.ndarray:
    """``bvalue(t, bcoef, n, 4, x, 0)`` vectorised, for x inside [t(4), t(n+1)]."""
    k = 4
    i, _ = _interv(t1, n + k, x)
    i = np.where((x == t1[n + 1]) & (t1[n + 1] == t1[n + k]), n, i)
    if np.any(i < k) or np.any(i > n):
        raise RuntimeError("smooth.spline prediction outside the knot range")
    dm = [None] + [x - t1[i + 1 - j] for j in range(1, k)]
    dp = [None] + [t1[i + j] - x for j in range(1, k)]
    b1 = np.concatenate([[np.nan], bcoef])
    aj = [None] + [b1[i - k + jc] for jc in range(1, k + 1)]
    for j in range(1, k):
        kmj = k - j
        ilo = kmj
        for jj in range(1, kmj + 1):
            aj[jj] = (aj[jj + 1] * dm[ilo] + aj[jj] * dp[jj]) / (dm[ilo] + dp[jj])
            ilo -= 1
    return aj[1]


class SplineFailure(RuntimeError):
    """smooth.spline could not be fitted (R would stop or warn and return a constant)."""


@dataclass(frozen=True)
class SmoothSpline:
    """A fitted ``smooth.spline``: R's ``fit$fit`` (knots, coefficients, x scaling) plus
    ``fitted`` (``fit$y``), ``df``, ``spar``, ``lam`` (``lambda``), ``crit`` and the number of
    iterations of the spar search (``fit$iparms["iter"]``)."""

    knot1: np.ndarray  # knot vector with a dummy at index 0 (Fortran 1-based indexing)
    nk: int
    coef: np.ndarray
    xmin: float
    xrange: float
    fitted: np.ndarray  # fit$y at the (unique, sorted) x
    df: float  # R's fit$df = sum(lev) (long double sum; the criterion uses Fortran's sum)
    spar: float
    lam: float
    crit: float
    iterations: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``predict(fit, x)$y`` for x inside the fitted range (no extrapolation needed here)."""
        xs = (np.asarray(x, dtype=np.float64) - self.xmin) / self.xrange
        if np.any(xs < 0) or np.any(xs > 1):
            raise SplineFailure("prediction outside the fitted range")
        return _bvalue(self.knot1, self.coef, self.nk, xs)


def _sslvrg(x, y, ssw, t1, nk, lam, xwy, hs, sg, df_target):
    """``sslvrg`` for unit weights: coefficients, fitted values, df and the criterion.

    ``df_target`` None: GCV (icrit 1, df.offset 0, penalty 1); else ``3 + (df_target - df)^2``
    (icrit 3).
    """
    abd = np.zeros((4, nk))
    abd[3] = hs[0] + lam * sg[0]
    abd[2, 1:] = hs[1, :-1] + lam * sg[1, :-1]
    abd[1, 2:] = hs[2, :-2] + lam * sg[2, :-2]
    abd[0, 3:] = hs[3, :-3] + lam * sg[3, :-3]
    if _dpbfa(abd) != 0:
        return None
    coef = _dpbsl(abd, xwy)
    sz = _bvalue(t1, coef, nk, x)
    p1ip = _sinerp(abd)
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 1e-11
    xv = np.where(mflag == 1, t1[nk + 1] - eps, np.where(mflag == -1, t1[4] + eps, x))
    ileft = np.where(mflag == 1, nk, np.where(mflag == -1, 4, ileft))
    v = _bsplvd(t1, xv, ileft, 1)[:, :, 1]
    b0, b1, b2, b3 = v[:, 1], v[:, 2], v[:, 3], v[:, 4]
    j = ileft - 4  # 0-based column of p1ip for Fortran's j = ileft - 3
    lev = (
        p1ip[3, j] * b0**2
        + 2.0 * p1ip[2, j] * b0 * b1
        + 2.0 * p1ip[1, j] * b0 * b2
        + 2.0 * p1ip[0, j] * b0 * b3
        + p1ip[3, j + 1] * b1**2
        + 2.0 * p1ip[2, j + 1] * b1 * b2
        + 2.0 * p1ip[1, j + 1] * b1 * b3
        + p1ip[3, j + 2] * b2**2
        + 2.0 * p1ip[2, j + 2] * b2 * b3
        + p1ip[3, j + 3] * b3**2
    )  # times w(i)^2 = 1
    df = float(np.cumsum(lev)[-1])  # Fortran's sequential sum
    if df_target is None:
        rss = float(ssw + np.cumsum((y - sz) ** 2)[-1])
        sumw = float(x.size)
        crit = (rss / sumw) / ((1.0 - (0.0 + 1.0 * df) / sumw) ** 2)
    else:
        crit = 3.0 + (df_target - df) ** 2
    return coef, sz, lev, crit


def smooth_spline(x: np.ndarray, y: np.ndarray, df: float | None = None) -> SmoothSpline:
    """R's ``smooth.spline(x, y)`` (GCV) or ``smooth.spline(x, y, df = df)``, unit weights.

    As R: cubic B-splines on x scaled to [0, 1] with knots at ``.nknots.smspl(n)`` of the x,
    penalty the integrated squared second derivative, ``lambda = r * 256^(3 spar - 1)`` with
    ``r = tr(X'WX) / tr(Omega)``, and ``spar`` minimising the criterion -- GCV (``df`` None) or
    ``3 + (df - tr(S_lambda))^2`` -- by the Brent/golden-section search of ``sbart.c`` on
    [-1.5, 1.5] (tol 1e-4, eps 2e-8).

    ``x`` must be strictly increasing and its values distinct at R's tolerance
    ``1e-6 * IQR(x)`` (true for the lambda grid of pi0est and for a density grid).  As in R, the
    coefficients and fitted values are those of the LAST criterion evaluation of the Brent search
    (``sbart`` does not refit at the returned ``spar``).  ``df`` outside (1, n] is ignored with
    a warning, as in R.
    """
    n = x.size
    if n < 4:
        raise SplineFailure("need at least four unique x values")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SplineFailure("missing or infinite values in the smoothing spline input")
    if np.any(np.diff(x) <= 0):
        raise SplineFailure("x must be strictly increasing")
    if df is not None and not (1 < df <= n):
        warnings.warn(
            f"smooth.spline: not using invalid df; must have 1 < df <= n := #{{unique x}} = {n}",
            stacklevel=3,
        )
        df = None
    r_ux = x[-1] - x[0]
    xbar = (x - x[0]) / r_ux
    nknots = _nknots_smspl(n)
    knot_idx = np.trunc(seq(1.0, float(n), nknots)).astype(np.int64) - 1
    knot = np.concatenate([np.repeat(xbar[0], 3), xbar[knot_idx], np.repeat(xbar[-1], 3)])
    nk = nknots + 2
    t1 = np.concatenate([[np.nan], knot])
    ones = np.ones(n)  # sqrt of unit weights
    ssw = 0.0  # sum(w y^2 - w ybar^2) with unique x and unit weights
    sg = _sgram(t1, nk)
    xwy, hs = _stxwx(xbar, y, ones, t1, nk)
    t1s = 0.0
    t2s = 0.0
    for i in range(2, nk - 3):
        t1s += hs[0, i]
        t2s += sg[0, i]
    ratio = t1s / t2s

    last: dict = {}

    def evaluate(spar: float) -> float:
        lam = ratio * 16.0 ** (spar * 6.0 - 2.0)
        res = _sslvrg(xbar, y, ssw, t1, nk, lam, xwy, hs, sg, df)
        if res is None:
            raise SplineFailure(f"banded Cholesky failed at spar = {spar:.4g}")
        last["coef"], last["sz"], last["lev"], crit = res
        last["lam"] = lam
        return crit

    # Brent / golden-section minimisation exactly as in sbart.c
    c_gold = 0.381966011250105151795413165634
    big = 1e100
    tol, eps_, maxit = 1e-4, 2e-8, 500
    a, b = -1.5, 1.5
    v = a + c_gold * (b - a)
    w_ = v
    xx = v
    d = 0.0
    e = 0.0
    fx = evaluate(xx)
    fv = fw = fx
    it = 0
    while True:
        xm = (a + b) * 0.5
        tol1 = eps_ * abs(xx) + tol / 3.0
        tol2 = tol1 * 2.0
        it += 1
        if abs(xx - xm) <= tol2 - (b - a) * 0.5 or it > maxit:
            break
        golden = True
        if not (abs(e) <= tol1 or fx >= big or fv >= big or fw >= big):
            r = (xx - w_) * (fx - fv)
            q = (xx - v) * (fx - fw)
            p = (xx - v) * q - (xx - w_) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = d
            if not (abs(p) >= abs(0.5 * q * r) or q == 0.0) and not (
                p <= q * (a - xx) or p >= q * (b - xx)
            ):
                d = p / q
                u = xx + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if xm - xx >= 0 else -tol1
                golden = False
        if golden:
            e = (a - xx) if xx >= xm else (b - xx)
            d = c_gold * e
        u = xx + (d if abs(d) >= tol1 else (tol1 if d >= 0 else -tol1))
        fu = evaluate(u)
        if not math.isfinite(fu):
            fu = 2.0 * big
        if fu <= fx:
            if u >= xx:
                a = xx
            else:
                b = xx
            v, fv = w_, fw
            w_, fw = xx, fx
            xx, fx = u, fu
        else:
            if u < xx:
                a = u
            else:
                b = u
            if fu <= fw or w_ == xx:
                v, fv = w_, fw
                w_, fw = u, fu
            elif fu <= fv or v == xx or v == w_:
                v, fv = u, fu
    return SmoothSpline(
        knot1=t1,
        nk=nk,
        coef=last["coef"],
        xmin=float(x[0]),
        xrange=float(r_ux),
        fitted=last["sz"],
        df=float(np.cumsum(last["lev"].astype(np.longdouble))[-1]),  # R: sum(lev)
        spar=xx,
        lam=last["lam"],
        crit=fx,
        iterations=it,
    )
