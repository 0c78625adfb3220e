"""Atomic writers for result files: a temp file in the same folder, renamed into place when
complete, so an interrupted job never leaves a file that looks finished."""

from __future__ import annotations

import gzip
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stacklm.io.atomic import (  # noqa: F401  (part of this module's API)
    atomic_path,
    current_umask,
    file_mode,
    folder_mode,
    write_json,
    write_text,
)
from stacklm.threads import executor

#: gzip level of written tables: level 1 compresses ~5x faster than level 6 for ~10% more bytes
GZIP_LEVEL = 1
#: rows x columns (cells) formatted and compressed per gzip member; fixed, so that the bytes do not
#: depend on the number of threads
GZIP_BLOCK_CELLS = 1 << 21


def arrow_table(
    table: pd.DataFrame, index: bool = False, int8_columns=(), threads: int = 1
) -> pa.Table:
    """The table as typed Arrow columns, the same for every writer: floats as float64 (NaN as
    null), integers and booleans as they are, anything else as strings; ``int8_columns`` (floats
    holding only small whole numbers and NaN, such as decisions -1/0/1) as int8 with nulls.
    ``threads`` columns are converted side by side (Arrow and numpy release the GIL)."""
    if index:
        table = table.reset_index()
    small = set(int8_columns)

    def convert(name):
        col = table[name]
        if name in small:
            return _int8_array(name, col.to_numpy(dtype=np.float64))
        if pd.api.types.is_float_dtype(col):
            return _float_array(col.to_numpy(dtype=np.float64))
        if pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            return pa.array(col.to_numpy())
        return pa.array(col.astype(str).to_numpy(dtype=object), type=pa.string())

    with executor(threads) as pool:
        arrays = list(pool.map(convert, table.columns))
    return pa.table(dict(zip(map(str, table.columns), arrays, strict=True)))


def arrow_columns(columns: Mapping[str, np.ndarray], int8_columns=(), threads: int = 1) -> pa.Table:
    """:func:`arrow_table` of a table given as 1-D numpy arrays (name -> array, in column order;
    views such as a column of a matrix are copied once into contiguous memory), without a
    DataFrame in between: the same Arrow types and values (floats as float64 with NaN as null,
    integers and booleans as they are, strings (``U``/``S``/object arrays) as strings,
    ``int8_columns`` as int8 with nulls; Arrow arrays as they are), so the files written from it
    are the same bytes."""
    small = set(int8_columns)

    def convert(item):
        name, values = item
        if isinstance(values, pa.Array):  # converted already (feature ids)
            return values
        values = np.asarray(values)
        if name in small:
            return _int8_array(name, values.astype(np.float64, copy=False))
        if values.dtype.kind == "f":
            return _float_array(np.ascontiguousarray(values, dtype=np.float64))
        if values.dtype.kind in "iub":
            return pa.array(np.ascontiguousarray(values))
        if values.dtype.kind == "U":  # Arrow converts numpy's UTF-32 itself
            return pa.array(values, type=pa.string())
        return pa.array(values.astype(str).astype(object), type=pa.string())

    with executor(threads) as pool:
        arrays = list(pool.map(convert, columns.items()))
    return pa.table(dict(zip(map(str, columns), arrays, strict=True)))


def _float_array(values: np.ndarray) -> pa.Array:
    """float64 values as an Arrow array sharing their memory, NaN as null.  A column without NaN
    (its sum is not NaN: any NaN would make it so) needs no validity scan; otherwise Arrow's
    pandas conversion marks the NaN (the same array either way: no nulls, or nulls at the NaN)."""
    if not np.isnan(np.add.reduce(values)):
        return pa.array(values)
    return pa.array(values, from_pandas=True)


def _int8_array(name: str, values: np.ndarray) -> pa.Array:
    """Floats holding only whole numbers in [-127, 127] and NaN (decisions) as int8, NaN as null."""
    missing = np.isnan(values)
    whole = np.where(missing, 0.0, values)
    if np.any(whole != np.round(whole)) or np.any(np.abs(whole) > 127):
        raise ValueError(f"column {name!r} does not hold int8 values")
    return pa.array(whole.astype(np.int8), mask=missing)


