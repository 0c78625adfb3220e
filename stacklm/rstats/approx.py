"""R's ``approx``/``approxfun`` (linear interpolation, ``rule = 2``), with R's tie handling."""

from __future__ import annotations

import numpy as np


def _approx_rule2_mean_ties(x, y, xout):
    """R's ``approx(x, y, xout, rule = 2, ties = mean)``."""
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    return np.interp(xout, ux, uy)


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
