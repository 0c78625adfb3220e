"""Rank detection as R's ``lm.fit`` (LINPACK ``dqrdc2`` with limited column pivoting): which
design columns are estimable, and which are aliased with which."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: tolerance of R's ``lm.fit`` (LINPACK dqrdc2) for declaring a column linearly dependent
QR_TOLERANCE = 1e-7


# --------------------------------------------------------------------------------------------
# rank detection as R's lm.fit (dqrdc2 with limited column pivoting)
# --------------------------------------------------------------------------------------------
def estimable_columns(X: np.ndarray, tol: float = QR_TOLERANCE) -> np.ndarray:
    """Boolean mask of the columns R's ``lm.fit`` keeps (the others get NA coefficients).

    LINPACK's dqrdc2 moves a column to the end when the norm of its part orthogonal to the
    columns already accepted falls below ``tol`` times its original norm; accepted columns keep
    their order.  Zero columns are always dropped.
    """
    n, p = X.shape
    keep = np.zeros(p, dtype=bool)
    basis = np.zeros((n, 0))
    for j in range(p):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0.0:
            continue
        resid = col - basis @ (basis.T @ col) if basis.shape[1] else col
        # a second projection pass keeps the orthogonalisation accurate (as Householder would be)
        if basis.shape[1]:
            resid = resid - basis @ (basis.T @ resid)
        rnorm = np.linalg.norm(resid)
        if rnorm >= tol * norm and basis.shape[1] < n:
            keep[j] = True
            basis = np.column_stack([basis, resid / rnorm])
    return keep


def aliased_columns(X: np.ndarray, names: Sequence[str]) -> dict[str, list[str]]:
    """For each column that is a linear combination of earlier ones, the columns it is made of."""
    keep = estimable_columns(X)
    out: dict[str, list[str]] = {}
    kept_idx = np.flatnonzero(keep)
    for j in np.flatnonzero(~keep):
        earlier = kept_idx[kept_idx < j]
        if earlier.size == 0:
            out[names[j]] = []
            continue
        coef, *_ = np.linalg.lstsq(X[:, earlier], X[:, j], rcond=None)
        scale = np.abs(coef).max() if coef.size else 0.0
        out[names[j]] = [
            names[k] for k, c in zip(earlier, coef, strict=True) if abs(c) > 1e-8 * scale
        ]
    return out
