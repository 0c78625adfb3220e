"""The least-squares machinery that limma's three fitting routes share: :func:`stacklm.lm_fit`
(``lm.series``), :func:`stacklm.limma.weightedfit.lm_wfit` (``lm.series`` with weights) and
:func:`stacklm.limma.glsseries.gls_series` (``gls.series``).

* :func:`fit_inputs`, :func:`matrix_weights`, :func:`require_full_rank`: the matrix, the design
  and the weights as arrays (DataFrames matched by sample label; limma's ``asMatrixWeights``), and
  the full-rank check that names the aliased columns;
* :class:`DesignQR` and :func:`fit_complete`: the QR of one design and ``lm.fit`` of many rows on it;
* :func:`gram_solve`, :meth:`DesignQR.gram_stdev`: per-row Gram matrices ``G_i = Q' W_i Q`` in the
  orthonormal basis of the full design, factored and solved for all rows at once (the batched
  Cholesky of :mod:`stacklm.rstats.cholesky`);
* :func:`observed_row_means` (Amean), :func:`sigma_from_rss`, :class:`RowFits` (the per-row arrays
  filled block by block and the :class:`~stacklm.LinearModelFit` they make);
* :func:`one_blas_thread`: the threading of the row passes (their blocks are sized by
  :mod:`stacklm.io.blocks`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy.linalg import solve_triangular

from stacklm.frames import is_frame, is_frame_or_series
from stacklm.limma.labels import align_by_label, labels_of
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.qrrank import aliased_columns
from stacklm.rstats.cholesky import cholesky_solve, lower_inverse
from stacklm.rstats.qr import estimable_columns

# --------------------------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------------------------
_BLAS_CONTROLLER = None


def one_blas_thread(func):
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


# --------------------------------------------------------------------------------------------
# inputs and outputs
# --------------------------------------------------------------------------------------------
def fit_inputs(Y, design, coef_names=None, feature_ids=None, keep_int8: bool = False):
    """``Y`` (features x samples) and ``design`` as float64 arrays, with coefficient names and
    feature ids (from the DataFrames' labels, else ``x1..xp`` and ``0..G-1``).  With
    ``keep_int8``, an int8 numpy array (or memory map) ``Y`` is returned as it is (no float copy).

    When both are DataFrames whose matrix columns and design index name the samples, the design
    rows are matched to the matrix columns by label (limma matches by position); differing labels
    are refused.  The design must have one row per sample and finite values."""
    sample_labels = None
    if is_frame(Y):
        if feature_ids is None:
            feature_ids = Y.index.to_numpy()
        sample_labels = labels_of(Y.columns)
        Y = Y.to_numpy(dtype=np.float64)
    if not (keep_int8 and isinstance(Y, np.ndarray) and Y.dtype == np.int8):
        Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[None, :]
    if is_frame(design):
        if coef_names is None:
            coef_names = [str(c) for c in design.columns]
        # when both name the samples, the design rows follow the matrix columns
        design = align_by_label(
            design, sample_labels, "the matrix columns", "the design rows", "sample labels"
        )
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
    coef_names = list(coef_names) if coef_names is not None else [f"x{j + 1}" for j in range(p)]
    feature_ids = np.asarray(feature_ids) if feature_ids is not None else np.arange(G)
    return Y, X, coef_names, feature_ids


def matrix_weights(weights, G: int, n: int) -> tuple[np.ndarray, bool]:
    """limma's ``asMatrixWeights``: a G x n matrix, or a length-n (or 1 x n) vector of sample
    weights (broadcast; the second value says so).  A length-G vector when G == n would be probe
    weights in R; here a 1-D vector of length n is always taken as sample weights."""
    if is_frame_or_series(weights):
        weights = weights.to_numpy(dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2 and w.shape == (G, n):
        return w, False
    if (w.ndim == 1 and w.size == n) or (w.ndim == 2 and w.shape == (1, n)):
        return w.reshape(1, n), True
    if w.ndim == 0 or w.size == 1:
        return np.full((1, n), float(w.ravel()[0])), True
    raise ValueError(
        f"weights of shape {w.shape} do not fit a matrix of {G} features x {n} samples "
        "(give a features x samples matrix or one weight per sample)"
    )


def require_full_rank(X: np.ndarray, coef_names: Sequence[str]) -> None:
    """Refuse a design without full column rank, naming each aliased column and what it is a
    combination of."""
    if not estimable_columns(X).all():
        alias = aliased_columns(X, coef_names)
        detail = "; ".join(f"{k} = combination of [{', '.join(v)}]" for k, v in alias.items())
        raise ValueError(f"design matrix is not of full column rank: {detail}")


def observed_row_means(Y: np.ndarray) -> np.ndarray:
    """Amean: each row's mean of its non-NaN values (numpy row sums), NaN for a row without any."""
    nan = np.isnan(Y)
    n_obs = Y.shape[1] - nan.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_obs > 0, np.where(nan, 0.0, Y).sum(axis=1) / np.maximum(n_obs, 1), np.nan)


