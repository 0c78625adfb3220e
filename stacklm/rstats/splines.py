"""Natural cubic spline basis, spanning the same space as R's ``splines::ns``.

limma's ``fitFDist`` fits the log-variances on ``ns(covariate, df, intercept=TRUE)`` when
``eBayes(trend=TRUE)``.  Only the column space matters for the fitted values, but the construction
follows ``ns`` literally: cubic B-splines on the boundary knots (range of x) and interior knots at
type-7 quantiles, projected onto the null space of the second derivatives at the boundary knots;
outside the boundary the basis continues linearly, as ``predict.ns`` does.
"""

from __future__ import annotations

import numpy as np


def _bspline_columns(t: np.ndarray, x: np.ndarray, nu: int = 0) -> np.ndarray:
    from scipy.interpolate import BSpline  # here: ~0.2 s to import, for trends only

    nb = len(t) - 4
    out = np.empty((len(x), nb))
    for j in range(nb):
        c = np.zeros(nb)
        c[j] = 1.0
        spl = BSpline(t, c, 3, extrapolate=False)
        if nu:
            spl = spl.derivative(nu)
        vals = spl(x)
        out[:, j] = np.nan_to_num(vals, nan=0.0)
    return out


class NaturalSplineBasis:
    """``ns(x, df=df, intercept=intercept)``; call :meth:`evaluate` for the basis at new points."""

    def __init__(self, x, df: int, intercept: bool = True):
        x = np.asarray(x, dtype=np.float64)
        self.intercept = intercept
        self.boundary = np.array([x.min(), x.max()])
        n_interior = max(df - 1 - int(intercept), 0)
        if n_interior > 0:
            probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
            self.interior = np.quantile(x, probs)
        else:
            self.interior = np.zeros(0)
        self.t = np.sort(np.concatenate([np.repeat(self.boundary, 4), self.interior]))
        const = _bspline_columns(self.t, self.boundary, nu=2)
        if not intercept:
            const = const[:, 1:]
        q, _ = np.linalg.qr(const.T, mode="complete")
        self._projection = q[:, 2:]

    def _raw(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.boundary
        basis = np.zeros((len(x), len(self.t) - 4))
        inside = (x >= lo) & (x <= hi)
        if inside.any():
            basis[inside] = _bspline_columns(self.t, x[inside])
        for pivot, side in ((lo, x < lo), (hi, x > hi)):
            if side.any():
                value = _bspline_columns(self.t, np.array([pivot]))
                slope = _bspline_columns(self.t, np.array([pivot]), nu=1)
                basis[side] = value + (x[side] - pivot)[:, None] * slope
        if not self.intercept:
            basis = basis[:, 1:]
        return basis

    def evaluate(self, x) -> np.ndarray:
        return self._raw(np.asarray(x, dtype=np.float64)) @ self._projection
