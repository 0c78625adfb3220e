"""Associations of surrogate variables with sample covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from stacklm.design.factors import is_factor

# --------------------------------------------------------------------------------------------
# associations of surrogate variables with sample covariates
# --------------------------------------------------------------------------------------------


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
        categorical = is_factor(series)
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
