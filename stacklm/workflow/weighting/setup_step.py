"""Step 2 of a weighted analysis: its weighting state before the chunk rounds (the sample
weights of the sheet, the blocks, and the global estimators arrayWeights and
voomWithQualityWeights, which need every feature's values at once)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from stacklm.io.samplesheet import read_sample_sheet
from stacklm.workflow.pipeline import read_design
from stacklm.workflow.weighting.plan import block_of, sample_weights_of, values_kind
from stacklm.workflow.weighting.rows import AnalysisRows, any_missing
from stacklm.workflow.weighting.state import DUPCOR_TRIM, VOOM_SPAN, WeightingState

if TYPE_CHECKING:
    from stacklm.spec import AnalysisSpec

# arrayWeights, voom, duplicateCorrelation and the counts step (and the config schema behind
# AnalysisSpec) are imported where they run: the round-1 chunks of an analysis without a setup
# job (plan.has_setup_job) build its state with block_state

_log = logging.getLogger("stacklm")


def setup_step(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    state_path,
    libraries_path=None,
    keep_path=None,
    log: logging.Logger = _log,
) -> WeightingState:
    """The analysis' weighting state before the rounds (see the module docstring, step 2),
    written to ``state_path``.  The store is read only by the global estimators: arrayWeights,
    voomWithQualityWeights, and the missing-value check of sample weights on continuous input."""
    w = spec.weighting
    kind = values_kind(spec, input_scale)
    design, sheet, state = _sheet_state(
        design_path, samples_path, sample_id, kind, w.block, w.correlation
    )
    X = design.to_numpy(dtype=np.float64)
    samples = state.samples
    if w.sample_weights is not None:
        state.sample_weights = sample_weights_of(sheet, w.sample_weights, samples)
        state.sample_weights_source = f"sample sheet column {w.sample_weights!r}"
        if kind == "voom":
            state.voom_prior_weights = state.sample_weights  # voom(y, design, weights = sw)
    # the global work (plan.has_setup_job makes the same decision before the run)
    check_missing = kind == "input" and (state.sample_weights is not None or w.array_weights)
    rows = None
    if check_missing or w.array_weights or w.weights == "voom_quality":
        rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    if check_missing:
        state.complete = not any_missing(rows)  # limma's NoProbeWts (lm.series, gls.series)
    if w.array_weights:
        from stacklm.limma.arrayweights import array_weights
        from stacklm.workflow.weighting.values import modelled_values

        _, Y = rows.all_rows()
        E = modelled_values(kind, Y, rows.lib)
        del Y
        state.sample_weights = array_weights(E, X)
        state.sample_weights_source = "arrayWeights"
        state.history.append({"step": "arrayWeights", "sample_weights": state.sample_weights})
        log.info(
            "arrayWeights: %.4g .. %.4g", state.sample_weights.min(), state.sample_weights.max()
        )
    if kind == "voom" and w.weights == "voom_quality":
        _voom_quality(rows, X, state, spec, log)
    if kind == "voom" and w.weights == "voom" and w.block is not None and w.correlation is not None:
        state.voom_correlation = state.correlation
    state.save(state_path)
    return state


def _sheet_blocks(state: WeightingState, sheet, block: str | None, correlation) -> WeightingState:
    """The state's blocks (the sheet column ``block``, None: none) and a given correlation."""
    if block is not None:
        state.block = block_of(sheet, block, state.samples)
        state.block_column = block
        if correlation is not None:
            state.correlation = float(correlation)
            state.history.append({"step": "correlation given", "correlation": state.correlation})
    return state


def block_state(design_path, samples_path, sample_id: str, block: str) -> WeightingState:
    """The setup state of an analysis without a setup job (:func:`.plan.has_setup_job`: the
    stored values, a block, an estimated correlation, no weights): what :func:`setup_step` gives
    it, read from the sample sheet alone (the round-1 chunk jobs call this)."""
    return _sheet_state(design_path, samples_path, sample_id, "input", block, None)[2]


def _sheet_state(design_path, samples_path, sample_id: str, kind: str, block, correlation):
    """(the design, the sample sheet, a state of ``kind`` values with the sheet's blocks and a
    given correlation): where :func:`setup_step` and :func:`block_state` start."""
    design = read_design(design_path)
    sheet = read_sample_sheet(samples_path, sample_id)
    state = WeightingState(values=kind, samples=[str(s) for s in design.index])
    return design, sheet, _sheet_blocks(state, sheet, block, correlation)


