"""limma's ``lmFit`` for every feature (row) of a G x n matrix on one design, with per-feature
missing values handled as ``lm.fit`` on the observed samples, in BLAS-sized row blocks.

Rows with missing values (in a SNP matrix with 0.5% missing calls: nearly every row, each with its
own pattern) are solved without a loop over rows or patterns (:func:`_fit_rows_sparse`): one
product ``Q' W_i y_i`` per row from the full design's orthonormal basis, the Gram matrices
``Q' W_i Q = I - sum over the row's missing samples of q_k q_k'`` by one sparse product, and
batched p x p Cholesky solves.  Rows that path cannot vouch for (rank decisions too close to
dqrdc2's tolerance, too many missing values, a residual sum of squares that the normal equations
would not give to full accuracy) go to the explicit batched Gram path (:func:`_fit_rows_gram`,
centred, residuals formed explicitly) and, if that cannot either, to one QR per missingness
pattern (:func:`_fit_pattern_qr`, exactly ``lm.fit`` with its rank detection).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import solve_triangular
from scipy.sparse import csr_matrix

from stacklm.io.blocks import rows_per_block
from stacklm.io.formats import INT8_MISSING
from stacklm.limma.lmsolve import (
    DesignQR,
    RowFits,
    fit_complete,
    fit_inputs,
    gram_solve,
    observed_row_means,
    one_blas_thread,
    refuse_infinite,
    require_full_rank,
    sigma_from_rss,
)
from stacklm.limma.marraylm import LinearModelFit
from stacklm.rstats.cholesky import batched_cholesky, lower_solve, lower_t_solve
from stacklm.rstats.qr import QR_TOLERANCE, estimable_columns

#: missingness patterns shared by at least this many rows of one block (``BLOCK_VALUES_MISSING``)
#: are fitted with their own QR, as limma does (below, the batched paths are cheaper)
MIN_ROWS_FOR_PATTERN_QR = 256

# --------------------------------------------------------------------------------------------
# lm_fit
# --------------------------------------------------------------------------------------------
#: working arrays of the complete rows' fits hold about this many float64 values (rows x samples)
BLOCK_VALUES = 1 << 17

#: rows x samples of one block of the pass over rows with missing values: the block of the input is
#: a view (int8 or float64); its per-row work arrays are p-sized, the float64 copies sub-blocks
BLOCK_VALUES_MISSING = 1 << 22

#: float64 values converted at once in :func:`_fit_rows_sparse` (a buffer that stays in the cache:
#: the conversion, the product with Q and the sum of squares read it there, not from memory)
SUBBLOCK_VALUES = 1 << 16

#: rows of the batched Gram paths: the observed design must pass dqrdc2's test with this margin
#: (squared relative norm of each column orthogonal to the earlier ones, vs tol^2 = 1e-14), and the
#: Cholesky pivots of the observed Gram matrix in the orthonormal basis of the full design must
#: exceed GRAM_MIN_PIVOT (it is near the identity unless the missing samples nearly remove a
#: direction).  Other rows go through the exact per-pattern QR path.
GRAM_RANK_MARGIN = 1e-10
GRAM_MIN_PIVOT = 1e-6

#: below this fraction of missing values in a block, the Gram matrices of the explicit path are
#: formed by a sparse product
GRAM_SPARSE_FRACTION = 0.1

#: :func:`_fit_rows_sparse` takes rows with at most this fraction of their samples missing (its
#: Gram matrices are ``I`` minus the missing samples' terms: few terms, no cancellation)
SPARSE_MAX_MISSING = 0.25

#: :func:`_fit_rows_sparse` keeps a row's residual sum of squares ``y'y - |L^-1 Q'W y|^2`` when
#: ``y'y <= RSS_MAX_RATIO * rss``: its rounding error is about ``eps * y'y``, so relative to rss at
#: most ~1e3 eps (2e-13).  For allele counts y'y / rss = 1 + mean^2 / variance is 1-3 when the
#: minor allele is counted and up to ~200 for the major allele of a SNP with MAF 0.01; rows above
#: (e.g. intensities far from 0 relative to their spread, near-exact fits) use the explicit path.
RSS_MAX_RATIO = 1e3


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


def _rank_ok(qr: DesignQR, G: np.ndarray, col_sq: np.ndarray, tol: float):
    """Cholesky factors of the rows' Gram matrices G (p, p, m; lower triangles) and the mask of the
    rows whose observed design passes dqrdc2's rank test with a margin (see GRAM_RANK_MARGIN)."""
    L, pivots = batched_cholesky(G, qr.X.shape[1])
    ratio = qr.rank_ratio(pivots, col_sq)
    margin = max(GRAM_RANK_MARGIN, tol * tol)
    ok = np.all((pivots >= GRAM_MIN_PIVOT) & (ratio >= margin) & (col_sq > 0), axis=0)
    return L, ok


