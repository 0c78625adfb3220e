"""A weighted analysis' entries of summary.json (counts, weights, block) and the moderate step's
hook that adds them."""

from __future__ import annotations

import json

import numpy as np

from stacklm.io.atomic import json_plain
from stacklm.workflow.weighting.rounds import load_state


def weighting_summary(state_path, counts_summary_path=None) -> dict:
    """The analysis' counts / weights / block entries of summary.json (``state_path``: the final
    state's file or the last round's parts, :func:`.rounds.load_state`): library sizes and
    filterByExpr (counts), the weights (method, sample weights and where they come from, voom's
    trend), and with a block the consensus correlation, how many features' REML did not converge
    and every duplicateCorrelation round."""
    out: dict = {}
    if counts_summary_path:
        with open(counts_summary_path) as fh:
            out.update(json.load(fh))
    # (summary.json uses neither voom's lowess nor the correlations' feature ids)
    state = load_state(state_path, trend=False, ids=False)
    sw = state.sample_weights
    out["weights"] = {
        "values": {
            "voom": "voom log-CPM: log2((count + 0.5) / (effective lib.size + 1) * 1e6)",
            "logcpm": "edgeR log-CPM: cpm(y, log = TRUE, prior.count = 2)",
            "input": "the stored values",
        }[state.values],
        "observation_weights": "voom" if state.values == "voom" else None,
        "sample_weights_source": state.sample_weights_source,
        "sample_weights": None
        if sw is None
        else {s: float(v) for s, v in zip(state.samples, sw, strict=True)},
        "voom_trend_points": None if state.sx is None else int(state.sx.size),
        "steps": json_plain(state.history),
    }
    if state.block is not None:
        out["block"] = {
            "column": state.block_column,
            "n_blocks": int(len(set(map(str, state.block)))),
            "consensus_correlation": state.correlation,
            "estimated": state.correlation_estimated,
            "n_not_converged": state.n_not_converged,
            "n_na": None if state.atanh is None else int(np.isnan(state.atanh).sum()),
            "n_features": None if state.atanh is None else int(state.atanh.size),
            "voom_correlation": state.voom_correlation,
        }
    return out


def weighting_moderate_extend(state_path, counts_summary_path=None):
    """The ``extend`` hook of :func:`stacklm.workflow.analysis_steps.moderate_step` for a weighted
    analysis: no extra columns, and the counts / weights / block entries of summary.json
    (:func:`weighting_summary`)."""

    def extend(table, fit, spec, normalized):
        return table, weighting_summary(state_path, counts_summary_path)

    return extend
