"""limma's ``lmFit`` for every feature (row) of a G x n matrix on one design, with per-feature
missing values handled as ``lm.fit`` on the observed samples, in BLAS-sized row blocks."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from scipy.sparse import csr_matrix

from stacklm.limma.labels import labels_of, match_labels
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.qrrank import QR_TOLERANCE, aliased_columns, estimable_columns

#: missingness patterns shared by at least this many rows are fitted with their own QR (below, the
#: batched Gram path is cheaper)
MIN_ROWS_FOR_PATTERN_QR = 256

# --------------------------------------------------------------------------------------------
# lm_fit
# --------------------------------------------------------------------------------------------
#: working arrays of the blocked passes hold about this many float64 values (rows x samples)
BLOCK_VALUES = 1 << 17

#: rows of the batched Gram path: the observed design must pass dqrdc2's test with this margin
#: (squared relative norm of each column orthogonal to the earlier ones, vs tol^2 = 1e-14), and the
#: Cholesky pivots of the observed Gram matrix in the orthonormal basis of the full design must
#: exceed GRAM_MIN_PIVOT (it is near the identity unless the missing samples nearly remove a
#: direction).  Other rows go through the exact per-pattern QR path.
GRAM_RANK_MARGIN = 1e-10
GRAM_MIN_PIVOT = 1e-6

#: below this fraction of missing values in a block, the Gram matrices are formed by a sparse product
GRAM_SPARSE_FRACTION = 0.1


def _block_rows(n: int, minimum: int = 256) -> int:
    return max(minimum, BLOCK_VALUES // max(n, 1))


class _DesignQR:
    """QR of the full design, shared by every block of complete rows and by the Gram path."""

    def __init__(self, X: np.ndarray, gram: bool = True):
        n, p = X.shape
        self.X = X
        self.Xt = np.ascontiguousarray(X.T)
        self.Q, self.R = np.linalg.qr(X)
        self.Qt = np.ascontiguousarray(self.Q.T)
        self.rinv = solve_triangular(self.R, np.eye(p))
        self.stdev_row = np.sqrt(np.sum(self.rinv**2, axis=1))
        self.df = n - p
        if not gram:
            return
        # products of pairs of columns of Q (lower triangle, diagonal included) and squares of X
        self.tri = np.tril_indices(p)
        self.q_outer = self.Q[:, self.tri[0]] * self.Q[:, self.tri[1]]  # n x p(p+1)/2
        self.q_outer_sum = self.q_outer.sum(axis=0)
        self.x_squared = X * X
        self.x_squared_sum = self.x_squared.sum(axis=0)
        ones = np.flatnonzero(np.all(X == 1.0, axis=0))
        self.ones_column = int(ones[0]) if ones.size else None


def _fit_complete(Y: np.ndarray, X: np.ndarray, qr: _DesignQR | None = None):
    """Rows of Y (all observed) on full-rank X: coefficients, stdev.unscaled row, sigma, df."""
    if qr is None:
        qr = _DesignQR(X, gram=False)
    effects = Y @ qr.Q  # G x p
    coef = solve_triangular(qr.R, effects.T, check_finite=False).T
    resid = Y - coef @ qr.Xt
    if qr.df > 0:
        sigma = np.sqrt(np.einsum("ij,ij->i", resid, resid) / qr.df)
    else:
        sigma = np.full(Y.shape[0], np.nan)
    return coef, qr.stdev_row, sigma, qr.df


def _fit_pattern_qr(Yobs: np.ndarray, Xobs: np.ndarray, p: int):
    """Rows sharing one missingness pattern, on the observed part of the design (may be rank deficient)."""
    keep = estimable_columns(Xobs)
    rank = int(keep.sum())
    m = Yobs.shape[0]
    coef = np.full((m, p), np.nan)
    stdev = np.full((m, p), np.nan)
    if rank == 0:
        return coef, stdev, np.full(m, np.nan), Xobs.shape[0] - rank
    c, s_row, sigma, df = _fit_complete(Yobs, Xobs[:, keep])
    coef[:, keep] = c
    stdev[:, keep] = s_row
    return coef, stdev, sigma, df


def _batched_cholesky(G: np.ndarray, p: int):
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


def _cholesky_solve(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve (L L') x = rhs for each of the m systems; rhs and the result have shape (p, m)."""
    p = L.shape[0]
    z = np.empty_like(rhs)
    for j in range(p):
        s = rhs[j] - np.einsum("km,km->m", L[j, :j], z[:j]) if j else rhs[j]
        z[j] = s / L[j, j]
    x = np.empty_like(rhs)
    for j in range(p - 1, -1, -1):
        s = z[j] - np.einsum("km,km->m", L[j + 1 :, j], x[j + 1 :]) if j + 1 < p else z[j]
        x[j] = s / L[j, j]
    return x


