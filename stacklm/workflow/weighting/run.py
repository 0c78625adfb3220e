"""All steps of a weighted analysis in order, in one process (what the workflow's rules run), for
tests and notebooks."""

from __future__ import annotations

import logging
from pathlib import Path

from stacklm.spec import AnalysisSpec
from stacklm.workflow.weighting.fit import weighted_fit_chunk
from stacklm.workflow.weighting.plan import has_setup_job, weighting_rounds
from stacklm.workflow.weighting.rounds import load_state, round_chunk_step, start_state
from stacklm.workflow.weighting.setup_step import setup_with_counts_step

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
    order), ``state`` (the final state, written as one file), ``parts`` (the last round's parts,
    as the workflow's later jobs read them; None without rounds), ``libraries``, ``keep`` and ``counts_summary`` (None
    without counts)."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    libraries = keep = counts_summary = None
    if input_scale == "counts":
        libraries, keep = work / "libraries.tsv", work / "filter_by_expr.tsv.gz"
        counts_summary = work / "counts_summary.json"
    source = None  # without a setup job the round-1 chunks build the setup state (start_state)
    if has_setup_job(spec, input_scale):  # always with counts
        source = work / "setup.npz"
        setup_with_counts_step(
            store_path, design_path, samples_path, sample_id, spec, input_scale, source,
            normalize_method, libraries, keep, counts_summary, log=log,
        )  # fmt: skip
    for r, task in enumerate(weighting_rounds(spec, input_scale), start=1):
        parts = []
        # every chunk job of the round computes this same state (the previous round's global step)
        start = start_state(source, design_path, samples_path, sample_id, spec.weighting.block)
        for c in range(chunks):
            part = work / f"round_{r}" / f"chunk_{c}.npz"
            part.parent.mkdir(exist_ok=True)
            round_chunk_step(store_path, design_path, start, task, c, chunks, part, libraries, keep)
            parts.append(part)
        source = parts
    fits = []
    for c in range(chunks):
        out = work / "fit" / f"chunk_{c}.npz"
        out.parent.mkdir(exist_ok=True)
        weighted_fit_chunk(
            store_path,
            design_path,
            source,
            c,
            chunks,
            out,
            libraries_path=libraries,
            keep_path=keep,
            log=log,
        )
        fits.append(out)
    state = work / "state.npz"  # the final state as one file (the workflow reads the parts)
    load_state(source).save(state)
    return {
        "fits": fits,
        "state": state,
        "parts": None if isinstance(source, Path) else source,
        "libraries": libraries,
        "keep": keep,
        "counts_summary": counts_summary,
    }
