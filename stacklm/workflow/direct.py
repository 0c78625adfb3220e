"""Fit jobs that read a Parquet matrix directly, without the normalized store.

When the only step that needs the normalized values is the plain fit (no surrogate variables, no
counts, weights or blocks, no corrected export, normalization ``none``, storage precision float64),
the store is a full copy of the input that is read once: normalize transposes every row group into
it (3 s of 12 at 850,000 x 400), writes it through the page cache and runs alone before any fit. Here
each fit job instead reads its own row groups of the Parquet file
(:func:`stacklm.workflow.chunks.direct_chunk_groups`),
applies what normalize would (the checks, the input scale's transform, the feature filters) and fits
them; the two jobs decode side by side. What normalize reports is collected from the chunks:

* each chunk writes a small ``.input.npz`` piece (:func:`write_input_piece`): its input and kept
  rows, each filter's count, and its rows of the distribution sample (every k-th input row,
  :func:`distribution_stride`);
* :func:`direct_normalize_summary` adds the pieces up into the summary normalize writes (the same
  keys) and checks that feature ids are unique across the whole file (from the id column alone);
* :func:`direct_distributions` gives the per-sample densities and quantiles from the pieces.

The fitted numbers are those of the store path: the same float64 values, the same row-wise steps,
rows fitted in blocks (tested equal to within 1e-12; the fits do not depend on row blocks or
chunks). Two diagnostics use a differently chosen, equally uniform subset of rows: the PCA
cross-products take every k-th *input* row that is kept (the store path: every k-th kept row; the
same rows when no filter removes any), and the density sample is every k-th input row (the store
path: a reservoir sample).  When the workflow takes this path:
:func:`stacklm.workflow.chunks.direct_fit_reason`."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stacklm.diagnostics.crossproducts import block_cross_products
from stacklm.diagnostics.distributions import reservoir_size
from stacklm.io.atomic import atomic_path
from stacklm.io.blocks import rows_per_block
from stacklm.io.formats import MatrixInputError
from stacklm.io.matrix import READ_BLOCK_VALUES, _check_piece, _fill_rows
from stacklm.io.parquet import _parquet_batches, _parquet_file, _parquet_layout
from stacklm.io.text import _check_unique_samples
from stacklm.limma.lmfit import lm_fit
from stacklm.preprocess.filters import feature_filter
from stacklm.preprocess.scales import transform_values
from stacklm.workflow.chunks import direct_chunk_groups
from stacklm.workflow.pipeline import (
    DesignTable,
    design_arrays,
    normalize_summary,
    write_chunk_fit,
)
from stacklm.workflow.progress import Progress

if TYPE_CHECKING:
    import pandas as pd

#: values (rows x samples) fitted at once, as in the store path's fit jobs (32 MB of float64)
DIRECT_BLOCK_VALUES = 1 << 22


def distribution_stride(n_rows: int, n_samples: int) -> int:
    """k of the distribution sample: every k-th input row (by 0-based index), about
    :func:`stacklm.diagnostics.distributions.reservoir_size` rows in all."""
    return max(1, -(-int(n_rows) // reservoir_size(n_samples)))


def direct_fit_chunk(
    matrix_path,
    design: pd.DataFrame | DesignTable,
    chunk: int,
    chunks: int,
    out_path,
    crossprod_path,
    piece_path,
    input_scale: str = "expression",
    beta_epsilon: float = 1e-6,
    normalize: Mapping | None = None,
    filters: Mapping | None = None,
) -> int:
    """Fit chunk ``chunk`` (of ``chunks``) of a Parquet matrix read directly (its row groups,
    :func:`direct_chunk_groups`) on ``design`` (indexed by sample id; a DataFrame or a
    :class:`~stacklm.workflow.pipeline.DesignTable`): the store path's checks
    (:func:`stacklm.io.matrix.read_matrix_blocks`: empty ids and infinite values here; duplicated
    ids over the whole file, from its id column, in :func:`direct_normalize_summary`, which
    moderate and normalize run), transform and filters
    (:func:`stacklm.workflow.pipeline.normalize_matrix`) and fit
    (:func:`stacklm.workflow.pipeline.fit_chunk`), block by block. Writes the fit, the
    cross-products and the chunk's input piece (:func:`write_input_piece`). Returns the rows
    fitted."""
    path = Path(matrix_path)
    normalize = dict(normalize or {})
    filters = {k: v for k, v in dict(filters or {}).items() if v is not None}
    pf = _parquet_file(path)
    id_col, sample_cols = _parquet_layout(path, pf)
    names = pf.schema_arrow.names
    header = [names[id_col]] + [names[j] for j in sample_cols]
    samples = header[1:]
    _check_unique_samples(path, header[0], samples, "schema")
    n_input = pf.metadata.num_rows
    first_group, end_group, first_row = direct_chunk_groups(path, chunks)[chunk]
    groups = range(first_group, end_group)

    position = {s: j for j, s in enumerate(samples)}
    design_samples, coef_names, X = design_arrays(design)
    missing = [s for s in design_samples if s not in position]
    if missing:
        raise MatrixInputError(
            f"{path}: the design's sample {missing[0]!r} is not a column of the matrix"
        )
    columns = [position[s] for s in design_samples]
    same_columns = columns == list(range(len(samples)))
    stride = distribution_stride(n_input, len(samples))
    step = rows_per_block(len(samples), DIRECT_BLOCK_VALUES)
    read_rows = rows_per_block(len(samples), READ_BLOCK_VALUES, minimum=1000)

    removed: dict[str, int] = {}
    fits, cross = [], None
    sample_rows, sample_kept = [], []
    n_read = n_kept = 0
    buffer = np.empty((step, len(samples)))
    meta = pf.metadata
    progress = Progress(f"chunk {chunk}", sum(meta.row_group(g).num_rows for g in groups))
    for ids, cols, at in _parquet_batches(
        path, pf, id_col, sample_cols, read_rows, groups=groups, first_row=first_row
    ):
        for a in range(0, len(ids), step):
            b = min(a + step, len(ids))
            # rows x samples, row-major as the store path's blocks (the fit and the
            # cross-products work on row-major blocks; a column-major one costs them a transpose)
            raw = buffer[: b - a]
            _fill_rows(raw, cols, a)
            block_ids = ids[a:b]
            # ids and values as the store path checks them; their uniqueness over the whole file
            # from the id column alone (check_unique_feature_ids, in moderate and normalize)
            _check_piece(path, "parquet", None, header, block_ids, raw, at + a, None, None)
            values = transform_values(raw, input_scale, beta_epsilon, normalize, block_ids, samples)
            rows = np.arange(at + a, at + b)
            keep, counts = feature_filter(values, **filters)
            for k, v in counts.items():
                removed[k] = removed.get(k, 0) + int(v)
            hit = rows % stride == 0
            if hit.any():
                sample_rows.append(np.array(values[hit], dtype=np.float64))
                sample_kept.append(keep[hit])
            if not keep.all():
                values, block_ids, rows = values[keep], block_ids[keep], rows[keep]
            Y = values if same_columns else values[:, columns]
            block_fit = lm_fit(Y, X, coef_names=coef_names, feature_ids=block_ids)
            block_cross = block_cross_products(
                Y, X, block_fit.coefficients, design_samples, rows, n_input
            )
            cross = block_cross if cross is None else cross + block_cross
            fits.append(block_fit)
            n_read += b - a
            n_kept += len(rows)
            progress.at(n_read)
        del ids, cols
    if not fits:  # a chunk whose row groups are all empty (a file can have some)
        Y = np.empty((0, len(columns)))
        fits.append(lm_fit(Y, X, coef_names=coef_names, feature_ids=np.empty(0, dtype=object)))
        cross = block_cross_products(Y, X, fits[0].coefficients, design_samples, [], n_input)
    write_chunk_fit(fits, cross, out_path, crossprod_path)
    write_input_piece(
        piece_path,
        n_read=n_read,
        n_kept=n_kept,
        removed=removed,
        samples=samples,
        sample_values=np.vstack(sample_rows) if sample_rows else np.empty((0, len(samples))),
        sample_kept=np.concatenate(sample_kept) if sample_kept else np.empty(0, dtype=bool),
    )
    return n_kept


def write_input_piece(path, n_read, n_kept, removed, samples, sample_values, sample_kept) -> None:
    """One chunk's share of what normalize reports: rows read and kept, each filter's count, the
    sample names, and its rows of the distribution sample (values on the analysis scale) with
    whether the filters kept them."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            n_read=np.int64(n_read),
            n_kept=np.int64(n_kept),
            removed=np.array(json.dumps(removed)),
            samples=np.array(samples, dtype=str),
            sample_values=sample_values,
            sample_kept=sample_kept,
        )


