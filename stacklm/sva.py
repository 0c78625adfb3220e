"""Surrogate variable analysis: a port of Bioconductor sva 3.46.

Functions mirror (features are ROWS, samples are COLUMNS: ``Y`` is G x n):

- :func:`f_pvalue`   -> ``sva::f.pvalue``
- :func:`num_sv`     -> ``sva::num.sv`` (methods ``"be"`` and ``"leek"``)
- :func:`edge_lfdr`  -> ``sva:::edge.lfdr`` (probit transform), including exact ports of R's
  ``density()`` (gaussian kernel, ``bw.nrd0``) and ``smooth.spline()`` (GCV choice of ``spar``,
  R's knot placement, the ``sbart``/``sslvrg``/``sgram``/``stxwx``/``sinerp`` Fortran/C code) and
  ``predict.smooth.spline``
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

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

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
# R numerics needed by edge.lfdr: seq.int, dnorm, quantile, bw.nrd0, density, approx
# --------------------------------------------------------------------------------------------


def _r_seq(start: float, stop: float, length: int) -> np.ndarray:
    """R's ``seq.int(from, to, length.out = length)`` (finite, real-valued case)."""
    out = np.empty(length)
    out[0] = start
    if length > 1:
        out[-1] = stop
    if length > 2:
        by = (stop - start) / (length - 1)
        out[1:-1] = start + np.arange(1, length - 1, dtype=np.float64) * by
    return out


_M_1_SQRT_2PI = 0.398942280401432677939946059934


