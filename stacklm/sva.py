"""Surrogate variable analysis: a port of Bioconductor sva 3.46.

Functions mirror (features are ROWS, samples are COLUMNS: ``Y`` is G x n):

- :func:`f_pvalue`   -> ``sva::f.pvalue``
- :func:`num_sv`     -> ``sva::num.sv`` (methods ``"be"`` and ``"leek"``)
- :func:`edge_lfdr`  -> ``sva:::edge.lfdr`` (probit transform), on the exact ports of R's
  ``qnorm``, ``density()`` and ``smooth.spline()`` (GCV) / ``predict`` in :mod:`stacklm.rnumerics`
- :func:`sva`        -> ``sva::sva(method = "irw")`` -> ``sva:::irwsva.build``
- :func:`sv_associations` -> R^2 / p-value of each surrogate variable against sample covariates
  (``summary(lm(sv ~ covariate))$r.squared`` and ``anova()``'s F-test p-value).

Cost. Every pass over the data is done in row blocks with BLAS calls (no loop over features),
so the extra memory is one row block plus a few length-G vectors, never a copy of the G x n
matrix. Residual sums of squares use a thin QR of the design (``O(G n p)``); inside sva, where
the models are nested, ``rss = rss(mod0) - ||C'y||^2`` with C an orthonormal basis of the
extra columns, one thin product per iteration. Each "SVD" of sva is the eigendecomposition of
the n x n Gram matrix ``Z'Z`` (``O(G n^2)``). 1M x 100 with K = 2 takes about 7 s on two cores
(``benchmarks/bench_sva.py``).

Missing values. ``f_pvalue`` returns NaN for features with any non-finite value (R would return
NA). ``num_sv`` and ``sva`` estimate everything on the complete features only (features with no
non-finite value); ``sva`` returns ``pprob_gam`` / ``pprob_b`` of length G with NaN on the
incomplete features. If fewer complete features than samples remain, a ``ValueError`` is
raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from . import rnumerics

__all__ = [
    "SvaResult",
    "edge_lfdr",
    "f_pvalue",
    "num_sv",
    "sv_associations",
    "sva",
]

# number of matrix elements handled per row block (8 MB of float64 per temporary: small enough
# for the element-wise work to stay in cache, large enough for efficient BLAS calls)
_BLOCK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Consecutive row slices holding about ``_BLOCK_ELEMENTS`` matrix elements each."""
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


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


def _orient_columns(v: np.ndarray) -> np.ndarray:
    """Fix the arbitrary sign of each column: its largest-magnitude entry is positive."""
    if v.size == 0:
        return v
    idx = np.argmax(np.abs(v), axis=0)
    signs = np.sign(v[idx, np.arange(v.shape[1])])
    signs[signs == 0] = 1.0
    return v * signs


# --------------------------------------------------------------------------------------------
# f.pvalue
# --------------------------------------------------------------------------------------------


