"""limma's ``duplicateCorrelation`` (limma 3.63.2, R/dups.R): the per-feature REML intra-block
correlation (statmod's ``mixedModel2Fit``, see :mod:`stacklm.statmod.mixedmodel`) and its consensus
``tanh(mean(atanh(rho), trim = 0.15))``.

The work is split as a chunked workflow runs it: :func:`duplicate_correlation_rows` on any set of
rows (the per-feature correlations, clamped as limma clamps them, depend on the row alone, so
chunks give the same numbers), :func:`consensus_correlation` once on all of them.
:func:`duplicate_correlation` does both, as the R function.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stacklm.limma.lmsolve import matrix_weights, one_blas_thread
from stacklm.rstats.qr import batched_qr
from stacklm.rstats.sums import r_mean
from stacklm.statmod.mixedmodel import DAMPED, MAXIT, mixed_model2_fit

#: limma keeps the correlations inside [1/(1 - max block size) + 0.01, 0.99]
RHO_MAX = 0.99


@dataclass
class RowCorrelations:
    """Per-feature part of duplicateCorrelation (one entry per input row)."""

    atanh_correlations: np.ndarray  # atanh of the clamped correlation; NaN where R gives NA/NaN
    correlations: np.ndarray  # the REML correlation before clamping
    iterations: np.ndarray  # glmgam.fit iterations (0 where the GLM did not run)
    crit: np.ndarray  # glmgam.fit's last crossprod(dl, dbeta)
    status: np.ndarray  # glmgam / mixed-model status codes (stacklm.statmod.glmgam)
    not_converged: np.ndarray  # the REML iterations stopped at maxit or for too much damping

    @property
    def n_not_converged(self) -> int:
        return int(self.not_converged.sum())


@dataclass
class DuplicateCorrelation:
    """limma's result list: ``consensus.correlation`` (= ``cor``) and ``atanh.correlations``, plus
    how many features' REML did not converge and how many are NA."""

    consensus: float
    atanh_correlations: np.ndarray
    n_not_converged: int
    n_na: int
    rows: RowCorrelations | None = None


def consensus_correlation(atanh_correlations, trim: float = 0.15) -> float:
    """``tanh(mean(atanh.correlations, trim = trim, na.rm = TRUE))``, limma's consensus."""
    return float(np.tanh(r_mean(atanh_correlations, trim=trim, na_rm=True)))


def unwrap_dups(M: np.ndarray, ndups: int = 2, spacing: int = 1) -> np.ndarray:
    """limma's ``unwrapdups``: the ndups spots of each gene (``spacing`` rows apart) side by side."""
    if ndups == 1:
        return M
    M = np.asarray(M)
    nspots, nslides = M.shape
    ngroups = nspots // ndups // spacing
    if ngroups * ndups * spacing != nspots:
        raise ValueError(f"{nspots} rows are not a whole number of {ndups} x {spacing} groups")
    A = M.reshape((spacing, ndups, ngroups, nslides), order="F").transpose(0, 2, 1, 3)
    return A.reshape((spacing * ngroups, ndups * nslides), order="F")


def block_codes(block, n: int, sort: bool = True):
    """Codes of the block levels, in R's ``factor()`` order (sorted values) or, without ``sort``, in
    the order of ``unique(block)`` (gls.series'), and the number of levels."""
    values = np.asarray(block).ravel()
    if values.size != n:
        raise ValueError(f"block has {values.size} entries but the matrix has {n} sample columns")
    if pd.isna(pd.Series(values)).any():
        raise ValueError("block contains missing values")
    codes, levels = pd.factorize(pd.Series(values), sort=sort)
    return np.asarray(codes, dtype=np.int64), len(levels)


def block_structure_check(design: np.ndarray, block) -> str | None:
    """The reason limma sets the correlation to 0 without fitting (or None): all blocks of size 1,
    or the block factor already encoded in the design."""
    X = np.asarray(design, dtype=np.float64)
    codes, nb = block_codes(block, X.shape[0])
    if np.bincount(codes).max() == 1:
        return "Blocks all of size 1: setting intrablock correlation to zero."
    # design.block = model.matrix(~factor(block))[, -1] (the first level in factor() order dropped)
    Zb = (codes[:, None] == np.arange(nb)[None, :]).astype(float)[:, 1:]
    Q, _, keep = batched_qr(X[None])
    Q = Q[0][:, keep[0]]
    resid = Zb - Q @ (Q.T @ Zb)
    if np.max(np.abs(resid)) < 1e-8:
        return "Block factor already encoded in the design matrix: setting intrablock correlation to zero."
    return None


