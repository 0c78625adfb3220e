"""Step 3 of a weighted analysis: the rounds, each a pass over the chunks whose global step
(voom's lowess trend of all chunks' points; duplicateCorrelation's consensus of all chunks'
correlations) is run by every job that reads the round.

A round's chunk job writes its rows' share (:func:`round_chunk_step`) together with the state the
round started from and the round's task, so that the round's parts alone define the state after
it: :func:`state_after_round` computes the global step from all parts (in chunk order) on top of
that state.  The next round's chunks, the fit chunks, the moderation's summary and the plots each
call it (the same arrays in the same order give the same numbers in every job, for any number of
chunks), instead of waiting for a separate global job: the global steps are small (a trimmed mean
of one correlation per feature; a lowess of one point per feature), the job start-up is not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike

import numpy as np

from stacklm.io.store import chunk_bounds
from stacklm.workflow.weighting.state import DUPCOR_TRIM, VOOM_SPAN, WeightingState

_log = logging.getLogger("stacklm")

#: the per-feature fields of the state each round's global step replaces (left out of the state
#: a part carries, which that step overwrites anyway)
REPLACED = {"voom": ("sx", "sy"), "dupcor": ("atanh", "atanh_ids")}
#: the prefix of the carried state's arrays in a part
BASE = "base_"


def round_chunk_step(
    store_path,
    design_path,
    state: WeightingState,
    task: str,
    chunk: int,
    chunks: int,
    out_path,
    libraries_path=None,
    keep_path=None,
) -> int:
    """One chunk's share of a round: ``task`` ``voom`` (voom's trend points ``sx``, ``sy`` and
    the number of rows with residual df > 0) or ``dupcor`` (per-feature atanh correlations and
    whether their REML converged), under ``state`` (the state the round starts from, which the part
    carries along with ``task``).  Returns the rows done."""
    from stacklm.io.outputs import atomic_path
    from stacklm.workflow.pipeline import read_design
    from stacklm.workflow.weighting.rows import AnalysisRows
    from stacklm.workflow.weighting.values import values_and_weights, voom_points

    if task == "dupcor":
        from stacklm.limma.dupcor import duplicate_correlation_rows
    elif task != "voom":
        raise ValueError(f"unknown round task {task!r}")
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    start, stop = chunk_bounds(rows.n_features, chunks)[chunk]
    out: dict[str, list] = {"sx": [], "sy": [], "atanh": [], "not_converged": [], "ids": []}
    n_with_reps = 0
    n_rows = 0
    for ids, Y in rows.blocks(start, stop):
        n_rows += len(ids)
        if task == "dupcor":  # the correlations' feature ids (the block_correlation plot)
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
        else:
            E, W = values_and_weights(Y, X, state, rows.lib)
            rc = duplicate_correlation_rows(E, X, block=state.block, weights=W)
            out["atanh"].append(rc.atanh_correlations)
            out["not_converged"].append(rc.not_converged)
    arrays = {
        k: np.concatenate(v) if v else np.empty(0, dtype=bool if k == "not_converged" else float)
        for k, v in out.items()
    }
    arrays["n_with_reps"] = np.array(n_with_reps)
    arrays["task"] = np.array(task)
    arrays["chunk"] = np.array(chunk)
    if chunk == 0:  # the state the round started from, once (the readers take it from part 0)
        arrays.update(state.to_arrays(BASE, leave_out=REPLACED[task]))
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return n_rows


def _read_parts(paths: Sequence, ids: bool) -> tuple[WeightingState, str, list[dict]]:
    """(the state the round started from, which part 0 carries, its task, every part's own
    arrays: the feature ids only with ``ids``) of a round's parts, in chunk order."""
    parts, base, task = [], None, None
    for i, p in enumerate(paths):
        with np.load(p, allow_pickle=False) as z:
            if int(z["chunk"]) != i:
                raise ValueError(f"{p} is chunk {int(z['chunk'])} of its round, expected chunk {i}")
            if i == 0:
                base = WeightingState.from_arrays(z, BASE)
                task = str(z["task"])
            elif str(z["task"]) != task:
                raise ValueError(f"{p} is a part of another round than {paths[0]}")
            skip = None if ids else "ids"
            parts.append({k: z[k] for k in z.files if not k.startswith(BASE) and k != skip})
    return base, task, parts


