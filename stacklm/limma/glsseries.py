"""limma's ``gls.series`` (limma 3.63.2, R/lmfit.R): ``lmFit(y, design, block =, correlation =)``,
generalized least squares with a common intra-block correlation, for every feature (row) at once.

limma whitens each feature by the Cholesky factor of its covariance matrix
``V = diag(1/sqrt(w)) C diag(1/sqrt(w))`` on the observed samples (``C`` = 1 on the diagonal,
``correlation`` within a block, 0 between blocks) and calls ``lm.fit`` on the whitened data:
coefficients, ``stdev.unscaled`` from the whitened design's R, ``sigma`` from its residuals, df =
observed samples - rank.  Those are invariant to the choice of whitening matrix ``T`` with
``T'T = V^-1``.  Complete rows without weights (or with one weight per sample) share R's Cholesky
transform and one QR.  For rows with their own weights or missing values, the symmetric whitening is
used instead of the Cholesky factor, because it is explicit block by block: on the ``k`` observed
samples of a block, with ``u = sqrt(w) y``,
``T u = (u - g_k mean(u)) / sqrt(1 - rho)``, ``g_k = 1 - sqrt((1 - rho) / (1 + (k - 1) rho))``,
so every row is whitened with array operations whatever its missingness pattern, and the per-row
least-squares fits run as one batched Gram-Schmidt QR with lm.fit's rank rule
(:func:`stacklm.rstats.qr.batched_qr`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import solve_triangular

from stacklm.io.blocks import rows_per_block
from stacklm.limma.dupcor import block_codes, duplicate_correlation
from stacklm.limma.lmsolve import (
    DesignQR,
    RowFits,
    fit_complete,
    fit_inputs,
    matrix_weights,
    observed_row_means,
    one_blas_thread,
    require_full_rank,
    sigma_from_rss,
)
from stacklm.limma.marraylm import LinearModelFit
from stacklm.rstats.qr import batched_qr

#: working arrays of the per-row path hold about this many rows x samples x coefficients values
BLOCK_VALUES = 1 << 20


def _block_indicators(block, n: int):
    """The block indicator matrix Z (n x blocks), blocks in ``unique(block)`` order as limma's."""
    codes, nb = block_codes(block, n, sort=False)
    return (codes[:, None] == np.arange(nb)[None, :]).astype(np.float64)


def block_correlation_matrix(block, correlation: float) -> np.ndarray:
    """limma's ``cormatrix``: ``Z %*% (correlation * t(Z))`` with a unit diagonal."""
    Z = _block_indicators(block, len(np.asarray(block).ravel()))
    C = Z @ (correlation * Z.T)
    np.fill_diagonal(C, 1.0)
    return C


def _whiten_rows(U: np.ndarray, obs: np.ndarray, Z: np.ndarray, rho: float) -> np.ndarray:
    """The symmetric whitening of each row's observed samples (m x n, or m x n x p for designs):
    ``(u - g_k * block mean of u) / sqrt(1 - rho)`` within each block (k observed samples)."""
    k = obs.astype(np.float64) @ Z  # m x B observed per block
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 1.0 - np.sqrt((1.0 - rho) / (1.0 + (k - 1.0) * rho))
        scale = np.where(k > 0, g / np.where(k > 0, k, 1.0), 0.0)
    if U.ndim == 2:
        shift = ((U @ Z) * scale) @ Z.T
        out = (U - shift) / np.sqrt(1.0 - rho)
        return np.where(obs, out, 0.0)
    sums = np.matmul(Z.T, U)  # m x B x p block sums
    shift = np.matmul(Z, sums * scale[:, :, None])
    out = (U - shift) / np.sqrt(1.0 - rho)
    return np.where(obs[:, :, None], out, 0.0)


def _whitened_design(V: np.ndarray, X: np.ndarray):
    """R's transform for one covariance matrix V: its Cholesky factor L (R's ``chol(V)`` is L')
    and the QR of the whitened design ``L^-1 X``."""
    L = np.linalg.cholesky(V)
    return L, DesignQR(solve_triangular(L, X, lower=True), gram=False)


def _fit_rows(Y: np.ndarray, obs: np.ndarray, sw: np.ndarray, X: np.ndarray, Z, rho: float):
    """Rows with their own weights / missing values: whiten, then batched lm.fit."""
    m, n = Y.shape
    p = X.shape[1]
    n_obs = obs.sum(axis=1)
    ystar = _whiten_rows(np.where(obs, sw * np.where(obs, Y, 0.0), 0.0), obs, Z, rho)
    A = np.where(obs[:, :, None], sw[:, :, None] * X[None, :, :], 0.0)
    xzero = ~np.any(obs[:, :, None] & (X[None, :, :] != 0), axis=(1, 2))
    Xstar = _whiten_rows(A, obs, Z, rho)
    Q, R, keep = batched_qr(Xstar, n_obs=n_obs)
    qty = np.einsum("mnp,mn->mp", Q, ystar)
    coef = np.empty((m, p))
    for j in range(p - 1, -1, -1):
        s = qty[:, j] - np.einsum("mk,mk->m", R[:, j, j + 1 :], coef[:, j + 1 :])
        coef[:, j] = s / R[:, j, j]
    resid = ystar - np.einsum("mnp,mp->mn", Q, qty)
    rinv = np.zeros((m, p, p))  # R^-1, column by column of the identity
    for j in range(p - 1, -1, -1):
        rinv[:, j, j] = 1.0 / R[:, j, j]
        for i in range(j - 1, -1, -1):
            s = np.einsum("mk,mk->m", R[:, i, i + 1 : j + 1], rinv[:, i + 1 : j + 1, j])
            rinv[:, i, j] = -s / R[:, i, i]
    stdev = np.sqrt(np.sum(rinv**2, axis=2))
    rank = keep.sum(axis=1)
    df = (n_obs - rank).astype(np.float64)
    sigma = sigma_from_rss(np.einsum("ij,ij->i", resid, resid), df)
    coef[~keep] = np.nan
    stdev[~keep] = np.nan
    # limma: a design that is all zero on the observed samples gives df = n, sigma = sqrt(mean(y*^2))
    if xzero.any():
        yy = np.einsum("ij,ij->i", ystar, ystar)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.where(xzero, np.sqrt(yy / np.maximum(n_obs, 1)), sigma)
        df = np.where(xzero, n_obs, df)
        coef[xzero] = np.nan
        stdev[xzero] = np.nan
    none = n_obs == 0
    coef[none], stdev[none], sigma[none], df[none] = np.nan, np.nan, np.nan, 0.0
    return coef, stdev, sigma, df


