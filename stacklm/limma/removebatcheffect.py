"""limma's ``removeBatchEffect``: the data with the fitted batch / covariate effects removed.

A port of limma 3.63.2's R/removeBatchEffect.R: batch factors coded with ``contr.sum``, one linear
model per feature on ``cbind(design, X.batch)`` through :func:`stacklm.limma.lmfit.lm_fit` (which
fits rows with missing values on their observed samples, as lmFit's per-gene ``lm.fit``; non
estimable coefficients are NaN and, as in limma, count as 0), and ``x - beta %*% t(X.batch)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stacklm.limma.lmfit import lm_fit
from stacklm.rstats.qr import estimable_columns

__all__ = ["batch_contr_sum", "remove_batch_effect"]


def _levels(values) -> tuple[np.ndarray, np.ndarray]:
    """Codes and levels of R's ``as.factor``: a pandas Categorical keeps its categories,
    otherwise the sorted distinct values."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.Categorical | pd.arrays.Categorical):
        codes = np.asarray(values.codes)
        if (codes < 0).any():
            raise ValueError("batch contains missing values")
        return codes, np.asarray(values.categories)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("a batch must be one value per sample")
    if pd.isna(pd.Series(arr)).any():
        raise ValueError("batch contains missing values")
    levels, codes = np.unique(arr, return_inverse=True)
    return codes.ravel(), levels


def batch_contr_sum(batch) -> np.ndarray:
    """``model.matrix(~batch)[, -1]`` with ``contrasts(batch) <- contr.sum(levels(batch))``:
    n x (L-1), level i < L coded by the unit vector e_i, the last level by -1s.

    The removed effect does not depend on the level order where a feature's combined design has
    full rank on its observed samples (any order spans the same space); where it has not (e.g. a
    feature with 3 observations), which coefficients are dropped follows the column order, as in
    R, so the levels follow R's ``as.factor``: a pandas Categorical's categories, else sorted
    values (numbers numerically; strings by code point, where R sorts in the locale's collation:
    the same for the usual batch labels, not for labels differing only in case).
    """
    codes, levels = _levels(batch)
    n_levels = len(levels)
    contr = np.vstack([np.eye(n_levels - 1), -np.ones((1, n_levels - 1))])
    return contr[codes]


def _treatment_design(group) -> np.ndarray:
    """``model.matrix(~group)`` (treatment contrasts: intercept and levels 2..L)."""
    codes, levels = _levels(group)
    X = np.zeros((codes.size, len(levels)))
    X[:, 0] = 1.0
    rest = codes > 0
    X[np.flatnonzero(rest), codes[rest]] = 1.0
    return X


def remove_batch_effect(x, batch=None, batch2=None, covariates=None, design=None, group=None):
    """``limma::removeBatchEffect(x, batch, batch2, covariates, design, group)``.

    ``x`` is features x samples (numpy array or DataFrame; NaN = missing).  ``batch`` /
    ``batch2`` are per-sample factors (coded with contr.sum), ``covariates`` an n-vector or
    n x q matrix; ``design`` (n x p, default an intercept) or ``group`` (a factor, for
    ``model.matrix(~group)``) holds the effects to keep.  Each feature is fitted on
    ``[design, X.batch]`` (lmFit; rows with NaN on their observed samples) and ``X.batch beta``
    subtracted, non-estimable coefficients counting as 0; NaN cells stay NaN.  Columns of the
    combined design that R's QR would declare aliased (``lm.fit``'s pivoting, tolerance 1e-7)
    get no coefficient, as in limma (NA there, set to 0).

    With no batch, batch2 or covariates, ``x`` is returned unchanged (as a float array /
    DataFrame).  The result has the type of ``x`` (DataFrame index / columns kept).
    """
    frame = x if isinstance(x, pd.DataFrame) else None
    Y = np.asarray(x, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[None, :]
    n = Y.shape[1]
    if batch is None and batch2 is None and covariates is None:
        out = Y.copy()
        return out if frame is None else pd.DataFrame(out, index=frame.index, columns=frame.columns)
    parts = []
    for b in (batch, batch2):
        if b is not None:
            parts.append(batch_contr_sum(b))
    if covariates is not None:
        cov = np.asarray(covariates, dtype=np.float64)
        parts.append(cov[:, None] if cov.ndim == 1 else cov)
    for part in parts:
        if part.shape[0] != n:
            raise ValueError(
                f"batch / covariates have {part.shape[0]} samples but x has {n} columns"
            )
    X_batch = np.hstack(parts)
    if group is not None:
        design = _treatment_design(group)
    elif design is None:
        design = np.ones((n, 1))
    design = np.asarray(design, dtype=np.float64)
    if design.ndim == 1:
        design = design[:, None]
    if design.shape[0] != n:
        raise ValueError(f"design has {design.shape[0]} rows but x has {n} columns")
    X = np.hstack([design, X_batch])
    keep = estimable_columns(X)
    fit = lm_fit(Y, X[:, keep])
    beta_all = np.zeros((Y.shape[0], X.shape[1]))
    beta_all[:, keep] = fit.coefficients
    beta = beta_all[:, design.shape[1] :]
    beta[np.isnan(beta)] = 0.0
    out = Y - beta @ X_batch.T
    return out if frame is None else pd.DataFrame(out, index=frame.index, columns=frame.columns)
