"""limma's ``lmFit`` with weights (``lm.series`` -> one ``lm.wfit`` per feature), without a loop
over features.

limma (3.63.2 and earlier) fits each feature with ``lm.wfit`` on its observed samples: NA, zero or
negative weights drop the sample (``weights[weights <= 0] <- NA; M[!is.finite(weights)] <- NA``),
``lm.wfit`` takes the QR (LINPACK ``dqrdc2``, tolerance 1e-7, limited pivoting) of
``sqrt(w) * X_obs``, non-estimable coefficients are NA, ``stdev.unscaled`` is the square root of the
diagonal of ``chol2inv(R)``, ``sigma`` the root mean square of the residual effects and
``df.residual = n_obs - rank``.  Sample weights (one per sample, all positive) with no missing value
are one ``lm.wfit`` for all features, and then ``cov.coefficients`` is the weighted
``(X'WX)^-1``; otherwise it is the unweighted ``(X'X)^-1`` of the design.  ``Amean`` is the row
mean of the values before weights remove any.

Here, in row blocks: every row's weighted Gram matrix ``G_i = Q' W_i Q`` in the orthonormal basis
``Q`` of the full design (``X = QR``) comes from one BLAS product for the whole block, its Cholesky
factor from numpy operations across rows (a loop over the p columns only), and coefficients
``b = R^-1 G_i^-1 Q' W_i y_i`` with one step of iterative refinement on the weighted residuals
(rows centred on their weighted mean when the design has a column of ones).  dqrdc2's rank test is
exact in this form (the squared norm of weighted column j orthogonal to the earlier ones is
``R_jj^2`` times the j-th Cholesky pivot of ``G_i``).  Rows that are rank deficient, too close to
the rank test's threshold, or ill-conditioned (``G_i`` far from well scaled: extreme weight ratios,
missing samples that nearly remove a direction) are refitted by a port of ``dqrdc2`` / ``dqrsl``
vectorised across rows (:func:`_wfit_householder`), which is R's algorithm step for step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stacklm.io.blocks import rows_per_block
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.lmsolve import (
    DesignQR,
    RowFits,
    fit_inputs,
    gram_solve,
    matrix_weights,
    one_blas_thread,
    refuse_infinite,
    require_full_rank,
    sigma_from_rss,
)
from stacklm.limma.marraylm import LinearModelFit
from stacklm.rstats.cholesky import batched_cholesky
from stacklm.rstats.qr import QR_TOLERANCE
from stacklm.rstats.sums import row_means

#: rows per block hold about this many float64 values (rows x samples)
WFIT_BLOCK_VALUES = 1 << 18

#: the Gram path needs each column's squared relative norm orthogonal to the earlier ones (dqrdc2's
#: test, threshold tol^2 = 1e-14) to be at least this, ...
WFIT_RANK_MARGIN = 1e-10
#: ... and the Gram matrix in the orthonormal basis to have max(diagonal) / min(pivot) below this
#: (its condition number, up to a factor p): coefficients after refinement and stdev.unscaled then
#: carry errors below ~1e-11 relative; other rows take the Householder path
WFIT_MAX_CONDITION = 1e5


def _power_of_four_scale(wmax: np.ndarray) -> np.ndarray:
    """4^k close to wmax (exact scaling with an exact square root), 1 where wmax is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log2(np.where(wmax > 0, wmax, 1.0)) / 2)
    return np.ldexp(1.0, (2 * k).astype(np.int64))


