"""sva's ``edge.lfdr``: local false discovery rates of p-values."""

from __future__ import annotations

import numpy as np

from stacklm.rstats.basic import dnorm, qnorm
from stacklm.rstats.density import density
from stacklm.rstats.smoothspline import smooth_spline

# --------------------------------------------------------------------------------------------
# edge.lfdr
# --------------------------------------------------------------------------------------------


def edge_lfdr(
    p,
    trunc: bool = True,
    monotone: bool = True,
    adj: float = 1.5,
    eps: float = 1e-8,
    lambda_: float = 0.8,
) -> np.ndarray:
    """Local false discovery rates of p-values (``sva:::edge.lfdr``, probit transform).

    ``pi0 = min(mean(p >= lambda) / (1 - lambda), 1)``; ``x = qnorm(clip(p, eps, 1 - eps))``;
    the density of x is estimated by R's ``density(x, adjust = adj)`` smoothed by
    ``smooth.spline`` (GCV) and predicted at x (the ports of :mod:`stacklm.rnumerics`, as
    ``qvalue::lfdr``); ``lfdr = pi0 * dnorm(x) / f(x)``, truncated at 1 and made monotone in p
    (cumulative maximum along increasing p).  ``p`` must be finite (R errors on NA).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError("p must be a 1-d array of at least 2 p-values")
    if not np.all(np.isfinite(p)):
        raise ValueError("edge_lfdr: p contains missing or non-finite values")
    pi0 = min(np.mean(p >= lambda_) / (1 - lambda_), 1.0)
    p = np.minimum(np.maximum(p, eps), 1 - eps)
    x = qnorm(p)
    grid_x, grid_y = density(x, adj)  # x in input order: R's binning order
    fit = smooth_spline(grid_x, grid_y)
    # the rest is element-wise, done along increasing p (faster spline evaluation, and R's
    # cummax(lfdr[order(p)])[rank(p)]; tied p have equal lfdr, so the order of ties is moot)
    order = np.argsort(p)
    x_sorted = x[order]
    lfdr_sorted = pi0 * dnorm(x_sorted) / fit.predict(x_sorted)
    if trunc:
        lfdr_sorted[lfdr_sorted > 1] = 1.0
    if monotone:
        lfdr_sorted = np.maximum.accumulate(lfdr_sorted)
    lfdr = np.empty_like(lfdr_sorted)
    lfdr[order] = lfdr_sorted
    return lfdr
