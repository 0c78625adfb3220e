"""limma's ``contrasts.fit``: coefficients, standard errors and correlation of linear
combinations of the fitted coefficients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stacklm.design.contrasts import make_contrasts
from stacklm.limma.labels import align_by_label
from stacklm.limma.marraylm import LinearModelFit


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

    ``contrasts`` is a p x k matrix (or DataFrame whose columns name the contrasts and whose index,
    if it names coefficients, is matched to the fit's coefficient names by name, where limma only
    warns; a Series is one contrast), or a dict /
    list of strings such as ``"geographyDesert - geographyMountain"`` (see
    :func:`stacklm.design.make_contrasts`).  Estimates are ``B C``; stdev.unscaled uses the
    correlation of the coefficients (``cov.coefficients``), as limma does, treating NaN coefficients
    as having huge variance so that a zero contrast weight removes them; contrasts involving a
    non-estimable coefficient are NaN.  Moderation results are dropped (run ``e_bayes`` again).
    """

    if isinstance(contrasts, dict | list | tuple) and not isinstance(contrasts, np.ndarray):
        if all(
            isinstance(c, str)
            for c in (contrasts.values() if isinstance(contrasts, dict) else contrasts)
        ):
            contrasts = make_contrasts(contrasts, fit.coef_names)
    if isinstance(contrasts, pd.Series):
        contrasts = contrasts.to_frame(name=contrasts.name)
        if contrasts.columns[0] is None:
            contrasts.columns = ["contrast1"]
    if isinstance(contrasts, pd.DataFrame):
        if names is None:
            names = [str(c) for c in contrasts.columns]
        # rows named by coefficient: matched to the fit's coefficients by name
        contrasts = align_by_label(
            contrasts,
            [str(c) for c in fit.coef_names],
            "the fit's coefficients",
            "the contrast rows",
            "coefficient names",
        )
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