def _fit_rows_sparse(Yp: np.ndarray, missing: np.ndarray, n_miss: np.ndarray, qr: DesignQR,
                     tol: float = QR_TOLERANCE):  # fmt: skip
    """Least squares of rows with a few missing values each, by batched normal equations in the
    orthonormal basis Q of the full design (X = QR), one pass over the rows' values.

    ``Yp`` (m x n, float64 with NaN or int8 with :data:`INT8_MISSING` for a missing value, C
    order), ``missing`` the sorted flat positions of its missing values, ``n_miss`` their number per
    row (each between 1 and n - 1).  For row i with observed samples W_i:

    * ``c_i = Q' W_i y_i`` and the sum of the observed values (Amean) are one product of the row,
      missing values set to 0, with ``[Q, 1]``, and ``y_i' W_i y_i`` its sum of squares, sub-block
      by sub-block (SUBBLOCK_VALUES) in a buffer that stays in the cache;
    * ``G_i = Q' W_i Q = Q'Q - sum_{k missing} q_k q_k'`` and the squared norms of the observed
      design's columns (dqrdc2's rank test, exact in this form: see
      :meth:`~stacklm.limma.lmsolve.DesignQR.rank_ratio`) for all rows by one sparse product;
    * ``G_i = L_i L_i'`` (batched Cholesky, loops over the p columns only), ``z_i = L_i^-1 c_i``,
      ``rss_i = y'W y - |z_i|^2``, ``b_Q = L_i^-T z_i``, ``b = R^-1 b_Q`` (R^-1: lm.fit's triangular
      solve), stdev.unscaled = sqrt(diag(R^-1 G_i^-1 R^-T)).

    G_i is close to the identity (few samples removed), so the solve loses nothing to conditioning;
    the products carry the rounding of a QR fit of the uncentred row (as lm.fit's Householder
    steps).  Returns coefficients (m x p), stdev, sigma, df, Amean and the mask of the rows solved:
    a row is left to the explicit paths when its rank decision is close to dqrdc2's tolerance
    (GRAM_RANK_MARGIN, GRAM_MIN_PIVOT), more than SPARSE_MAX_MISSING of it is missing, or rss is
    not accurate from the normal equations (``y'W y > RSS_MAX_RATIO * rss``; non-finite sums).
    """
    m, n = Yp.shape
    p = qr.X.shape[1]
    int8 = Yp.dtype == np.int8
    n_obs = n - n_miss
    centre = qr.ones_column is not None
    c = np.empty((m, p))
    yy = np.empty(m)
    amean = np.empty(m)
    step = rows_per_block(n, SUBBLOCK_VALUES)
    buf = np.empty((min(step, m), n))
    starts = np.arange(0, m, step)
    ptr = np.searchsorted(missing, np.append(starts, m) * n)
    for k, a in enumerate(starts):  # loop over sub-blocks of rows
        b = min(a + step, m)
        B = buf[: b - a]
        gaps = missing[ptr[k] : ptr[k + 1]] - a * n
        if int8:  # exact integer sums; the centred values in one conversion
            total = Yp[a:b].sum(axis=1, dtype=np.int64) - INT8_MISSING * n_miss[a:b]
            amean[a:b] = total / n_obs[a:b]
            if centre:
                np.subtract(Yp[a:b], amean[a:b, None], out=B)
            else:
                B[...] = Yp[a:b]
            B.reshape(-1)[gaps] = 0.0
        else:
            B[...] = Yp[a:b]
            B.reshape(-1)[gaps] = 0.0
            amean[a:b] = B.sum(axis=1) / n_obs[a:b]
            if centre:
                B -= amean[a:b, None]
                B.reshape(-1)[gaps] = 0.0
        np.matmul(B, qr.Q, out=c[a:b])
        yy[a:b] = np.einsum("ij,ij->i", B, B)
    indptr = np.concatenate([[0], np.cumsum(n_miss)])
    M = csr_matrix((np.ones(missing.size), missing % n, indptr), shape=(m, n))
    down = (M @ qr.gram_terms).T  # (p(p+1)/2 + p, m)
    t = qr.q_outer.shape[1]
    G = np.zeros((p, p, m))
    G[qr.tri] = qr.q_outer_sum[:, None] - down[:t]
    col_sq = qr.x_squared_sum[:, None] - down[t:]
    L, ok = _rank_ok(qr, G, col_sq, tol)
    z = lower_solve(L, c.T)
    rss = yy - np.einsum("jm,jm->m", z, z)
    with np.errstate(invalid="ignore"):
        ok &= np.isfinite(yy) & np.isfinite(rss) & (yy <= RSS_MAX_RATIO * rss)
    ok &= n_miss <= SPARSE_MAX_MISSING * n
    coef = solve_triangular(qr.R, lower_t_solve(L, z), check_finite=False).T
    if centre:  # least squares is equivariant under the shift by the row mean
        coef[:, qr.ones_column] += amean
    stdev = qr.gram_stdev(L)
    df = (n_obs - p).astype(np.float64)
    sigma = sigma_from_rss(np.maximum(rss, 0.0), df)
    return coef, stdev, sigma, df, amean, ok