@one_blas_thread
def gls_series(
    Y,
    design,
    block,
    correlation: float | None = None,
    weights=None,
    coef_names: Sequence[str] | None = None,
    feature_ids: Sequence | None = None,
) -> LinearModelFit:
    """``lmFit(Y, design, block = block, correlation = correlation, weights = weights)`` (limma's
    ``gls.series``) for every row of ``Y`` (features x samples; NaN or +-Inf = missing).

    ``correlation`` is the intra-block correlation (usually ``duplicate_correlation(...).consensus``;
    ``None`` estimates it so, as limma does).  ``weights`` are a matrix like ``Y`` (e.g. voom's) or
    one weight per sample (array weights); as in limma, NA weights count as 0 and values with a weight
    below 1e-15 are missing.  Each feature is fitted on its observed samples (coefficients that are not
    estimable there are NaN).  Returns the :class:`~stacklm.LinearModelFit` of ``lm_fit`` (Amean is the
    mean of the observed values, including those whose weight is 0, as limma's); ``cov_coefficients``
    is limma's ``(X' C^-1 X)^-1`` of the full design (with the array weights when limma takes its fast
    path: array weights and no missing value); ``extra`` holds ``block`` and ``correlation``.
    """
    M, X, coef_names, feature_ids = fit_inputs(Y, design, coef_names, feature_ids)
    G, n = M.shape
    p = X.shape[1]
    require_full_rank(X, coef_names)

    if correlation is None:
        correlation = duplicate_correlation(M, X, block, weights=weights).consensus
    rho = float(correlation)
    if abs(rho) >= 1:
        raise ValueError("correlation is 1 or -1, so the model is degenerate")
    Z = _block_indicators(block, n)
    max_block = Z.sum(axis=0).max()
    if 1.0 + (max_block - 1.0) * rho <= 0:
        raise ValueError(
            f"correlation {rho} makes the block correlation matrix singular or not positive "
            f"definite (blocks of {int(max_block)} samples need correlation > {-1 / (max_block - 1):.6g})"
        )

    amean = observed_row_means(M)  # Amean as lmFit: rowMeans of the data as given, NA removed

    array_w = None
    W = None
    if weights is not None:
        w, sample_weights = matrix_weights(weights, G, n)  # a full matrix, or array weights
        w = np.array(w, dtype=np.float64)
        w[np.isnan(w)] = 0.0
        if sample_weights:
            array_w = w.reshape(n)
            W = np.broadcast_to(array_w, (G, n))
        else:
            W = w
        small = W < 1e-15
        M = np.where(small, np.nan, M)
        if array_w is not None:
            array_w = np.where(array_w < 1e-15, np.nan, array_w)
    obs = np.isfinite(M)
    complete = obs.all(axis=1)
    fast_global = bool(complete.all()) and (W is None or array_w is not None)

    C = Z @ (rho * Z.T)
    np.fill_diagonal(C, 1.0)
    out = RowFits(G, p)

    # complete rows without weights, or with array weights: R's Cholesky transform, one QR
    shared = complete & (W is None or array_w is not None and np.all(np.isfinite(array_w)))
    cov_shared = None
    if shared.any():
        V = C
        if array_w is not None:
            wrs = 1.0 / np.sqrt(array_w)
            V = wrs[:, None] * C * wrs[None, :]
        L, qr = _whitened_design(V, X)
        cov_shared = qr.cov_coefficients
        rows = np.flatnonzero(shared)
        step = rows_per_block(n, BLOCK_VALUES)
        for s0 in range(0, rows.size, step):
            r = rows[s0 : s0 + step]
            Ystar = solve_triangular(L, M[r].T, lower=True, check_finite=False).T
            out.store(r, *fit_complete(Ystar, qr))

    rest = np.flatnonzero(~shared)
    step = rows_per_block(n * p, BLOCK_VALUES)
    for s0 in range(0, rest.size, step):
        r = rest[s0 : s0 + step]
        o = obs[r]
        sw = np.ones((r.size, n)) if W is None else np.sqrt(np.where(o, W[r], 1.0))
        out.store(r, *_fit_rows(M[r], o, sw, X, Z, rho))

    if fast_global and array_w is not None:
        cov = cov_shared
    else:
        cov = _whitened_design(C, X)[1].cov_coefficients
    extra = {"block": np.asarray(block).ravel().tolist(), "correlation": rho}
    return out.result(amean, cov, coef_names, feature_ids, X, extra=extra)