def write_tsv(table: pd.DataFrame, path, index: bool = False, threads: int = 1) -> None:
    """Write a table as TSV (gzip when the name ends in .gz), atomically.

    Floats are written in their shortest round-trip form (they read back bit-equal), missing values
    as ``NA``; gzip output is deterministic (no timestamp), so equal tables give equal bytes.
    Gzip files are a series of gzip members (one per block of rows, as ``cat a.gz b.gz``; gzip,
    zcat, pandas, R and arrow read them as one file), formatted and compressed by ``threads``
    threads; the bytes are the same for any number of threads.
    """
    write_arrow_tsv(arrow_table(table, index=index), path, threads=threads)


def write_arrow_tsv(arrow: pa.Table, path, threads: int = 1) -> None:
    """:func:`write_tsv` of an Arrow table."""
    options = pacsv.WriteOptions(
        delimiter="\t", quoting_style="none", quoting_header="none", null_string="NA"
    )
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with open(tmp, "wb") as raw:
                for member in _gzip_members(arrow, options, threads):
                    raw.write(member)
        else:
            pacsv.write_csv(arrow, str(tmp), options)


#: rows per Parquet row group of a results table (readers can take a range of row groups)
PARQUET_ROW_GROUP = 131072


def write_parquet(table: pd.DataFrame | pa.Table, path, int8_columns=(), threads: int = 1) -> None:
    """Write a table as Parquet, atomically: the columns typed as :func:`arrow_table` types them
    (float64 with missing values as nulls, integers, strings, ``int8_columns`` as int8 with nulls),
    snappy-compressed (3x faster to write than zstd; results' floats hardly compress either way),
    row groups of :data:`PARQUET_ROW_GROUP` rows, no pandas index (``threads``: for
    :func:`arrow_table`'s conversion; the bytes do not depend on it).  pandas
    (``pd.read_parquet``; an int8 column with nulls reads as float64 with NaN), R
    (``arrow::read_parquet``: integer with NA) and polars read it with the same column names.
    An Arrow table (:func:`arrow_columns`, typed already) is written as it is."""
    if isinstance(table, pa.Table):
        arrow = table
    else:
        arrow = arrow_table(table, int8_columns=int8_columns, threads=threads)
    with atomic_path(path) as tmp:
        pq.write_table(
            arrow,
            str(tmp),
            compression="snappy",
            row_group_size=PARQUET_ROW_GROUP,
            use_dictionary=False,
            write_statistics=False,
        )


def parquet_to_tsv(parquet_path, tsv_path, threads: int = 1) -> int:
    """Write a Parquet table (:func:`write_parquet`) as TSV with :func:`write_tsv`'s format; the
    bytes equal those :func:`write_tsv` writes from the same DataFrame. Returns the row count."""
    arrow = pq.read_table(str(parquet_path), pre_buffer=False)
    write_arrow_tsv(arrow, tsv_path, threads=threads)
    return arrow.num_rows


def read_table(path, columns=None) -> pd.DataFrame:
    """A Parquet table written by :func:`write_parquet` (results.parquet), optionally only some
    ``columns``: without pre-buffering the whole file (it doubled the peak) and converted to pandas
    column by column, releasing each Arrow buffer once converted."""
    table = pq.read_table(
        str(path), columns=None if columns is None else list(columns), pre_buffer=False
    )
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _gzip_members(arrow: pa.Table, options, threads: int):
    """The gzipped TSV of ``arrow`` as gzip members of GZIP_BLOCK_CELLS cells each, in order."""
    rows = max(1, GZIP_BLOCK_CELLS // max(arrow.num_columns, 1))
    no_header = pacsv.WriteOptions(
        include_header=False,
        delimiter=options.delimiter,
        quoting_style=options.quoting_style,
        null_string=options.null_string,
    )

    def member(start: int) -> bytes:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(arrow.slice(start, rows), sink, options if start == 0 else no_header)
        return gzip.compress(sink.getvalue().to_pybytes(), compresslevel=GZIP_LEVEL, mtime=0)

    starts = range(0, max(arrow.num_rows, 1), rows)
    if threads <= 1 or len(starts) == 1:
        yield from map(member, starts)
        return
    # arrow's formatting and zlib release the GIL; at most 2 blocks per thread in flight
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = deque()
        for start in starts:
            pending.append(pool.submit(member, start))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