def _fit_rows_gram(Y: np.ndarray, qr: DesignQR, tol: float = QR_TOLERANCE):
    """Exact least squares for a block of rows with individual missingness patterns, residuals
    formed explicitly.

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
    L, ok = _rank_ok(qr, G, col_sq, tol)
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


#: random 64-bit keys of the sample columns (hashes of missingness patterns), grown on demand
_COLUMN_KEYS = np.zeros(0, dtype=np.uint64)


def _frequent_pattern_rows(missing: np.ndarray, n_miss: np.ndarray, n: int) -> np.ndarray:
    """Rows (of a block) whose missingness pattern may be shared by at least
    MIN_ROWS_FOR_PATTERN_QR rows: the patterns' 64-bit hashes (sums of random keys of the missing
    columns, wrapping) are counted; equal hashes are candidates only, the exact grouping follows."""
    global _COLUMN_KEYS
    m = n_miss.size
    if m < MIN_ROWS_FOR_PATTERN_QR:
        return np.zeros(0, dtype=np.int64)
    if _COLUMN_KEYS.size < n:
        rng = np.random.default_rng(20260601)
        _COLUMN_KEYS = rng.integers(0, 2**63, size=max(n, 2 * _COLUMN_KEYS.size), dtype=np.uint64)
    sums = np.zeros(missing.size + 1, dtype=np.uint64)
    np.cumsum(_COLUMN_KEYS[missing % n], out=sums[1:])
    ends = np.cumsum(n_miss)
    key = (sums[ends] - sums[ends - n_miss]) ^ n_miss.astype(np.uint64)
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] >= MIN_ROWS_FOR_PATTERN_QR)


def _float_rows(Yb: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a block as float64 with NaN for a missing value (int8 blocks decoded)."""
    sel = Yb[rows]
    if sel.dtype == np.int8:
        out = sel.astype(np.float64)
        out[sel == INT8_MISSING] = np.nan
        return out
    return np.array(sel, dtype=np.float64)


def _fit_complete_rows(Yb: np.ndarray, rows, qr: DesignQR, out: RowFits, amean, start: int):
    """Rows without missing values (``rows`` of the block ``Yb``, a slice or an index array): one
    QR of the design for all, in sub-blocks of BLOCK_VALUES."""
    idx = np.arange(Yb.shape[0])[rows]
    n = Yb.shape[1]
    step = rows_per_block(n, BLOCK_VALUES, minimum=256)
    for a in range(0, idx.size, step):
        r = idx[a : a + step]
        Yr = np.asarray(Yb[r[0] : r[-1] + 1] if r[-1] - r[0] + 1 == r.size else Yb[r], np.float64)
        amean[start + r] = Yr.sum(axis=1) / n
        out.store(start + r, *fit_complete(Yr, qr))


