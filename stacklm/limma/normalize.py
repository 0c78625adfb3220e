"""limma's between-sample normalizations: ``normalizeQuantiles`` (with its missing-value handling)
and ``normalizeCyclicLoess`` (methods fast, pairs, affy).

R's ``rowMeans`` accumulates in long double; so does :func:`stacklm.rstats.sums.row_means` (numpy
``longdouble``, 80-bit on x86-64), so the quantile target is the same double as R's."""

from __future__ import annotations

import numpy as np

from stacklm.limma.loessfit import loess_fit
from stacklm.preprocess.scales import _as_matrix
from stacklm.rstats.approx import approx
from stacklm.rstats.sums import row_means

# --------------------------------------------------------------------------------------------------
# quantile normalization


def quantile_normalize(values) -> np.ndarray:
    """limma ``normalizeQuantiles(A, ties=TRUE)`` (= ``normalizeBetweenArrays(A, method="quantile")``).

    Each column's sorted observed values are interpolated (R ``approx``) onto the common grid
    ``(0:(G-1))/(G-1)``; the target is the row mean of these; every observed value gets the target
    interpolated at ``(rank - 1)/(n_obs - 1)`` (ties share the average rank, so tied values stay tied).
    Missing values stay missing.  A column needs at least two observed values (R errors too)."""
    a = _as_matrix(values)
    g, n = a.shape
    if n == 1:
        return a
    if g < 2:
        raise ValueError("quantile normalization needs at least two features")
    grid = np.arange(g) / (g - 1)
    sorted_cols = np.empty((g, n), dtype=np.float64)
    observed = ~np.isnan(a)
    n_obs = observed.sum(axis=0)
    for j in range(n):
        if n_obs[j] < 2:
            raise ValueError(
                f"quantile normalization: sample column {j + 1} has {n_obs[j]} observed value(s); "
                "at least two are needed (remove the sample or impute)"
            )
        s = np.sort(a[observed[:, j], j])
        if n_obs[j] < g:
            sorted_cols[:, j] = approx(np.arange(n_obs[j]) / (n_obs[j] - 1), s, grid)
        else:
            sorted_cols[:, j] = s
    target = row_means(sorted_cols)
    from scipy.stats import rankdata  # here: scipy.stats costs ~0.4 s to import in every job

    out = a
    for j in range(n):
        obs = observed[:, j]
        ranks = rankdata(a[obs, j])
        out[obs, j] = approx(grid, target, (ranks - 1) / (n_obs[j] - 1))
    return out


def _pair_curve(x: np.ndarray, i: int, j: int, span: float) -> np.ndarray:
    """The M-vs-A curve of columns i < j: ``loessFit(x[, j] - x[, i], (x[, j] + x[, i]) / 2)``."""
    return loess_fit(x[:, j] - x[:, i], 0.5 * (x[:, j] + x[:, i]), span=span)


def cyclic_loess(
    values, span: float = 0.7, iterations: int = 3, method: str = "fast"
) -> np.ndarray:
    """limma ``normalizeCyclicLoess(x, span, iterations, method)`` without weights.

    ``"fast"``: each iteration fits every column's difference from the row means (``rowMeans(x,
    na.rm=TRUE)``) against the row means and subtracts the fit.  ``"pairs"``: every pair of columns,
    in R's order, is corrected by half its M-vs-A curve (as in R, a value missing in one column makes
    the fit missing and so the other column's value missing too).  ``"affy"``: all pair curves of an
    iteration are averaged before adjusting.  Curves are ``loessFit`` (default 4 iterations) = R's
    ``lowess`` with ``delta = 0.01 * diff(range(A))``."""
    if method not in ("fast", "pairs", "affy"):
        raise ValueError(f"cyclic loess method must be 'fast', 'pairs' or 'affy', not {method!r}")
    x = _as_matrix(values)
    g, n = x.shape
    if method == "pairs":
        for _ in range(iterations):
            for i in range(n - 1):
                for j in range(i + 1, n):
                    f = _pair_curve(x, i, j, span)
                    x[:, i] = x[:, i] + f / 2
                    x[:, j] = x[:, j] - f / 2
    elif method == "fast":
        for _ in range(iterations):
            a = row_means(x, na_rm=True)
            for i in range(n):
                f = loess_fit(x[:, i] - a, a, span=span)
                x[:, i] = x[:, i] - f
    else:
        for _ in range(iterations):
            adjustment = np.zeros((g, n))
            for i in range(n - 1):
                for j in range(i + 1, n):
                    f = _pair_curve(x, i, j, span)
                    adjustment[:, j] = adjustment[:, j] + f
                    adjustment[:, i] = adjustment[:, i] - f
            x = x - adjustment / n
    return x
