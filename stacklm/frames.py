"""Whether an object is a pandas DataFrame or Series, without importing pandas: an object can only
be one when pandas is imported already.  The fitting core takes arrays or DataFrames; the fit
jobs give it arrays and do not load pandas (0.2 s of every job's start-up)."""

from __future__ import annotations

import sys


def is_frame(obj) -> bool:
    """``isinstance(obj, pandas.DataFrame)``."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def is_frame_or_series(obj) -> bool:
    """``isinstance(obj, pandas.DataFrame | pandas.Series)``."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame | pd.Series)