def _f_test_pvalue(rss1, rss0, df1: int, df0: int, n: int) -> np.ndarray:
    """``1 - pf(F, df1 - df0, n - df1)`` as sva writes it.

    R's ``1 - pf()`` carries the rounding of the lower-tail probability (p-values are
    multiples of 2^-53 near 0, and 0 for huge F). To agree with R to the last bit we compute
    the upper tail accurately (``fdtrc``) and form the lower tail the way TOMS 708
    (``bratio``, behind R's ``pbeta``) does, ``w = 0.5 - w1 + 0.5``, before ``1 - w``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        fstats = ((rss0 - rss1) / (df1 - df0)) / (rss1 / (n - df1))
        upper = special.fdtrc(df1 - df0, n - df1, np.maximum(fstats, 0.0))
    cdf = (0.5 - upper) + 0.5
    p = 1.0 - cdf
    return np.where(np.isnan(fstats), np.nan, p)


def f_pvalue(Y, mod, mod0) -> np.ndarray:
    """F-test p-values comparing nested linear models, row by row (``sva::f.pvalue``).

    Parameters
    ----------
    Y : (G, n) float array, features in rows.
    mod, mod0 : (n, p1) and (n, p0) design matrices, ``mod0`` nested in ``mod``.

    Returns
    -------
    (G,) array of ``1 - pf(F, p1 - p0, n - p1)``; NaN for features with a non-finite value.
    Differences from R: projections use a thin QR instead of ``solve(t(mod) %*% mod)``.
    """
    Y = _as_expression(Y)
    n = Y.shape[1]
    mod = _as_design(mod, n, "mod")
    mod0 = _as_design(mod0, n, "mod0")
    q1 = _orthonormal_basis(mod, "mod")
    q0 = _orthonormal_basis(mod0, "mod0")
    rss1, rss0 = _residual_sums_of_squares(Y, [q1, q0])
    return _f_test_pvalue(rss1, rss0, mod.shape[1], mod0.shape[1], n)


# --------------------------------------------------------------------------------------------
# edge.lfdr
# --------------------------------------------------------------------------------------------


def edge_lfdr(
    p,
    trunc: bool = True,
    monotone: bool = True,
    adj: float = 1.5,
    eps: float = 1e-8,
    lambda_: float = 0.8,
) -> np.ndarray:
    """Local false discovery rates of p-values (``sva:::edge.lfdr``, probit transform).

    ``pi0 = min(mean(p >= lambda) / (1 - lambda), 1)``; ``x = qnorm(clip(p, eps, 1 - eps))``;
    the density of x is estimated by R's ``density(x, adjust = adj)`` smoothed by
    ``smooth.spline`` (GCV) and predicted at x (the ports of :mod:`stacklm.rnumerics`, as
    ``qvalue::lfdr``); ``lfdr = pi0 * dnorm(x) / f(x)``, truncated at 1 and made monotone in p
    (cumulative maximum along increasing p).  ``p`` must be finite (R errors on NA).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError("p must be a 1-d array of at least 2 p-values")
    if not np.all(np.isfinite(p)):
        raise ValueError("edge_lfdr: p contains missing or non-finite values")
    pi0 = min(np.mean(p >= lambda_) / (1 - lambda_), 1.0)
    p = np.minimum(np.maximum(p, eps), 1 - eps)
    x = rnumerics.qnorm(p)
    grid_x, grid_y = rnumerics.density(x, adj)  # x in input order: R's binning order
    fit = rnumerics.smooth_spline(grid_x, grid_y)
    # the rest is element-wise, done along increasing p (faster spline evaluation, and R's
    # cummax(lfdr[order(p)])[rank(p)]; tied p have equal lfdr, so the order of ties is moot)
    order = np.argsort(p)
    x_sorted = x[order]
    lfdr_sorted = pi0 * rnumerics.dnorm(x_sorted) / fit.predict(x_sorted)
    if trunc:
        lfdr_sorted[lfdr_sorted > 1] = 1.0
    if monotone:
        lfdr_sorted = np.maximum.accumulate(lfdr_sorted)
    lfdr = np.empty_like(lfdr_sorted)
    lfdr[order] = lfdr_sorted
    return lfdr


# --------------------------------------------------------------------------------------------
# num.sv
# --------------------------------------------------------------------------------------------


