"""sva's ``f.pvalue``: per-feature F test of a full against a null design."""

from __future__ import annotations

import numpy as np
from scipy import special

from stacklm.sva.linalg import (
    _as_design,
    _as_expression,
    _orthonormal_basis,
    _residual_sums_of_squares,
)

# --------------------------------------------------------------------------------------------
# f.pvalue
# --------------------------------------------------------------------------------------------


def _f_test_pvalue(rss1, rss0, df1: int, df0: int, n: int) -> np.ndarray:
    """``1 - pf(F, df1 - df0, n - df1)`` as sva writes it.

    R's ``1 - pf()`` carries the rounding of the lower-tail probability (p-values are
    multiples of 2^-53 near 0, and 0 for huge F). To agree with R to the last bit we compute
    the upper tail accurately (``fdtrc``) and form the lower tail the way TOMS 708
    (``bratio``, behind R's ``pbeta``) does, ``w = 0.5 - w1 + 0.5``, before ``1 - w``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        fstats = ((rss0 - rss1) / (df1 - df0)) / (rss1 / (n - df1))
        upper = special.fdtrc(df1 - df0, n - df1, np.maximum(fstats, 0.0))
    cdf = (0.5 - upper) + 0.5
    p = 1.0 - cdf
    return np.where(np.isnan(fstats), np.nan, p)


def f_pvalue(Y, mod, mod0) -> np.ndarray:
    """F-test p-values comparing nested linear models, row by row (``sva::f.pvalue``).

    Parameters
    ----------
    Y : (G, n) float array, features in rows.
    mod, mod0 : (n, p1) and (n, p0) design matrices, ``mod0`` nested in ``mod``.

    Returns
    -------
    (G,) array of ``1 - pf(F, p1 - p0, n - p1)``; NaN for features with a non-finite value.
    Differences from R: projections use a thin QR instead of ``solve(t(mod) %*% mod)``.
    """
    Y = _as_expression(Y)
    n = Y.shape[1]
    mod = _as_design(mod, n, "mod")
    mod0 = _as_design(mod0, n, "mod0")
    q1 = _orthonormal_basis(mod, "mod")
    q0 = _orthonormal_basis(mod0, "mod0")
    rss1, rss0 = _residual_sums_of_squares(Y, [q1, q0])
    return _f_test_pvalue(rss1, rss0, mod.shape[1], mod0.shape[1], n)
