"""Cholesky factors and solves of many small symmetric positive definite matrices at once: numpy
operations across the stack, loops over the p columns only (no loop over features).

The factor is computed column by column as the unblocked LAPACK ``dpotf2`` (R's ``chol`` of a
small matrix): pivot ``d_j = G_jj - sum_k L_jk^2``, then ``L_ij = (G_ij - sum_k L_ik L_jk) / sqrt(d_j)``.
Used by lm_fit's and lm_wfit's per-row Gram matrices (:mod:`stacklm.limma.lmsolve`) and by
statmod's ``glmgam.fit`` (:mod:`stacklm.statmod.glmgam`).
"""

from __future__ import annotations

import numpy as np


def batched_cholesky(G: np.ndarray, p: int):
    """Cholesky factors of many p x p matrices at once, looping over the p columns only.

    ``G`` holds the lower triangles, shape (p, p, m) with G[i, j] (i >= j) the m values of entry
    (i, j).  Returns L (same layout) and the pivots (squared diagonal of L, before the square root);
    non-positive pivots are replaced by 1 so the factor stays finite (the caller rejects those rows).
    """
    m = G.shape[2]
    L = np.zeros((p, p, m))
    pivots = np.empty((p, m))
    for j in range(p):
        d = G[j, j] - np.einsum("km,km->m", L[j, :j], L[j, :j]) if j else G[j, j].copy()
        pivots[j] = d
        dj = np.sqrt(np.where(d > 0, d, 1.0))
        L[j, j] = dj
        if j + 1 < p:
            below = G[j + 1 :, j]
            if j:
                below = below - np.einsum("ikm,km->im", L[j + 1 :, :j], L[j, :j])
            L[j + 1 :, j] = below / dj
    return L, pivots


def lower_solve(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve L z = rhs for each of the m lower-triangular factors (forward substitution); rhs and
    the result have shape (p, m) or (p, c, m) (c right-hand sides per system)."""
    p = L.shape[0]
    z = np.empty_like(rhs)
    for j in range(p):
        s = rhs[j] - np.einsum("km,k...m->...m", L[j, :j], z[:j]) if j else rhs[j]
        z[j] = s / L[j, j]
    return z


def lower_t_solve(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve L' x = rhs for each of the m factors (back substitution), shapes as
    :func:`lower_solve`."""
    p = L.shape[0]
    x = np.empty_like(rhs)
    for j in range(p - 1, -1, -1):
        s = rhs[j] - np.einsum("km,k...m->...m", L[j + 1 :, j], x[j + 1 :]) if j + 1 < p else rhs[j]
        x[j] = s / L[j, j]
    return x


def cholesky_solve(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve (L L') x = rhs for each of the m systems; rhs and the result have shape (p, m)."""
    return lower_t_solve(L, lower_solve(L, rhs))


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverses of the m lower-triangular factors, same (p, p, m) layout."""
    p, _, m = L.shape
    M = np.zeros_like(L)
    for i in range(p):
        M[i, i] = 1.0 / L[i, i]
        if i:
            M[i, :i] = -np.einsum("km,kjm->jm", L[i, :i], M[:i, :i]) * M[i, i]
    return M
