"""Step 3 of a weighted analysis: the rounds, each a pass over the chunks followed by one small
global step (voom's lowess trend of all chunks' points; duplicateCorrelation's consensus of all
chunks' correlations)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from stacklm.io.outputs import atomic_path
from stacklm.io.store import chunk_bounds
from stacklm.limma.dupcor import consensus_correlation, duplicate_correlation_rows
from stacklm.limma.voom import voom_trend
from stacklm.workflow.pipeline import read_design
from stacklm.workflow.weighting.rows import AnalysisRows
from stacklm.workflow.weighting.state import DUPCOR_TRIM, VOOM_SPAN, WeightingState
from stacklm.workflow.weighting.values import values_and_weights, voom_points

_log = logging.getLogger("stacklm")


def round_chunk_step(
    store_path,
    design_path,
    state_path,
    task: str,
    chunk: int,
    chunks: int,
    out_path,
    libraries_path=None,
    keep_path=None,
) -> int:
    """One chunk's share of a round: ``task`` ``voom`` (voom's trend points ``sx``, ``sy`` and
    the number of rows with residual df > 0) or ``dupcor`` (per-feature atanh correlations and
    whether their REML converged), under the state of the previous step.  Returns the rows done."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    state = WeightingState.load(state_path)
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    start, stop = chunk_bounds(rows.n_features, chunks)[chunk]
    out: dict[str, list] = {"sx": [], "sy": [], "atanh": [], "not_converged": [], "ids": []}
    n_with_reps = 0
    n_rows = 0
    for ids, Y in rows.blocks(start, stop):
        n_rows += len(ids)
        out["ids"].append(np.asarray(ids).astype(str))
        if not len(ids):
            continue
        if task == "voom":
            # this round's voom fits with the current correlation (none before the first
            # duplicateCorrelation round)
            points = voom_points(Y, X, state, rows.lib, state.correlation, fitted=False)
            out["sx"].append(points.sx)
            out["sy"].append(points.sy)
            n_with_reps += points.n_with_reps
        elif task == "dupcor":
            E, W = values_and_weights(Y, X, state, rows.lib)
            rc = duplicate_correlation_rows(E, X, block=state.block, weights=W)
            out["atanh"].append(rc.atanh_correlations)
            out["not_converged"].append(rc.not_converged)
        else:
            raise ValueError(f"unknown round task {task!r}")
    arrays = {
        k: np.concatenate(v) if v else np.empty(0, dtype=bool if k == "not_converged" else float)
        for k, v in out.items()
    }
    arrays["n_with_reps"] = np.array(n_with_reps)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return n_rows


def round_global_step(
    chunk_paths: Sequence, state_path, task: str, out_path, log: logging.Logger = _log
) -> WeightingState:
    """The global step of a round: voom's lowess trend of all chunks' points, or the consensus of
    all chunks' correlations (chunks in order), into the next state."""
    state = WeightingState.load(state_path)
    parts = []
    for p in chunk_paths:
        with np.load(p, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    if task == "voom":
        sx = np.concatenate([p["sx"] for p in parts])
        sy = np.concatenate([p["sy"] for p in parts])
        n_with_reps = int(sum(int(p["n_with_reps"]) for p in parts))
        state.trend = voom_trend(sx, sy, span=VOOM_SPAN, n_with_reps=n_with_reps)
        state.sx, state.sy = sx, sy
        state.voom_correlation = state.correlation if state.block is not None else None
        state.history.append(
            {
                "step": "voom" if state.voom_correlation is None else "voom (block, correlation)",
                "n_trend_points": int(sx.size),
                "span": VOOM_SPAN,
                "correlation": state.voom_correlation,
            }
        )
        log.info("voom trend from %d features (span %g)", sx.size, VOOM_SPAN)
    elif task == "dupcor":
        atanh = np.concatenate([p["atanh"] for p in parts])
        not_converged = np.concatenate([p["not_converged"] for p in parts])
        consensus = consensus_correlation(atanh, trim=DUPCOR_TRIM)
        state.correlation = consensus
        state.correlation_estimated = True
        state.atanh = atanh
        state.atanh_ids = np.concatenate([p["ids"] for p in parts])
        state.n_not_converged = int(not_converged.sum())
        state.history.append(
            {
                "step": "duplicateCorrelation",
                "consensus_correlation": consensus,
                "n_not_converged": state.n_not_converged,
                "n_na": int(np.isnan(atanh).sum()),
            }
        )
        log.info(
            "consensus correlation %.6g (%d features; REML not converged for %d)",
            consensus,
            atanh.size,
            state.n_not_converged,
        )
    else:
        raise ValueError(f"unknown round task {task!r}")
    state.save(out_path)
    return state