def read_input_pieces(paths: Sequence) -> dict:
    """The chunks' pieces added up, in chunk order: ``n_read``, ``n_kept``, ``removed`` (filter ->
    count, in the filters' order), ``samples``, ``sample_values``, ``sample_kept``."""
    n_read = n_kept = 0
    removed: dict[str, int] = {}
    values, kept, samples = [], [], None
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            n_read += int(z["n_read"])
            n_kept += int(z["n_kept"])
            for k, v in json.loads(str(z["removed"])).items():
                removed[k] = removed.get(k, 0) + int(v)
            samples = [str(s) for s in z["samples"]]
            values.append(np.array(z["sample_values"]))
            kept.append(np.array(z["sample_kept"]))
    return {
        "n_read": n_read,
        "n_kept": n_kept,
        "removed": removed,
        "samples": samples or [],
        "sample_values": np.vstack(values) if values else np.empty((0, 0)),
        "sample_kept": np.concatenate(kept) if kept else np.empty(0, dtype=bool),
    }


def check_unique_feature_ids(matrix_path) -> int:
    """Raise the store path's one-line error when a feature id appears twice anywhere in a
    Parquet matrix (only its id column is read). Returns the number of rows."""
    path = Path(matrix_path)
    pf = _parquet_file(path)
    id_col, _ = _parquet_layout(path, pf)
    name = pf.schema_arrow.names[id_col]
    ids = pf.read(columns=[name], use_pandas_metadata=False).column(0)
    import pandas as pd  # here: moderate and normalize load it anyway, the fit jobs do not

    index = pd.Index(ids.to_numpy(zero_copy_only=False).astype(object))
    if not index.is_unique:
        duplicated = np.flatnonzero(index.duplicated())
        second = int(duplicated[0])
        dup_id = index[second]
        first = int(np.flatnonzero(index == dup_id)[0])
        raise MatrixInputError(
            f"{path}: feature id {dup_id!r} appears twice (row {first + 1} and row {second + 1}); "
            "feature ids must be unique: remove or rename the duplicated rows (e.g. aggregate "
            "probes per gene beforehand)"
        )
    return len(index)


