"""limma's ``squeezeVar``: posterior variances from the estimated scaled F prior (limma 3.63.2's
``legacy`` switch between fitFDistUnequalDF1 and the 3.54.1 moment estimators)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stacklm.limma.fitfdist import fit_f_dist
from stacklm.limma.fitfdistrobustly import fit_f_dist_robustly
from stacklm.limma.fitfdistunequaldf1 import fit_f_dist_unequal_df1


@dataclass
class SqueezedVariances:
    var_post: np.ndarray
    var_prior: np.ndarray | float
    df_prior: np.ndarray | float


def squeeze_var(
    var,
    df,
    covariate=None,
    robust=False,
    winsor_tail_p=(0.05, 0.1),
    legacy: bool | None = None,
) -> SqueezedVariances:
    """Posterior variances ``(df*var + d0*s0^2) / (df + d0)`` with the prior estimated from all
    features (limma ``squeezeVar``).  Features with ``df == 0`` do not inform the prior and get
    the prior as their posterior.

    ``legacy`` as limma 3.63.2's ``squeezeVar(legacy=)``: ``None`` (default) chooses the prior
    estimator from the df: when the positive df all agree (no missing values) the moment estimator
    of ``fitFDist`` / ``fitFDistRobustly`` (``robust``), otherwise limma >= 3.62's
    ``fitFDistUnequalDF1`` (:func:`stacklm.limma.fitfdistunequaldf1.fit_f_dist_unequal_df1`,
    ``robust`` included; ``winsor_tail_p`` is not used there); ``False`` always uses
    ``fitFDistUnequalDF1``; ``True`` always the moment estimators, i.e. limma <= 3.60 (3.54.1):
    the numbers of ``legacy=True`` are those of limma 3.54.1's ``squeezeVar``, including its rule
    for fewer than three features (only one feature is returned unsqueezed; limma 3.62+ returns
    fewer than three unsqueezed whatever ``legacy`` is).
    """
    var = np.asarray(var, dtype=np.float64).copy()
    n = var.size
    if n == 0:
        raise ValueError("var is empty")
    if legacy is not None and bool(legacy):
        if n == 1:
            return SqueezedVariances(var, var, 0.0)
    elif n < 3:
        return SqueezedVariances(var, var, 0.0)
    df = np.asarray(df, dtype=np.float64)
    if df.ndim and df.size > 1:
        var[df == 0] = 0.0
    if legacy is None:
        dfp = df[df > 0]
        legacy = bool(dfp.size) and dfp.min() == dfp.max()
    if not legacy:
        fit = fit_f_dist_unequal_df1(var, df, covariate=covariate, robust=robust)
        df_prior = fit.df2 if fit.df2_shrunk is None else fit.df2_shrunk
    elif robust:
        fit = fit_f_dist_robustly(var, df, covariate=covariate, winsor_tail_p=winsor_tail_p)
        df_prior = fit.df2_shrunk
    else:
        fit = fit_f_dist(var, df, covariate=covariate)
        df_prior = fit.df2
    if np.any(np.isnan(df_prior)):
        raise ValueError("Could not estimate prior df")
    var_post = _posterior_var(var, df, fit.scale, df_prior)
    return SqueezedVariances(var_post, fit.scale, df_prior)


def _posterior_var(var, df, var_prior, df_prior):
    df_prior_a = np.asarray(df_prior, dtype=np.float64)
    n = var.size
    if np.all(np.isfinite(df_prior_a)):
        return (df * var + df_prior_a * var_prior) / (df + df_prior_a)
    var_post = np.broadcast_to(np.asarray(var_prior, dtype=np.float64), (n,)).copy()
    isfin = np.broadcast_to(np.isfinite(df_prior_a), (n,))
    if isfin.any():
        dfi = np.broadcast_to(df, (n,))[isfin]
        dpi = np.broadcast_to(df_prior_a, (n,))[isfin]
        var_post[isfin] = (dfi * var[isfin] + dpi * var_post[isfin]) / (dfi + dpi)
    return var_post
