"""limma's ``loessFit`` without weights, i.e. R's ``lowess`` with limma's span and iterations, and
limma's span rule ``chooseLowessSpan`` (used by voom and fitFDistUnequalDF1)."""

from __future__ import annotations

import numpy as np

from stacklm.rstats.lowess import lowess


def loess_fit(y, x, span: float = 0.3, iterations: int = 4) -> np.ndarray:
    """Fitted values of limma's ``loessFit(y, x, span=span, iterations=iterations)`` without weights:
    ``lowess`` on the pairs where both are finite (fitted NaN elsewhere)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    fitted = np.full(len(y), np.nan)
    obs = np.isfinite(y) & np.isfinite(x)
    n_obs = int(obs.sum())
    if n_obs == 0:
        return fitted
    if span < 1.0 / n_obs:
        fitted[obs] = y[obs]
        return fitted
    x_obs, y_obs = x[obs], y[obs]
    order = np.argsort(x_obs, kind="stable")
    x_sorted = x_obs[order]
    smooth = lowess(
        x_sorted,
        y_obs[order],
        f=span,
        iterations=iterations - 1,
        delta=0.01 * (x_sorted[-1] - x_sorted[0]),
    )
    fit_obs = np.empty(n_obs)
    fit_obs[order] = smooth
    fitted[obs] = fit_obs
    return fitted


def choose_lowess_span(
    n: int, small_n: float = 50, min_span: float = 0.3, power: float = 1 / 3
) -> float:
    """limma's ``chooseLowessSpan(n, small.n, min.span, power)``:
    ``min(min.span + (1 - min.span) * (small.n / n)^power, 1)``."""
    return min(min_span + (1 - min_span) * (small_n / n) ** power, 1.0)