def _lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverses of the m lower-triangular factors, same (p, p, m) layout."""
    p, _, m = L.shape
    M = np.zeros_like(L)
    for i in range(p):
        M[i, i] = 1.0 / L[i, i]
        if i:
            M[i, :i] = -np.einsum("km,kjm->jm", L[i, :i], M[:i, :i]) * M[i, i]
    return M


def _fit_rows_gram(Y: np.ndarray, qr: _DesignQR, tol: float = QR_TOLERANCE):
    """Exact least squares for a block of rows with individual missingness patterns.

    For row i with observed mask w_i the normal equations are solved in the orthonormal basis Q of
    the full design (X = QR): G_i = Q' diag(w_i) Q, formed for all rows at once as Q'Q minus the
    missing samples' terms (a sparse product when few values are missing, else one BLAS product),
    its Cholesky factor for all rows at once (numpy operations across rows, looping only over the p
    columns), b_Q = G_i^-1 Q' diag(w_i) y_i and b = R^-1 b_Q.  In that basis G_i is close to the
    identity, so the solve loses nothing to conditioning, and b carries the accuracy of a QR fit
    (R^-1 is the same triangular solve as in lm.fit).  When the design has a column of ones, each row
    is first centred on its observed mean (added back to that coefficient: least squares is
    equivariant under that shift), so rounding scales with the residual spread rather than the level
    of the data; without one, one step of iterative refinement on the residuals does the same.
    stdev.unscaled is the square root of diag(R^-1 G_i^-1 R^-T).

    dqrdc2's rank test is exact here: the squared norm of column j of the observed design orthogonal
    to the earlier columns is R_jj^2 times the j-th Cholesky pivot of G_i.  Returns coefficients,
    stdev, sigma, df and a mask of the rows solved; rows that fail the test (or are too close to it,
    see GRAM_RANK_MARGIN, GRAM_MIN_PIVOT) are left to the per-pattern QR path.
    """
    m, n = Y.shape
    p = qr.X.shape[1]
    miss = np.isnan(Y)
    n_miss = miss.sum(axis=1)
    n_obs = n - n_miss
    G = np.zeros((p, p, m))
    if n_miss.sum() <= GRAM_SPARSE_FRACTION * miss.size:
        cols = np.flatnonzero(miss) % n
        indptr = np.concatenate([[0], np.cumsum(n_miss)])
        M = csr_matrix((np.ones(cols.size), cols, indptr), shape=(m, n))
        G[qr.tri] = qr.q_outer_sum[:, None] - (M @ qr.q_outer).T
        col_sq = qr.x_squared_sum[:, None] - (M @ qr.x_squared).T
    else:
        W = (~miss).astype(np.float64)
        G[qr.tri] = qr.q_outer.T @ W.T
        col_sq = (W @ qr.x_squared).T  # squared norms of the observed design's columns, (p, m)
    L, pivots = _batched_cholesky(G, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (np.diag(qr.R) ** 2)[:, None] * pivots / col_sq
    margin = max(GRAM_RANK_MARGIN, tol * tol)
    ok = np.all((pivots >= GRAM_MIN_PIVOT) & (ratio >= margin) & (col_sq > 0), axis=0)
    if qr.ones_column is not None:
        shift = np.where(miss, 0.0, Y).sum(axis=1) / np.maximum(n_obs, 1)
        Yz = Y - shift[:, None]
    else:
        Yz = Y.copy()
    np.copyto(Yz, 0.0, where=miss)
    bq = _cholesky_solve(L, (Yz @ qr.Q).T)
    resid = Yz - bq.T @ qr.Qt
    np.copyto(resid, 0.0, where=miss)
    if qr.ones_column is None:
        bq += _cholesky_solve(L, (resid @ qr.Q).T)
        resid = Yz - bq.T @ qr.Qt
        np.copyto(resid, 0.0, where=miss)
    coef = solve_triangular(qr.R, bq, check_finite=False).T
    if qr.ones_column is not None:
        coef[:, qr.ones_column] += shift
    Minv = _lower_inverse(L)  # L^-1 per row; cov(b) = R^-1 L^-T L^-1 R^-T
    N = (qr.rinv @ Minv.transpose(1, 0, 2).reshape(p, p * m)).reshape(p, p, m)
    stdev = np.sqrt(np.einsum("jkm,jkm->mj", N, N))
    df = (n_obs - p).astype(np.float64)
    rss = np.einsum("ij,ij->i", resid, resid)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.where(df > 0, np.sqrt(rss / np.where(df > 0, df, 1)), np.nan)
    return coef, stdev, sigma, df, ok


def _pattern_groups(packed: np.ndarray):
    """Group rows by identical packed missingness masks: group id per row and rows per group."""
    m, nb = packed.shape
    nw = -(-nb // 8)
    buf = np.zeros((m, nw * 8), dtype=np.uint8)
    buf[:, :nb] = packed
    words = buf.view(np.uint64)
    order = np.lexsort(words.T[::-1]) if nw > 1 else np.argsort(words[:, 0], kind="stable")
    sorted_words = words[order]
    new = np.ones(m, dtype=bool)
    new[1:] = np.any(sorted_words[1:] != sorted_words[:-1], axis=1)
    gid_sorted = np.cumsum(new) - 1
    gid = np.empty(m, dtype=np.int64)
    gid[order] = gid_sorted
    return gid, np.bincount(gid_sorted)


_BLAS_CONTROLLER = None


def _one_blas_thread(func):
    """Run ``func`` with one BLAS thread.  lm_fit's products are small (row blocks of ~10^5
    values times p columns): on 2 cores two OpenBLAS threads made them ~10x slower than one
    (0.87 s instead of 0.06 s for 125,000 x 100), and parallel jobs bring their own cores.  The
    previous limit is restored afterwards."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _BLAS_CONTROLLER
        if _BLAS_CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