def _wfit_gram(
    Y: np.ndarray,
    W: np.ndarray,
    qr: DesignQR,
    tol: float = QR_TOLERANCE,
    complete: bool = False,
    wmax: np.ndarray | None = None,
):
    """Weighted fits of a block of rows through their Gram matrices (see the module docstring).

    ``W`` holds the weights with 0 where a sample is dropped, ``Y`` the values with 0 there;
    ``complete``: every weight is positive (no sample dropped: the masks are left out).  ``wmax``:
    the rows' largest weights, if known.  Returns coefficients, stdev, sigma, df and the mask of
    rows solved here."""
    m, n = Y.shape
    p = qr.X.shape[1]
    if complete:
        obs = None
        n_obs = np.full(m, n)
    else:
        obs = W > 0
        n_obs = obs.sum(axis=1)
    scale = _power_of_four_scale(W.max(axis=1) if wmax is None else wmax)
    Ws = W / scale[:, None]
    G = np.zeros((p, p, m))
    G[qr.tri] = (Ws @ qr.q_outer).T
    col_sq = (Ws @ qr.x_squared).T  # weighted squared norms of the design columns, (p, m)
    L, pivots = batched_cholesky(G, p)
    diag = G[np.arange(p), np.arange(p)]  # (p, m)
    ratio = qr.rank_ratio(pivots, col_sq)
    with np.errstate(invalid="ignore", divide="ignore"):
        condition = diag.max(axis=0) / pivots.min(axis=0)
    margin = max(WFIT_RANK_MARGIN, tol * tol)
    ok = (
        np.all((ratio >= margin) & (col_sq > 0) & (pivots > 0), axis=0)
        & (condition <= WFIT_MAX_CONDITION)
        & (n_obs >= p)
    )
    ok &= np.isfinite(condition)
    if qr.ones_column is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = (Ws * Y).sum(axis=1) / Ws.sum(axis=1)
        shift[~np.isfinite(shift)] = 0.0
        Yz = Y - shift[:, None]
        if obs is not None:
            Yz = np.where(obs, Yz, 0.0)
    else:
        shift = None
        Yz = Y
    # the solve and one step of iterative refinement on the weighted residuals (no masks for
    # complete rows: obs None)
    coef, rss = gram_solve(qr, L, Yz, obs, weights=Ws)
    if shift is not None:
        coef[:, qr.ones_column] += shift
    # cov(b) = R^-1 L^-T L^-1 R^-T for the scaled weights
    stdev = qr.gram_stdev(L) / np.sqrt(scale)[:, None]
    df = (n_obs - p).astype(np.float64)
    sigma = sigma_from_rss(rss, df) * np.sqrt(scale)
    return coef, stdev, sigma, df, ok


def _dnrm2(a: np.ndarray, axis: int) -> np.ndarray:
    """Euclidean norms (BLAS dnrm2), scaled against overflow and underflow as dnrm2 is."""
    big = np.max(np.abs(a), axis=axis, keepdims=True)
    safe = np.where(big > 0, big, 1.0)
    return np.squeeze(big, axis=axis) * np.sqrt(np.sum((a / safe) ** 2, axis=axis))