def _complete_subset(Y: np.ndarray, n_samples: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    complete = _complete_rows(Y)
    n_complete = int(complete.sum())
    if n_complete < n_samples:
        raise ValueError(
            f"{what}: only {n_complete} features without missing values, fewer than the "
            f"{n_samples} samples; surrogate variables are estimated on complete features only"
        )
    Yc = Y if n_complete == Y.shape[0] else Y[complete]
    return Yc, complete


def _residual_gram(Y: np.ndarray, q: np.ndarray, rng: np.random.Generator | None = None):
    """Gram matrix R'R of the residuals R = Y (I - H); with ``rng``, as R's num.sv 'be' does,
    each row of the residual matrix is permuted and then residualised again."""
    n = Y.shape[1]
    gram = np.zeros((n, n))
    buffer = None
    for rows in _row_blocks(Y.shape[0], n):
        block = Y[rows]
        if buffer is None:
            buffer = np.empty(block.shape)
        resid = buffer[: block.shape[0]]
        np.matmul(block @ q, q.T, out=resid)
        np.subtract(block, resid, out=resid)
        if rng is not None:
            resid = rng.permuted(resid, axis=1)
            resid -= (resid @ q) @ q.T
        gram += resid.T @ resid
    return gram


def _r_colon(a: int, b: int) -> np.ndarray:
    """R's ``a:b`` (may run downwards)."""
    return np.arange(a, b + 1) if a <= b else np.arange(a, b - 1, -1)


def _num_sv_leek(Y: np.ndarray, mod: np.ndarray) -> int:
    """``num.sv(method = "leek")`` with the zero-threshold row made deterministic.

    R computes the eigenvalues of ``wm = R'R / m - P * sigbar`` (``R = dats P``, ``P`` the
    residual projection) and counts, for thresholds ``a * m^(-1/3) * n``, ``a`` in
    ``seq(0, 2, length = 100)``, how many exceed each threshold. ``wm`` has ``rank(mod)``
    eigenvalues that are exactly zero in exact arithmetic (its null space is the span of
    ``mod``); in floating point their signs are rounding noise, so R's counts at ``a = 0`` are
    ``(n - p) + #{noise > 0}`` and their variance over the 10 sample sizes, ``ss[1]`` -- which
    sets R's ``bumpstart``, ``start`` and ``finish`` -- changes with the BLAS, the thread
    count and the formula. Here the ``n - p`` eigenvalues are computed on the complement of
    ``mod`` (exactly ``eig(Qc' dats'dats Qc) / m - sigbar``), the structural zeros are
    excluded from the counts, and ``ss[1]`` is the variance of these exact counts plus
    ``p / 4``, the expected variance of R's noise term (a sum of ``p`` fair coin flips).
    """
    G, n = Y.shape
    p = mod.shape[1]
    a = rnumerics.seq(0.0, 2.0, 100)
    chunk = G // 10
    if chunk < 1:
        raise ValueError("num_sv(method='leek') needs at least 10 features")
    _orthonormal_basis(mod, "mod")  # full-rank check
    complement = np.linalg.qr(mod, mode="complete")[0][:, p:]  # basis of span(mod)^perp
    rhat = np.zeros((100, 10))
    gram = np.zeros((n, n))
    for j in range(1, 11):
        block = Y[(j - 1) * chunk : j * chunk]
        gram += block.T @ block
        m = j * chunk
        sigbar = np.linalg.eigvalsh(gram)[0] / m
        restricted = complement.T @ gram @ complement
        values = np.linalg.eigvalsh((restricted + restricted.T) / 2) / m - sigbar
        thresholds = a * float(m) ** (-1.0 / 3.0) * n
        # number of eigenvalues ranked before each threshold in R's (stable) decreasing order
        rhat[:, j - 1] = np.sum(values[None, :] > thresholds[:, None], axis=1)
    ss = np.var(rhat, axis=1, ddof=1)
    ss[0] += p / 4.0

    def which_max(mask) -> int:  # R's which.max on a logical vector (NA ignored), 1-based
        mask = np.asarray(mask, dtype=float)
        if np.all(np.isnan(mask)):
            return 1
        return int(np.nanargmax(mask)) + 1

    bumpstart = which_max(ss > 2 * ss[0])
    tail_idx = _r_colon(bumpstart + 1, 100)
    tail = np.array([ss[i - 1] if i <= 100 else np.nan for i in tail_idx])
    seq = np.concatenate([np.full(bumpstart, 1e5), tail])
    with np.errstate(invalid="ignore"):
        cmp = np.where(np.isnan(seq), np.nan, seq < 0.5 * ss[0])
    start = which_max(cmp)
    weights = np.concatenate([np.zeros(start), np.ones(100 - start)])
    finish = which_max(ss * weights > ss[0])
    if finish == 1:
        finish = 100
    values = rhat[_r_colon(start, finish) - 1, 9]
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])


def num_sv(
    Y,
    mod,
    method: str = "be",
    B: int = 20,
    seed=None,
    vfilter: int | None = None,
) -> int:
    """Number of surrogate variables (``sva::num.sv``).

    Parameters
    ----------
    Y : (G, n) expression matrix; only complete features are used (see module docstring).
    mod : (n, p) full-model design.
    method : ``"be"`` (Buja & Eyuboglu permutation test, ``B`` permutations, significance
        0.1) or ``"leek"`` (asymptotic, deterministic).
    seed : int or ``numpy.random.Generator`` for the "be" permutations. The permutations come
        from numpy's RNG, so the count is stable for a given seed but not bit-identical to R's
        ``set.seed()`` stream.
    vfilter : keep the features of largest variance as R does (``rank(-var) < vfilter``,
        i.e. ``vfilter - 1`` features, R's strict inequality).

    Differences from R: singular values come from the eigenvalues of the n x n Gram matrix
    of the residuals; the tested components ``ndf = min(G, n) - rank(mod)`` (R uses
    ``ceiling(trace(H))``, equal up to rounding). For ``"leek"``, R's statistic at the zero
    threshold is decided by the signs of rounding errors (see :func:`_num_sv_leek`); it is
    replaced by its expectation, which makes the count deterministic (bladderbatch: 2, as R).
    """
    Y = _as_expression(Y)
    n = Y.shape[1]
    mod = _as_design(mod, n, "mod")
    Y, _ = _complete_subset(Y, n, "num_sv")
    if vfilter is not None:
        if vfilter < 100 or vfilter > Y.shape[0]:
            raise ValueError(
                f"The number of genes used in the analysis must be between 100 and {Y.shape[0]}"
            )
        variances = np.var(Y, axis=1, ddof=1)
        ranks = pd.Series(-variances).rank(method="average").to_numpy()
        Y = Y[ranks < vfilter]
    if method == "leek":
        return _num_sv_leek(Y, mod)
    if method != "be":
        raise ValueError("method must be 'be' or 'leek'")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    m = Y.shape[0]
    q = _orthonormal_basis(mod, "mod")
    ndf = min(m, n) - mod.shape[1]
    if ndf < 1:
        raise ValueError("num_sv: no residual degrees of freedom")

    def dstat(gram):
        d2 = np.linalg.eigvalsh(gram)[::-1][:ndf]
        return d2 / np.sum(d2)

    observed = dstat(_residual_gram(Y, q))
    null = np.vstack([dstat(_residual_gram(Y, q, rng)) for _ in range(B)])
    psv = np.mean(null >= observed[None, :], axis=0)
    psv = np.maximum.accumulate(psv)
    return int(np.sum(psv <= 0.1))


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
    sv = _orient_columns(vectors.copy())

    def expand(values: np.ndarray) -> np.ndarray:
        if values.shape[0] == G:
            return values
        out = np.full(G, np.nan)
        out[complete] = values
        return out

    return SvaResult(sv=sv, pprob_gam=expand(pprob_gam), pprob_b=expand(pprob_b), n_sv=n_sv)


