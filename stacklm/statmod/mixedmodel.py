"""statmod's ``mixedModel2Fit`` (REML for a linear model with two variance components, a residual
and a random block effect), vectorised over many responses (rows) that share the design and blocks.

R's algorithm, per response ``y`` (weights ``w``: ``y`` and ``X`` are multiplied by ``sqrt(w)``, the
block indicators ``Z`` are not): with ``Q2`` an orthonormal basis of the residual space of ``X``
(dimension ``mq = n - rank``), the singular value decomposition ``Q2'Z = U S V'`` gives independent
components ``u_j'Q2'y`` with variances ``sigma2_res + d_j sigma2_block`` (``d_j = s_j^2``, padded with
zeros to length mq).  Their squares ``dy`` are fitted by a gamma GLM with identity link on
``cbind(1, d)`` (statmod's ``glmgam.fit``), started from the least-squares fit of ``dy`` on
``cbind(1, d)`` when its fitted values are non-negative, else from ``(mean(dy), 0)``; the GLM runs
only when ``mq > 2``, more than one ``d`` exceeds 1e-15 and ``var(d) > 1e-15`` (otherwise the
least-squares coefficients are the answer).

Here the same components come from the eigen-decomposition of ``M = Z'PZ`` (``P`` the residual
projection, ``M = V S^2 V'``): ``u_j'Q2'y = v_j'Z'r / s_j`` with ``r = Py`` the residuals, and
``M = diag(observed samples per block) - C'C`` with ``C = Q'Z`` (``Q`` an orthonormal basis of the
weighted design, r columns).  Within the blocks of one size c, the directions orthogonal to the rows
of ``C`` are eigenvectors with eigenvalue c, so only a matrix of order r per block size is
decomposed (r x r eigen-problems instead of one of the order of the number of blocks).  Components
with equal ``d`` enter the GLM only through the sum of their ``dy`` (the score and information of the
gamma GLM depend on the responses of a group of components with the same row of the design only
through their sum; their deviance terms differ by a constant, and only deviance differences enter the
algorithm), so each such group is carried as one component with a count: the eigenvalue-c groups,
and the components with ``d_j = 0`` (the last ``mq - rank(PZ)``, and those R computes as rounding
noise, ``d_j`` ~ 1e-30), whose sum is ``|r|^2`` minus the others.  Their individual values depend on
an arbitrary basis (in R as here).  Everything else -- start, damping, stopping rules -- is R's, so
the iterates and the iteration counts agree with R, not only the optimum (measured: ~1e-11
relative on the variance components, identical iteration counts).

Rows that share the design and the observed samples and have no weights share ``P``, ``C`` and the
spectrum: one transform for all of them (BLAS products over row blocks).  Rows with their own
weights or missing values are transformed in batches: each row's Gram matrix in an orthonormal
basis of the full design (near the identity unless the weights are extreme) by one BLAS product
over rows, its Cholesky factor for all rows at once, residuals with one step of iterative
refinement; rows whose observed design fails lm.fit's rank test (with a margin) go through batched
Gram-Schmidt QR with lm.fit's rank rule instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stacklm.rstats.cholesky import batched_cholesky, cholesky_solve, lower_solve
from stacklm.rstats.qr import QR_TOLERANCE, batched_qr, estimable_columns
from stacklm.statmod.glmgam import CONVERGED, DAMPED, ERROR, MAXIT, ZERO, glmgam_fit

#: eigenvalues of Z'PZ below this fraction of the largest are the null components (R's d_j there
#: are rounding noise of order 1e-30; the eigen-decomposition leaves ~1e-16 of the largest)
NULL_EIGENVALUE = 1e-11

#: rows per batch of the shared transform
SHARED_BATCH_ROWS = 8192

#: rows transformed per batch in the per-row (weighted / missing values) path
BATCH_ROWS = 2048

#: missingness patterns (without weights) shared by at least this many rows get one transform
MIN_PATTERN_ROWS = 64

#: status of rows where no GLM was run (least-squares moment estimates), or that are NA
NO_ITERATION = 5
NOT_ESTIMABLE = 6


@dataclass
class MixedModel2Fit:
    """Per-row results of :func:`mixed_model2_fit` (statmod's ``varcomp``, with ``only.varcomp``)."""

    varcomp: np.ndarray  # m x 2: Residual, Block (NaN where R gives NA)
    iter: np.ndarray  # m: glmgam.fit iterations (0 where the GLM was not run)
    crit: np.ndarray  # m: the last crossprod(dl, dbeta) of glmgam.fit (NaN if not run)
    status: np.ndarray  # m: glmgam status codes, NO_ITERATION or NOT_ESTIMABLE

    @property
    def not_converged(self) -> np.ndarray:
        """The GLM ran but stopped at maxit or for too much damping."""
        return (self.status == MAXIT) | (self.status == DAMPED)


# --------------------------------------------------------------------------------------------
# the REML components
# --------------------------------------------------------------------------------------------
@dataclass
class _Components:
    d: np.ndarray  # m x K second column of the GLM design (a component's d_j)
    dy: np.ndarray  # m x K squared components (grouped components: their mean)
    count: np.ndarray  # m x K multiplicities (0 = absent)
    mq: np.ndarray  # m residual dimension
    n_positive: np.ndarray  # m number of d_j above 1e-15 (R's test), with multiplicity


@dataclass
class _Spectrum:
    """Eigen-decomposition of M = Z'PZ = diag(counts) - C'C (C = Q'Z, Q an orthonormal basis of
    the weighted design), reduced by its structure: within the blocks with c observed samples,
    the vectors orthogonal to the rows of C are eigenvectors with eigenvalue c (one grouped
    component per block size, ``mult`` of them); the rest of the space is spanned by the columns of
    ``H`` (q x L*r, orthonormal within each block size), on which M is the small matrix ``T`` with
    eigenvalues ``d_t`` and eigenvectors ``Y``."""

    d_t: np.ndarray  # m x Lr eigenvalues of T (sentinel -1 where a column of H is unused)
    Y: np.ndarray  # m x Lr x Lr eigenvectors of T
    H: np.ndarray  # m x q x Lr
    h_level: np.ndarray  # Lr: the block size index of each column of H
    levels: np.ndarray  # L block sizes
    level_mask: np.ndarray  # m x L x q blocks of each size
    mult: np.ndarray  # m x L multiplicity of the eigenvalue c_l


#: eigenvalues of F_l F_l' below this fraction of the block size c_l count as zero (their
#: directions then belong to the eigenvalue c_l of Z'PZ)
RANK_EIGENVALUE = 1e-10


def _spectrum(C: np.ndarray, counts: np.ndarray) -> _Spectrum:
    """``C`` (m x r x q) and ``counts`` (m x q, observed samples per block)."""
    m, r, q = C.shape
    levels = np.unique(counts[counts > 0])
    L = levels.size
    H = np.zeros((m, q, L * r))
    CW = np.zeros((m, r, L * r))
    diag = np.full((m, L * r), -1.0)
    level_mask = np.zeros((m, L, q), dtype=bool)
    mult = np.zeros((m, L))
    for i, c in enumerate(levels):
        mask = counts == c
        level_mask[:, i] = mask
        F = C * mask[:, None, :]
        S = F @ np.swapaxes(F, 1, 2)
        S = 0.5 * (S + np.swapaxes(S, 1, 2))
        lam, U = np.linalg.eigh(S)
        used = lam > RANK_EIGENVALUE * c
        root = np.sqrt(np.where(used, lam, 1.0))
        cols = slice(i * r, (i + 1) * r)
        H[:, :, cols] = np.where(used[:, None, :], np.swapaxes(F, 1, 2) @ U / root[:, None, :], 0.0)
        CW[:, :, cols] = np.where(used[:, None, :], U * root[:, None, :], 0.0)
        diag[:, cols] = np.where(used, c, -1.0)
        mult[:, i] = mask.sum(axis=1) - used.sum(axis=1)
    T = -np.swapaxes(CW, 1, 2) @ CW
    idx = np.arange(L * r)
    T[:, idx, idx] += diag
    T = 0.5 * (T + np.swapaxes(T, 1, 2))
    d_t, Y = np.linalg.eigh(T)
    return _Spectrum(
        d_t=d_t,
        Y=Y,
        H=H,
        h_level=np.repeat(np.arange(L), r),
        levels=levels.astype(np.float64),
        level_mask=level_mask,
        mult=mult,
    )


def _components(sp: _Spectrum, b: np.ndarray, rss: np.ndarray, mq: np.ndarray) -> _Components:
    """The components of rows with Z'r = b (m x q) and |r|^2 = rss; ``sp`` is one spectrum per
    row or one shared by all rows."""
    m = b.shape[0]
    L = sp.levels.size
    if sp.H.shape[0] == 1 and m > 1:
        th = b @ sp.H[0]
        tt = th @ sp.Y[0]
        d_t = np.broadcast_to(sp.d_t[0], (m, sp.d_t.shape[1]))
        level_mask = np.broadcast_to(sp.level_mask[0], (m,) + sp.level_mask.shape[1:])
        mult = np.broadcast_to(sp.mult[0], (m, L))
        used = np.broadcast_to(np.any(sp.H[0] != 0, axis=0), th.shape)
    else:
        th = np.einsum("mqk,mq->mk", sp.H, b)
        tt = np.einsum("mkj,mk->mj", sp.Y, th)
        d_t, level_mask, mult = sp.d_t, sp.level_mask, sp.mult
        used = np.any(sp.H != 0, axis=1)
    present_t = d_t > -0.5  # the -1 sentinels are unused columns of H
    top = np.maximum(np.max(np.where(present_t, d_t, 0.0), axis=1), sp.levels.max(initial=0.0))
    nonnull_t = present_t & (d_t > NULL_EIGENVALUE * top[:, None]) & (d_t > 1e-15)
    with np.errstate(divide="ignore", invalid="ignore"):
        dy_t = np.where(nonnull_t, tt**2 / np.where(nonnull_t, d_t, 1.0), 0.0)
    # blocks of size c_l: |b_l|^2 minus the part in the span of H's columns of that size
    b2 = b**2
    group_sum = np.empty((m, L))
    for i in range(L):
        cols = sp.h_level == i
        s_l = np.sum(np.where(level_mask[:, i], b2, 0.0), axis=1)
        s_l -= np.sum(np.where(used[:, cols], th[:, cols] ** 2, 0.0), axis=1)
        group_sum[:, i] = np.maximum(s_l, 0.0) / sp.levels[i]
    has_group = mult > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        group_mean = np.where(has_group, group_sum / np.where(has_group, mult, 1.0), 0.0)
    n_nonnull = nonnull_t.sum(axis=1) + np.where(has_group, mult, 0.0).sum(axis=1)
    k0 = mq - n_nonnull
    s0 = rss - dy_t.sum(axis=1) - np.where(has_group, group_sum, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        null_mean = np.where(k0 > 0, np.maximum(s0, 0.0) / np.maximum(k0, 1), 0.0)
    levels = np.broadcast_to(sp.levels, (m, L))
    d = np.concatenate([np.where(nonnull_t, d_t, 0.0), levels, np.zeros((m, 1))], axis=1)
    dy = np.concatenate([dy_t, group_mean, null_mean[:, None]], axis=1)
    count = np.concatenate(
        [nonnull_t.astype(float), np.where(has_group, mult, 0.0), np.maximum(k0, 0)[:, None]],
        axis=1,
    )
    return _Components(d=d, dy=dy, count=count, mq=mq, n_positive=n_nonnull)


def _shared_components(Y: np.ndarray, X: np.ndarray, Z: np.ndarray):
    """Rows of Y (all observed, unweighted) on one design: one transform for all rows, applied in
    blocks of rows; yields (row slice, components)."""
    Q, _, keep = batched_qr(X[None])
    Q = Q[0][:, keep[0]]
    mq = X.shape[0] - int(keep.sum())
    sp = _spectrum((Q.T @ Z)[None], Z.sum(axis=0)[None])
    m = Y.shape[0]
    for start in range(0, m, SHARED_BATCH_ROWS):
        rows = slice(start, min(start + SHARED_BATCH_ROWS, m))
        Yb = Y[rows]
        resid = Yb - (Yb @ Q) @ Q.T
        rss = np.einsum("ij,ij->i", resid, resid)
        yield rows, _components(sp, resid @ Z, rss, np.full(Yb.shape[0], mq))


def _row_transform_qr(Y: np.ndarray, X: np.ndarray, Z: np.ndarray, sw: np.ndarray):
    """Each row's weighted design by batched Gram-Schmidt (any rank): C = Q'Z, Z'r, |r|^2, mq."""
    obs = sw > 0
    n_obs = obs.sum(axis=1)
    A = sw[:, :, None] * X[None, :, :]
    Q, _, keep = batched_qr(A, n_obs=n_obs)
    yw = sw * Y
    resid = yw - np.einsum("mnp,mp->mn", Q, np.einsum("mnp,mn->mp", Q, yw))
    C = np.matmul(np.swapaxes(Q, 1, 2), Z)
    rss = np.einsum("ij,ij->i", resid, resid)
    return C, resid @ Z, rss, n_obs - keep.sum(axis=1)


class _DesignBasis:
    """Orthonormal basis Q0 of the full design and the products that form each row's weighted
    Gram matrix Q0' diag(w) Q0 and Q0' diag(sqrt(w)) Z with one BLAS product over rows."""

    def __init__(self, X: np.ndarray, Z: np.ndarray):
        keep = estimable_columns(X)
        Q0, R0 = np.linalg.qr(X[:, keep])
        self.Q0 = Q0
        self.r = Q0.shape[1]
        self.tri = np.tril_indices(self.r)
        self.q_outer = Q0[:, self.tri[0]] * Q0[:, self.tri[1]]  # n x r(r+1)/2
        self.qz = (Q0[:, :, None] * Z[:, None, :]).reshape(Q0.shape[0], -1)  # n x r*q
        self.x_sq = X[:, keep] ** 2
        self.r_diag_sq = np.diag(R0) ** 2
        self.ones = bool(np.any(np.all(X == X[:1], axis=0) & (X[0] != 0)))


def _row_transform_gram(Y, Z, sw, basis: _DesignBasis):
    """As :func:`_row_transform_qr` through the Cholesky factor of each row's Gram matrix in the
    basis Q0 (near the identity unless the weights are extreme), for the rows whose observed
    design passes lm.fit's rank test with a margin; returns the mask of those rows."""
    m, n = Y.shape
    r = basis.r
    w = sw**2
    G = np.zeros((m, r, r))
    G[:, basis.tri[0], basis.tri[1]] = w @ basis.q_outer
    G[:, basis.tri[1], basis.tri[0]] = G[:, basis.tri[0], basis.tri[1]]
    L, pivots = batched_cholesky(np.ascontiguousarray(G.transpose(1, 2, 0)), r)  # (r, r, m)
    col_sq = (w @ basis.x_sq).T  # squared norms of the weighted design's columns, r x m
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = basis.r_diag_sq[:, None] * pivots / col_sq
    scale = np.max(np.diagonal(G, axis1=1, axis2=2), axis=1)
    ok = np.all((pivots > 1e-6 * scale) & (ratio >= 1e-10) & (col_sq > 0), axis=0)

    F = (sw @ basis.qz).reshape(m, r, -1)  # Q0' diag(sw) Z
    C = lower_solve(L, np.ascontiguousarray(F.transpose(1, 2, 0))).transpose(2, 0, 1)
    obs = sw > 0
    if basis.ones:
        shift = np.sum(w * Y, axis=1) / np.sum(w, axis=1)
        Yc = np.where(obs, Y - shift[:, None], 0.0)
    else:
        Yc = Y
    yw = sw * Yc
    resid = yw
    for _ in range(2):  # the solve, then one step of iterative refinement
        z = (sw * resid) @ basis.Q0
        a = cholesky_solve(L, np.ascontiguousarray(z.T)).T
        resid = resid - sw * (a @ basis.Q0.T)
    rss = np.einsum("ij,ij->i", resid, resid)
    return C, resid @ Z, rss, obs.sum(axis=1) - r, ok


def _fit_components(comp: _Components, tol: float, maxit: int) -> MixedModel2Fit:
    """The least-squares start and the gamma GLM of mixedModel2Fit on the components."""
    d, dy, c, mq = comp.d, comp.dy, comp.count, comp.mq.astype(float)
    m = d.shape[0]
    varcomp = np.full((m, 2), np.nan)
    iters = np.zeros(m, dtype=np.int64)
    crit = np.full(m, np.nan)
    status = np.full(m, NOT_ESTIMABLE, dtype=np.int8)
    ok = mq > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mqs = np.where(ok, mq, 1.0)
        dbar = np.sum(c * d, axis=1) / mqs
        ybar = np.sum(c * dy, axis=1) / mqs
        dc = d - dbar[:, None]
        sxx = np.sum(c * dc**2, axis=1)
        sxy = np.sum(c * dc * (dy - ybar[:, None]), axis=1)
        # lm.fit(cbind(1, d), dy): d is aliased with the intercept (NA) when its centred norm is
        # below 1e-7 of its norm (dqrdc2), i.e. when all d are equal
        dnorm2 = np.sum(c * d**2, axis=1)
        rank2 = ok & (dnorm2 > 0) & (sxx >= (QR_TOLERANCE**2) * dnorm2)
        slope = np.where(rank2, sxy / np.where(rank2, sxx, 1.0), np.nan)
        intercept = ybar - np.where(rank2, slope, 0.0) * dbar
    varcomp[ok, 0] = intercept[ok]
    varcomp[ok, 1] = slope[ok]
    status[ok] = NO_ITERATION
    var_d = sxx / np.maximum(mq - 1.0, 1.0)
    glm = ok & rank2 & (mq > 2) & (comp.n_positive > 1) & (var_d > 1e-15)
    if glm.any():
        g = np.flatnonzero(glm)
        fitted = intercept[g, None] + slope[g, None] * d[g]
        nonneg = np.all((fitted >= 0) | (c[g] == 0), axis=1)
        start = np.where(
            nonneg[:, None],
            np.column_stack([intercept[g], slope[g]]),
            np.column_stack([ybar[g], np.zeros(g.size)]),
        )
        Xg = np.stack([np.ones_like(d[g]), d[g]], axis=2)
        fit = glmgam_fit(Xg, dy[g], start, tol=tol, maxit=maxit, count=c[g])
        varcomp[g] = fit.coefficients
        iters[g] = fit.iter
        crit[g] = fit.crit
        status[g] = fit.status
    return MixedModel2Fit(varcomp=varcomp, iter=iters, crit=crit, status=status)


def mixed_model2_fit(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    w: np.ndarray | None = None,
    observed: np.ndarray | None = None,
    tol: float = 1e-6,
    maxit: int = 50,
) -> MixedModel2Fit:
    """statmod's ``mixedModel2Fit(y, X, Z, w, only.varcomp = TRUE, tol, maxit)`` for every row of y.

    ``y`` is m x n (one response per row), ``X`` the n x p fixed-effects design and ``Z`` the n x q
    random-effects incidence matrix (0/1 block indicators in limma's use) shared by all rows; ``w``
    (m x n or n, optional) prior weights.  ``observed`` (m x n booleans, optional) restricts each
    row's fit to its observed samples, as R on ``y[o], X[o, ], Z[o, ], w[o]`` (a block with no
    observed sample drops out, as ``model.matrix(~0 + factor(block[o]))`` drops its column); values
    outside it are ignored.  Returns the variance components (Residual, Block), NaN where R returns
    NA (no residual df, d all equal) or stops with an error, with glmgam.fit's iterations, last
    convergence criterion and stopping status.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    m, n = y.shape
    X = np.asarray(X, dtype=np.float64).reshape(n, -1)
    Z = np.asarray(Z, dtype=np.float64).reshape(n, -1)
    if observed is None:
        observed = np.ones((m, n), dtype=bool)
    observed = np.broadcast_to(np.asarray(observed, dtype=bool), (m, n))
    if w is not None:
        w = np.broadcast_to(np.asarray(w, dtype=np.float64), (m, n))

    out = MixedModel2Fit(
        varcomp=np.full((m, 2), np.nan),
        iter=np.zeros(m, dtype=np.int64),
        crit=np.full(m, np.nan),
        status=np.full(m, NOT_ESTIMABLE, dtype=np.int8),
    )
    shared = np.zeros(m, dtype=bool)
    if w is None:
        # rows without weights that share their observed samples share one transform
        for rows in _pattern_groups(observed, MIN_PATTERN_ROWS):
            o = observed[rows[0]]
            if o.all():
                Yo = y if rows.size == m else y[rows]
            else:
                Yo = y[np.ix_(rows, o)]
            for sub, comp in _shared_components(Yo, X[o], Z[o]):
                _store(out, rows[sub], _fit_components(comp, tol, maxit))
            shared[rows] = True
    rest = np.flatnonzero(~shared)
    basis = _DesignBasis(X, Z) if rest.size else None
    for start in range(0, rest.size, BATCH_ROWS):
        rows = rest[start : start + BATCH_ROWS]
        o = observed[rows]
        sw = np.sqrt(w[rows]) if w is not None else np.ones((rows.size, n))
        sw = np.where(o, sw, 0.0)
        yr = np.where(o, y[rows], 0.0)
        counts = o.astype(np.float64) @ Z
        C, b, rss, mq, ok = _row_transform_gram(yr, Z, sw, basis)
        if not ok.all():
            bad = ~ok
            C[bad], b[bad], rss[bad], mq[bad] = _row_transform_qr(yr[bad], X, Z, sw[bad])
        comp = _components(_spectrum(C, counts), b, rss, mq)
        _store(out, rows, _fit_components(comp, tol, maxit))
    return out


def _pattern_groups(observed: np.ndarray, min_rows: int) -> list[np.ndarray]:
    """Rows grouped by their pattern of observed samples: the groups of complete rows (any size)
    and of patterns shared by at least ``min_rows`` rows."""
    complete = observed.all(axis=1)
    groups = [np.flatnonzero(complete)] if complete.any() else []
    partial = np.flatnonzero(~complete)
    if partial.size >= min_rows:
        packed = np.packbits(observed[partial], axis=1)
        _, inverse, counts = np.unique(packed, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        for gid in np.flatnonzero(counts >= min_rows):
            groups.append(partial[inverse == gid])
    return groups


def _store(out: MixedModel2Fit, rows: np.ndarray, fit: MixedModel2Fit) -> None:
    out.varcomp[rows] = fit.varcomp
    out.iter[rows] = fit.iter
    out.crit[rows] = fit.crit
    out.status[rows] = fit.status


__all__ = [
    "CONVERGED",
    "DAMPED",
    "ERROR",
    "MAXIT",
    "NOT_ESTIMABLE",
    "NO_ITERATION",
    "ZERO",
    "MixedModel2Fit",
    "mixed_model2_fit",
]