def _fit_slow_rows(Yb, rows, targets, qr: DesignQR, X, p, out: RowFits, by_qr) -> None:
    """Rows of a block the sparse path left (``rows``, stored as rows ``targets`` of ``out``): the
    explicit batched Gram path, and one QR per missingness pattern for the rows it leaves and for
    the rows of frequent patterns (``by_qr``, a mask over ``rows``)."""
    if rows.size == 0:
        return
    Yf = _float_rows(Yb, rows)
    by_qr = by_qr.copy()
    gram = np.flatnonzero(~by_qr)
    if gram.size:
        c, s, sg, d, ok = _fit_rows_gram(Yf[gram], qr)
        out.store(targets[gram[ok]], c[ok], s[ok], sg[ok], d[ok])
        by_qr[gram[~ok]] = True
    sel = np.flatnonzero(by_qr)
    if not sel.size:
        return
    finite = ~np.isnan(Yf[sel])
    gid, _ = _pattern_groups(np.packbits(finite, axis=1))
    order = np.argsort(gid, kind="stable")
    bounds = np.flatnonzero(np.diff(gid[order])) + 1
    for group in np.split(order, bounds):  # loop over missingness patterns
        mask = finite[group[0]]
        fit = _fit_pattern_qr(Yf[np.ix_(sel[group], mask)], X[mask], p)
        out.store(targets[sel[group]], *fit)


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
    marks a missing value.  An int8 array (allele counts, as an int8 store holds them) is fitted as
    it is, with -127 (:data:`stacklm.io.formats.INT8_MISSING`) for a missing value, without a
    float64 copy of the matrix.

    Returns coefficients, stdev.unscaled (sqrt of the diagonal of (X'X)^-1 for the design rows the
    feature was fitted on), sigma (residual standard deviation), df.residual and Amean (row mean of the
    observed values), as ``lmFit``.  Features with missing values are fitted on their observed samples;
    coefficients that are not estimable there are NaN, as are the statistics of all-missing rows and
    the sigma of rows with zero residual df.  The full design must have full column rank (use
    :func:`stacklm.design.design_matrix`, which names aliased columns).

    Rows are processed in blocks (``BLOCK_VALUES_MISSING`` values each), so the working memory
    beyond the input and the per-feature results stays bounded.  Complete rows share one QR of
    ``X``; missingness patterns shared by at least ``MIN_ROWS_FOR_PATTERN_QR`` rows of a block get
    their own QR with ``lm.fit``'s rank detection; the other rows with missing values are solved by
    :func:`_fit_rows_sparse` (batched normal equations) or, where it cannot vouch for the result, by
    :func:`_fit_rows_gram` and the per-pattern QR (see the module docstring).
    """
    Y, X, coef_names, feature_ids = fit_inputs(Y, design, coef_names, feature_ids, keep_int8=True)
    G, n = Y.shape
    p = X.shape[1]
    require_full_rank(X, coef_names)
    int8 = Y.dtype == np.int8

    qr = DesignQR(X)
    out = RowFits(G, p)
    amean = np.full(G, np.nan)
    block = rows_per_block(n, BLOCK_VALUES_MISSING, minimum=256)
    for start in range(0, G, block):
        stop = min(start + block, G)
        Yb = np.ascontiguousarray(Y[start:stop])
        m = stop - start
        if int8:
            missing = np.flatnonzero(Yb.reshape(-1) == INT8_MISSING)
        else:
            row_sums = Yb.sum(axis=1)
            if np.isfinite(row_sums).all():  # then every value is finite (NaN and inf propagate)
                _fit_complete_rows(Yb, slice(None), qr, out, amean, start)
                continue
            refuse_infinite(Yb)
            missing = np.flatnonzero(np.isnan(Yb))
        n_miss = np.bincount(missing // n, minlength=m)
        complete = np.flatnonzero(n_miss == 0)
        if complete.size:
            _fit_complete_rows(Yb, complete, qr, out, amean, start)
        part = np.flatnonzero((n_miss > 0) & (n_miss < n))
        if not part.size:
            continue
        if part.size < m:  # the partial rows, contiguous, and their missing values' positions
            Yb = Yb[part]
            missing = np.flatnonzero(Yb.reshape(-1) == INT8_MISSING if int8 else np.isnan(Yb))
            n_miss = n_miss[part]
        c, s, sg, d, am, ok = _fit_rows_sparse(Yb, missing, n_miss, qr)
        amean[start + part] = am
        frequent = _frequent_pattern_rows(missing, n_miss, n)
        by_qr = np.zeros(part.size, dtype=bool)
        by_qr[frequent] = True
        ok &= ~by_qr
        out.store(start + part[ok], c[ok], s[ok], sg[ok], d[ok])
        slow = np.flatnonzero(~ok)
        _fit_slow_rows(Yb, slow, start + part[slow], qr, X, p, out, by_qr[slow])

    # cov.coefficients: chol2inv(R)
    return out.result(amean, qr.cov_coefficients, coef_names, feature_ids, X)
