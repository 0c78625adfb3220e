"""Row-blocked projections, residual sums of squares and eigenvectors shared by the sva ports."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from stacklm.io.blocks import row_blocks

# number of matrix elements handled per row block (8 MB of float64 per temporary: small enough
# for the element-wise work to stay in cache, large enough for efficient BLAS calls)
_BLOCK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Consecutive row slices holding about ``_BLOCK_ELEMENTS`` matrix elements each."""
    return row_blocks(n_rows, n_cols, _BLOCK_ELEMENTS)


def _as_expression(Y) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"Y must be a 2-d features x samples array, got shape {Y.shape}")
    return Y


def _as_design(X, n_samples: int, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != n_samples:
        raise ValueError(f"{name} must be an n x p design with n = {n_samples} rows, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains non-finite values")
    return X


def _orthonormal_basis(X: np.ndarray, name: str) -> np.ndarray:
    """Thin-QR orthonormal basis of the column space of a full-rank design.

    R's sva uses ``X (X'X)^{-1} X'`` via ``solve()``, which fails on rank-deficient designs;
    we raise in that case too.
    """
    q, r = np.linalg.qr(X)
    d = np.abs(np.diag(r))
    if d.size and d.min() <= 1e-7 * d.max():
        raise ValueError(f"design {name} is rank deficient")
    return q


def _residual_sums_of_squares(Y: np.ndarray, bases: list[np.ndarray]) -> list[np.ndarray]:
    """Per-row residual sum of squares of ``Y`` after projecting out each basis' span.

    Residuals are formed explicitly (``Y - (Y Q) Q'``) block by block, as R forms
    ``dat %*% (I - H)``, to avoid the cancellation of ``||y||^2 - ||Q'y||^2``.
    """
    n_rows, n_cols = Y.shape
    out = [np.empty(n_rows) for _ in bases]
    buffer = None
    for rows in _row_blocks(n_rows, n_cols):
        block = Y[rows]
        if buffer is None:
            buffer = np.empty(block.shape)
        resid = buffer[: block.shape[0]]
        for k, q in enumerate(bases):
            np.matmul(block @ q, q.T, out=resid)
            np.subtract(block, resid, out=resid)
            out[k][rows] = np.einsum("ij,ij->i", resid, resid)
    return out


def _complement_basis(X: np.ndarray, q0: np.ndarray, rank: int, name: str) -> np.ndarray:
    """Orthonormal basis (n x rank) of the part of span(X) orthogonal to span(q0)."""
    M = X - q0 @ (q0.T @ X)
    u, s, _ = np.linalg.svd(M, full_matrices=False)
    scale = max(float(np.linalg.norm(X, 2)), np.finfo(float).tiny)
    if rank > s.size or (rank > 0 and s[rank - 1] <= 1e-7 * scale):
        raise ValueError(f"design {name} is rank deficient")
    return u[:, :rank]


def _projected_sums_of_squares(Y: np.ndarray, bases: list[np.ndarray]) -> list[np.ndarray]:
    """Per-row ||B'y||^2 for each orthonormal basis B, in one thin product per row block."""
    widths = [b.shape[1] for b in bases]
    stacked = np.column_stack(bases)
    edges = np.concatenate([[0], np.cumsum(widths)])
    out = [np.empty(Y.shape[0]) for _ in bases]
    for rows in _row_blocks(Y.shape[0], Y.shape[1]):
        z = Y[rows] @ stacked
        z *= z
        for k in range(len(bases)):
            out[k][rows] = z[:, edges[k] : edges[k + 1]].sum(axis=1)
    return out


def _complete_rows(Y: np.ndarray) -> np.ndarray:
    """Rows without NaN / inf (checked block by block: no G x n boolean temporary)."""
    out = np.empty(Y.shape[0], dtype=bool)
    for rows in _row_blocks(Y.shape[0], Y.shape[1]):
        out[rows] = np.isfinite(Y[rows]).all(axis=1)
    return out


def _top_eigenvectors(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (decreasing) and the first ``k`` eigenvectors of a symmetric matrix."""
    values, vectors = np.linalg.eigh(gram)
    return values[::-1], vectors[:, ::-1][:, :k]


def orient_columns(v: np.ndarray) -> np.ndarray:
    """Fix the arbitrary sign of each column (eigenvectors, SVs, PCA scores): its largest-magnitude
    entry is positive (the first of equal ones; a zero column stays)."""
    if v.size == 0:
        return v
    idx = np.argmax(np.abs(v), axis=0)
    signs = np.sign(v[idx, np.arange(v.shape[1])])
    signs[signs == 0] = 1.0
    return v * signs