def direct_normalize_summary(
    matrix_path,
    piece_paths: Sequence,
    input_scale: str = "expression",
    normalize: Mapping | None = None,
    filters: Mapping | None = None,
    precision: str = "float64",
    checksum_path=None,
) -> dict:
    """The summary :func:`stacklm.workflow.pipeline.normalize_matrix` returns (the same keys and
    numbers), from the chunks' pieces of a directly read Parquet matrix; raises its errors (no
    feature left; a feature id appearing twice, :func:`check_unique_feature_ids`).
    ``checksum_path``: the matrix's checksum record
    (:func:`stacklm.workflow.provenance.write_checksum`), added as
    ``input_checksums`` as the store path's normalize step adds it for the provenance (which
    hashes the file again if it changed since)."""
    normalize = dict(normalize or {})
    filters = {k: v for k, v in dict(filters or {}).items() if v is not None}
    found = read_input_pieces(piece_paths)
    n_input = check_unique_feature_ids(matrix_path)
    if found["n_read"] != n_input:
        raise ValueError(
            f"{matrix_path}: the fit chunks read {found['n_read']} of its {n_input} rows; "
            "the file changed during the run: run again"
        )
    summary = normalize_summary(
        matrix_path, n_input, found["n_kept"], len(found["samples"]), found["removed"],
        input_scale, normalize, filters, precision,
    )  # fmt: skip
    if checksum_path is not None:
        with open(checksum_path) as fh:
            summary["input_checksums"] = {"matrix": json.load(fh)}
    return summary


def direct_distributions(piece_paths: Sequence) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample densities and quantiles (:func:`sample_distributions`) of the distribution
    sample: every k-th input row on the analysis scale, and those of them the filters kept."""
    found = read_input_pieces(piece_paths)
    values, samples = found["sample_values"], found["samples"]
    from stacklm.diagnostics.distributions import sample_distributions

    return sample_distributions(values, values[found["sample_kept"]], samples, samples)


def direct_normalized(matrix_path, piece_paths: Sequence, **settings):
    """A Future of :func:`direct_normalize_summary` (``settings``: its keyword arguments), built in
    a background thread (the id column's read releases the GIL) while moderate computes the
    results."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(direct_normalize_summary, matrix_path, piece_paths, **settings)
    pool.shutdown(wait=False)
    return future
