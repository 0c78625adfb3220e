"""sva's ``num.sv`` (methods ``be`` with permutations and ``leek``; for ``leek`` also its count
matrix and decision rule, :func:`leek_counts` and :func:`leek_decision`, so that the
deterministic counts can be compared with R's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stacklm.rstats.basic import seq
from stacklm.sva.linalg import (
    _as_design,
    _as_expression,
    _complete_rows,
    _orthonormal_basis,
    _row_blocks,
)

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


#: R's thresholds for ``num.sv(method = "leek")``: ``a = seq(0, 2, length = 100)``
LEEK_A = seq(0.0, 2.0, 100)


def _leek_rhat(Y: np.ndarray, mod: np.ndarray) -> np.ndarray:
    """The (100, 10) count matrix of ``num.sv(method = "leek")`` on prepared inputs (complete
    rows, after ``vfilter``); row ``a = 0`` without the ``rank(mod)`` structural zeros."""
    G, n = Y.shape
    p = mod.shape[1]
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
        thresholds = LEEK_A * float(m) ** (-1.0 / 3.0) * n
        # number of eigenvalues ranked before each threshold in R's (stable) decreasing order
        rhat[:, j - 1] = np.sum(values[None, :] > thresholds[:, None], axis=1)
    return rhat


def leek_decision(rhat, zero_row_variance: float | None = None) -> int:
    """R's decision rule of ``num.sv(method = "leek")`` on its count matrix ``rhat``.

    ``ss = rowVars(rhat)``; ``bumpstart`` = first threshold with ``ss > 2 ss[1]``; ``start`` =
    first one after it with ``ss < ss[1] / 2``; ``finish`` = first one after ``start`` with
    ``ss > ss[1]`` (100 if none); the answer is the mode (smallest on ties, as ``table`` +
    ``which.max``) of the last column ``rhat[start:finish, 10]``. ``zero_row_variance``
    replaces ``ss[1]`` (``None``: R's own, the variance of the first row).
    """
    rhat = np.asarray(rhat, dtype=np.float64)
    if rhat.shape != (100, 10):
        raise ValueError(f"rhat must be 100 x 10, got {rhat.shape}")
    ss = np.var(rhat, axis=1, ddof=1)
    if zero_row_variance is not None:
        ss[0] = zero_row_variance

    def which_max(mask) -> int:  # R's which.max on a logical vector (NA ignored), 1-based
        mask = np.asarray(mask, dtype=float)
        if np.all(np.isnan(mask)):
            return 1
        return int(np.nanargmax(mask)) + 1

    bumpstart = which_max(ss > 2 * ss[0])
    tail_idx = _r_colon(bumpstart + 1, 100)
    tail = np.array([ss[i - 1] if i <= 100 else np.nan for i in tail_idx])
    bumps = np.concatenate([np.full(bumpstart, 1e5), tail])
    with np.errstate(invalid="ignore"):
        cmp = np.where(np.isnan(bumps), np.nan, bumps < 0.5 * ss[0])
    start = which_max(cmp)
    weights = np.concatenate([np.zeros(start), np.ones(100 - start)])
    finish = which_max(ss * weights > ss[0])
    if finish == 1:
        finish = 100
    values = rhat[_r_colon(start, finish) - 1, 9]
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])


def leek_counts(Y, mod, vfilter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The thresholds ``a`` (100) and the count matrix ``rhat`` (100 x 10) behind
    ``num_sv(Y, mod, method="leek")`` (same inputs: complete features, ``vfilter``).

    ``rhat[i, j]`` is R's count: the number of eigenvalues of ``wm`` (on the first
    ``(j + 1) * floor(G / 10)`` features) above the threshold ``a[i] * m^(-1/3) * n``. Rows
    ``a > 0`` are R's counts (they differ only if an eigenvalue lies within rounding of a
    threshold; tests/data/bladder: identical). Row ``a = 0`` counts the ``n - rank(mod)`` eigenvalues
    on the complement of ``mod`` only; R's adds the ``rank(mod)`` eigenvalues that are zero in
    exact arithmetic whose rounding error happens to be positive (see :func:`num_sv`).
    """
    Y, mod = _prepare(Y, mod, vfilter)
    return LEEK_A.copy(), _leek_rhat(Y, mod)


def _num_sv_leek(Y: np.ndarray, mod: np.ndarray) -> int:
    """``num.sv(method = "leek")`` with the zero-threshold row made deterministic: R's rule
    (:func:`leek_decision`) with ``ss[1]`` = the variance of the exact row ``a = 0`` plus
    ``p / 4``, the expected variance of R's noise term (a sum of ``p`` fair coin flips)."""
    rhat = _leek_rhat(Y, mod)
    p = mod.shape[1]
    return leek_decision(rhat, float(np.var(rhat[0], ddof=1)) + p / 4.0)


def _prepare(Y, mod, vfilter: int | None) -> tuple[np.ndarray, np.ndarray]:
    """num.sv's inputs: complete features only, then R's ``vfilter``."""
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
    return Y, mod


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
    ``ceiling(trace(H))``, equal up to rounding).

    ``"leek"``: R computes the eigenvalues of ``wm = R'R / m - P * sigbar`` (``R = dats P``,
    ``P`` the residual projection, ``dats`` the first ``m = j * floor(G / 10)`` features,
    ``j = 1..10``) and counts, for thresholds ``a * m^(-1/3) * n``, ``a`` in
    ``seq(0, 2, length = 100)``, how many exceed each threshold (:func:`leek_counts`).
    ``wm`` has ``p = rank(mod)`` eigenvalues that are exactly zero in exact arithmetic (its
    null space is the span of ``mod``); in floating point they are rounding noise of either
    sign, so R's counts at ``a = 0`` are ``(n - p) + #{noise > 0}``. Their variance over the
    10 sample sizes, ``ss[1]``, sets R's ``bumpstart``, ``start`` and ``finish``
    (:func:`leek_decision`), hence the answer, which therefore changes with the BLAS /
    LAPACK build, the thread count and the formula, not with the data. Here the ``n - p``
    eigenvalues are computed on the complement of ``mod`` (exactly
    ``eig(Qc' dats'dats Qc) / m - sigbar``), the structural zeros are left out of the
    counts, and ``ss[1]`` is the variance of these exact counts plus ``p / 4``, the expected
    variance of R's noise term (a sum of ``p`` fair coin flips). The counts at ``a > 0`` are
    R's; the answer is deterministic. bladderbatch (22,283 probes): 2, as R. Its 1,000-probe
    subset in tests/data/bladder: 0, where R's row ``a = 0`` (55 or 56 for ``n - p = 54``,
    variance 0.23) gives ``start``..``finish`` = rows 5..6 (counts 5 and 4) and R's answer 4;
    ours has ``ss[1]`` = 0.75, rows 4..100, mode 0. R's rule on R's counts gives R's 4.
    """
    Y, mod = _prepare(Y, mod, vfilter)
    n = Y.shape[1]
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
