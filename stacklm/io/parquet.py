"""Parquet matrices: layout checks and row-group batches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stacklm.io.formats import MatrixInputError, _magic_kind


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_numeric(t: pa.DataType) -> bool:
    return (
        pa.types.is_floating(t)
        or pa.types.is_integer(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
    )


def _parquet_file(path: Path) -> pq.ParquetFile:
    kind = _magic_kind(path)
    if kind != "parquet":
        what = f"{kind}-compressed" if kind else "not a Parquet file (no PAR1 magic)"
        raise MatrixInputError(
            f"{path}: named as Parquet but the file is {what}; name a text matrix .tsv/.csv "
            "(.gz if gzipped) or write it with pyarrow/pandas to_parquet"
        )
    try:
        # no pre-buffering: it held whole row groups' compressed pages beside the decoded ones
        return pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise MatrixInputError(
            f"{path}: cannot be read as Parquet ({exc}); the file is probably truncated or corrupt"
        ) from None


def _parquet_layout(path: Path, pf: pq.ParquetFile) -> tuple[int, list[int]]:
    """(index of the feature id column, indices of the sample columns) in the arrow schema.

    The id column is the pandas index stored in the file (``to_parquet``), else the first column if it
    holds strings, else the only string column, else (no string column) the first column."""
    schema = pf.schema_arrow
    names = schema.names
    if len(names) < 2:
        raise MatrixInputError(
            f"{path}: no sample columns; a Parquet matrix needs a feature id column and one "
            "numeric column per sample"
        )
    id_col = None
    meta = schema.pandas_metadata or {}
    index_cols = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    if len(index_cols) == 1 and index_cols[0] in names:
        id_col = names.index(index_cols[0])
    else:
        strings = [j for j, f in enumerate(schema) if _is_string(f.type)]
        if 0 in strings or not strings:
            id_col = 0
        elif len(strings) == 1:
            id_col = strings[0]
        else:
            raise MatrixInputError(
                f"{path}: several string columns ({', '.join(names[j] for j in strings)}) and the "
                "first column is not one of them; put the feature id column first"
            )
    sample_cols = [j for j in range(len(names)) if j != id_col]
    for j in sample_cols:
        t = schema.field(j).type
        if not _is_numeric(t):
            raise MatrixInputError(
                f"{path}: column {j + 1} ({names[j]!r}) has type {t}; every sample column must be "
                f"numeric (the feature id column is {names[id_col]!r})"
            )
    return id_col, sample_cols


#: a row group of at most this many values is read whole, in groups of COLUMN_GROUP columns, into
#: one float64 array (1 GB); a larger one streams as batches
ROW_GROUP_MAX_VALUES = 1 << 27

#: sample columns decoded at once when a row group is read in column groups
COLUMN_GROUP = 128


def _as_float64(col) -> np.ndarray:
    """A numeric column (Arrow array or chunked array) as float64 numpy values, NaN where null:
    the values ``to_numpy(zero_copy_only=False)`` gives, read from the Arrow buffers (without
    copying a chunk that has no nulls, read-only).  Arrow's own ``to_numpy`` imports pandas (0.2 s
    of a fit job's start) on its first call."""
    if not pa.types.is_float64(col.type):
        col = pc.cast(col, pa.float64())
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = [_float64_values(c) for c in chunks if len(c)]
    if not parts:
        return np.empty(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _float64_values(arr: pa.Array) -> np.ndarray:
    """One float64 Arrow array's values (NaN where null) from its data and validity buffers."""
    n, offset = len(arr), arr.offset
    if arr.null_count == n:
        return np.full(n, np.nan)
    validity, data = arr.buffers()[:2]
    values = np.frombuffer(data, dtype=np.float64, count=n, offset=offset * 8)
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values = np.where(bits[offset : offset + n].astype(bool), values, np.nan)
    else:
        values.flags.writeable = False
    return values


def _parquet_pieces(
    pf: pq.ParquetFile, id_col: int, sample_cols: list[int], rows: int, groups=None
):
    """The file's rows (of the row groups ``groups``, default all, in order) as
    ``(id array, [float64 column per sample])`` pieces:

    * whole row groups when they are at most 4 x ``rows`` rows (``read_row_group`` decodes them
      several times faster than ``iter_batches`` and releases them at once), the next one decoded
      in a background thread while the caller uses this one (one more group in memory);
    * larger row groups of at most :data:`ROW_GROUP_MAX_VALUES` values one at a time, decoded
      :data:`COLUMN_GROUP` columns at a time into one float64 array (a 65,536-row group of 1,000
      samples: 0.5 GB, where Arrow's whole-table read or batch reader held 2-4 GB);
    * anything larger (a file written as one huge row group) as batches of ``rows`` rows."""
    meta = pf.metadata
    names = pf.schema_arrow.names
    groups = list(range(meta.num_row_groups) if groups is None else groups)
    sizes = [meta.row_group(i).num_rows for i in groups]
    largest = max(sizes, default=0)
    if not groups:
        return
    if largest <= 4 * rows:
        # the next row group is decoded (Arrow releases the GIL) while this one is used
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(pf.read_row_group, groups[0], use_pandas_metadata=False)
            for k in range(len(groups)):
                table = ahead.result()
                if k + 1 < len(groups):
                    ahead = pool.submit(pf.read_row_group, groups[k + 1], use_pandas_metadata=False)
                yield table.column(id_col), [_as_float64(table.column(j)) for j in sample_cols]
                del table
    elif largest * len(sample_cols) <= ROW_GROUP_MAX_VALUES:
        for i, size in zip(groups, sizes, strict=True):
            ids = pf.read_row_group(i, columns=[names[id_col]]).column(0)
            values = np.empty((len(sample_cols), size))  # one contiguous row per sample column
            for start in range(0, len(sample_cols), COLUMN_GROUP):
                group = sample_cols[start : start + COLUMN_GROUP]
                table = pf.read_row_group(i, columns=[names[j] for j in group])
                for k in range(len(group)):
                    values[start + k] = _as_float64(table.column(k))
                del table
            yield ids, list(values)
    else:
        for batch in pf.iter_batches(batch_size=rows, row_groups=groups, use_pandas_metadata=False):
            yield batch.column(id_col), [_as_float64(batch.column(j)) for j in sample_cols]


def _parquet_batches(
    path: Path,
    pf: pq.ParquetFile,
    id_col: int,
    sample_cols: list[int],
    rows,
    groups=None,
    first_row: int = 0,
):
    """``(ids, float64 columns, first row)`` pieces of the row groups ``groups`` (default all;
    ``first_row``: the 0-based row of the first one in the file), with the id column checked."""
    id_name = pf.schema_arrow.names[id_col]
    try:
        for id_arr, columns in _parquet_pieces(pf, id_col, sample_cols, rows, groups):
            b = len(id_arr)
            if b == 0:
                continue
            if id_arr.null_count:
                k = int(np.flatnonzero(id_arr.is_null().to_numpy(zero_copy_only=False))[0])
                raise MatrixInputError(
                    f"{path}: row {first_row + k + 1}: the feature id ({id_name!r})"
                    " is missing; every feature needs an id"
                )
            if not _is_string(id_arr.type):
                id_arr = pc.cast(id_arr, pa.string())
            ids = np.array(id_arr.to_pylist(), dtype=object)  # to_numpy would import pandas
            yield ids, columns, first_row
            first_row += b
    except (pa.ArrowInvalid, OSError) as exc:
        raise MatrixInputError(
            f"{path}: cannot be read as Parquet ({exc}); the file is probably truncated or corrupt"
        ) from None
