"""Parquet matrices: layout checks and row-group batches."""

from __future__ import annotations

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
        return pq.ParquetFile(path)
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


def _parquet_pieces(pf: pq.ParquetFile, rows: int):
    """The file's rows as Arrow tables or batches of about ``rows`` rows: whole row groups when
    they are at most 4 x ``rows`` (``read_row_group`` decodes them several times faster than
    ``iter_batches`` and releases them at once), else batches, so that a file written as one huge
    row group is still read in bounded memory."""
    meta = pf.metadata
    largest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
    if largest <= 4 * rows:
        for i in range(meta.num_row_groups):
            yield pf.read_row_group(i, use_pandas_metadata=False)
    else:
        yield from pf.iter_batches(batch_size=rows, use_pandas_metadata=False)


def _parquet_batches(path: Path, pf: pq.ParquetFile, id_col: int, sample_cols: list[int], rows):
    first_row = 0
    try:
        for batch in _parquet_pieces(pf, rows):
            b = batch.num_rows
            if b == 0:
                continue
            id_arr = batch.column(id_col)
            if id_arr.null_count:
                k = int(np.flatnonzero(id_arr.is_null().to_numpy(zero_copy_only=False))[0])
                raise MatrixInputError(
                    f"{path}: row {first_row + k + 1}: the feature id ({batch.schema.names[id_col]!r})"
                    " is missing; every feature needs an id"
                )
            if not _is_string(id_arr.type):
                id_arr = pc.cast(id_arr, pa.string())
            ids = id_arr.to_numpy(zero_copy_only=False).astype(object)
            columns = []
            for j in sample_cols:
                col = batch.column(j)
                if not pa.types.is_float64(col.type):
                    col = pc.cast(col, pa.float64())
                columns.append(col.to_numpy(zero_copy_only=False))
            del batch
            yield ids, columns, first_row
            first_row += b
    except (pa.ArrowInvalid, OSError) as exc:
        raise MatrixInputError(
            f"{path}: cannot be read as Parquet ({exc}); the file is probably truncated or corrupt"
        ) from None
