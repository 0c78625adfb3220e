"""limma's ``eBayes``: moderated t, p-values, B-statistics (``tmixture.vector``) and F.

Moderation is global: run it once on the merged fit of all features (chunk fits are
concatenated first with :func:`stacklm.limma.fitstore.concat_fits`)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from stacklm.io.blocks import row_blocks
from stacklm.limma.ftest import moderated_f
from stacklm.limma.labels import align_by_label, labels_of
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.squeezevar import squeeze_var
from stacklm.rstats.distributions import _t_isf, _t_logsf, _t_sf, _t_sf2
from stacklm.rstats.qr import estimable_columns

#: rows of the element-wise passes hold about this many values (they stay in cache)
ELEMENTWISE_BLOCK_VALUES = 1 << 16


def _top_candidates(abs_t, lower, p_value, ntarget):
    """Indices (increasing) of a subset of features that surely holds the ``ntarget`` largest
    t-statistics after tmixture.vector's conversion of lower-df t's to the maximal df, and all ties.

    That conversion keeps each feature's tail probability, so the order is the order of the
    one-sided log tail probability log(p/2), available from the p-values; features within a small
    margin of the threshold are kept so that the exact conversion decides their order.
    """
    n = abs_t.size
    k = n - ntarget
    if k <= 0:
        return np.arange(n)
    if not lower.any():
        threshold = np.partition(abs_t, k)[k]
        return np.flatnonzero(abs_t >= threshold)
    with np.errstate(divide="ignore"):
        score = np.where(p_value > 1e-290, np.log(p_value / 2), -np.inf)
    threshold = np.partition(score, ntarget - 1)[ntarget - 1]
    margin = 1e-9 * max(1.0, abs(threshold)) if np.isfinite(threshold) else 0.0
    return np.flatnonzero(score <= threshold + margin)


def _tmixture_vector(tstat, stdev_unscaled, df, proportion, v0_lim, p_value=None):
    """limma's ``tmixture.vector``: the prior variance of the non-zero coefficients, from the
    ``ntarget`` most significant t-statistics.

    Only the features that can be among those are converted and sorted (see
    :func:`_top_candidates`; ``p_value`` are the two-sided p-values of ``tstat`` at ``df``), which
    gives the numbers of converting and sorting all of them, as limma does.
    """
    keep = ~np.isnan(tstat)
    df = np.asarray(df, dtype=np.float64)
    if keep.all():
        tstat = np.abs(tstat)
        su = stdev_unscaled
    else:
        tstat = np.abs(tstat[keep])
        su = stdev_unscaled[keep]
        df = df[keep]
    ngenes = tstat.size
    ntarget = int(np.ceil(proportion / 2 * ngenes))
    if ntarget < 1:
        return np.nan
    p = max(ntarget / ngenes, proportion)
    max_df = df.max()
    lower = df < max_df
    if p_value is None and lower.any():
        p_value = _t_sf2(tstat, df)
    elif p_value is not None and not keep.all():
        p_value = p_value[keep]
    cand = _top_candidates(tstat, lower, p_value, ntarget)
    tc = tstat[cand]
    lc = lower[cand]
    if lc.any():
        tail = _t_logsf(tc[lc], df[cand][lc])
        tc[lc] = _t_isf(np.exp(tail), max_df)
    o = np.argsort(-tc, kind="stable")[:ntarget]
    tstat = tc[o]
    v1 = su[cand[o]] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * _t_sf(tstat, max_df)
    ptarget = ((r - 0.5) / ngenes - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    if pos.any():
        qtarget = _t_isf(ptarget[pos] / 2, max_df)
        v0[pos] = v1[pos] * ((tstat[pos] / qtarget) ** 2 - 1)
    if v0_lim is not None:
        v0 = np.minimum(np.maximum(v0, v0_lim[0]), v0_lim[1])
    return float(np.mean(v0))


def e_bayes(
    fit: LinearModelFit,
    proportion: float = 0.01,
    stdev_coef_lim=(0.1, 4.0),
    trend=False,
    robust: bool = False,
    winsor_tail_p=(0.05, 0.1),
    legacy: bool | None = None,
    f_test: bool = True,
) -> LinearModelFit:
    """Empirical Bayes moderated t-statistics, p-values, B-statistics (lods) and the moderated F over
    all coefficients, as limma's ``eBayes``.

    ``legacy`` is limma 3.63.2's switch, passed to :func:`~stacklm.limma.squeezevar.squeeze_var`:
    ``None`` (default) estimates the prior as limma >= 3.62 (``fitFDistUnequalDF1`` when the residual
    df differ, e.g. any missing value; the moment estimators otherwise), ``True`` as limma <= 3.60
    (the numbers of limma 3.54.1), ``False`` always with ``fitFDistUnequalDF1``.

    ``trend=True`` uses the features' average (``amean``) as the covariate for a spline trend in the
    prior variance; a numeric array gives the covariate directly (a Series indexed by feature id is
    matched to the fit's features by id).  ``robust=True`` uses
    ``fitFDistRobustly`` (per-feature prior df).  Returns a new fit with ``s2_prior``, ``df_prior``,
    ``s2_post``, ``df_total``, ``var_prior``, ``t``, ``p_value``, ``lods``, ``F``, ``F_p_value``
    (``f_test=False``: no F, left None, for callers that do not read it; ~10% of the time).
    ``t``, ``p_value`` and ``lods`` are column-major (G x k, each column contiguous) whatever the
    layout of the fit's coefficients; their values do not depend on it.
    """
    coef = fit.coefficients
    su = fit.stdev_unscaled
    sigma = fit.sigma
    dfr = np.asarray(fit.df_residual, dtype=np.float64)
    if np.nanmax(dfr) == 0:
        raise ValueError("No residual degrees of freedom in linear model fits")
    if not np.any(np.isfinite(sigma)):
        raise ValueError("No finite residual standard deviations")
    if isinstance(trend, bool | np.bool_):
        covariate = np.asarray(fit.amean, dtype=np.float64) if trend else None
    else:
        if isinstance(trend, pd.Series):
            # a covariate named by feature id follows the fit's features
            trend = align_by_label(
                trend,
                labels_of(fit.feature_ids),
                "the fit's features",
                "the trend covariate",
                "feature ids",
            )
        covariate = np.asarray(trend, dtype=np.float64)
        if covariate.size != sigma.size:
            raise ValueError("a numeric trend must have one value per feature")
    sq = squeeze_var(
        sigma**2,
        dfr,
        covariate=covariate,
        robust=robust,
        winsor_tail_p=winsor_tail_p,
        legacy=legacy,
    )
    s2_prior = sq.var_prior
    s2_post = sq.var_post
    df_prior = sq.df_prior
    n_rows, n_coef = coef.shape
    sd_post = np.sqrt(s2_post)
    # t (and so the p-values and lods) column-major: each column contiguous, as the results table
    # stores it (the values are those of any layout: every cell is computed from its own inputs)
    t = np.empty(coef.shape, order="F")
    with np.errstate(invalid="ignore", divide="ignore"):
        for rows in row_blocks(n_rows, n_coef, ELEMENTWISE_BLOCK_VALUES):
            np.divide(coef[rows], su[rows], out=t[rows])
            t[rows] /= sd_post[rows, None]
    df_total = dfr + df_prior
    df_pooled = np.nansum(dfr)
    df_total = np.minimum(df_total, df_pooled)
    df_total_v = np.broadcast_to(df_total, sigma.shape)
    p_value = _t_sf2(t, df_total_v)

    # nanmedian: a trend leaves features without a covariate (all values missing) with a NaN prior,
    # where R stops; the median is then R's on the data without them (np.median elsewhere)
    var_prior_lim = np.asarray(stdev_coef_lim, dtype=np.float64) ** 2 / np.nanmedian(s2_prior)
    var_prior = np.array(
        [
            _tmixture_vector(
                t[:, j], su[:, j], df_total_v, proportion, var_prior_lim, p_value=p_value[:, j]
            )
            for j in range(n_coef)
        ]
    )
    if np.isnan(var_prior).any():
        warnings.warn("Estimation of var.prior failed - set to default value", stacklevel=2)
        var_prior[np.isnan(var_prior)] = 1 / np.atleast_1d(s2_prior)[0]
    inf_df_all = np.broadcast_to(np.asarray(df_prior) > 1e6, sigma.shape)
    log_odds_prior = np.log(proportion / (1 - proportion))
    lods = np.empty(coef.shape, order="F")
    with np.errstate(invalid="ignore", divide="ignore"):
        for rows in row_blocks(n_rows, n_coef, ELEMENTWISE_BLOCK_VALUES):
            su2 = su[rows] ** 2
            r = (su2 + var_prior[None, :]) / su2
            t2 = t[rows] ** 2
            dtot = df_total_v[rows, None]
            inf_df = inf_df_all[rows]
            kernel = (1 + dtot) / 2 * np.log((t2 + dtot) / (t2 / r + dtot))
            if inf_df.any():
                kernel = np.where(inf_df[:, None], t2 * (1 - 1 / r) / 2, kernel)
            lods[rows] = log_odds_prior - np.log(r) / 2 + kernel

    out = fit.replace(
        s2_prior=s2_prior,
        df_prior=df_prior,
        s2_post=s2_post,
        df_total=df_total_v.copy(),
        var_prior=var_prior,
        proportion=proportion,
        t=t,
        p_value=p_value,
        lods=lods,
    )
    if f_test and (fit.design is None or estimable_columns(fit.design).all()):
        F, F_p = moderated_f(out, use_chisq_for_large_df=False)
        out.F, out.F_p_value = F, F_p
    return out
