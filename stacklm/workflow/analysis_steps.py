"""File-level steps of one analysis, callable without Snakemake: its design, surrogate variables,
and the global moderation of the merged chunk fits with the summary.  The scripts in ``scripts/``
pass Snakemake's paths and params to these."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from stacklm.analysis import (
    analysis_design,
    columns_frame,
    estimate_surrogate_variables,
    moderate_columns,
    top_rows,
    top_table,
)
from stacklm.genotype.inputs import fam_samples, is_plink
from stacklm.io.matrix import read_matrix_header
from stacklm.io.outputs import (
    arrow_columns,
    arrow_table,
    write_arrow_tsv,
    write_json,
    write_parquet,
    write_tsv,
)
from stacklm.io.samplesheet import match_samples, read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.spec import AnalysisSpec, DesignInfo
from stacklm.workflow.pipeline import merge_chunk_fits, read_design
from stacklm.workflow.provenance import provenance, versions

_log = logging.getLogger("stacklm")


def data_samples(path, matrix_format: str | None = None) -> list[str]:
    """The sample ids of the data, in order: of the normalized store (a folder), of a PLINK
    fileset (the .fam's IIDs) or of a matrix file's header.  The store has the matrix's samples
    (normalize keeps every column), so a design without SVs can be made from the header while the
    matrix is being normalized."""
    if Path(path).is_dir():
        return list(open_binary_matrix(path, load_feature_ids=False).samples)
    if is_plink(path, matrix_format):
        return fam_samples(path)
    return list(read_matrix_header(path, matrix_format)[1])


def design_step(
    samples_path,
    sample_id: str,
    data_path,
    spec: AnalysisSpec,
    design_path,
    info_path,
    sv_path,
    associations_path,
    log: logging.Logger = _log,
    matrix_format: str | None = None,
) -> tuple[pd.DataFrame, DesignInfo]:
    """The design of an analysis as fitted, in one job: the base design from the sample sheet and the
    data's samples (:func:`stacklm.design.analysis.analysis_design`; ``info_path`` gets its
    :class:`DesignInfo`), the surrogate variables when the analysis asks for them (the store's
    values of the analysis' samples are read once, then
    :func:`stacklm.analysis.estimate_surrogate_variables`; ``sv_path`` and ``associations_path`` get
    the SV table and the SV-by-covariate associations), and ``design_path``: the base design with
    the SVs appended (TSV, sample id first).  ``data_path`` is the normalized store, or, for an
    analysis without SVs, the matrix file itself (:func:`data_samples`)."""
    sheet = read_sample_sheet(samples_path, sample_id)
    samples = data_samples(data_path, matrix_format)
    match_samples(samples, sheet, "the matrix", samples_path)
    base, info = analysis_design(sheet, samples, spec)
    if info.dropped_samples:
        log.warning(
            "dropped %d sample(s) with missing formula variables: %s",
            len(info.dropped_samples),
            ", ".join(info.dropped_samples),
        )
    log.info("design: %d samples x %d columns (%s)", *base.shape, ", ".join(base.columns))
    write_json(info.to_json(), info_path)
    values = None
    if spec.surrogate.wanted:
        if not Path(data_path).is_dir():
            raise ValueError("surrogate variables are estimated from the normalized store")
        store = open_binary_matrix(data_path, load_feature_ids=False)
        values = np.asarray(store.values)[:, store.columns_of([str(s) for s in base.index])]
    sv, associations = estimate_surrogate_variables(values, base, info, spec, sheet, log=log)
    write_tsv(sv, sv_path, index=True)
    write_tsv(associations, associations_path)
    design = base
    if sv.shape[1]:
        design = base.join(sv.loc[base.index])
        log.info("appended %d surrogate variables", sv.shape[1])
    write_tsv(design.rename_axis("sample_id"), design_path, index=True)
    return design, info


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
) -> tuple[pa.Table, dict]:
    """Merge the chunk fits, moderate and test all features at once, write the results table
    (Parquet, :func:`stacklm.io.outputs.write_parquet`) and summary.json (the test's numbers, design, SVs, normalization, versions, config, provenance).
    Returns the results as the Arrow table written and the summary.

    ``extend``: optional ``extend(table, fit, spec, normalized) -> (table, summary_entries)`` that
    adds an input's own columns (before the final five) and summary.json entries (SNP genotypes:
    :func:`stacklm.workflow.genotype_steps.genotype_moderate_step`); ``fit`` is the merged
    un-moderated fit, ``normalized`` the normalize step's summary.  ``threads``: for the
    per-column statistics and the tables' conversion (the numbers do not depend on it)."""
    fit = merge_chunk_fits(chunk_paths, threads=threads)
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
        top = {name: np.asarray(values)[rows] for name, values in table.items()}
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