def state_after_round(
    chunk_paths: Sequence, log: logging.Logger | None = None, trend: bool = True, ids: bool = True
) -> WeightingState:
    """The state after a round: the global step of its task (voom's lowess trend of all chunks'
    points, or the consensus of all chunks' correlations; chunks in order) on top of the state the
    round started from (which every part carries).  ``trend=False`` leaves voom's lowess out (the
    trend stays the round's start's): for readers that use only the points and the history
    (summary.json); ``ids=False`` leaves out the feature ids of the per-feature correlations
    (``atanh_ids``: None), which only the block_correlation plot shows."""
    if not len(chunk_paths):
        raise ValueError("a round without chunk parts")
    state, task, parts = _read_parts(chunk_paths, ids)
    if task == "voom":
        sx = np.concatenate([p["sx"] for p in parts])
        sy = np.concatenate([p["sy"] for p in parts])
        n_with_reps = int(sum(int(p["n_with_reps"]) for p in parts))
        if trend:
            from stacklm.limma.voom import voom_trend

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
        if log is not None:
            log.info("voom trend from %d features (span %g)", sx.size, VOOM_SPAN)
    elif task == "dupcor":
        from stacklm.limma.dupcor import consensus_correlation

        atanh = np.concatenate([p["atanh"] for p in parts])
        not_converged = np.concatenate([p["not_converged"] for p in parts])
        consensus = consensus_correlation(atanh, trim=DUPCOR_TRIM)
        state.correlation = consensus
        state.correlation_estimated = True
        state.atanh = atanh
        state.atanh_ids = np.concatenate([p["ids"] for p in parts]) if ids else None
        state.n_not_converged = int(not_converged.sum())
        state.history.append(
            {
                "step": "duplicateCorrelation",
                "consensus_correlation": consensus,
                "n_not_converged": state.n_not_converged,
                "n_na": int(np.isnan(atanh).sum()),
            }
        )
        if log is not None:
            log.info(
                "consensus correlation %.6g (%d features; REML not converged for %d)",
                consensus,
                atanh.size,
                state.n_not_converged,
            )
    else:
        raise ValueError(f"unknown round task {task!r}")
    return state


def load_state(
    source: str | PathLike | Sequence,
    log: logging.Logger | None = None,
    trend: bool = True,
    ids: bool = True,
) -> WeightingState:
    """The weighting state an input names: a state file (the setup job's), or the parts of a
    round (a list of paths, or one path for one chunk), whose global step is run here
    (:func:`state_after_round`; ``trend``, ``ids``: as there)."""
    paths = [source] if isinstance(source, str | PathLike) else list(source)
    if len(paths) == 1:
        with np.load(paths[0], allow_pickle=False) as z:
            if "task" not in z.files:  # a state file
                return WeightingState.from_arrays({k: z[k] for k in z.files})
    return state_after_round(paths, log=log, trend=trend, ids=ids)


def start_state(
    source, design_path, samples_path, sample_id: str, block: str | None
) -> WeightingState:
    """The state a round's chunk starts from: ``source`` (the setup job's state file, or the
    round before's parts: :func:`load_state`), or without one (an analysis without a setup job,
    :func:`.plan.has_setup_job`) the setup state built here from the sample sheet's ``block``
    column (:func:`.setup_step.block_state`)."""
    if source:
        return load_state(source)
    from stacklm.workflow.weighting.setup_step import block_state

    return block_state(design_path, samples_path, sample_id, block)
