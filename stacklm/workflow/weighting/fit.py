"""Step 4 of a weighted analysis: the fit of a chunk's rows under the final state (lm_wfit,
gls.series or lmFit), written as the chunk fit file the unweighted fit writes."""

from __future__ import annotations

import numpy as np

from stacklm.diagnostics.crossproducts import (
    block_cross_products,
    chunk_cross_products,
    cross_product_stride,
)
from stacklm.io.store import chunk_bounds
from stacklm.limma.glsseries import gls_series
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.weightedfit import lm_wfit
from stacklm.workflow.pipeline import read_design, write_chunk_fit
from stacklm.workflow.progress import Progress
from stacklm.workflow.weighting.rounds import load_state
from stacklm.workflow.weighting.rows import AnalysisRows
from stacklm.workflow.weighting.state import WeightingState
from stacklm.workflow.weighting.values import values_and_weights


def _fit(E, X, W, state: WeightingState, coef_names, feature_ids) -> LinearModelFit:
    if state.block is not None:
        return gls_series(
            E,
            X,
            block=state.block,
            correlation=state.correlation,
            weights=W,
            coef_names=coef_names,
            feature_ids=feature_ids,
        )
    if W is not None:
        return lm_wfit(E, X, W, coef_names=coef_names, feature_ids=feature_ids)
    return lm_fit(E, X, coef_names=coef_names, feature_ids=feature_ids)


def _reference_fit(X, state: WeightingState, coef_names) -> LinearModelFit:
    """A one-row fit of the analysis' kind whose ``cov_coefficients`` is the one limma gives the
    whole matrix: weighted by the sample weights only when no value is missing anywhere (R's
    NoProbeWts in lm.series / gls.series), else the design's (observation weights: always)."""
    n = X.shape[0]
    row = np.zeros((1, n)) if state.complete else np.full((1, n), np.nan)
    if state.values == "voom":
        W = np.ones((1, n))
    else:
        W = state.sample_weights
    return _fit(row, X, W, state, coef_names, np.array(["reference"]))


def weighted_fit_chunk(
    store_path,
    design_path,
    state_source,
    chunk: int,
    chunks: int,
    out_path,
    crossprod_path=None,
    libraries_path=None,
    keep_path=None,
    log=None,
) -> int:
    """Fit the kept rows of chunk ``chunk`` (of ``chunks``) with the analysis' final state
    (``state_source``: the setup's state file or the last round's parts, :func:`.rounds.load_state`) and
    write the un-moderated fit and the sample cross-products of E, fitted values and residuals (the
    PCA diagnostics), as :func:`stacklm.workflow.pipeline.fit_chunk` does for unweighted fits.
    Returns the number of rows fitted."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    names = [str(c) for c in design.columns]
    state = load_state(state_source, log=log, ids=False)
    if state.samples != [str(s) for s in design.index]:
        raise ValueError(f"{state_source} was made for other samples than {design_path}")
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    start, stop = chunk_bounds(rows.n_features, chunks)[chunk]
    reference = _reference_fit(X, state, names)
    fits, cross = [], None
    progress = Progress(f"chunk {chunk}", stop - start, log=log)
    for ids, Y, positions in rows.blocks(start, stop, with_rows=True):
        if not len(ids):
            continue
        E, W = values_and_weights(Y, X, state, rows.lib)
        block_fit = _fit(E, X, W, state, names, ids).replace(
            cov_coefficients=reference.cov_coefficients
        )
        block_cross = block_cross_products(
            E, X, block_fit.coefficients, rows.samples, positions, rows.n_features
        )
        cross = block_cross if cross is None else cross + block_cross
        fits.append(block_fit)
        progress.at(int(positions[-1]) + 1 - start)
    if not fits:  # no kept row in this chunk: an empty fit of the same design
        empty = {
            k: getattr(reference, k)[:0]
            for k in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean")
        }
        fits = [reference.replace(feature_ids=np.empty(0, dtype=str), extra={}, **empty)]
        cross = chunk_cross_products(
            np.empty((0, X.shape[0])),
            X,
            np.empty((0, X.shape[1])),
            rows.samples,
            stride=cross_product_stride(rows.n_features),
        )
    return write_chunk_fit(fits, cross, out_path, crossprod_path).n_features
