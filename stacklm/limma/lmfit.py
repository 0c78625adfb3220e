"""limma's ``lmFit`` for every feature (row) of a G x n matrix on one design, with per-feature
missing values handled as ``lm.fit`` on the observed samples, in BLAS-sized row blocks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix

from stacklm.io.blocks import rows_per_block
from stacklm.limma.lmsolve import (
    DesignQR,
    RowFits,
    fit_complete,
    fit_inputs,
    gram_solve,
    observed_row_means,
    one_blas_thread,
    require_full_rank,
    sigma_from_rss,
)
from stacklm.limma.marraylm import LinearModelFit
from stacklm.rstats.cholesky import batched_cholesky
from stacklm.rstats.qr import QR_TOLERANCE, estimable_columns

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


def _fit_pattern_qr(Yobs: np.ndarray, Xobs: np.ndarray, p: int):
    """Rows sharing one missingness pattern, on the observed part of the design (may be rank deficient)."""
    keep = estimable_columns(Xobs)
    rank = int(keep.sum())
    m = Yobs.shape[0]
    coef = np.full((m, p), np.nan)
    stdev = np.full((m, p), np.nan)
    if rank == 0:
        return coef, stdev, np.full(m, np.nan), Xobs.shape[0] - rank
    c, s_row, sigma, df = fit_complete(Yobs, DesignQR(Xobs[:, keep], gram=False))
    coef[:, keep] = c
    stdev[:, keep] = s_row
    return coef, stdev, sigma, df


def _fit_rows_gram(Y: np.ndarray, qr: DesignQR, tol: float = QR_TOLERANCE):
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
    L, pivots = batched_cholesky(G, p)
    ratio = qr.rank_ratio(pivots, col_sq)
    margin = max(GRAM_RANK_MARGIN, tol * tol)
    ok = np.all((pivots >= GRAM_MIN_PIVOT) & (ratio >= margin) & (col_sq > 0), axis=0)
    if qr.ones_column is not None:
        shift = observed_row_means(Y)
        Yz = Y - shift[:, None]
    else:
        Yz = Y.copy()
    np.copyto(Yz, 0.0, where=miss)
    coef, rss = gram_solve(qr, L, Yz, ~miss, refine=qr.ones_column is None)
    if qr.ones_column is not None:
        coef[:, qr.ones_column] += shift
    stdev = qr.gram_stdev(L)  # cov(b) = R^-1 L^-T L^-1 R^-T
    df = (n_obs - p).astype(np.float64)
    sigma = sigma_from_rss(rss, df)
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


@one_blas_thread
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
    Y, X, coef_names, feature_ids = fit_inputs(Y, design, coef_names, feature_ids)
    G, n = Y.shape
    p = X.shape[1]
    require_full_rank(X, coef_names)

    qr = DesignQR(X)
    out = RowFits(G, p)
    amean = np.empty(G)

    # pass 1, block by block: Amean, the complete rows' fits, the partial rows' masks
    partial_rows, partial_masks = [], []
    block = rows_per_block(n, BLOCK_VALUES, minimum=256)
    for start in range(0, G, block):
        stop = min(start + block, G)
        Yb = Y[start:stop]
        row_sums = Yb.sum(axis=1)
        if np.isfinite(row_sums).all():  # then every value is finite (NaN and inf propagate)
            amean[start:stop] = row_sums / n
            out.store(slice(start, stop), *fit_complete(Yb, qr))
            continue
        if np.isinf(Yb).any():
            raise ValueError(
                "matrix contains infinite values; only finite values or NaN (missing) are allowed"
            )
        finite = ~np.isnan(Yb)
        n_obs = finite.sum(axis=1)
        amean[start:stop] = observed_row_means(Yb)
        complete = n_obs == n
        if complete.any():
            out.store(start + np.flatnonzero(complete), *fit_complete(Yb[complete], qr))
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
        gram_block = rows_per_block(n, BLOCK_VALUES, minimum=4096)
        for start in range(0, gram.size, gram_block):
            sel = gram[start : start + gram_block]
            r = rows[sel]
            c, s, sg, d, ok = _fit_rows_gram(Y[r], qr)
            out.store(r[ok], c[ok], s[ok], sg[ok], d[ok])
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
                    out.store(g, *_fit_pattern_qr(Y[np.ix_(g, mask)], X[mask], p))

    # cov.coefficients: chol2inv(R)
    return out.result(amean, qr.cov_coefficients, coef_names, feature_ids, X)
