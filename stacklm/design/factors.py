"""Which sample sheet columns are factors: the one rule the design, sva's associations and the plots
share."""

from __future__ import annotations

import numpy as np
import pandas as pd


def is_factor(series: pd.Series) -> bool:
    """A column is a factor (categorical) unless it is numeric: text, categorical and boolean
    columns are factors, as in R's ``model.matrix`` (a numeric column becomes one when the analysis'
    ``levels`` lists it)."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


#: a numeric column of whole numbers with 2 to this many distinct values (batch 1-4, plate, lane)
#: looks like a code rather than a measurement
CODE_MAX_LEVELS = 10


def looks_like_code(col: pd.Series) -> bool:
    """A numeric column that looks like group codes (batch 1-5, plate, lane): finite whole numbers,
    2 to :data:`CODE_MAX_LEVELS` distinct values, some repeated."""
    if is_factor(col):
        return False
    values = col.dropna().to_numpy(dtype=float)
    distinct = np.unique(values)
    return (
        2 <= distinct.size <= CODE_MAX_LEVELS
        and bool(np.all(np.isfinite(distinct) & (distinct == np.round(distinct))))
        and distinct.size < values.size
    )
