"""All steps of a weighted analysis in order, in one process (what the workflow's rules run), for
tests and notebooks."""

from __future__ import annotations

import logging
from pathlib import Path

from stacklm.spec import AnalysisSpec
from stacklm.workflow.weighting.counts import counts_step
from stacklm.workflow.weighting.fit import weighted_fit_chunk
from stacklm.workflow.weighting.plan import weighting_rounds
from stacklm.workflow.weighting.rounds import round_chunk_step, round_global_step
from stacklm.workflow.weighting.setup_step import setup_step

_log = logging.getLogger("stacklm")


def run_weighted_chunks(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    workdir,
    chunks: int,
    normalize_method: str | None = None,
    log: logging.Logger = _log,
) -> dict:
    """Run an analysis' counts step, setup, rounds and chunk fits in ``workdir`` as the workflow's
    rules do (one process, chunk by chunk).  Returns the paths: ``fits`` (the chunk fit files, in
    order), ``state`` (the final state), ``libraries``, ``keep`` and ``counts_summary`` (None
    without counts)."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    libraries = keep = counts_summary = None
    if input_scale == "counts":
        libraries = work / "libraries.tsv"
        keep = work / "filter_by_expr.tsv.gz"
        counts_summary = work / "counts_summary.json"
        counts_step(
            store_path, design_path, spec, normalize_method, libraries, keep, counts_summary, log
        )
    state = work / "setup.npz"
    setup_step(
        store_path,
        design_path,
        samples_path,
        sample_id,
        spec,
        input_scale,
        state,
        libraries,
        keep,
        log=log,
    )
    for r, task in enumerate(weighting_rounds(spec, input_scale), start=1):
        parts = []
        for c in range(chunks):
            part = work / f"round_{r}" / f"chunk_{c}.npz"
            part.parent.mkdir(exist_ok=True)
            round_chunk_step(store_path, design_path, state, task, c, chunks, part, libraries, keep)
            parts.append(part)
        nxt = work / f"round_{r}.npz"
        round_global_step(parts, state, task, nxt, log=log)
        state = nxt
    fits = []
    for c in range(chunks):
        out = work / "fit" / f"chunk_{c}.npz"
        out.parent.mkdir(exist_ok=True)
        weighted_fit_chunk(
            store_path, design_path, state, c, chunks, out, libraries_path=libraries, keep_path=keep
        )
        fits.append(out)
    return {
        "fits": fits,
        "state": state,
        "libraries": libraries,
        "keep": keep,
        "counts_summary": counts_summary,
    }