def _wfit_householder(Y: np.ndarray, W: np.ndarray, X: np.ndarray, tol: float = QR_TOLERANCE):
    """R's ``lm.wfit`` for each row on its observed samples: LINPACK dqrdc2 (Householder QR with
    dqrdc2's limited column pivoting and norm downdating) and dqrsl, vectorised across rows.

    ``W`` is 0 where a sample is dropped.  Each row's observed samples are moved to the front (in
    their order), the rest padded with zero rows, which leaves the Householder steps unchanged.
    Returns coefficients (NA where not estimable), stdev, sigma, df."""
    m, n = Y.shape
    p = X.shape[1]
    obs = W > 0
    n_obs = obs.sum(axis=1)
    order = np.argsort(~obs, axis=1, kind="stable")
    rows = np.arange(m)[:, None]
    sw = np.sqrt(np.where(obs, W, 0.0))[rows, order]  # (m, n)
    A = sw[:, :, None] * X[order]  # (m, n, p): sqrt(w) * X, observed rows first
    qty = sw * np.where(obs, Y, 0.0)[rows, order]  # (m, n)
    lup = np.minimum(n_obs, p)
    qraux = _dnrm2(A, axis=1)  # (m, p)
    work1 = qraux.copy()
    work2 = np.where(qraux == 0.0, 1.0, qraux)
    jpvt = np.tile(np.arange(p), (m, 1))
    k = np.full(m, p + 1)  # R's k (1-based): p + 1 less the columns moved to the end
    applied = np.zeros((m, p), dtype=bool)  # Householder c computed and kept for dqrsl
    ridx = np.arange(m)
    for c in range(p):  # column c (R's l = c + 1)
        active = c < lup
        # cycle negligible columns to the end, as dqrdc2's label 80 loop
        while True:
            move = active & (c + 1 < k) & (qraux[:, c] < work2[:, c] * tol)
            if not move.any():
                break
            A[move, :, c:] = np.roll(A[move, :, c:], -1, axis=2)
            for arr in (qraux, work1, work2, jpvt):
                arr[move, c:] = np.roll(arr[move, c:], -1, axis=1)
            k = k - move
        do = active & (c + 1 != n_obs)
        if not do.any():
            continue
        sub = ridx[do]
        Al = A[sub, c:, c]  # (s, n - c)
        nrmxl = _dnrm2(Al, axis=1)
        nz = nrmxl != 0.0
        sub = sub[nz]
        if sub.size == 0:
            continue
        Al = Al[nz]
        nrmxl = nrmxl[nz]
        x_ll = Al[:, 0]
        nrmxl = np.where(x_ll != 0.0, np.copysign(nrmxl, x_ll), nrmxl)
        Al = Al * (1.0 / nrmxl)[:, None]
        Al[:, 0] += 1.0
        A[sub, c:, c] = Al
        if c + 1 < p:
            rest = A[sub, c:, c + 1 :]  # (s, n - c, p - c - 1)
            t = -np.einsum("si,sij->sj", Al, rest) / Al[:, :1]
            rest = rest + Al[:, :, None] * t[:, None, :]
            A[sub, c:, c + 1 :] = rest
            qj = qraux[sub, c + 1 :]
            with np.errstate(invalid="ignore", divide="ignore"):
                tt = 1.0 - (np.abs(rest[:, 0, :]) / qj) ** 2
            tt = np.maximum(tt, 0.0)
            small = np.abs(tt) < 1e-6
            recompute = _dnrm2(rest[:, 1:, :], axis=1) if rest.shape[1] > 1 else np.zeros_like(qj)
            new_q = np.where(small, recompute, qj * np.sqrt(tt))
            new_q = np.where(qj == 0.0, qj, new_q)
            qraux[sub, c + 1 :] = new_q
            w1 = work1[sub, c + 1 :]
            work1[sub, c + 1 :] = np.where((qj != 0.0) & small, recompute, w1)
        qraux[sub, c] = A[sub, c, c]
        A[sub, c, c] = -nrmxl
        applied[sub, c] = True
    rank = np.minimum(k - 1, n_obs)
    # dqrsl: qty = Q'y with the first min(rank, n - 1) transformations
    ju = np.minimum(rank, n_obs - 1)
    for j in range(p):
        use = (j < ju) & (qraux[:, j] != 0.0) & applied[:, j]
        if not use.any():
            continue
        sub = ridx[use]
        v = A[sub, j:, j].copy()
        v[:, 0] = qraux[sub, j]
        q = qty[sub, j:]
        t = -np.einsum("si,si->s", v, q) / v[:, 0]
        qty[sub, j:] = q + t[:, None] * v
    # back substitution on the leading rank x rank block of R
    b = np.zeros((m, p))
    within = np.arange(p)[None, :] < rank[:, None]
    b[within] = qty[:, :p][within]
    for j in range(p - 1, -1, -1):
        use = j < rank
        if not use.any():
            continue
        sub = ridx[use]
        b[sub, j] = b[sub, j] / A[sub, j, j]
        if j:
            b[sub, :j] -= b[sub, j][:, None] * A[sub, :j, j]
    # chol2inv(R, size = rank): rows of R^-1
    Rk = np.where(
        within[:, :, None] & within[:, None, :],
        np.triu(A[:, :p, :]),
        0.0,
    )
    eye = np.eye(p)[None, :, :]
    Rk = np.where(within[:, :, None] | within[:, None, :], Rk, eye)
    Rinv = np.linalg.solve(Rk, np.broadcast_to(eye, Rk.shape))
    var = np.einsum("sij,sij->si", Rinv, Rinv)
    coef = np.full((m, p), np.nan)
    stdev = np.full((m, p), np.nan)
    coef_piv = np.where(within, b, np.nan)
    stdev_piv = np.where(within, np.sqrt(var), np.nan)
    coef[rows, jpvt] = coef_piv
    stdev[rows, jpvt] = stdev_piv
    df = (n_obs - rank).astype(np.float64)
    beyond = (np.arange(n)[None, :] >= rank[:, None]) & (np.arange(n)[None, :] < n_obs[:, None])
    rss = np.where(beyond, qty * qty, 0.0).sum(axis=1)
    sigma = sigma_from_rss(rss, df)
    none = n_obs == 0
    coef[none] = np.nan
    stdev[none] = np.nan
    sigma[none] = np.nan
    df[none] = 0.0
    return coef, stdev, sigma, df


