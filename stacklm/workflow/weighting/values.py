"""The values a weighted analysis models in a row block and their weights, recomputed from the
block's counts (or values) and the state: voom's log-CPM and weights, edgeR's log-CPM, or the
stored values, times the sample weights."""

from __future__ import annotations

import numpy as np

from stacklm.workflow.weighting.state import WeightingState

# edgeR's cpm and voom are imported where they run (continuous input needs neither)

#: edgeR's log-CPM of limma-trend (weights: none on counts): cpm(y, log = TRUE, prior.count = 2)
PRIOR_COUNT = 2.0


def modelled_values(kind: str, Y: np.ndarray, lib: np.ndarray | None) -> np.ndarray:
    """The modelled values of a block: edgeR's log-CPM or the input (voom's come with its points)."""
    if kind == "logcpm":
        from stacklm.edger.cpm import cpm

        return cpm(Y, lib_size=lib, log=True, prior_count=PRIOR_COUNT)
    return Y


def voom_points(Y, X, state: WeightingState, lib, correlation=None, trend_points=True, fitted=True):
    """voom's share of a block under the state: its fit uses the prior sample weights and, with a
    correlation (default: ``voom_correlation``, the one the state's trend was fitted with), the
    block (``voom(y, design, weights, block, correlation)``).  ``trend_points`` / ``fitted``: as
    :func:`stacklm.limma.voom.voom_trend_points` (a pass leaves out what it does not use)."""
    from stacklm.limma.voom import voom_trend_points

    if correlation is None:
        correlation = state.voom_correlation
    block = state.block if correlation is not None else None
    return voom_trend_points(
        Y,
        X,
        lib_size=lib,
        weights=state.voom_prior_weights,
        block=block,
        correlation=correlation,
        trend_points=trend_points,
        fitted=fitted,
    )


def values_and_weights(Y, X, state: WeightingState, lib):
    """(E, weights) of a block: voom's E and weights (times the sample weights), or the values with
    the sample weights (None without)."""
    if state.values == "voom":
        from stacklm.limma.voom import voom_weights

        points = voom_points(Y, X, state, lib, trend_points=False)
        W = voom_weights(points.fitted_logcount, state.trend, overwrite=True)  # a private array
        if state.sample_weights is not None:
            W *= state.sample_weights
        return points.E, W
    E = modelled_values(state.values, Y, lib)
    W = state.sample_weights
    if W is not None and not state.complete and state.block is None:
        # limma fits every row of a matrix with a missing value by lm.wfit (lm.series' loop),
        # complete rows included: so do the chunks, also those without a missing value
        W = np.broadcast_to(W, E.shape)
    return E, W
