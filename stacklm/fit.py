"""Stacked linear model fits: limma's ``lmFit`` (``lm.series``), ``contrasts.fit`` and the fit object.

All features share one design ``X`` (n samples x p columns).  For a matrix ``Y`` (G features x n samples)
the complete rows are fitted together with one QR decomposition of ``X`` and matrix products.  Rows with
missing values are refitted on their observed samples exactly as limma's per-gene loop does (reduced
design, ``lm.fit``'s rank detection with tolerance 1e-7, non-estimable coefficients NA, per-feature
residual df), but grouped by missingness pattern: a pattern shared by several rows costs one QR, and
rows whose pattern is (nearly) unique are solved together through batched Gram matrices of their
observed samples (one BLAS product for all of them, then batched p x p solves with one step of
iterative refinement), which gives the same numbers to rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

#: tolerance of R's ``lm.fit`` (LINPACK dqrdc2) for declaring a column linearly dependent
QR_TOLERANCE = 1e-7

#: missingness patterns shared by at least this many rows are fitted with their own QR
MIN_ROWS_FOR_PATTERN_QR = 4


@dataclass
class LinearModelFit:
    """The fit object passed between :func:`lm_fit`, :func:`contrasts_fit`, ``e_bayes`` and ``top_table``.

    Mirrors limma's ``MArrayLM``: per-feature arrays have one row per feature (input order).
    ``cov_coefficients`` is the unscaled covariance ``(X'X)^-1`` of the full design (limma's
    ``cov.coefficients``), transformed by ``contrasts_fit``.  Moderation fields are ``None`` until
    ``e_bayes`` fills them.
    """

    coefficients: np.ndarray  # G x k
    stdev_unscaled: np.ndarray  # G x k
    sigma: np.ndarray  # G
    df_residual: np.ndarray  # G
    amean: np.ndarray  # G
    cov_coefficients: np.ndarray  # k x k
    coef_names: list[str]
    feature_ids: np.ndarray
    design: np.ndarray | None = None  # n x p, the design the fit was made with
    design_names: list[str] | None = None
    contrasts: np.ndarray | None = None  # p x k once contrasts_fit has run
    # filled by e_bayes
    s2_prior: np.ndarray | float | None = None
    df_prior: np.ndarray | float | None = None
    s2_post: np.ndarray | None = None
    df_total: np.ndarray | None = None
    var_prior: np.ndarray | None = None
    proportion: float | None = None
    t: np.ndarray | None = None
    p_value: np.ndarray | None = None
    lods: np.ndarray | None = None
    F: np.ndarray | None = None
    F_p_value: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.coefficients.shape[0])

    def coef_index(self, names: str | Sequence[str]) -> list[int]:
        """Column positions of coefficient (or contrast) names; a clear error lists the valid ones."""
        if isinstance(names, str):
            names = [names]
        out = []
        for name in names:
            if name not in self.coef_names:
                raise KeyError(
                    f"coefficient {name!r} is not in the fit; available: {', '.join(self.coef_names)}"
                )
            out.append(self.coef_names.index(name))
        return out

    def replace(self, **changes) -> LinearModelFit:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------------
# rank detection as R's lm.fit (dqrdc2 with limited column pivoting)
# --------------------------------------------------------------------------------------------
def estimable_columns(X: np.ndarray, tol: float = QR_TOLERANCE) -> np.ndarray:
    """Boolean mask of the columns R's ``lm.fit`` keeps (the others get NA coefficients).

    LINPACK's dqrdc2 moves a column to the end when the norm of its part orthogonal to the
    columns already accepted falls below ``tol`` times its original norm; accepted columns keep
    their order.  Zero columns are always dropped.
    """
    n, p = X.shape
    keep = np.zeros(p, dtype=bool)
    basis = np.zeros((n, 0))
    for j in range(p):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0.0:
            continue
        resid = col - basis @ (basis.T @ col) if basis.shape[1] else col
        # a second projection pass keeps the orthogonalisation accurate (as Householder would be)
        if basis.shape[1]:
            resid = resid - basis @ (basis.T @ resid)
        rnorm = np.linalg.norm(resid)
        if rnorm >= tol * norm and basis.shape[1] < n:
            keep[j] = True
            basis = np.column_stack([basis, resid / rnorm])
    return keep


def aliased_columns(X: np.ndarray, names: Sequence[str]) -> dict[str, list[str]]:
    """For each column that is a linear combination of earlier ones, the columns it is made of."""
    keep = estimable_columns(X)
    out: dict[str, list[str]] = {}
    kept_idx = np.flatnonzero(keep)
    for j in np.flatnonzero(~keep):
        earlier = kept_idx[kept_idx < j]
        if earlier.size == 0:
            out[names[j]] = []
            continue
        coef, *_ = np.linalg.lstsq(X[:, earlier], X[:, j], rcond=None)
        scale = np.abs(coef).max() if coef.size else 0.0
        out[names[j]] = [
            names[k] for k, c in zip(earlier, coef, strict=True) if abs(c) > 1e-8 * scale
        ]
    return out


# --------------------------------------------------------------------------------------------
# lm_fit
# --------------------------------------------------------------------------------------------
def _fit_complete(Y: np.ndarray, X: np.ndarray):
    """Rows of Y (all observed) on full-rank X: coefficients, stdev.unscaled row, sigma, df."""
    n, p = X.shape
    Q, R = np.linalg.qr(X)
    effects = Y @ Q  # G x p
    coef = solve_triangular(R, effects.T).T
    resid = Y - coef @ X.T
    df = n - p
    rinv = solve_triangular(R, np.eye(p))
    stdev_row = np.sqrt(np.sum(rinv**2, axis=1))  # sqrt(diag((R'R)^-1)) = row norms of R^-1
    if df > 0:
        sigma = np.sqrt(np.einsum("ij,ij->i", resid, resid) / df)
    else:
        sigma = np.full(Y.shape[0], np.nan)
    return coef, stdev_row, sigma, df


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


def _fit_rows_gram(Y: np.ndarray, obs: np.ndarray, X: np.ndarray):
    """Batched exact least squares for rows with individual missingness patterns.

    For each row i with observed mask w_i: G_i = X' diag(w_i) X and b_i = G_i^-1 X' diag(w_i) y_i, all
    rows at once (one matrix product for the Gram matrices, batched p x p solves), followed by one step
    of iterative refinement on the residuals so the coefficients carry QR accuracy.  Columns are scaled
    to unit norm first to keep the Gram matrices well conditioned.  The caller guarantees every row's
    observed design has full column rank.
    """
    n, p = X.shape
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    W = obs.astype(np.float64)
    Yz = np.where(obs, Y, 0.0)
    outer = (Xs[:, :, None] * Xs[:, None, :]).reshape(n, p * p)
    G = (W @ outer).reshape(-1, p, p)
    rhs = Yz @ Xs
    b = np.linalg.solve(G, rhs[:, :, None])[:, :, 0]
    resid = np.where(obs, Yz - b @ Xs.T, 0.0)
    b += np.linalg.solve(G, (resid @ Xs)[:, :, None])[:, :, 0]
    resid = np.where(obs, Yz - b @ Xs.T, 0.0)
    Ginv = np.linalg.inv(G)
    diag = np.einsum("ijj->ij", Ginv)
    coef = b / scale
    stdev = np.sqrt(diag) / scale
    df = W.sum(axis=1) - p
    rss = np.einsum("ij,ij->i", resid, resid)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.where(df > 0, np.sqrt(rss / np.where(df > 0, df, 1)), np.nan)
    return coef, stdev, sigma, df


def _gram_full_rank(obs: np.ndarray, X: np.ndarray, tol: float = QR_TOLERANCE) -> np.ndarray:
    """Which rows' observed designs pass dqrdc2's rank test, via a batched Cholesky of the Gram matrices.

    The squared norm of column j orthogonal to the earlier columns is the j-th Cholesky pivot of the
    observed Gram matrix; dqrdc2 rejects the column when that falls below tol^2 times the column's
    squared norm.  Rows failing for any column (rare) go through the exact per-pattern QR path.
    """
    n, p = X.shape
    W = obs.astype(np.float64)
    outer = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    G = (W @ outer).reshape(-1, p, p)
    m = G.shape[0]
    L = np.zeros_like(G)
    ok = np.ones(m, dtype=bool)
    for j in range(p):
        d = G[:, j, j] - np.einsum("ik,ik->i", L[:, j, :j], L[:, j, :j])
        good = (G[:, j, j] > 0) & (d >= (tol * tol) * G[:, j, j] * (1 + 1e-9))
        ok &= good
        dj = np.sqrt(np.where(good, d, 1.0))
        L[:, j, j] = dj
        if j + 1 < p:
            L[:, j + 1 :, j] = (
                G[:, j + 1 :, j] - np.einsum("ik,irk->ir", L[:, j, :j], L[:, j + 1 :, :j])
            ) / dj[:, None]
    # rows near the threshold are decided by the exact QR path
    return ok


def lm_fit(
    Y,
    design,
    coef_names: Sequence[str] | None = None,
    feature_ids: Sequence | None = None,
) -> LinearModelFit:
    """Fit ``y_g = X b_g + e_g`` for every row of ``Y`` (features x samples), as limma's ``lmFit``.

    ``Y`` may be a numpy array or a DataFrame (its index gives the feature ids); ``design`` a numpy
    array or a DataFrame (its columns give the coefficient names).  NaN marks a missing value.

    Returns coefficients, stdev.unscaled (sqrt of the diagonal of (X'X)^-1 for the design rows the
    feature was fitted on), sigma (residual standard deviation), df.residual and Amean (row mean of the
    observed values), as ``lmFit``.  Features with missing values are fitted on their observed samples;
    coefficients that are not estimable there are NaN, as are the statistics of all-missing rows and
    the sigma of rows with zero residual df.  The full design must have full column rank (use
    :func:`stacklm.design.design_matrix`, which names aliased columns).
    """
    if isinstance(Y, pd.DataFrame):
        if feature_ids is None:
            feature_ids = Y.index.to_numpy()
        Y = Y.to_numpy(dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[None, :]
    if isinstance(design, pd.DataFrame):
        if coef_names is None:
            coef_names = [str(c) for c in design.columns]
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
    if np.any(np.isinf(Y)):
        raise ValueError(
            "matrix contains infinite values; only finite values or NaN (missing) are allowed"
        )

    keep = estimable_columns(X)
    if not keep.all():
        alias = aliased_columns(X, coef_names)
        detail = "; ".join(f"{k} = combination of [{', '.join(v)}]" for k, v in alias.items())
        raise ValueError(f"design matrix is not of full column rank: {detail}")

    coef = np.full((G, p), np.nan)
    stdev = np.full((G, p), np.nan)
    sigma = np.full(G, np.nan)
    df = np.zeros(G)

    obs = ~np.isnan(Y)
    complete = obs.all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_obs = obs.sum(axis=1)
        amean = np.where(
            n_obs > 0, np.where(obs, Y, 0.0).sum(axis=1) / np.maximum(n_obs, 1), np.nan
        )

    if complete.any():
        idx = np.flatnonzero(complete)
        c, s_row, sg, d = _fit_complete(Y[idx], X)
        coef[idx], stdev[idx], sigma[idx], df[idx] = c, s_row, sg, d

    partial = np.flatnonzero(~complete & (n_obs > 0))
    if partial.size:
        packed = np.packbits(obs[partial], axis=1)
        _, inverse, counts = np.unique(packed, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        big = counts[inverse] >= MIN_ROWS_FOR_PATTERN_QR
        small_rows = partial[~big]
        qr_rows = [partial[big]]
        if small_rows.size:
            full_rank = _gram_full_rank(obs[small_rows], X)
            rows = small_rows[full_rank]
            if rows.size:
                c, s, sg, d = _fit_rows_gram(Y[rows], obs[rows], X)
                coef[rows], stdev[rows], sigma[rows], df[rows] = c, s, sg, d
            qr_rows.append(small_rows[~full_rank])
        qr_rows = np.concatenate(qr_rows)
        if qr_rows.size:
            packed = np.packbits(obs[qr_rows], axis=1)
            _, inv2 = np.unique(packed, axis=0, return_inverse=True)
            inv2 = inv2.ravel()
            order = np.argsort(inv2, kind="stable")
            bounds = np.flatnonzero(np.diff(inv2[order])) + 1
            for group in np.split(qr_rows[order], bounds):
                mask = obs[group[0]]
                c, s, sg, d = _fit_pattern_qr(Y[np.ix_(group, mask)], X[mask], p)
                coef[group], stdev[group], sigma[group], df[group] = c, s, sg, d

    rinv = solve_triangular(np.linalg.qr(X)[1], np.eye(p))
    cov = rinv @ rinv.T  # chol2inv(R), limma's cov.coefficients
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


# --------------------------------------------------------------------------------------------
# contrasts
# --------------------------------------------------------------------------------------------
def _cov2cor(cov: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.diag(cov))
    return cov / d[:, None] / d[None, :]


def contrasts_fit(
    fit: LinearModelFit, contrasts, names: Sequence[str] | None = None
) -> LinearModelFit:
    """Re-express a fit in terms of contrasts of its coefficients, as limma's ``contrasts.fit``.

    ``contrasts`` is a p x k matrix (or DataFrame whose columns name the contrasts), or a dict /
    list of strings such as ``"geographyDesert - geographyMountain"`` (see
    :func:`stacklm.design.make_contrasts`).  Estimates are ``B C``; stdev.unscaled uses the
    correlation of the coefficients (``cov.coefficients``), as limma does, treating NaN coefficients
    as having huge variance so that a zero contrast weight removes them; contrasts involving a
    non-estimable coefficient are NaN.  Moderation results are dropped (run ``e_bayes`` again).
    """
    from .design import make_contrasts

    if isinstance(contrasts, dict | list | tuple) and not isinstance(contrasts, np.ndarray):
        if all(
            isinstance(c, str)
            for c in (contrasts.values() if isinstance(contrasts, dict) else contrasts)
        ):
            contrasts = make_contrasts(contrasts, fit.coef_names)
    if isinstance(contrasts, pd.DataFrame):
        if names is None:
            names = [str(c) for c in contrasts.columns]
        if list(contrasts.index) != list(range(len(contrasts.index))) and list(
            map(str, contrasts.index)
        ) != list(fit.coef_names):
            raise ValueError("row names of the contrast matrix do not match the coefficient names")
        contrasts = contrasts.to_numpy(dtype=np.float64)
    C = np.asarray(contrasts, dtype=np.float64)
    if C.ndim == 1:
        C = C[:, None]
    p = fit.coefficients.shape[1]
    if C.shape[0] != p:
        raise ValueError(
            f"contrast matrix has {C.shape[0]} rows but the fit has {p} coefficients ({', '.join(fit.coef_names)})"
        )
    if np.isnan(C).any():
        raise ValueError("NaN not allowed in contrasts")
    if names is None:
        names = [f"contrast{j + 1}" for j in range(C.shape[1])]
    names = list(names)

    coef = fit.coefficients.copy()
    stdev = fit.stdev_unscaled.copy()
    cov = fit.cov_coefficients
    cor = _cov2cor(cov)
    nonzero = np.abs(C).sum(axis=1) != 0
    full_C = C
    if not nonzero.all():
        C = C[nonzero]
        coef = coef[:, nonzero]
        stdev = stdev[:, nonzero]
        cov = cov[np.ix_(nonzero, nonzero)]
        cor = cor[np.ix_(nonzero, nonzero)]
    na_coef = np.isnan(coef)
    has_na = na_coef.any()
    if has_na:
        coef[na_coef] = 0.0
        stdev[na_coef] = 1e30
    new_coef = coef @ C
    orthog = cor.size < 2 or bool(np.all(np.abs(cor[np.tril_indices_from(cor, -1)]) < 1e-14))
    Rc = np.linalg.cholesky(cov).T
    new_cov = (Rc @ C).T @ (Rc @ C)
    if orthog:
        new_stdev = np.sqrt((stdev**2) @ (C**2))
    else:
        new_stdev = np.empty((coef.shape[0], C.shape[1]))
        for k in range(C.shape[1]):
            sc = stdev * C[:, k]
            new_stdev[:, k] = np.sqrt(np.einsum("ij,jk,ik->i", sc, cor, sc))
    if has_na:
        big = new_stdev > 1e20
        new_coef[big] = np.nan
        new_stdev[big] = np.nan
    return fit.replace(
        coefficients=new_coef,
        stdev_unscaled=new_stdev,
        cov_coefficients=new_cov,
        coef_names=names,
        contrasts=full_C,
        s2_prior=None,
        df_prior=None,
        s2_post=None,
        df_total=None,
        var_prior=None,
        t=None,
        p_value=None,
        lods=None,
        F=None,
        F_p_value=None,
    )


def subset_coefficients(fit: LinearModelFit, names: Sequence[str]) -> LinearModelFit:
    """Keep only some coefficients (limma's ``fit[, coef]``); moderated t/p/lods are kept, F is not."""
    idx = fit.coef_index(list(names))

    def take(a):
        return None if a is None else a[:, idx]

    return fit.replace(
        coefficients=fit.coefficients[:, idx],
        stdev_unscaled=fit.stdev_unscaled[:, idx],
        cov_coefficients=fit.cov_coefficients[np.ix_(idx, idx)],
        coef_names=[fit.coef_names[i] for i in idx],
        t=take(fit.t),
        p_value=take(fit.p_value),
        lods=take(fit.lods),
        var_prior=None if fit.var_prior is None else np.asarray(fit.var_prior)[idx],
        F=None,
        F_p_value=None,
    )


# --------------------------------------------------------------------------------------------
# chunks
# --------------------------------------------------------------------------------------------
_ROW_FIELDS = ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean", "feature_ids")


def concat_fits(fits: Sequence[LinearModelFit]) -> LinearModelFit:
    """Stack fits of row chunks (same design) into one fit, in the given order, before moderation."""
    if not fits:
        raise ValueError("no fits to concatenate")
    first = fits[0]
    for f in fits[1:]:
        if f.coef_names != first.coef_names or not np.array_equal(
            f.cov_coefficients, first.cov_coefficients
        ):
            raise ValueError("fits to concatenate must come from the same design and coefficients")
        if f.t is not None:
            raise ValueError("concatenate fits before moderation (e_bayes is global)")
    rows = {name: np.concatenate([getattr(f, name) for f in fits]) for name in _ROW_FIELDS}
    return first.replace(**rows)


def save_fit(fit: LinearModelFit, path) -> None:
    """Write the un-moderated fit as a compact binary ``.npz`` (float64 arrays + names)."""
    np.savez(
        path,
        coefficients=fit.coefficients,
        stdev_unscaled=fit.stdev_unscaled,
        sigma=fit.sigma,
        df_residual=fit.df_residual,
        amean=fit.amean,
        cov_coefficients=fit.cov_coefficients,
        coef_names=np.array(fit.coef_names, dtype=str),
        feature_ids=np.asarray(fit.feature_ids).astype(str),
        design=fit.design if fit.design is not None else np.zeros((0, 0)),
    )


def load_fit(path) -> LinearModelFit:
    """Read a fit written by :func:`save_fit`."""
    with np.load(path, allow_pickle=False) as z:
        design = z["design"]
        names = [str(s) for s in z["coef_names"]]
        return LinearModelFit(
            coefficients=z["coefficients"],
            stdev_unscaled=z["stdev_unscaled"],
            sigma=z["sigma"],
            df_residual=z["df_residual"],
            amean=z["amean"],
            cov_coefficients=z["cov_coefficients"],
            coef_names=names,
            feature_ids=z["feature_ids"],
            design=design if design.size else None,
            design_names=names,
        )
