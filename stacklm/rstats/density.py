"""R's ``density`` (Gaussian kernel, ``bw.nrd0``, linear binning, FFT convolution, ``approx``)."""

from __future__ import annotations

import numpy as np

from stacklm.rstats.approx import approx
from stacklm.rstats.basic import bw_nrd0, dnorm, seq
from stacklm.rstats.fft import fft


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