# --------------------------------------------------------------------------------------------
# associations of surrogate variables with sample covariates
# --------------------------------------------------------------------------------------------


def _is_categorical(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def sv_associations(sv, samples: pd.DataFrame) -> pd.DataFrame:
    """Association of each surrogate variable with each sample covariate.

    For SV k and covariate c (rows of ``sv`` and ``samples`` are the same samples, in the same
    order), samples with a missing value of c are dropped, then ``lm(sv_k ~ c)`` is fitted:
    c categorical (object / category / bool / string dtype) -> one-way ANOVA on its levels;
    c numeric -> simple linear regression. Reports ``R^2`` and the F-test p-value (R's
    ``summary(lm)$r.squared`` and ``anova(lm)$"Pr(>F)"[1]``). Covariates with fewer than two
    distinct values, or no residual degrees of freedom, give NaN.

    Returns a long DataFrame with columns ``sv, covariate, kind, r2, p_value, n`` (one row per
    SV and covariate, SV-major).
    """
    if isinstance(sv, pd.DataFrame):
        names = [str(c) for c in sv.columns]
        values = sv.to_numpy(dtype=np.float64)
    else:
        values = np.asarray(sv, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        names = [f"sv{k + 1}" for k in range(values.shape[1])]
    if values.shape[0] != len(samples):
        raise ValueError(
            f"sv has {values.shape[0]} rows but samples has {len(samples)}; they must match"
        )
    per_covariate = {}
    for col in samples.columns:
        series = samples[col]
        present = series.notna().to_numpy()
        m = int(present.sum())
        y = values[present]
        categorical = _is_categorical(series)
        if categorical:
            codes, levels = pd.factorize(series[present], sort=True)
            n_levels = len(levels)
            X = np.zeros((m, n_levels))
            X[np.arange(m), codes] = 1.0
            df_model = n_levels - 1
        else:
            xval = series[present].to_numpy(dtype=np.float64)
            X = np.column_stack([np.ones(m), xval])
            df_model = 1 if np.unique(xval).size > 1 else 0
        df_resid = m - df_model - 1
        r2 = np.full(values.shape[1], np.nan)
        pval = np.full(values.shape[1], np.nan)
        if df_model >= 1 and df_resid >= 1:
            centred = y - y.mean(axis=0)
            ss_tot = np.sum(centred**2, axis=0)
            coef, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ coef
            ss_res = np.sum(resid**2, axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = 1.0 - ss_res / ss_tot
                fstat = ((ss_tot - ss_res) / df_model) / (ss_res / df_resid)
                pval = special.fdtrc(df_model, df_resid, np.maximum(fstat, 0.0))
        per_covariate[col] = ("categorical" if categorical else "numeric", r2, pval, m)
    rows = []
    for k, name in enumerate(names):
        for col, (kind, r2, pval, m) in per_covariate.items():
            rows.append((name, str(col), kind, float(r2[k]), float(pval[k]), m))
    return pd.DataFrame(rows, columns=["sv", "covariate", "kind", "r2", "p_value", "n"])
