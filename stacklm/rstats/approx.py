"""R's ``approx`` / ``approxfun`` (linear interpolation): one implementation of R's C ``approx1``
formula for every port that interpolates (quantile normalization, density, the robust prior's
trend, voom's mean-variance trend).

Ported rather than ``numpy.interp``: numpy evaluates ``slope * (v - x[i]) + y[i]``, R evaluates
``y[i] + (y[j] - y[i]) * ((v - x[i]) / (x[j] - x[i]))``; the two round differently in the last bit,
and those bits reach the q-values and normalized values that are compared with R.
"""

from __future__ import annotations

import numpy as np


def approx1(
    x: np.ndarray, y: np.ndarray, v: np.ndarray, i: np.ndarray, rule: int = 1
) -> np.ndarray:
    """R's C ``approx1`` at ``v`` given each value's knot interval ``i`` (``x[i] <= v <= x[i+1]``
    for values inside the knots): exact knots give their ``y``; outside the knots ``rule = 1`` gives
    NaN, ``rule = 2`` the end values; NaN stays NaN."""
    j = i + 1
    xi, xj, yi, yj = x[i], x[j], y[i], y[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = yi + (yj - yi) * ((v - xi) / (xj - xi))
    out = np.where(v == xj, yj, out)
    out = np.where(v == xi, yi, out)
    if rule == 2:
        out = np.where(v < x[0], y[0], out)
        out = np.where(v > x[-1], y[-1], out)
    else:
        out = np.where((v < x[0]) | (v > x[-1]), np.nan, out)
    return np.where(np.isnan(v), v, out)


def approx(x: np.ndarray, y: np.ndarray, xout: np.ndarray, rule: int = 1) -> np.ndarray:
    """R's ``approx(x, y, xout, rule = rule)$y`` for sorted, distinct ``x`` (at least two knots)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xout = np.asarray(xout, dtype=np.float64)
    i = np.clip(np.searchsorted(x, xout, side="right") - 1, 0, x.size - 2)
    return approx1(x, y, xout, i, rule=rule)


def mean_ties(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``regularize.values(x, y, ties = mean)``: sorted distinct ``x`` and, for each, R's
    ``mean`` of its ``y`` values (in the order of a stable sort of ``x``: long double sum divided by
    the count, plus one correction pass)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size > 1 and np.any(x[1:] < x[:-1]):
        order = np.argsort(x, kind="stable")  # R's order()
        x, y = x[order], y[order]
    new = np.ones(x.size, dtype=bool)
    new[1:] = x[1:] != x[:-1]
    if new.all():
        return x.copy(), y.copy()
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, x.size))
    yl = y.astype(np.longdouble)
    s = np.add.reduceat(yl, starts) / counts
    s = s + np.add.reduceat(yl - np.repeat(s, counts), starts) / counts
    return x[starts], s.astype(np.float64)
