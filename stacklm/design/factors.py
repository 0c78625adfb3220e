"""Which sample sheet columns are factors: the one rule the design, sva's associations and the plots
share."""

from __future__ import annotations

import pandas as pd


def is_factor(series: pd.Series) -> bool:
    """A column is a factor (categorical) unless it is numeric: text, categorical and boolean
    columns are factors, as in R's ``model.matrix`` (a numeric column becomes one when the analysis'
    ``levels`` lists it)."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
