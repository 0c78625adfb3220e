"""statmod's ``logmdigamma``: log(x) - digamma(x), computed without the cancellation of the direct
difference for large x.

Ported (not ``np.log(x) - scipy.special.digamma(x)``) because limma 3.63.2's fitFDist and
fitFDistUnequalDF1 use statmod's own recurrence + asymptotic series; the direct difference loses
up to half the digits for x in the thousands (the prior df d0/2 reaches 5000).
"""

from __future__ import annotations

import math

import numpy as np

#: up to this many distinct values are evaluated with the math module (the C library's log, as R)
_SCALAR_MAX = 64


def _series(z):
    """statmod 1.5.0 for Mod(z) >= 5: the asymptotic expansion in 1/z^2, evaluated as R does
    (arithmetic only: works on floats and arrays alike)."""
    x = 1 / (z * z)
    tail = x * (
        -1 / 12
        + x
        * (
            1 / 120
            + x
            * (
                -1 / 252
                + x
                * (1 / 240 + x * (-1 / 132 + x * (691 / 32760 + x * (-1 / 12 + (3617 * x) / 8160))))
            )
        )
    )
    return 1 / (2 * z) - tail


def _recurrence(v, log):
    """statmod for x < 5: shift the argument to x + 5 (terms added in R's order)."""
    return (
        log(v / (v + 5))
        + _series(v + 5)
        + 1 / v
        + 1 / (v + 1)
        + 1 / (v + 2)
        + 1 / (v + 3)
        + 1 / (v + 4)
    )


def _scalar(v: float) -> float:
    return _recurrence(v, math.log) if v < 5 else _series(v)


def logmdigamma(x):
    """statmod ``logmdigamma(x)`` = log(x) - digamma(x), elementwise (scalars or arrays).

    NaN and x <= 0 give NaN.  For x < 5 statmod's recurrence moves the argument to x + 5:
    ``log(x/(x+5)) + logmdigamma(x+5) + 1/x + 1/(x+1) + ... + 1/(x+4)``, added in that order.
    Evaluated once per distinct value (degrees of freedom take few values).
    """
    arr = np.asarray(x, dtype=np.float64)
    scalar = arr.ndim == 0
    flat = arr.ravel()
    out = np.full(flat.shape, np.nan)
    ok = flat > 0  # False for NaN
    if ok.any():
        values, inverse = np.unique(flat[ok], return_inverse=True)
        if values.size <= _SCALAR_MAX:
            res = np.array([_scalar(float(v)) for v in values])
        else:
            res = np.empty(values.shape)
            small = values < 5
            res[~small] = _series(values[~small])
            res[small] = _recurrence(values[small], np.log)
        out[ok] = res[inverse.ravel()]
    out = out.reshape(arr.shape)
    return float(out) if scalar else out