@one_blas_thread
def lm_wfit(
    Y,
    design,
    weights,
    coef_names: Sequence[str] | None = None,
    feature_ids: Sequence | None = None,
    amean: np.ndarray | None = None,
) -> LinearModelFit:
    """limma's ``lmFit(Y, design, weights = weights)`` (``lm.series`` with ``lm.wfit``).

    ``weights`` is a features x samples matrix (observation weights, e.g. voom's) or one weight per
    sample (array weights, broadcast to every feature).  NaN values of ``Y`` and NaN, zero or
    negative weights drop the observation.  Returns the :class:`LinearModelFit` that
    :func:`stacklm.lm_fit` returns, with per-feature rank deficiency as ``lm.wfit`` (NaN
    coefficients and stdev.unscaled for columns dqrdc2 rejects, ``df_residual = n_obs - rank``, NaN
    sigma when it is 0).  ``amean`` is the mean of each row's non-missing values, ignoring the
    weights, and ``cov_coefficients`` is as limma's (see the module docstring).  The full design must
    have full column rank, as for :func:`stacklm.lm_fit`.  Y and design DataFrames are matched by
    sample label as in :func:`stacklm.lm_fit`.  ``amean``: ``rowMeans(Y, na.rm = TRUE)`` when the
    caller has it (voom's :attr:`stacklm.limma.voom.VoomResult.amean`), saving a pass over Y.
    """
    Y, X, coef_names, feature_ids = fit_inputs(Y, design, coef_names, feature_ids)
    G, n = Y.shape
    p = X.shape[1]
    require_full_rank(X, coef_names)
    W, sample_weights = matrix_weights(weights, G, n)
    if amean is None:
        amean = row_means(Y, na_rm=True)  # rowMeans(Y, na.rm = TRUE), before weights remove any
    else:
        amean = np.asarray(amean, dtype=np.float64).ravel()
        if amean.size != G:
            raise ValueError(f"amean has {amean.size} values for {G} features")

    def usable(w):  # a weight that keeps its observation: finite and positive
        return np.isfinite(w) & (w > 0)

    if sample_weights and usable(W).all() and not np.isnan(Y).any():
        refuse_infinite(Y)
        # limma's NoProbeWts branch: one lm.wfit for all rows; cov.coefficients is weighted
        sw = np.sqrt(W[0])
        fit = lm_fit(Y * sw, X * sw[:, None], coef_names=coef_names, feature_ids=feature_ids)
        return fit.replace(amean=amean, design=X, design_names=list(coef_names))

    qr = DesignQR(X)
    out = RowFits(G, p)
    block = rows_per_block(n, WFIT_BLOCK_VALUES, minimum=256)
    for start in range(0, G, block):
        stop = min(start + block, G)
        Yb = Y[start:stop]
        Wb = np.broadcast_to(W, (G, n))[start:stop] if sample_weights else W[start:stop]
        # every value finite (NaN and inf propagate into the sums) and every weight usable?
        wmax = Wb.max(axis=1)
        complete = bool(
            np.isfinite(Yb.sum(axis=1)).all() and np.isfinite(wmax).all() and Wb.min() > 0
        )
        if complete:
            Wz, Yz = Wb, Yb  # read only below
        else:
            refuse_infinite(Yb)
            obs = ~np.isnan(Yb) & usable(Wb)  # the block's usable observations
            Wz = np.where(obs, Wb, 0.0)
            Yz = np.where(obs, Yb, 0.0)
            wmax = None
        c, s, sg, d, ok = _wfit_gram(Yz, Wz, qr, complete=complete, wmax=wmax)
        out.store(start + np.flatnonzero(ok), c[ok], s[ok], sg[ok], d[ok])
        bad = np.flatnonzero(~ok)
        if bad.size:
            out.store(start + bad, *_wfit_householder(Yz[bad], Wz[bad], X))
    # cov.coefficients: chol2inv(qr(design)), as lm.series' loop branch
    return out.result(amean, qr.cov_coefficients, coef_names, feature_ids, X)