@_one_blas_thread
def lm_fit(
    Y,
    design,
    coef_names: Sequence[str] | None = None,
    feature_ids: Sequence | None = None,
) -> LinearModelFit:
    """Fit ``y_g = X b_g + e_g`` for every row of ``Y`` (features x samples), as limma's ``lmFit``.

    ``Y`` may be a numpy array (or memory map) or a DataFrame (its index gives the feature ids);
    ``design`` a numpy array or a DataFrame (its columns give the coefficient names).  When both are
    DataFrames whose matrix columns and design index name the samples, the design rows are matched
    to the matrix columns by label (limma matches by position); differing labels are refused.  NaN
    marks a missing value.

    Returns coefficients, stdev.unscaled (sqrt of the diagonal of (X'X)^-1 for the design rows the
    feature was fitted on), sigma (residual standard deviation), df.residual and Amean (row mean of the
    observed values), as ``lmFit``.  Features with missing values are fitted on their observed samples;
    coefficients that are not estimable there are NaN, as are the statistics of all-missing rows and
    the sigma of rows with zero residual df.  The full design must have full column rank (use
    :func:`stacklm.design.design_matrix`, which names aliased columns).

    Rows are processed in blocks (about ``BLOCK_VALUES`` values each), so the working memory beyond
    the input and the per-feature results stays bounded.  Complete rows share one QR of ``X``;
    missingness patterns shared by at least ``MIN_ROWS_FOR_PATTERN_QR`` rows get their own QR with
    ``lm.fit``'s rank detection; the other rows are solved by :func:`_fit_rows_gram`.
    """
    sample_labels = None
    if isinstance(Y, pd.DataFrame):
        if feature_ids is None:
            feature_ids = Y.index.to_numpy()
        sample_labels = labels_of(Y.columns)
        Y = Y.to_numpy(dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[None, :]
    if isinstance(design, pd.DataFrame):
        if coef_names is None:
            coef_names = [str(c) for c in design.columns]
        design_labels = labels_of(design.index)
        if sample_labels is not None and design_labels is not None:
            # both name the samples: the design rows follow the matrix columns
            order = match_labels(
                sample_labels,
                design_labels,
                "the matrix columns",
                "the design rows",
                "sample labels",
            )
            if order is not None:
                design = design.iloc[order]
        design = design.to_numpy(dtype=np.float64)
    X = np.asarray(design, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    G, n = Y.shape
    if X.shape[0] != n:
        raise ValueError(
            f"design has {X.shape[0]} rows but the matrix has {n} sample columns; they must match"
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("design matrix contains missing or infinite values")
    p = X.shape[1]
    if coef_names is None:
        coef_names = [f"x{j + 1}" for j in range(p)]
    coef_names = list(coef_names)
    if feature_ids is None:
        feature_ids = np.arange(G)
    feature_ids = np.asarray(feature_ids)

    keep = estimable_columns(X)
    if not keep.all():
        alias = aliased_columns(X, coef_names)
        detail = "; ".join(f"{k} = combination of [{', '.join(v)}]" for k, v in alias.items())
        raise ValueError(f"design matrix is not of full column rank: {detail}")

    qr = _DesignQR(X)
    coef = np.full((G, p), np.nan)
    stdev = np.full((G, p), np.nan)
    sigma = np.full(G, np.nan)
    df = np.zeros(G)
    amean = np.empty(G)

    # pass 1, block by block: Amean, the complete rows' fits, the partial rows' masks
    partial_rows, partial_masks = [], []
    block = _block_rows(n)
    for start in range(0, G, block):
        stop = min(start + block, G)
        Yb = Y[start:stop]
        row_sums = Yb.sum(axis=1)
        if np.isfinite(row_sums).all():  # then every value is finite (NaN and inf propagate)
            amean[start:stop] = row_sums / n
            c, s_row, sg, d = _fit_complete(Yb, X, qr)
            coef[start:stop], stdev[start:stop], sigma[start:stop], df[start:stop] = c, s_row, sg, d
            continue
        finite = np.isfinite(Yb)
        if np.isinf(Yb).any():
            raise ValueError(
                "matrix contains infinite values; only finite values or NaN (missing) are allowed"
            )
        n_obs = finite.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            amean[start:stop] = np.where(
                n_obs > 0, np.where(finite, Yb, 0.0).sum(axis=1) / np.maximum(n_obs, 1), np.nan
            )
        complete = n_obs == n
        if complete.any():
            idx = start + np.flatnonzero(complete)
            c, s_row, sg, d = _fit_complete(Yb[complete], X, qr)
            coef[idx], stdev[idx], sigma[idx], df[idx] = c, s_row, sg, d
        part = np.flatnonzero(~complete & (n_obs > 0))
        if part.size:
            partial_rows.append(start + part)
            partial_masks.append(np.packbits(finite[part], axis=1))

    if partial_rows:
        rows = np.concatenate(partial_rows)
        gid, counts = _pattern_groups(np.concatenate(partial_masks))
        del partial_masks
        by_qr = counts[gid] >= MIN_ROWS_FOR_PATTERN_QR
        # pass 2: rows with rare patterns, batched Gram solves block by block
        gram = np.flatnonzero(~by_qr)
        gram_block = _block_rows(n, minimum=4096)
        for start in range(0, gram.size, gram_block):
            sel = gram[start : start + gram_block]
            r = rows[sel]
            c, s, sg, d, ok = _fit_rows_gram(Y[r], qr)
            coef[r[ok]], stdev[r[ok]], sigma[r[ok]], df[r[ok]] = c[ok], s[ok], sg[ok], d[ok]
            by_qr[sel[~ok]] = True
        # pass 3: one QR per pattern for frequent patterns and rows the Gram path left
        qr_sel = np.flatnonzero(by_qr)
        if qr_sel.size:
            order = qr_sel[np.argsort(gid[qr_sel], kind="stable")]
            bounds = np.flatnonzero(np.diff(gid[order])) + 1
            for group_sel in np.split(order, bounds):
                group = rows[group_sel]
                mask = ~np.isnan(Y[group[0]])
                for s0 in range(0, group.size, block):
                    g = group[s0 : s0 + block]
                    c, s, sg, d = _fit_pattern_qr(Y[np.ix_(g, mask)], X[mask], p)
                    coef[g], stdev[g], sigma[g], df[g] = c, s, sg, d

    cov = qr.rinv @ qr.rinv.T  # chol2inv(R), limma's cov.coefficients
    return LinearModelFit(
        coefficients=coef,
        stdev_unscaled=stdev,
        sigma=sigma,
        df_residual=df,
        amean=amean,
        cov_coefficients=cov,
        coef_names=coef_names,
        feature_ids=feature_ids,
        design=X,
        design_names=list(coef_names),
    )
