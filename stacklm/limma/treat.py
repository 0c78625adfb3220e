"""limma's ``treat`` (moderated t-tests relative to a fold-change threshold) and ``topTreat``.

A port of limma 3.63.2's R/treat.R, operation by operation on whole arrays (no loop over features).
The prior comes from the same :func:`~stacklm.limma.squeezevar.squeeze_var` as ``e_bayes``, so
``treat`` and ``e_bayes`` share their ``s2.post`` / ``df.total``.  The t tails are
``scipy.special.stdtr`` (the function ``scipy.stats.t.sf`` evaluates; agrees with R's ``pt`` to
~1e-13 relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.squeezevar import squeeze_var
from stacklm.limma.toptableextras import confint_columns, top_table_order
from stacklm.multiple_testing.padjust import p_adjust

__all__ = ["top_treat", "treat"]


def _t_upper(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """R's ``pt(x, df, lower.tail = FALSE)`` elementwise (df may be inf: the normal tail)."""
    with np.errstate(invalid="ignore"):
        return special.stdtr(df, -x)


def treat(
    fit: LinearModelFit,
    fc: float = 1.2,
    lfc: float | None = None,
    trend: bool = False,
    robust: bool = False,
    winsor_tail_p=(0.05, 0.1),
    legacy: bool | None = None,
) -> LinearModelFit:
    """Moderated t-statistics and p-values for H0: |logFC| <= lfc, as limma's ``treat``.

    ``lfc`` defaults to ``log2(fc)``.  The variance prior is estimated as in ``e_bayes``
    (``squeeze_var`` on ``sigma^2``, with ``amean`` as covariate if ``trend``, ``robust`` as
    ``fitFDistRobustly``; ``legacy`` is passed to ``squeeze_var``: None chooses as limma does).
    For each coefficient, with ``se = stdev_unscaled * sqrt(s2_post)``:
    ``p = P(T > (|b| - lfc)/se) + P(T > (|b| + lfc)/se)`` with ``T ~ t(df_total)``, and
    ``t = sign(b) * max((|b| - lfc)/se, 0)`` where ``|b| > lfc``, else 0 (also 0, not NaN, where
    the coefficient is NaN; its p-value is NaN).

    Returns a new fit with ``df_prior``, ``s2_prior``, ``s2_post``, ``df_total``, ``t``,
    ``p_value`` replaced, ``lods`` removed and the threshold in ``extra["treat_lfc"]`` (limma's
    ``fit$treat.lfc``).  As in limma, every other field is kept, including ``F`` / ``F_p_value``
    and ``var_prior`` of a fit that had been through ``e_bayes`` (treat does not recompute them).
    """
    if fit.coefficients is None or fit.stdev_unscaled is None:
        raise ValueError("coefficients or stdev.unscaled not found in fit object")
    if fit.sigma is None or fit.df_residual is None:
        raise ValueError("No data, or argument is not a valid lmFit object")
    coefficients = np.asarray(fit.coefficients, dtype=np.float64)
    stdev_unscaled = np.asarray(fit.stdev_unscaled, dtype=np.float64)
    sigma = np.asarray(fit.sigma, dtype=np.float64)
    df_residual = np.asarray(fit.df_residual, dtype=np.float64)
    if np.max(df_residual) == 0:
        raise ValueError("No residual degrees of freedom in linear model fits")
    if not np.any(np.isfinite(sigma)):
        raise ValueError("No finite residual standard deviations")
    if trend:
        if fit.amean is None:
            raise ValueError("Need Amean component in fit to estimate trend")
        covariate = np.asarray(fit.amean, dtype=np.float64)
    else:
        covariate = None
    sv = squeeze_var(
        sigma**2,
        df_residual,
        covariate=covariate,
        robust=robust,
        winsor_tail_p=winsor_tail_p,
        legacy=legacy,
    )
    df_total = df_residual + sv.df_prior
    df_pooled = np.nansum(df_residual)
    df_total = np.minimum(df_total, df_pooled)
    df_total = np.broadcast_to(df_total, sigma.shape).copy()
    if lfc is None:
        lfc = np.log2(fc)
    lfc = abs(float(lfc))
    acoef = np.abs(coefficients)
    se = stdev_unscaled * np.sqrt(sv.var_post)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        tstat_right = (acoef - lfc) / se
        tstat_left = (acoef + lfc) / se
    dft = df_total[:, None]
    p_value = _t_upper(tstat_right, dft) + _t_upper(tstat_left, dft)
    tstat_right = np.maximum(tstat_right, 0.0)  # pmax: NaN stays NaN (where the coefficient is NaN)
    coef0 = np.where(np.isnan(coefficients), 0.0, coefficients)
    t = np.zeros(coefficients.shape)
    up = coef0 > lfc
    down = coef0 < -lfc
    t[up] = tstat_right[up]
    t[down] = -tstat_right[down]
    return fit.replace(
        df_prior=sv.df_prior,
        s2_prior=sv.var_prior,
        s2_post=sv.var_post,
        df_total=df_total,
        t=t,
        p_value=p_value,
        lods=None,
        extra={**fit.extra, "treat_lfc": lfc},
    )


def top_treat(
    fit: LinearModelFit,
    coef: str | int = 0,
    number: int | None = None,
    adjust_method: str = "BH",
    sort_by: str = "p",
    p_value: float = 1.0,
    lfc: float = 0.0,
    confint: bool | float = False,
) -> pd.DataFrame:
    """The table of one coefficient of a :func:`treat` fit, as limma's ``topTreat``
    (``topTable`` without the B-statistic): ``logFC`` [``CI.L``, ``CI.R``], ``AveExpr``, ``t``,
    ``P.Value``, ``adj.P.Val``, rows in topTable's order (``sort_by`` ``"p"``, ``"t"``,
    ``"logFC"``, ``"AveExpr"`` or ``"none"``; ties in input order as R's ``order``).

    ``coef`` is a name or a 0-based position (limma's default ``coef = 1`` is position 0);
    ``number=None`` keeps every row (limma's default is 10); ``p_value`` / ``lfc`` filter on
    ``adj.P.Val <= p_value`` and ``|logFC| >= lfc`` as topTable does.
    """
    if fit.p_value is None:
        raise ValueError("Need to run eBayes or treat first")
    if sort_by == "B":
        raise ValueError("Trying to sort.by B, but treat doesn't produce a B-statistic")
    j = coef if isinstance(coef, int | np.integer) else fit.coef_index(coef)[0]
    name = fit.coef_names[j]
    rows = top_table_order(
        fit,
        coef=name,
        sort_by=sort_by,
        number=number,
        adjust_method=adjust_method,
        p_value=p_value,
        lfc=lfc,
    )
    p = fit.p_value[:, j]
    table = {"logFC": fit.coefficients[rows, j]}
    if confint is not False:
        level = 0.95 if confint is True else float(confint)
        low, high = confint_columns(fit, level=level, coefs=[name])
        table["CI.L"] = low[rows, 0]
        table["CI.R"] = high[rows, 0]
    table["AveExpr"] = fit.amean[rows]
    table["t"] = fit.t[rows, j]
    table["P.Value"] = p[rows]
    table["adj.P.Val"] = p_adjust(p, adjust_method)[rows]
    index = pd.Index(np.asarray(fit.feature_ids)[rows], name="feature_id")
    return pd.DataFrame(table, index=index)
