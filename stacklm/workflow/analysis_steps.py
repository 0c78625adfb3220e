"""File-level steps of one analysis, callable without Snakemake: its design, surrogate variables,
and the global moderation of the merged chunk fits with the summary.  The scripts in ``scripts/``
pass Snakemake's paths and params to these."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa

from stacklm.analysis import (
    columns_frame,
    moderate_columns,
    top_rows,
    top_table,
)
from stacklm.io.outputs import (
    arrow_columns,
    arrow_table,
    write_arrow_tsv,
    write_json,
    write_parquet,
    write_tsv,
)
from stacklm.spec import AnalysisSpec, DesignInfo
from stacklm.workflow.design_steps import data_samples, design_step  # noqa: F401  (its API)
from stacklm.workflow.pipeline import merge_chunk_fits, read_design
from stacklm.workflow.provenance import provenance, versions

_log = logging.getLogger("stacklm")


def moderate_step(
    chunk_paths: Sequence,
    design_path,
    sv_path,
    info_path,
    normalized_path,
    spec: AnalysisSpec,
    fdr: Mapping,
    config: Mapping,
    results_path,
    summary_path,
    workflow_dir,
    top_table_path=None,
    features_path=None,
    log: logging.Logger = _log,
    extend=None,
    threads: int = 1,
    merged=None,
) -> tuple[pa.Table, dict]:
    """Merge the chunk fits, moderate and test all features at once, write the results table
    (Parquet, :func:`stacklm.io.outputs.write_parquet`) and summary.json (the test's numbers, design, SVs, normalization, versions, config, provenance).
    Returns the results as the Arrow table written and the summary.

    ``extend``: optional ``extend(table, fit, spec, normalized) -> (table, summary_entries)`` that
    adds an input's own columns (before the final five) and summary.json entries (SNP genotypes:
    :func:`stacklm.workflow.genotype_steps.genotype_moderate_step`); ``fit`` is the merged
    un-moderated fit, ``normalized`` the normalize step's summary (``normalized_path``: its
    summary.json, or a Future of it: :func:`stacklm.workflow.direct.direct_normalized`).  ``threads``: for the
    per-column statistics and the tables' conversion (the numbers do not depend on it).
    ``merged``: a Future of the merged fit of ``chunk_paths`` when the caller started reading them
    (:func:`stacklm.limma.fitstore.load_fits_in_background`, with ``order="F"`` as here)."""
    if merged is None:  # column-major: the results table's columns are views of the fit's
        fit = merge_chunk_fits(chunk_paths, threads=threads, order="F")
    else:
        fit = merged.result()
    log.info("merged %d chunks: %d features", len(chunk_paths), fit.n_features)
    cols, stats, eb = moderate_columns(
        fit,
        spec.contrasts_dict,
        list(spec.test),
        asdict(spec.moderation),
        fdr_method=fdr["method"],
        alpha=fdr["alpha"],
        threshold_fc=spec.threshold_fc,
        decide=asdict(spec.decide),
        confidence_level=spec.confidence_level,
        threads=threads,
    )
    design = read_design(design_path)
    sv = read_design(sv_path)
    info = DesignInfo.read(info_path)
    if hasattr(normalized_path, "result"):  # a Future of the summary (direct Parquet fits)
        normalized = dict(normalized_path.result())
    else:
        with open(normalized_path) as fh:
            normalized = json.load(fh)
    known_inputs = normalized.pop("input_checksums", None)  # the matrix, hashed by normalize
    summary = {
        **stats,
        "n_samples": int(design.shape[0]),
        "dropped_samples": list(info.dropped_samples),
        "design_columns": list(design.columns),
        "n_surrogate_variables": int(sv.shape[1]),
        "surrogate_variables": {
            "requested": spec.surrogate.requested,
            "method": spec.surrogate.method,
            "seed": spec.surrogate.seed,
            "n": int(sv.shape[1]),
            "features_used": "complete features only (no missing values)",
        },
        "normalization": normalized,
        "versions": versions(),
        "config": config,
        "provenance": provenance(config, workflow_dir=workflow_dir, known_inputs=known_inputs),
    }
    # --- input-specific columns and summary entries (genotypes; None for matrices) -------------
    table = cols  # the columns as arrays: Arrow straight from them, without a DataFrame
    if extend is not None:
        table, entries = extend(columns_frame(cols, threads=threads), fit, spec, normalized)
        summary.update(entries)
    # --------------------------------------------------------------------------------------------
    decisions = [c for c in table if str(c).startswith("decision_")]
    with ThreadPoolExecutor(1) as pool:  # the top table is written while the results are
        top_job = None
        if top_table_path:
            top_job = pool.submit(
                _write_top_table, table, eb, spec, fdr["alpha"], top_table_path, features_path, log
            )
        if isinstance(table, pd.DataFrame):
            arrow = arrow_table(table, int8_columns=decisions, threads=threads)
        else:
            arrow = arrow_columns(table, int8_columns=decisions, threads=threads)
        write_parquet(arrow, results_path)
        write_json(summary, summary_path)
        if top_job is not None:
            top_job.result()
    log.info(
        "%d features; %d significant at %s %.3g",
        stats["n_features"],
        stats["n_significant"],
        fdr["method"],
        fdr["alpha"],
    )
    return arrow, summary


def _write_top_table(table, eb, spec, alpha, path, features_path, log) -> None:
    """top_table.tsv: the significant rows in limma's topTable order, with the annotation.
    ``table``: the results as a DataFrame, or as arrays (name -> 1-D array), of which only the top
    rows are taken (their decisions stay floats, as a DataFrame's: -0 where the estimate is
    negative)."""
    if isinstance(table, pd.DataFrame):
        top = top_table(table, eb, list(spec.test), alpha)
    else:
        rows = top_rows(eb, list(spec.test), table["p_value"], table["fdr"], alpha)
        top = {name: _take(values, rows) for name, values in table.items()}
        if not features_path:
            write_arrow_tsv(arrow_columns(top), path)
            log.info("top table: %d features (limma topTable order)", rows.size)
            return
        top = columns_frame(top)
    annotation = aligned_annotation(features_path, top["feature_id"], log=log)
    if annotation.shape[1] > 1:
        top = top.merge(annotation, on="feature_id", how="left", sort=False)
    write_tsv(top, path)
    log.info("top table: %d features (limma topTable order)", len(top))


def _take(values, rows: np.ndarray):
    """The ``rows`` of a results column (a numpy array, or an Arrow array: the feature ids)."""
    if isinstance(values, pa.Array):
        return values.take(pa.array(rows))
    return np.asarray(values)[rows]


def aligned_annotation(
    path, feature_ids: Sequence[str], log: logging.Logger = _log
) -> pd.DataFrame:
    """The feature annotation table (feature id in the first column) in the order of ``feature_ids``;
    features it does not describe get missing values (counted in the log).  ``path`` None gives an
    id-only table."""
    if isinstance(feature_ids, pa.Array | pa.ChunkedArray):  # a column of moderate_step's table
        feature_ids = feature_ids.to_pylist()
    ids = pd.Index([str(f) for f in feature_ids], name="feature_id")
    if not path:
        return pd.DataFrame(index=ids).reset_index()
    sep = "," if str(path).lower().endswith((".csv", ".csv.gz")) else "\t"
    table = pd.read_csv(path, sep=sep, dtype={0: str})
    first = table.columns[0]
    table[first] = table[first].astype(str)
    dup = table[first][table[first].duplicated()].unique()
    if len(dup):
        raise ValueError(
            f"feature annotation {path}: duplicated feature id(s) {', '.join(map(str, dup[:5]))}; "
            "each feature must appear once"
        )
    table = table.set_index(first)
    missing = int((~ids.isin(table.index)).sum())
    if missing:
        log.warning(
            "feature annotation %s does not describe %d of %d features", path, missing, len(ids)
        )
    return table.reindex(ids).reset_index()