def _r_dnorm(x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """R's ``dnorm(x, 0, sigma)`` (nmath/dnorm.c, including its split for |x| >= 5)."""
    z = np.abs(np.asarray(x, dtype=np.float64) / sigma)
    out = _M_1_SQRT_2PI * np.exp(-0.5 * z * z) / sigma
    big = z >= 5
    if np.any(big):
        zb = z[big]
        x1 = np.ldexp(np.rint(np.ldexp(zb, 16)), -16)
        x2 = zb - x1
        vals = _M_1_SQRT_2PI / sigma * (np.exp(-0.5 * x1 * x1) * np.exp((-0.5 * x2 - x1) * x2))
        vals[zb > math.sqrt(-2 * math.log(2) * (-1021 + 1 - 53))] = 0.0
        out[big] = vals
    return out


def _r_quantile7(x_sorted: np.ndarray, prob: float) -> float:
    """R's ``quantile(x, prob, type = 7)`` on already sorted data."""
    n = x_sorted.size
    index = 1 + (n - 1) * prob
    lo = math.floor(index)
    hi = math.ceil(index)
    qs = x_sorted[lo - 1]
    if index > lo and x_sorted[hi - 1] != qs:
        h = index - lo
        qs = (1 - h) * qs + h * x_sorted[hi - 1]
    return float(qs)


def _r_bw_nrd0(x: np.ndarray) -> float:
    """R's ``bw.nrd0``: 0.9 * min(sd, IQR / 1.34) * n^-0.2."""
    hi = float(np.std(x, ddof=1))
    xs = np.sort(x)
    iqr = _r_quantile7(xs, 0.75) - _r_quantile7(xs, 0.25)
    lo = min(hi, iqr / 1.34)
    if not lo:
        lo = hi or abs(float(x[0])) or 1.0
    return 0.9 * lo * x.size ** (-0.2)


def _r_bin_dist(x: np.ndarray, weight: float, lo: float, hi: float, n: int) -> np.ndarray:
    """R's C ``BinDist`` (linear binning onto 2n cells) with equal weights."""
    y = np.zeros(2 * n)
    xdelta = (hi - lo) / (n - 1)
    xpos = (x - lo) / xdelta
    ix = np.floor(xpos)
    fx = xpos - ix
    ix = ix.astype(np.int64)
    inside = (ix >= 0) & (ix <= n - 2)
    y += np.bincount(ix[inside], weights=(1 - fx[inside]) * weight, minlength=2 * n)
    y += np.bincount(ix[inside] + 1, weights=fx[inside] * weight, minlength=2 * n)
    left = ix == -1
    if np.any(left):
        y[0] += np.sum(fx[left] * weight)
    right = ix == n - 1
    if np.any(right):
        y[n - 1] += np.sum((1 - fx[right]) * weight)
    return y


def _r_approx(x: np.ndarray, y: np.ndarray, xout: np.ndarray) -> np.ndarray:
    """R's ``approx(x, y, xout)$y`` (linear, x sorted and distinct, xout inside the range)."""
    i = np.searchsorted(x, xout, side="right") - 1
    i = np.clip(i, 0, x.size - 2)
    j = i + 1
    out = y[i] + (y[j] - y[i]) * ((xout - x[i]) / (x[j] - x[i]))
    out = np.where(xout == x[j], y[j], out)
    out = np.where(xout == x[i], y[i], out)
    out[(xout < x[0]) | (xout > x[-1])] = np.nan
    return out


def _r_density_gaussian(x: np.ndarray, adjust: float, n: int = 512, cut: float = 3.0):
    """R's ``density(x, adjust = adjust)`` (gaussian kernel, bw.nrd0, n = 512 points).

    Returns the grid ``x`` and density ``y``. The FFT convolution uses numpy's FFT, which
    differs from R's ``fft`` by rounding only.
    """
    nx = x.size
    bw = adjust * _r_bw_nrd0(x)
    start = float(x.min()) - cut * bw
    stop = float(x.max()) + cut * bw
    lo = start - 4 * bw
    up = stop + 4 * bw
    y = _r_bin_dist(x, 1.0 / nx, lo, up, n)
    kords = _r_seq(0.0, 2 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    kords = _r_dnorm(kords, bw)
    conv = np.fft.ifft(np.fft.fft(y) * np.conj(np.fft.fft(kords)), norm="forward")
    dens = np.maximum(0.0, conv.real[:n] / y.size)
    xords = _r_seq(lo, up, n)
    grid = _r_seq(start, stop, n)
    return grid, _r_approx(xords, dens, grid)


# --------------------------------------------------------------------------------------------
# smooth.spline (R stats: smspline.R, sbart.c, sslvrg.f, sgram.f, stxwx.f, sinerp.f,
# bsplvd.f, bvalue.f, LINPACK dpbfa/dpbsl). Knot vectors are used with 1-based indexing:
# ``t1[0]`` is a dummy so that ``t1[i]`` is Fortran's ``t(i)``.
# --------------------------------------------------------------------------------------------


def _nknots_smspl(n: int) -> int:
    """R's ``.nknots.smspl(n)``."""
    if n < 50:
        return n
    a1, a2, a3, a4 = math.log2(50), math.log2(100), math.log2(140), math.log2(200)
    if n < 200:
        val = 2 ** (a1 + (a2 - a1) * (n - 50) / 150)
    elif n < 800:
        val = 2 ** (a2 + (a3 - a2) * (n - 200) / 600)
    elif n < 3200:
        val = 2 ** (a3 + (a4 - a3) * (n - 800) / 2400)
    else:
        val = 200 + (n - 3200) ** 0.2
    return int(math.trunc(val))


class _BsplvbState:
    """The Fortran SAVEd variables of ``bsplvb`` (j, deltal, deltar), one per point."""

    def __init__(self, n_points: int, jmax: int = 20):
        self.j = 1
        self.deltal = np.zeros((n_points, jmax + 1))
        self.deltar = np.zeros((n_points, jmax + 1))


def _bsplvb(t1, jhigh, index, x, left, biatx, state: _BsplvbState) -> None:
    """de Boor's ``bsplvb``, vectorised over points (biatx is (points, >= jhigh + 1))."""
    if index == 1:
        state.j = 1
        biatx[:, 1] = 1.0
        if state.j >= jhigh:
            return
    while True:
        j = state.j
        jp1 = j + 1
        state.deltar[:, j] = t1[left + j] - x
        state.deltal[:, j] = x - t1[left + 1 - j]
        saved = np.zeros(x.shape)
        for i in range(1, j + 1):
            term = biatx[:, i] / (state.deltar[:, i] + state.deltal[:, jp1 - i])
            biatx[:, i] = saved + state.deltar[:, i] * term
            saved = state.deltal[:, jp1 - i] * term
        biatx[:, jp1] = saved
        state.j = jp1
        if state.j >= jhigh:
            return


def _bsplvd(t1, x, left, nderiv: int, k: int = 4) -> np.ndarray:
    """de Boor's ``bsplvd``: values and derivatives of the k B-splines non-zero at x.

    Returns an array (points, k + 1, nderiv + 1) indexed 1-based like ``dbiatx(i, m)``.
    """
    x = np.asarray(x, dtype=np.float64)
    left = np.asarray(left, dtype=np.int64)
    npts = x.size
    mhigh = max(min(nderiv, k), 1)
    kp1 = k + 1
    dbiatx = np.zeros((npts, k + 1, mhigh + 1))
    col1 = np.zeros((npts, k + 2))
    state = _BsplvbState(npts)
    _bsplvb(t1, kp1 - mhigh, 1, x, left, col1, state)
    if mhigh > 1:
        ideriv = mhigh
        for _m in range(2, mhigh + 1):
            jp1mid = 1
            for j in range(ideriv, k + 1):
                dbiatx[:, j, ideriv] = col1[:, jp1mid]
                jp1mid += 1
            ideriv -= 1
            _bsplvb(t1, kp1 - ideriv, 2, x, left, col1, state)
    dbiatx[:, 1:, 1] = col1[:, 1 : k + 1]
    if mhigh == 1:
        return dbiatx
    a = np.zeros((npts, k + 1, k + 1))
    for i in range(1, k + 1):
        a[:, i, i] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in range(2, mhigh + 1):
            kp1mm = kp1 - m
            fkp1mm = float(kp1mm)
            il = left.copy()
            i = k
            for _ in range(kp1mm):
                factor = fkp1mm / (t1[il + kp1mm] - t1[il])
                for j in range(1, i + 1):
                    a[:, i, j] = (a[:, i, j] - a[:, i - 1, j]) * factor
                il = il - 1
                i -= 1
            new = np.zeros((npts, k + 1))
            for i in range(1, k + 1):
                s = np.zeros(npts)
                for j in range(max(i, m), k + 1):
                    s = a[:, j, i] * dbiatx[:, j, m] + s
                new[:, i] = s
            dbiatx[:, 1:, m] = new[:, 1:]
    return dbiatx


def _interv(t1, n_knots_used: int, x) -> tuple[np.ndarray, np.ndarray]:
    """R's ``interv(t, n, x, 0, 0, ...)``: max i <= n with t(i) <= x, and mflag."""
    tk = t1[1 : n_knots_used + 1]
    i = np.searchsorted(tk, x, side="right")
    mflag = np.where(i == 0, -1, np.where(x >= tk[-1], 1, 0))
    return i, mflag


def _sgram(t1, nb: int):
    """``sgram``: banded Gram matrix of B'' (note R's 0.3330 instead of 1/3)."""
    sg = np.zeros((4, nb + 1))  # sg[d, i] = sg{d}(i), 1-based i
    pts = t1[1 : nb + 1]
    ileft, _ = _interv(t1, nb + 1, pts)
    vl = _bsplvd(t1, pts, ileft, 3)[:, :, 3]
    vr = _bsplvd(t1, t1[2 : nb + 2], ileft, 3)[:, :, 3]
    for idx in range(nb):
        i = idx + 1
        lft = int(ileft[idx])
        yw1 = vl[idx]
        yw2 = vr[idx] - yw1
        wpt = t1[i + 1] - t1[i]
        if lft >= 4:
            nterm, off = 4, lft - 4
        elif lft == 3:
            nterm, off = 3, lft - 3
        elif lft == 2:
            nterm, off = 2, lft - 2
        else:
            nterm, off = 1, lft - 1
        for ii in range(1, nterm + 1):
            for d in range(4):
                jj = ii + d
                if jj > nterm:
                    break
                sg[d, off + ii] = sg[d, off + ii] + wpt * (
                    yw1[ii] * yw1[jj]
                    + (yw2[ii] * yw1[jj] + yw2[jj] * yw1[ii]) * 0.5
                    + yw2[ii] * yw2[jj] * 0.3330
                )
    return sg[:, 1:]


def _stxwx(x, z, w, t1, nk: int):
    """``stxwx``: X'W^2 z and the 4 bands of X'W^2 X for the cubic B-spline basis."""
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 0.1e-9
    at_right = mflag == 1
    if np.any(at_right & ~(x <= t1[np.minimum(ileft, nk + 1)] + eps)):
        raise RuntimeError("smooth.spline: data point beyond the last knot")
    ileft = np.where(at_right, ileft - 1, ileft)
    v = _bsplvd(t1, x, ileft, 1)[:, :, 1]
    w2 = w**2
    # per point, the Fortran terms in their order of accumulation
    y_terms = (w2 * z)[:, None] * v[:, 1:5]  # (w^2 z) v_c
    h_terms = [w2[:, None] * v[:, 1:5] ** 2] + [
        (w2[:, None] * v[:, 1 : 5 - d]) * v[:, 1 + d : 5] for d in range(1, 4)
    ]
    y = [0.0] * (nk + 1)
    hs = [[0.0] * (nk + 1) for _ in range(4)]
    y_terms = y_terms.tolist()
    h_terms = [h.tolist() for h in h_terms]
    for i, lft in enumerate(ileft.tolist()):
        for c in range(4):
            j = lft - 3 + c
            y[j] = y[j] + y_terms[i][c]
            for d in range(4 - c):
                hs[d][j] = hs[d][j] + h_terms[d][i][c]
    return np.array(y[1:]), np.array(hs)[:, 1:]


def _dpbfa(abd: np.ndarray) -> int:
    """LINPACK ``dpbfa`` for bandwidth m = 3, in place on ``abd`` (4 x nk, 0-based rows)."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()  # a[col][row]
    for j in range(1, nk + 1):
        s = 0.0
        ik = m + 1
        jk = max(j - m, 1)
        mu = max(m + 2 - j, 1)
        for k in range(mu, m + 1):
            dot = 0.0
            col_jk = a[jk - 1]
            col_j = a[j - 1]
            for ll in range(k - mu):
                dot = dot + col_jk[ik - 1 + ll] * col_j[mu - 1 + ll]
            t = (col_j[k - 1] - dot) / col_jk[m]
            col_j[k - 1] = t
            s = s + t * t
            ik -= 1
            jk += 1
        s = a[j - 1][m] - s
        if s <= 0.0:
            abd[:] = np.array(a).T
            return j
        a[j - 1][m] = math.sqrt(s)
    abd[:] = np.array(a).T
    return 0


def _dpbsl(abd: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LINPACK ``dpbsl`` (m = 3): solve R'R x = b with the factor from :func:`_dpbfa`."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()
    x = [float(v) for v in b]
    for k in range(1, nk + 1):
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        t = 0.0
        for ll in range(lm):
            t = t + a[k - 1][la - 1 + ll] * x[lb - 1 + ll]
        x[k - 1] = (x[k - 1] - t) / a[k - 1][m]
    for kb in range(1, nk + 1):
        k = nk + 1 - kb
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        x[k - 1] = x[k - 1] / a[k - 1][m]
        t = -x[k - 1]
        for ll in range(lm):
            x[lb - 1 + ll] = x[lb - 1 + ll] + t * a[k - 1][la - 1 + ll]
    return np.array(x)


def _sinerp(abd: np.ndarray) -> np.ndarray:
    """``sinerp`` pass 1: the 4 bands of (R'R)^{-1} (p1ip, 4 x nk, 0-based rows)."""
    nk = abd.shape[1]
    a = abd.T.tolist()
    p1 = [[0.0] * 4 for _ in range(nk)]
    wjm3 = [0.0, 0.0, 0.0]
    wjm2 = [0.0, 0.0]
    wjm1 = [0.0]
    c1 = c2 = c3 = 0.0
    for i in range(1, nk + 1):
        j = nk - i + 1
        c0 = 1.0 / a[j - 1][3]
        if j <= nk - 3:
            c1 = a[j + 2][0] * c0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 2:
            c1 = 0.0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 1:
            c1 = 0.0
            c2 = 0.0
            c3 = a[j][2] * c0
        else:
            c1 = c2 = c3 = 0.0
        col = p1[j - 1]
        col[0] = 0.0 - (c1 * wjm3[0] + c2 * wjm3[1] + c3 * wjm3[2])
        col[1] = 0.0 - (c1 * wjm3[1] + c2 * wjm2[0] + c3 * wjm2[1])
        col[2] = 0.0 - (c1 * wjm3[2] + c2 * wjm2[1] + c3 * wjm1[0])
        col[3] = (
            c0 * c0
            + c1 * c1 * wjm3[0]
            + 2.0 * c1 * c2 * wjm3[1]
            + 2.0 * c1 * c3 * wjm3[2]
            + c2 * c2 * wjm2[0]
            + 2.0 * c2 * c3 * wjm2[1]
            + c3 * c3 * wjm1[0]
        )
        wjm3[0] = wjm2[0]
        wjm3[1] = wjm2[1]
        wjm3[2] = col[1]
        wjm2[0] = wjm1[0]
        wjm2[1] = col[2]
        wjm1[0] = col[3]
    return np.array(p1).T


def _bvalue(t1, bcoef: np.ndarray, n: int, x: np.ndarray) -> np.ndarray:
    """``bvalue(t, bcoef, n, 4, x, 0)`` vectorised, for x inside [t(4), t(n+1)]."""
    k = 4
    i, _ = _interv(t1, n + k, x)
    i = np.where((x == t1[n + 1]) & (t1[n + 1] == t1[n + k]), n, i)
    if np.any(i < k) or np.any(i > n):
        raise RuntimeError("smooth.spline prediction outside the knot range")
    dm = [None] + [x - t1[i + 1 - j] for j in range(1, k)]
    dp = [None] + [t1[i + j] - x for j in range(1, k)]
    b1 = np.concatenate([[np.nan], bcoef])
    aj = [None] + [b1[i - k + jc] for jc in range(1, k + 1)]
    for j in range(1, k):
        kmj = k - j
        ilo = kmj
        for jj in range(1, kmj + 1):
            aj[jj] = (aj[jj + 1] * dm[ilo] + aj[jj] * dp[jj]) / (dm[ilo] + dp[jj])
            ilo -= 1
    return aj[1]


@dataclass(frozen=True)
class _SmoothSplineFit:
    knot1: np.ndarray  # 1-based knot vector (dummy at 0)
    nk: int
    coef: np.ndarray
    xmin: float
    xrange: float
    spar: float
    lam: float
    crit: float
    iterations: int


def _sslvrg(x, y, w, ssw, t1, nk, lam, xwy, hs, sg):
    """``sslvrg`` with icrit = 1 (GCV), dofoff = 0, penalt = 1."""
    abd = np.zeros((4, nk))
    abd[3] = hs[0] + lam * sg[0]
    abd[2, 1:] = hs[1, :-1] + lam * sg[1, :-1]
    abd[1, 2:] = hs[2, :-2] + lam * sg[2, :-2]
    abd[0, 3:] = hs[3, :-3] + lam * sg[3, :-3]
    info = _dpbfa(abd)
    if info != 0:
        return None
    coef = _dpbsl(abd, xwy)
    sz = _bvalue(t1, coef, nk, x)
    p1ip = _sinerp(abd)
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 1e-11
    xv = np.where(mflag == 1, t1[nk + 1] - eps, np.where(mflag == -1, t1[4] + eps, x))
    ileft = np.where(mflag == 1, nk, np.where(mflag == -1, 4, ileft))
    v = _bsplvd(t1, xv, ileft, 1)[:, :, 1]
    b0, b1, b2, b3 = v[:, 1], v[:, 2], v[:, 3], v[:, 4]
    j = ileft - 4  # 0-based column of p1ip for Fortran j = ileft - 3
    lev = (
        p1ip[3, j] * b0**2
        + 2.0 * p1ip[2, j] * b0 * b1
        + 2.0 * p1ip[1, j] * b0 * b2
        + 2.0 * p1ip[0, j] * b0 * b3
        + p1ip[3, j + 1] * b1**2
        + 2.0 * p1ip[2, j + 1] * b1 * b2
        + 2.0 * p1ip[1, j + 1] * b1 * b3
        + p1ip[3, j + 2] * b2**2
        + 2.0 * p1ip[2, j + 2] * b2 * b3
        + p1ip[3, j + 3] * b3**2
    ) * w**2
    rss = ssw + np.cumsum(((y - sz) * w) ** 2)[-1]
    df = np.cumsum(lev)[-1]
    sumw = np.cumsum(w**2)[-1]
    crit = (rss / sumw) / ((1.0 - (0.0 + 1.0 * df) / sumw) ** 2)
    return coef, float(crit)


def _smooth_spline_gcv(x: np.ndarray, y: np.ndarray) -> _SmoothSplineFit:
    """R's ``smooth.spline(x, y)`` with all defaults (GCV spar search on [-1.5, 1.5]).

    ``x`` must be strictly increasing and well separated (as a density grid is). As in R, the
    returned coefficients are those of the LAST criterion evaluation of the Brent search (not
    necessarily at the returned ``spar``): ``sbart`` does not refit at the optimum.
    """
    n = x.size
    ux = x
    r_ux = ux[-1] - ux[0]
    xbar = (ux - ux[0]) / r_ux
    nknots = _nknots_smspl(n)
    knot_idx = np.trunc(_r_seq(1.0, float(n), nknots)).astype(np.int64) - 1
    knot = np.concatenate([np.repeat(xbar[0], 3), xbar[knot_idx], np.repeat(xbar[-1], 3)])
    nk = nknots + 2
    t1 = np.concatenate([[np.nan], knot])
    w = np.ones(n)  # sqrt of unit weights
    ssw = 0.0
    sg = _sgram(t1, nk)
    xwy, hs = _stxwx(xbar, y, w, t1, nk)
    t1s = 0.0
    t2s = 0.0
    for i in range(2, nk - 3):
        t1s += hs[0, i]
        t2s += sg[0, i]
    ratio = t1s / t2s

    last = {}

    def evaluate(spar: float) -> float:
        lam = ratio * 16.0 ** (spar * 6.0 - 2.0)
        res = _sslvrg(xbar, y, w, ssw, t1, nk, lam, xwy, hs, sg)
        if res is None:
            raise RuntimeError("smooth.spline: banded Cholesky failed (spar too extreme)")
        last["coef"], crit = res
        last["lam"] = lam
        return crit

    # Brent / golden-section minimisation exactly as in sbart.c
    c_gold = 0.381966011250105151795413165634
    big = 1e100
    tol, eps_, maxit = 1e-4, 2e-8, 500
    a, b = -1.5, 1.5
    v = a + c_gold * (b - a)
    w_ = v
    xx = v
    d = 0.0
    e = 0.0
    fx = evaluate(xx)
    fv = fw = fx
    it = 0
    while True:
        xm = (a + b) * 0.5
        tol1 = eps_ * abs(xx) + tol / 3.0
        tol2 = tol1 * 2.0
        it += 1
        if abs(xx - xm) <= tol2 - (b - a) * 0.5 or it > maxit:
            break
        golden = True
        if not (abs(e) <= tol1 or fx >= big or fv >= big or fw >= big):
            r = (xx - w_) * (fx - fv)
            q = (xx - v) * (fx - fw)
            p = (xx - v) * q - (xx - w_) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = d
            if not (abs(p) >= abs(0.5 * q * r) or q == 0.0) and not (
                p <= q * (a - xx) or p >= q * (b - xx)
            ):
                d = p / q
                u = xx + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if xm - xx >= 0 else -tol1
                golden = False
        if golden:
            e = (a - xx) if xx >= xm else (b - xx)
            d = c_gold * e
        u = xx + (d if abs(d) >= tol1 else (tol1 if d >= 0 else -tol1))
        fu = evaluate(u)
        if not math.isfinite(fu):
            fu = 2.0 * big
        if fu <= fx:
            if u >= xx:
                a = xx
            else:
                b = xx
            v, fv = w_, fw
            w_, fw = xx, fx
            xx, fx = u, fu
        else:
            if u < xx:
                a = u
            else:
                b = u
            if fu <= fw or w_ == xx:
                v, fv = w_, fw
                w_, fw = u, fu
            elif fu <= fv or v == xx or v == w_:
                v, fv = u, fu
    return _SmoothSplineFit(
        knot1=t1,
        nk=nk,
        coef=last["coef"],
        xmin=float(ux[0]),
        xrange=float(r_ux),
        spar=xx,
        lam=last["lam"],
        crit=fx,
        iterations=it,
    )


def _predict_smooth_spline(fit: _SmoothSplineFit, x: np.ndarray) -> np.ndarray:
    """``predict(smooth.spline, x)$y`` for x inside the fitted range (no extrapolation)."""
    xs = (x - fit.xmin) / fit.xrange
    if np.any(xs < 0) or np.any(xs > 1):
        raise RuntimeError("smooth.spline prediction outside the fitted range")
    return _bvalue(fit.knot1, fit.coef, fit.nk, xs)


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
    ``smooth.spline`` (exact ports, see module docstring); ``lfdr = pi0 * dnorm(x) / f(x)``,
    truncated at 1 and made monotone in p (cumulative maximum along increasing p).
    ``p`` must be finite (R errors on NA).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError("p must be a 1-d array of at least 2 p-values")
    if not np.all(np.isfinite(p)):
        raise ValueError("edge_lfdr: p contains missing or non-finite values")
    pi0 = min(np.mean(p >= lambda_) / (1 - lambda_), 1.0)
    p = np.minimum(np.maximum(p, eps), 1 - eps)
    order = np.argsort(p)  # ties have equal lfdr, so the order within ties is immaterial
    x_sorted = special.ndtri(p[order])
    grid_x, grid_y = _r_density_gaussian(x_sorted, adj)
    fit = _smooth_spline_gcv(grid_x, grid_y)
    lfdr_sorted = pi0 * _r_dnorm(x_sorted) / _predict_smooth_spline(fit, x_sorted)
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
    a = _r_seq(0.0, 2.0, 100)
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
