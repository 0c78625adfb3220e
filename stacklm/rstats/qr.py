"""R's rank rule for least squares: ``lm.fit``'s QR (LINPACK ``dqrdc2`` with limited column
pivoting, tolerance 1e-7), for one design (:func:`estimable_columns`) or a stack of per-row designs
(:func:`batched_qr`, the observed / weighted design of each feature).

Ported rather than taken from numpy / scipy: LAPACK's pivoted QR (``scipy.linalg.qr(pivoting=True)``)
reorders columns by norm and decides rank by another rule, so it names other columns as aliased
than R does.  dqrdc2 keeps the columns in their order and moves a column to the end when the norm of
its part orthogonal to the columns already accepted falls below ``tol`` times its own norm; here that
test is made by Gram-Schmidt with re-orthogonalisation, column by column.
"""

from __future__ import annotations

import numpy as np

#: tolerance of R's ``lm.fit`` (LINPACK dqrdc2) for declaring a column linearly dependent
QR_TOLERANCE = 1e-7


def batched_qr(A: np.ndarray, n_obs: np.ndarray | None = None, tol: float = QR_TOLERANCE):
    """Thin QR of a stack of n x p matrices (m x n x p) by Gram-Schmidt with re-orthogonalisation,
    column by column as LINPACK's dqrdc2 with limited pivoting decides rank: a column whose part
    orthogonal to the accepted columns has norm below ``tol`` times its own norm (or that would
    exceed ``n_obs`` accepted columns) is dropped, the others keep their order.  Zero columns are
    always dropped.

    Returns Q (m x n x p, zero columns where dropped), R (m x p x p upper triangular over the kept
    columns; a dropped column has a unit diagonal and zeros elsewhere, so R^-1 restricted to the
    kept columns is the inverse of their R) and the kept-column mask (m x p).
    """
    m, n, p = A.shape
    Q = np.zeros((m, n, p))
    R = np.zeros((m, p, p))
    keep = np.zeros((m, p), dtype=bool)
    limit = np.full(m, n) if n_obs is None else np.asarray(n_obs)
    for j in range(p):
        a = A[:, :, j]
        norm0 = np.sqrt(np.einsum("mn,mn->m", a, a))
        v = a
        c = np.zeros((m, j))
        if j:
            Qj = Q[:, :, :j]
            for _ in range(2):
                cj = np.einsum("mnk,mn->mk", Qj, v)
                v = v - np.einsum("mnk,mk->mn", Qj, cj)
                c = c + cj
        nv = np.sqrt(np.einsum("mn,mn->m", v, v))
        ok = (norm0 > 0) & (nv >= tol * norm0) & (keep.sum(axis=1) < limit)
        Q[:, :, j] = np.where(ok[:, None], v / np.where(ok, nv, 1.0)[:, None], 0.0)
        R[:, :j, j] = np.where(ok[:, None], c, 0.0)
        R[:, j, j] = np.where(ok, nv, 1.0)
        keep[:, j] = ok
    return Q, R, keep


def estimable_columns(X: np.ndarray, tol: float = QR_TOLERANCE) -> np.ndarray:
    """Boolean mask of the columns of one design that R's ``lm.fit`` keeps (the others get NA
    coefficients): :func:`batched_qr`'s rule on the single matrix."""
    X = np.asarray(X, dtype=np.float64)
    return batched_qr(X[None], tol=tol)[2][0]
