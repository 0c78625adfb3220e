"""The moderated F-statistic over a set of coefficients, as limma's ``classifyTestsF`` /
``topTableF`` compute it (the eigen-decomposition of the coefficients' correlation)."""

from __future__ import annotations

import numpy as np

from stacklm.limma.marraylm import LinearModelFit
from stacklm.rstats.distributions import _f_sf
from stacklm.rstats.lazy import stats


def moderated_f(fit: LinearModelFit, coefs=None, use_chisq_for_large_df: bool = True):
    """Moderated F-statistic over a set of coefficients and its p-value.

    As limma's ``classifyTestsF(fstat.only=TRUE)`` on ``fit[, coefs]``: the t-statistics are
    combined through the correlation matrix of the coefficients (``cov.coefficients`` of the
    design, also for features with missing values), df1 is the rank of that correlation matrix, and
    df2 = df.prior + df.residual.  ``topTable`` (``use_chisq_for_large_df=True``) switches to the
    chi-square distribution when the first df2 exceeds 1e6; ``eBayes`` calls ``pf`` directly.
    """
    if fit.t is None:
        raise ValueError("run e_bayes first")
    idx = list(range(len(fit.coef_names))) if coefs is None else fit.coef_index(coefs)
    if idx and idx == list(range(idx[0], idx[0] + len(idx))):
        t = fit.t[:, idx[0] : idx[0] + len(idx)]  # a view, not a copy
    else:
        t = fit.t[:, idx]
    df2 = np.asarray(fit.df_prior, dtype=np.float64) + np.asarray(fit.df_residual, dtype=np.float64)
    df2 = np.broadcast_to(df2, (t.shape[0],))
    if t.shape[1] == 1:
        F = t[:, 0] ** 2
        df1 = 1
    else:
        values, vectors = _correlation_eigen(fit, idx)
        df1 = int(np.sum(values / values[0] > 1e-8))
        Q = vectors[:, :df1] / np.sqrt(values[:df1])[None, :] / np.sqrt(df1)
        tq = row_major(t) @ Q
        np.multiply(tq, tq, out=tq)
        F = np.sum(tq, axis=1)
    if use_chisq_for_large_df and df2[0] > 1e6:
        p = stats.chi2.sf(df1 * F, df1)
    else:
        p = _f_sf(F, df1, df2)
    return F, p


def row_major(values: np.ndarray) -> np.ndarray:
    """``values`` (G x k) with each row's cells next to each other: as it is when they are (a
    row-major array or a view of some of its columns), else a row-major copy (a column-major t of
    :func:`~stacklm.limma.ebayes.e_bayes`).  A product ``t @ Q`` then takes the same BLAS path,
    and gives the same bits, whatever the layout of the fit's t."""
    values = np.asarray(values)
    if values.ndim == 2 and values.strides[1] != values.itemsize:
        return np.ascontiguousarray(values)
    return values


def _correlation_eigen(fit: LinearModelFit, idx):
    """Eigen-decomposition (decreasing) of the coefficients' correlation matrix, as classifyTestsF."""
    cov = fit.cov_coefficients[np.ix_(idx, idx)].copy()
    d = np.diag(cov).copy()
    if d.min() == 0:
        cov[np.diag_indices_from(cov)] = np.where(d == 0, 1.0, d)
    sd = np.sqrt(np.diag(cov))
    values, vectors = np.linalg.eigh(cov / sd[:, None] / sd[None, :])
    return values[::-1], vectors[:, ::-1]


def f_test_df1(fit: LinearModelFit, coefs) -> int:
    """Numerator df of the moderated F over ``coefs``: the rank of their correlation matrix."""
    idx = fit.coef_index(coefs)
    if len(idx) == 1:
        return 1
    values, _ = _correlation_eigen(fit, idx)
    return int(np.sum(values / values[0] > 1e-8))
