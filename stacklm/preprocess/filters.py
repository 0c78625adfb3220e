"""Feature filters: missingness, average and variance, with per-filter counts."""

from __future__ import annotations

import numpy as np

from stacklm.io.blocks import rows_not_finite

# --------------------------------------------------------------------------------------------------
# feature filters


def feature_filter(
    values,
    max_missing: float | None = None,
    min_average: float | None = None,
    min_variance: float | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Features to keep, applying in order: fraction of missing values ``<= max_missing``; mean of the
    observed values ``>= min_average``; sample variance (ddof=1) of the observed values
    ``>= min_variance``.  A feature whose mean (no observed value) or variance (< 2 observed values)
    is undefined fails that filter.  ``counts`` maps the name of each filter that was given
    (``"max_missing"``, ``"min_average"``, ``"min_variance"``) to how many features it removed among
    those the previous filters kept; filters left at ``None`` are not applied and not listed."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("expected a features x samples matrix")
    g, n = x.shape
    need_mean = min_average is not None or min_variance is not None
    if need_mean:
        observed = ~np.isnan(x)
        n_obs = observed.sum(axis=1)
    elif max_missing is not None:
        n_obs = _observed_counts(x)
    keep = np.ones(g, dtype=bool)
    counts: dict[str, int] = {}
    if max_missing is not None:
        if not 0 <= max_missing <= 1:
            raise ValueError("max_missing is a fraction in [0, 1]")
        passes = (n - n_obs) / n <= max_missing
        counts["max_missing"] = int((keep & ~passes).sum())
        keep &= passes
    if need_mean:
        filled = np.where(observed, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=1) / n_obs
    if min_average is not None:
        passes = mean >= min_average  # NaN fails
        counts["min_average"] = int((keep & ~passes).sum())
        keep &= passes
    if min_variance is not None:
        dev = np.where(observed, x - mean[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = np.einsum("ij,ij->i", dev, dev) / (n_obs - 1)
        variance[n_obs < 2] = np.nan
        passes = variance >= min_variance
        counts["min_variance"] = int((keep & ~passes).sum())
        keep &= passes
    return keep, counts


def _observed_counts(x: np.ndarray) -> np.ndarray:
    """Observed (non-NaN) values per row, counted cell by cell only in the rows
    :func:`stacklm.io.blocks.rows_not_finite` gives."""
    g, n = x.shape
    rows = rows_not_finite(x)
    if isinstance(rows, slice):
        return (~np.isnan(x)).sum(axis=1)
    counts = np.full(g, n, dtype=np.intp)
    if rows.size:
        counts[rows] = (~np.isnan(x[rows])).sum(axis=1)
    return counts