@one_blas_thread
def duplicate_correlation_rows(
    E,
    design,
    block=None,
    weights=None,
    ndups: int = 1,
    spacing: int = 1,
    maxit: int = 20,
) -> RowCorrelations:
    """The per-feature part of limma's ``duplicateCorrelation`` for the rows of ``E`` (a chunk or
    all of them): ``atanh`` of each row's REML correlation ``varcomp[2] / sum(varcomp)`` from
    ``mixedModel2Fit(y[o], X[o, ], Z, w[o], only.varcomp = TRUE, maxit = 20)`` on the row's observed
    samples ``o``, NA where limma skips the row (``nobs <= ncol(design) + 2``, a single observed
    block, or ``nblocks >= nobs - 1``) or the fit fails, clamped to
    ``[1/(1 - max block size) + 0.01, 0.99]`` as limma does.

    ``weights`` (a matrix like ``E`` or one weight per sample) are prior weights as in limma: values
    with a weight <= 0 or a non-finite weight count as missing.  Without ``block``, ``ndups`` > 1
    duplicate spots ``spacing`` rows apart are the blocks (limma's ``unwrapdups``; the rows of a chunk
    must then hold whole groups).  The row-level results do not depend on the other rows.
    """
    M = np.array(
        E.to_numpy(dtype=np.float64) if isinstance(E, pd.DataFrame) else E, dtype=np.float64
    )
    if M.ndim == 1:
        M = M[None, :]
    X = np.asarray(
        design.to_numpy() if isinstance(design, pd.DataFrame) else design, dtype=np.float64
    )
    if X.ndim == 1:
        X = X[:, None]
    m, n = M.shape
    if X.shape[0] != n:
        raise ValueError("Number of rows of design matrix does not match number of arrays")
    nbeta = X.shape[1]

    def zeros(reason):
        warnings.warn(reason, stacklevel=3)
        z = np.zeros(m)
        return RowCorrelations(
            atanh_correlations=z,
            correlations=z.copy(),
            iterations=np.zeros(m, dtype=np.int64),
            crit=np.full(m, np.nan),
            status=np.full(m, -1, dtype=np.int8),
            not_converged=np.zeros(m, dtype=bool),
        )

    if block is not None:
        reason = block_structure_check(X, block)
        if reason is not None:
            return zeros(reason)
    elif ndups < 2:
        return zeros("No duplicates: setting correlation between duplicates to zero.")

    W = None
    if weights is not None:
        W = np.array(np.broadcast_to(matrix_weights(weights, m, n)[0], (m, n)), dtype=np.float64)
        W[W <= 0] = np.nan
        M[~np.isfinite(W)] = np.nan

    if block is None:
        codes = np.repeat(np.arange(n), ndups)
        max_block = ndups
        M = unwrap_dups(M, ndups, spacing)
        if W is not None:
            W = unwrap_dups(W, ndups, spacing)
        X = np.kron(X, np.ones((ndups, 1)))
        nb = n
    else:
        codes, nb = block_codes(block, n)
        max_block = int(np.bincount(codes).max())
    rows_out, ncol = M.shape
    Z = (codes[:, None] == np.arange(nb)[None, :]).astype(np.float64)

    obs = np.isfinite(M)
    nobs = obs.sum(axis=1)
    nblocks = (obs.astype(np.float64) @ Z > 0).sum(axis=1)
    eligible = (nobs > nbeta + 2) & (nblocks > 1) & (nblocks < nobs - 1)

    rho = np.full(rows_out, np.nan)
    iters = np.zeros(rows_out, dtype=np.int64)
    crit = np.full(rows_out, np.nan)
    status = np.full(rows_out, -1, dtype=np.int8)
    idx = np.flatnonzero(eligible)
    if idx.size:
        every = idx.size == rows_out
        sub = (lambda a: a) if every else (lambda a: a[idx])
        w_rows = None if W is None else np.where(sub(obs), sub(W), 1.0)
        fit = mixed_model2_fit(sub(M), X, Z, w=w_rows, observed=sub(obs), maxit=maxit)
        s = fit.varcomp
        with np.errstate(invalid="ignore", divide="ignore"):
            r = s[:, 1] / (s[:, 0] + s[:, 1])
        rho[idx] = np.where(np.isnan(s[:, 0]), np.nan, r)
        # R: NA where the fit stops with an error or s[2] is NA; NaN (0/0) stays NaN
        iters[idx], crit[idx], status[idx] = fit.iter, fit.crit, fit.status
    rho_min = 1.0 / (1.0 - max_block) + 0.01
    clamped = rho.copy()
    with np.errstate(invalid="ignore"):
        clamped[clamped < rho_min] = rho_min
        clamped[clamped > RHO_MAX] = RHO_MAX
    with np.errstate(invalid="ignore", divide="ignore"):
        arho = np.arctanh(clamped)
    return RowCorrelations(
        atanh_correlations=arho,
        correlations=rho,
        iterations=iters,
        crit=crit,
        status=status,
        not_converged=(status == MAXIT) | (status == DAMPED),
    )


def duplicate_correlation(
    E,
    design,
    block=None,
    weights=None,
    trim: float = 0.15,
    ndups: int = 1,
    spacing: int = 1,
) -> DuplicateCorrelation:
    """limma's ``duplicateCorrelation(E, design, ndups, spacing, block, trim, weights)``.

    Returns the consensus correlation ``tanh(mean(atanh.correlations, trim, na.rm = TRUE))``, the
    per-feature ``atanh.correlations`` (see :func:`duplicate_correlation_rows`), and the numbers of
    features whose REML iterations did not converge (maxit = 20 reached, or too much damping; R
    keeps their last iterate, and so does this) and whose correlation is NA.
    """
    rows = duplicate_correlation_rows(E, design, block, weights, ndups=ndups, spacing=spacing)
    return DuplicateCorrelation(
        consensus=consensus_correlation(rows.atanh_correlations, trim),
        atanh_correlations=rows.atanh_correlations,
        n_not_converged=rows.n_not_converged,
        n_na=int(np.isnan(rows.atanh_correlations).sum()),
        rows=rows,
    )