def sigma_from_rss(rss: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``sqrt(rss / df)``, NaN where the residual df is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(df > 0, np.sqrt(rss / np.where(df > 0, df, 1)), np.nan)


class RowFits:
    """Per-row results filled block by block: coefficients and stdev.unscaled (G x p, NaN until
    stored), sigma (NaN) and df.residual (0)."""

    def __init__(self, G: int, p: int):
        self.coefficients = np.full((G, p), np.nan)
        self.stdev_unscaled = np.full((G, p), np.nan)
        self.sigma = np.full(G, np.nan)
        self.df_residual = np.zeros(G)

    def store(self, rows, coefficients, stdev_unscaled, sigma, df_residual) -> None:
        """Results of the rows ``rows`` (an index or a slice; values broadcast)."""
        self.coefficients[rows] = coefficients
        self.stdev_unscaled[rows] = stdev_unscaled
        self.sigma[rows] = sigma
        self.df_residual[rows] = df_residual

    def result(self, amean, cov_coefficients, coef_names, feature_ids, design, extra=None):
        """The :class:`~stacklm.LinearModelFit` of these rows on ``design``."""
        return LinearModelFit(
            coefficients=self.coefficients,
            stdev_unscaled=self.stdev_unscaled,
            sigma=self.sigma,
            df_residual=self.df_residual,
            amean=amean,
            cov_coefficients=cov_coefficients,
            coef_names=list(coef_names),
            feature_ids=feature_ids,
            design=design,
            design_names=list(coef_names),
            extra={} if extra is None else extra,
        )


# --------------------------------------------------------------------------------------------
# one design: QR and lm.fit of many rows
# --------------------------------------------------------------------------------------------
class DesignQR:
    """QR of a full-rank design ``X = QR``, shared by every block of rows fitted on it; with
    ``gram=True`` also the products that form each row's Gram matrix ``Q' W_i Q`` (lower triangle)
    and the squared norms of its weighted columns with one BLAS product over rows."""

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
        # both, side by side: one sparse product per block gives every row's Gram downdate
        self.gram_terms = np.hstack([self.q_outer, self.x_squared])
        ones = np.flatnonzero(np.all(X == 1.0, axis=0))
        self.ones_column = int(ones[0]) if ones.size else None

    @property
    def cov_coefficients(self) -> np.ndarray:
        """``chol2inv(R)``: limma's ``cov.coefficients``."""
        return self.rinv @ self.rinv.T

    def rank_ratio(self, pivots: np.ndarray, col_sq: np.ndarray) -> np.ndarray:
        """dqrdc2's rank test of each row's (observed / weighted) design, exact in the Gram form:
        the squared norm of column j orthogonal to the earlier ones, ``R_jj^2`` times the j-th
        Cholesky pivot of ``G_i``, over the column's squared norm ``col_sq`` ((p, m) both)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.diag(self.R) ** 2)[:, None] * pivots / col_sq

    def gram_stdev(self, L: np.ndarray) -> np.ndarray:
        """stdev.unscaled of each row from the Cholesky factor L (p, p, m) of its Gram matrix:
        the square root of the diagonal of ``R^-1 L^-T L^-1 R^-T``, shape (m, p)."""
        p, _, m = L.shape
        Minv = lower_inverse(L)
        N = (self.rinv @ Minv.transpose(1, 0, 2).reshape(p, p * m)).reshape(p, p, m)
        return np.sqrt(np.einsum("jkm,jkm->mj", N, N))


def fit_complete(Y: np.ndarray, qr: DesignQR):
    """``lm.fit`` of the rows of Y (all observed) on the full-rank design of ``qr``: coefficients,
    the stdev.unscaled row shared by all rows, sigma and the residual df."""
    effects = Y @ qr.Q  # G x p
    coef = solve_triangular(qr.R, effects.T, check_finite=False).T
    resid = Y - coef @ qr.Xt
    if qr.df > 0:
        sigma = np.sqrt(np.einsum("ij,ij->i", resid, resid) / qr.df)
    else:
        sigma = np.full(Y.shape[0], np.nan)
    return coef, qr.stdev_row, sigma, qr.df


# --------------------------------------------------------------------------------------------
# per-row Gram matrices, all rows at once
# --------------------------------------------------------------------------------------------
def gram_solve(
    qr: DesignQR,
    L: np.ndarray,
    Yz: np.ndarray,
    observed: np.ndarray | None,
    weights: np.ndarray | None = None,
    refine: bool = True,
):
    """Least squares of each row of ``Yz`` (0 where not observed) through the Cholesky factor L of
    its Gram matrix ``Q' W_i Q``: ``b_Q = G_i^-1 Q' W_i y_i``, optionally one step of iterative
    refinement on the (weighted) residuals, ``b = R^-1 b_Q``.  ``observed`` None: every sample
    of every row (no masks); ``weights`` None means weight 1 on the observed samples.  Returns
    the coefficients (m x p) and the (weighted) residual sums of squares."""

    def weighted(a):
        return a if weights is None else weights * a

    def masked(a):
        return a if observed is None else np.where(observed, a, 0.0)

    bq = cholesky_solve(L, (weighted(Yz) @ qr.Q).T)
    resid = masked(Yz - bq.T @ qr.Qt)
    if refine:
        bq += cholesky_solve(L, (weighted(resid) @ qr.Q).T)
        resid = masked(Yz - bq.T @ qr.Qt)
    coef = solve_triangular(qr.R, bq, check_finite=False).T
    return coef, np.einsum("ij,ij->i", weighted(resid), resid)


def refuse_infinite(Y: np.ndarray) -> None:
    """The error of a matrix with +/-Inf (lmFit and lm.wfit take finite values and NaN only)."""
    if np.isinf(Y).any():
        raise ValueError(
            "matrix contains infinite values; only finite values or NaN (missing) are allowed"
        )
