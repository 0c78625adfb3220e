"""Associations of principal components with sample covariates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stacklm.design.factors import looks_like_code
from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.sva.associations import sv_associations

# --------------------------------------------------------------------------------------------
# associations with sample covariates
# --------------------------------------------------------------------------------------------


def covariate_table(
    sheet: pd.DataFrame,
    samples: Sequence[str],
    levels: Mapping[str, Sequence] | None = None,
    extra: pd.DataFrame | None = None,
    numeric: Sequence[str] = (),
) -> pd.DataFrame:
    """The sample covariates to associate with components: every sample sheet column for
    ``samples`` (in that order), plus ``extra`` columns (e.g. the surrogate variables).

    Categorical (text): columns named in the analysis' ``levels``, and numeric columns that look
    like codes (whole numbers, 2 to :data:`CODE_MAX_LEVELS` distinct values, e.g. a batch numbered
    1-4 that is not in the design: a linear trend in the batch number is not a batch effect) unless
    listed in ``numeric`` (variables the design uses as numeric covariates)."""
    table = sheet.loc[[str(s) for s in samples]].copy()
    factors = [name for name in levels or {} if name in table.columns]
    for name in table.columns:
        col = table[name]
        if name in factors or name in set(numeric) or not looks_like_code(col):
            continue
        factors.append(name)
    for name in factors:
        col = table[name]
        table[name] = col.where(col.isna(), col.map(_level_text)).astype(object)
    if extra is not None and extra.shape[1]:
        table = table.join(extra.loc[table.index])
    table.index = table.index.astype(str)
    return table


def _level_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def component_associations(scores: pd.DataFrame, covariates: pd.DataFrame) -> pd.DataFrame:
    """R^2 and p-value of ``lm(component ~ covariate)`` for every component and covariate (ANOVA for
    categorical covariates), plus ``neg_log10_p``; long table with columns
    ``component, covariate, kind, r2, p_value, n, neg_log10_p``."""

    columns = ["component", "covariate", "kind", "r2", "p_value", "n", "neg_log10_p"]
    if scores.shape[1] == 0 or covariates.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    table = sv_associations(scores.loc[covariates.index].to_numpy(), covariates)
    names = list(scores.columns)
    table["sv"] = table["sv"].map(lambda s: names[int(s[2:]) - 1])
    table = table.rename(columns={"sv": "component"})
    with np.errstate(divide="ignore"):  # 0.0 - x: p = 1 gives 0, not -0
        table["neg_log10_p"] = neg_log10_p(table["p_value"].to_numpy(dtype=float))
    return table[columns]


def strongest_associations(associations: pd.DataFrame, max_p: float = 0.05) -> pd.DataFrame:
    """For each component, its covariate with the smallest p-value (if below ``max_p``)."""
    table = associations.dropna(subset=["p_value"])
    if table.empty:
        return table
    best = table.loc[table.groupby("component", sort=False)["p_value"].idxmin()]
    return best[best["p_value"] <= max_p]
