"""sva's ``sva`` (``irwsva.build``): surrogate variables by iteratively reweighted SVD."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stacklm.sva.edge import edge_lfdr
from stacklm.sva.fpvalue import _f_test_pvalue
from stacklm.sva.linalg import (
    _as_design,
    _as_expression,
    _complement_basis,
    _orthonormal_basis,
    _projected_sums_of_squares,
    _residual_sums_of_squares,
    _row_blocks,
    _top_eigenvectors,
    orient_columns,
)
from stacklm.sva.numsv import _complete_subset, _residual_gram, num_sv

# --------------------------------------------------------------------------------------------
# sva (irwsva.build)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SvaResult:
    """Result of :func:`sva` (R's list(sv, pprob.gam, pprob.b, n.sv)).

    sv : (n, K) surrogate variables (unit-norm orthogonal columns; sign fixed so that each
        column's largest-magnitude entry is positive -- R's sign is LAPACK's choice).
    pprob_gam : (G,) posterior probability that a feature is affected by the unmodelled factor;
        NaN for features with missing values.
    pprob_b : (G,) posterior probability that a feature is associated with the variables of
        interest (None when K = 0, as in R); NaN for features with missing values.
    n_sv : K.
    """

    sv: np.ndarray
    pprob_gam: np.ndarray
    pprob_b: np.ndarray | None
    n_sv: int


def _weighted_centered_gram(Y: np.ndarray, weights: np.ndarray, row_means: np.ndarray):
    """Gram matrix Z'Z of irwsva's ``dats``: Z = diag(w) Y with each row centred, i.e.
    ``Z = diag(w) (Y - rowMeans(Y))`` (the row mean of w_g y_g is w_g times that of y_g)."""
    G, n = Y.shape
    gram = np.zeros((n, n))
    buffer = None
    for rows in _row_blocks(G, n):
        if buffer is None:
            buffer = np.empty((rows.stop - rows.start, n))
        z = buffer[: rows.stop - rows.start]
        np.subtract(Y[rows], row_means[rows, None], out=z)
        z *= weights[rows, None]
        gram += z.T @ z
    return gram


def sva(Y, mod, mod0=None, n_sv: int | None = None, B: int = 5, seed=None) -> SvaResult:
    """Surrogate variable analysis, iteratively re-weighted (``sva::sva`` -> ``irwsva.build``).

    Parameters
    ----------
    Y : (G, n) expression matrix, features in rows.
    mod : (n, p) design with the variables of interest (and adjustment variables).
    mod0 : (n, p0) null design; None means intercept only (R: ``mod[, 1]``).
    n_sv : number of surrogate variables; None estimates it with
        ``num_sv(Y, mod, method="be", seed=seed)``.
    B : number of re-weighting iterations (R's default 5).
    seed : only used by ``num_sv`` when ``n_sv`` is None (irwsva itself is deterministic).

    Algorithm (as irwsva.build): start from the right singular vectors of the residuals of
    ``mod``; then B times: p-values of the SVs given ``mod`` (F test of ``[mod, V]`` vs
    ``[mod0, V]``) and of the SVs alone (``[mod0, V]`` vs ``mod0``), posterior probabilities
    ``pprob.b = 1 - edge.lfdr``, ``pprob.gam = 1 - edge.lfdr``, weights
    ``pprob.gam * (1 - pprob.b)``, and new V from the SVD of the weighted, row-centred data.
    Each SVD is the eigendecomposition of the n x n Gram matrix.
    """
    Y = _as_expression(Y)
    G, n = Y.shape
    mod = _as_design(mod, n, "mod")
    mod0 = mod[:, :1] if mod0 is None else _as_design(mod0, n, "mod0")
    Yc, complete = _complete_subset(Y, n, "sva")
    if n_sv is None:
        n_sv = num_sv(Yc, mod, method="be", seed=seed)
    n_sv = int(n_sv)
    if n_sv < 0:
        raise ValueError("n_sv must be >= 0")
    if n_sv == 0:
        pprob_gam = np.where(complete, 0.0, np.nan)
        return SvaResult(sv=np.zeros((n, 0)), pprob_gam=pprob_gam, pprob_b=None, n_sv=0)
    if mod.shape[1] + n_sv >= n:
        raise ValueError("n_sv too large: the model with the surrogate variables is saturated")

    q_mod = _orthonormal_basis(mod, "mod")
    q_mod0 = _orthonormal_basis(mod0, "mod0")
    p1, p0 = mod.shape[1], mod0.shape[1]
    nested = np.linalg.norm(mod0 - q_mod @ (q_mod.T @ mod0)) <= 1e-8 * np.linalg.norm(mod0)
    (rss_mod0,) = _residual_sums_of_squares(Yc, [q_mod0])
    row_means = Yc.mean(axis=1)
    _, vectors = _top_eigenvectors(_residual_gram(Yc, q_mod), n_sv)
    pprob_b = pprob_gam = None
    for _ in range(B):
        if nested:
            # span[mod0, V] = span(mod0) + span(A), span[mod, V] = span(mod0) + span(C), with A, C
            # orthonormal and orthogonal to mod0: rss = rss(mod0) - ||A'y||^2 (resp. C), one
            # thin product over the data instead of two explicit residual matrices.
            basis_0b = _complement_basis(vectors, q_mod0, n_sv, "cbind(mod0, sv)")
            basis_b = _complement_basis(
                np.column_stack([mod, vectors]), q_mod0, p1 + n_sv - p0, "cbind(mod, sv)"
            )
            ss_0b, ss_b = _projected_sums_of_squares(Yc, [basis_0b, basis_b])
            rss_0b = np.maximum(rss_mod0 - ss_0b, 0.0)
            rss_b = np.maximum(rss_mod0 - ss_b, 0.0)
        else:
            q_b = _orthonormal_basis(np.column_stack([mod, vectors]), "cbind(mod, sv)")
            q_0b = _orthonormal_basis(np.column_stack([mod0, vectors]), "cbind(mod0, sv)")
            rss_b, rss_0b = _residual_sums_of_squares(Yc, [q_b, q_0b])
        p_b = _f_test_pvalue(rss_b, rss_0b, p1 + n_sv, p0 + n_sv, n)
        pprob_b = 1.0 - edge_lfdr(p_b)
        p_gam = _f_test_pvalue(rss_0b, rss_mod0, p0 + n_sv, p0, n)
        pprob_gam = 1.0 - edge_lfdr(p_gam)
        pprob = pprob_gam * (1.0 - pprob_b)
        _, vectors = _top_eigenvectors(_weighted_centered_gram(Yc, pprob, row_means), n_sv)
    sv = orient_columns(vectors.copy())

    def expand(values: np.ndarray) -> np.ndarray:
        if values.shape[0] == G:
            return values
        out = np.full(G, np.nan)
        out[complete] = values
        return out

    return SvaResult(sv=sv, pprob_gam=expand(pprob_gam), pprob_b=expand(pprob_b), n_sv=n_sv)