def _quality_weights(Y, X, lib, block=None, correlation=None):
    """limma's voomWithQualityWeights step by step (the calls of
    :func:`stacklm.limma.voomquality.voom_with_quality_weights`): ``v <- voom(y, design);
    aw1 <- arrayWeights(v, design); v <- voom(y, design, weights = aw1); aw2 <- arrayWeights(v,
    design)``.  Returns ``(v, aw1, aw2)``: the final weights are ``v$weights`` times ``aw2``, and
    aw1 is kept because pass 2 refits voom's fit with it."""
    from stacklm.limma.arrayweights import array_weights
    from stacklm.limma.voom import voom

    kw = dict(lib_size=lib, span=VOOM_SPAN, block=block, correlation=correlation)
    v = voom(Y, X, save_plot=False, **kw)
    aw1 = array_weights(v.E, X, weights=v.weights, method="genebygene")
    v = voom(Y, X, weights=aw1, save_plot=True, **kw)
    aw2 = array_weights(v.E, X, weights=v.weights, method="genebygene")
    return v, aw1, aw2


def _voom_quality(rows: AnalysisRows, X, state: WeightingState, spec: AnalysisSpec, log) -> None:
    """limma's voomWithQualityWeights on the analysis' kept counts (and with a block the recipe
    ``vq <- voomWithQualityWeights(y, design); c <- duplicateCorrelation(vq, design, block);
    vq <- voomWithQualityWeights(y, design, block, correlation = c$consensus);
    c <- duplicateCorrelation(vq, design, block)``), into the state."""
    from stacklm.limma.dupcor import duplicate_correlation

    ids, Y = rows.all_rows()
    block = state.block
    given = spec.weighting.correlation
    if block is not None and given is None:
        v, _, aw = _quality_weights(Y, X, rows.lib)
        c1 = duplicate_correlation(v.E, X, block=block, weights=v.weights * aw, trim=DUPCOR_TRIM)
        state.history.append(_dupcor_record("duplicateCorrelation (voomWithQualityWeights)", c1))
        log.info("round 1 consensus correlation %.6g", c1.consensus)
        v, aw1, aw = _quality_weights(Y, X, rows.lib, block=block, correlation=c1.consensus)
        state.voom_correlation = c1.consensus
        c2 = duplicate_correlation(v.E, X, block=block, weights=v.weights * aw, trim=DUPCOR_TRIM)
        state.history.append(
            _dupcor_record("duplicateCorrelation (voomWithQualityWeights, block)", c2)
        )
        state.correlation = c2.consensus
        state.correlation_estimated = True
        state.atanh = c2.atanh_correlations
        state.atanh_ids = ids
        state.n_not_converged = c2.n_not_converged
        log.info("round 2 consensus correlation %.6g", c2.consensus)
    elif block is not None:
        v, aw1, aw = _quality_weights(Y, X, rows.lib, block=block, correlation=given)
        state.voom_correlation = float(given)
    else:
        v, aw1, aw = _quality_weights(Y, X, rows.lib)
    state.trend = v.trend
    state.sx, state.sy = v.sx, v.sy
    state.sample_weights = aw
    state.voom_prior_weights = aw1
    state.sample_weights_source = "voomWithQualityWeights"
    state.history.append({"step": "voomWithQualityWeights", "sample_weights": aw, "span": v.span})
    log.info("voomWithQualityWeights: sample weights %.4g .. %.4g", aw.min(), aw.max())


def _dupcor_record(step: str, dc) -> dict:
    return {
        "step": step,
        "consensus_correlation": float(dc.consensus),
        "n_not_converged": int(dc.n_not_converged),
        "n_na": int(dc.n_na),
    }


def setup_with_counts_step(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    state_path,
    normalize_method: str | None = None,
    libraries_path=None,
    keep_path=None,
    counts_summary_path=None,
    log: logging.Logger = _log,
) -> WeightingState:
    """The workflow's setup job: :func:`counts_step` (counts input) then :func:`setup_step`."""
    if input_scale == "counts":
        from stacklm.workflow.weighting.counts import counts_step

        counts_step(
            store_path,
            design_path,
            spec,
            normalize_method,
            libraries_path,
            keep_path,
            counts_summary_path,
            log=log,
        )
    return setup_step(
        store_path,
        design_path,
        samples_path,
        sample_id,
        spec,
        input_scale,
        state_path,
        libraries_path,
        keep_path,
        log=log,
    )
