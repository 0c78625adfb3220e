"""Reading feature x sample matrices (TSV/CSV, optionally gzipped, or Parquet) in row blocks, and a
memory-mappable binary store for normalized matrices.

Text matrices are read with pyarrow's streaming CSV reader with explicit column types (feature id as
string, every sample column as float64).  Arrow parses decimal text exactly (correctly rounded), so
values written with 17 significant digits read back bit-equal.  ``NA``, ``NaN``, ``nan`` and empty
cells are missing (NaN).  Problems are reported as :class:`MatrixInputError` naming the file, the line
(1-based, physical line in the decompressed text), the column and the fix.  Arrow does not report line
numbers, so when it rejects a row the file is re-scanned in Python to locate the problem (error path
only).

Binary store (a directory, written atomically)::

    meta.json     {"format": "stacklm-binary-matrix", "version": 1, "dtype": "<f8",
                   "n_features": G, "n_samples": n, "order": "C"}
    values.f64    G x n float64, little endian, row-major (feature rows are contiguous)
                  (values.f32 and dtype "<f4" when written with dtype="float32": half the bytes)
    features.txt  one feature id per line (G lines)
    samples.txt   one sample name per line (n lines)

``open_binary_matrix`` memory-maps the values read-only, so a fit job touching rows
``start:stop`` only reads those pages; :meth:`BinaryMatrix.rows` returns them as float64, so all
computation is in float64 whatever the storage.  There is no R counterpart to this module.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: cell spellings read as missing values in text matrices
MISSING_VALUES = ("NA", "NaN", "nan", "")

#: bytes of (decompressed) text arrow parses per internal batch
ARROW_BLOCK_BYTES = 1 << 20

STORE_FORMAT = "stacklm-binary-matrix"
STORE_VERSION = 1
#: storage precision -> (numpy dtype in meta.json, values file name)
STORE_DTYPES = {"float64": ("<f8", "values.f64"), "float32": ("<f4", "values.f32")}

_TEXT_EXTENSIONS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv"}
_PARQUET_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet"}
_DELIMITERS = {"tsv": "\t", "csv": ","}
_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"PAR1", "parquet"),
]
_NUMBER = re.compile(
    r"[ \t]*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)[ \t]*\Z", re.IGNORECASE
)


class MatrixInputError(ValueError):
    """A matrix file that cannot be used; the message names the file, line/row, column and the fix."""


@dataclass
class MatrixBlock:
    """A block of consecutive feature rows of a matrix file."""

    feature_ids: np.ndarray  # object array of str, length b
    values: np.ndarray  # float64, b x n, NaN = missing
    first_row: int  # 0-based index of the block's first feature in the file


# --------------------------------------------------------------------------------------------------
# format and compression


def matrix_format(path, fmt: str | None = None) -> str:
    """``"tsv"``, ``"csv"`` or ``"parquet"``: ``fmt`` if given, else from the file name
    (``.tsv``/``.txt``/``.csv`` with optional ``.gz``; ``.parquet``/``.pq``)."""
    if fmt is not None:
        fmt = str(fmt).lower()
        if fmt not in ("tsv", "csv", "parquet"):
            raise MatrixInputError(
                f"{path}: unknown matrix format {fmt!r}; use 'tsv', 'csv' or 'parquet'"
            )
        return fmt
    name = Path(path).name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if suffix in _TEXT_EXTENSIONS:
        return _TEXT_EXTENSIONS[suffix]
    if suffix in _PARQUET_EXTENSIONS and not name.endswith(".gz"):
        return "parquet"
    raise MatrixInputError(
        f"{path}: cannot tell the matrix format from the file name; name it .tsv, .txt, .csv "
        "(optionally .gz), .parquet or .pq, or give the format explicitly (tsv, csv or parquet)"
    )


def _magic_kind(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise MatrixInputError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise MatrixInputError(f"{path}: is a directory, not a matrix file") from None
    except OSError as exc:
        raise MatrixInputError(f"{path}: cannot be read ({exc}); check permissions") from None
    if not head:
        raise MatrixInputError(
            f"{path}: the file is empty; it needs a header line and one row per feature"
        )
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _text_compression(path: Path) -> str | None:
    """``"gzip"`` or ``None`` for a text matrix, checking the name against the file's magic bytes."""
    kind = _magic_kind(path)
    named_gz = path.name.lower().endswith(".gz")
    if kind == "gzip":
        if not named_gz:
            raise MatrixInputError(
                f"{path}: the file is gzip-compressed but its name does not end in .gz; "
                f"rename it to {path.name}.gz"
            )
        return "gzip"
    if named_gz:
        found = f"{kind}-compressed" if kind else "not compressed"
        raise MatrixInputError(
            f"{path}: the name ends in .gz but the file is {found}; "
            "drop the .gz from the name or compress the file with gzip"
        )
    if kind == "parquet":
        raise MatrixInputError(
            f"{path}: this is a Parquet file; name it .parquet (or give format 'parquet')"
        )
    if kind is not None:
        raise MatrixInputError(
            f"{path}: the file is {kind}-compressed; only gzip is supported: decompress it "
            "and gzip it (name ending .gz) or leave it uncompressed"
        )
    return None


def _open_text_binary(path: Path, compression: str | None):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")


# --------------------------------------------------------------------------------------------------
# text matrices: header, slow-path scanner for precise error locations


def _decoded_lines(path: Path, compression: str | None) -> Iterator[str]:
    """Decoded physical lines (with their line ends); a decoding error names the line."""
    try:
        with _open_text_binary(path, compression) as fh:
            for line_no, raw in enumerate(fh, start=1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise MatrixInputError(
                        f"{path}: line {line_no} is not valid UTF-8 text; save the file as UTF-8"
                    ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise MatrixInputError(
            f"{path}: cannot be decompressed/read ({exc}); the file is probably truncated or "
            "corrupt: re-create or re-download it"
        ) from None


def _text_rows(path: Path, fmt: str, compression: str | None) -> Iterator[tuple[int, list[str]]]:
    """(first physical line number, fields) of every non-empty row, header included, parsed as arrow
    does (quote ``"``, doubled quotes, empty lines skipped)."""
    lines = _decoded_lines(path, compression)
    reader = csv.reader(lines, delimiter=_DELIMITERS[fmt], quotechar='"', doublequote=True)
    last = 0
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            if fields:
                yield start, fields
    except csv.Error as exc:
        raise MatrixInputError(
            f"{path}: line {last + 1}: cannot be parsed ({exc}); check the quoting"
        ) from None


def _read_text_header(path: Path, fmt: str, compression: str | None) -> list[str]:
    rows = _text_rows(path, fmt, compression)
    try:
        _, header = next(rows)
    except StopIteration:
        raise MatrixInputError(
            f"{path}: the file has no header line; the first line must name the feature id "
            "column and then one column per sample"
        ) from None
    finally:
        rows.close()
    return header


def _check_header(path: Path, fmt: str, header: list[str]) -> tuple[str, list[str]]:
    if len(header) < 2:
        other = "csv" if fmt == "tsv" else "tsv"
        hint = (
            f"; the header has a single field {header[0][:60]!r}: is the file {other.upper()} "
            f"(name it .{other} or give format '{other}')?"
            if header
            else ""
        )
        raise MatrixInputError(
            f"{path}: line 1: no sample columns; the header must name the feature id column "
            f"and then one column per sample{hint}"
        )
    id_name, samples = header[0], header[1:]
    for j, name in enumerate(samples):
        if name == "":
            raise MatrixInputError(
                f"{path}: line 1, column {j + 2}: empty sample name; every sample column "
                "needs a name in the header"
            )
    _check_unique_samples(path, id_name, samples, "line 1")
    return id_name, samples


def _check_unique_samples(path, id_name: str, samples: Sequence[str], where: str) -> None:
    seen: dict[str, int] = {}
    for j, name in enumerate(samples):
        if name in seen:
            raise MatrixInputError(
                f"{path}: {where}: sample column {name!r} appears twice (columns "
                f"{seen[name] + 2} and {j + 2}); every sample column needs a unique name"
            )
        seen[name] = j
    if id_name in seen:
        raise MatrixInputError(
            f"{path}: {where}: the feature id column name {id_name!r} is also used as a "
            "sample column; rename one of them"
        )


def _diagnose_text(
    path: Path,
    fmt: str,
    compression: str | None,
    header: list[str],
    bad_column: int | None = None,
    bad_value: str | None = None,
) -> MatrixInputError | None:
    """Find the first row arrow rejects: wrong field count, empty id or a non-numeric cell."""
    n_fields = len(header)
    rows = _text_rows(path, fmt, compression)
    next(rows)  # header
    missing = set(MISSING_VALUES)
    for data_row, (line, fields) in enumerate(rows, start=1):
        if len(fields) != n_fields:
            hint = ""
            if data_row == 1 and len(fields) == n_fields + 1:
                hint = (
                    "; the header seems to lack a name for the feature id column (R's "
                    "write.table(row.names=TRUE) writes it so): add one, e.g. 'feature_id', "
                    "at the start of the header"
                )
            return MatrixInputError(
                f"{path}: line {line} (data row {data_row}): {len(fields)} fields but the header "
                f"has {n_fields}; every row needs the feature id and one value per sample{hint}"
            )
        cells = range(1, n_fields) if bad_column is None else (bad_column,)
        for j in cells:
            cell = fields[j]
            if bad_value is not None and cell != bad_value:
                continue
            if cell in missing or _NUMBER.match(cell):
                continue
            hint = ""
            if re.fullmatch(r"[+-]?\d*,\d+", cell):
                hint = "; write decimals with a point, not a comma"
            return MatrixInputError(
                f"{path}: line {line} (data row {data_row}), column {j + 1} ({header[j]!r}): "
                f"value {cell[:60]!r} is not a number; sample columns must hold numbers, with "
                f"missing values written as NA, NaN, nan or an empty cell{hint}"
            )
    return None


def _lines_of_data_rows(path: Path, fmt: str, compression: str | None, wanted: Iterable[int]):
    """{0-based data row: (physical line number, fields)} for the wanted rows."""
    wanted = set(wanted)
    found: dict[int, tuple[int, list[str]]] = {}
    rows = _text_rows(path, fmt, compression)
    next(rows)
    for k, (line, fields) in enumerate(rows):
        if k in wanted:
            found[k] = (line, fields)
            if len(found) == len(wanted):
                break
    rows.close()
    return found


def _where(path, fmt, compression, rows: Sequence[int]) -> list[str]:
    """'line L (data row r)' for text, 'row r' for parquet (r 1-based)."""
    if fmt == "parquet":
        return [f"row {r + 1}" for r in rows]
    lines = _lines_of_data_rows(path, fmt, compression, rows)
    return [f"line {lines[r][0] if r in lines else '?'} (data row {r + 1})" for r in rows]


def _first_row_with(path, feature_id: str, source) -> int:
    """0-based data row where ``feature_id`` first appears (error path: re-reads the ids)."""
    for ids, first_row in source:
        hit = np.flatnonzero(ids == feature_id)
        if hit.size:
            return first_row + int(hit[0])
    return -1


# --------------------------------------------------------------------------------------------------
# batch sources: yield (feature_ids, values, first_row) pieces in file order


def _text_batches(path: Path, fmt: str, compression, header: list[str]):
    n_fields = len(header)
    names = [f"c{j}" for j in range(n_fields)]
    types = {name: pa.float64() for name in names[1:]}
    types[names[0]] = pa.string()

    def diagnose(exc: Exception):
        message = str(exc)
        col = val = None
        m = re.search(r"In CSV column #(\d+): .*invalid value '(.*)'\Z", message, re.DOTALL)
        if m:
            col, val = int(m.group(1)), m.group(2)
        found = _diagnose_text(path, fmt, compression, header, col, val)
        if found is None and m:
            found = _diagnose_text(path, fmt, compression, header)
        if found is None:
            if "Could not skip initial" in message:
                found = MatrixInputError(
                    f"{path}: the matrix has no data rows (only a header); add one row per feature"
                )
            elif "UTF8" in message or "utf8" in message.lower():
                found = MatrixInputError(
                    f"{path}: feature ids are not valid UTF-8 text; save the file as UTF-8"
                )
            else:
                found = MatrixInputError(
                    f"{path}: cannot be read as a {fmt.upper()} matrix ({message}); the file may "
                    "be truncated or corrupt"
                )
        return found

    stream = None
    try:
        stream = pa.input_stream(str(path), compression=compression)
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=ARROW_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(delimiter=_DELIMITERS[fmt]),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=list(MISSING_VALUES),
                strings_can_be_null=False,
                quoted_strings_can_be_null=True,
            ),
        )
        first_row = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            b = batch.num_rows
            if b == 0:
                continue
            ids = batch.column(0).to_numpy(zero_copy_only=False).astype(object)
            columns = [batch.column(j).to_numpy(zero_copy_only=False) for j in range(1, n_fields)]
            del batch
            yield ids, columns, first_row
            first_row += b
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, EOFError) as exc:
        if isinstance(exc, MatrixInputError):
            raise
        raise diagnose(exc) from None
    finally:
        if stream is not None:
            stream.close()


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


def _parquet_batches(path: Path, pf: pq.ParquetFile, id_col: int, sample_cols: list[int], rows):
    first_row = 0
    try:
        for batch in pf.iter_batches(batch_size=rows, use_pandas_metadata=False):
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


# --------------------------------------------------------------------------------------------------
# public reading API


def read_matrix_header(path, fmt: str | None = None) -> tuple[str, list[str]]:
    """(feature id column name, sample names) of a matrix file, validated (unique, non-empty)."""
    path = Path(path)
    fmt = matrix_format(path, fmt)
    if fmt == "parquet":
        pf = _parquet_file(path)
        id_col, sample_cols = _parquet_layout(path, pf)
        names = pf.schema_arrow.names
        samples = [names[j] for j in sample_cols]
        _check_unique_samples(path, names[id_col], samples, "schema")
        return names[id_col], samples
    compression = _text_compression(path)
    return _check_header(path, fmt, _read_text_header(path, fmt, compression))


def read_matrix_blocks(
    path, fmt: str | None = None, block_rows: int = 100_000
) -> Iterator[MatrixBlock]:
    """Stream a matrix file as :class:`MatrixBlock` s of ``block_rows`` features (the last may be
    shorter), checking every block: numbers or missing only, no +/-Inf, non-empty unique feature ids
    (also across blocks), at least one data row.  Memory use is about one block plus arrow's buffer."""
    if block_rows < 1:
        raise ValueError("block_rows must be >= 1")
    path = Path(path)
    fmt = matrix_format(path, fmt)
    if fmt == "parquet":
        pf = _parquet_file(path)
        id_col, sample_cols = _parquet_layout(path, pf)
        names = pf.schema_arrow.names
        header = [names[id_col]] + [names[j] for j in sample_cols]
        _check_unique_samples(path, header[0], header[1:], "schema")
        compression = None

        def source():
            return _parquet_batches(path, pf, id_col, sample_cols, block_rows)
    else:
        compression = _text_compression(path)
        header = _read_text_header(path, fmt, compression)
        _check_header(path, fmt, header)

        def source():
            return _text_batches(path, fmt, compression, header)

    n_samples = len(header) - 1
    seen: set[str] = set()
    block_ids = block_values = None
    filled = 0
    block_first = 0
    for ids, columns, first_row in source():
        b, done = len(ids), 0
        while done < b:
            if block_values is None:
                # np.empty maps untouched pages lazily: a large block_rows costs only what is filled
                block_ids = np.empty(block_rows, dtype=object)
                block_values = np.empty((block_rows, n_samples), dtype=np.float64)
                filled = 0
            take = min(b - done, block_rows - filled)
            block_ids[filled : filled + take] = ids[done : done + take]
            target = block_values[filled : filled + take]
            for j, column in enumerate(columns):
                target[:, j] = column[done : done + take]
            _check_piece(
                path,
                fmt,
                compression,
                header,
                ids[done : done + take],
                target,
                first_row + done,
                seen,
                source,
            )
            filled += take
            done += take
            if filled == block_rows:
                yield MatrixBlock(block_ids, block_values, block_first)
                block_first += block_rows
                block_ids = block_values = None
        del ids, columns
    if block_values is not None and filled:
        # copy the partial last block so the untouched rest of the buffer is released
        yield MatrixBlock(block_ids[:filled].copy(), block_values[:filled].copy(), block_first)
        block_first += filled
    if block_first == 0:
        raise MatrixInputError(
            f"{path}: the matrix has no data rows (only a header); add one row per feature"
        )


def _check_piece(path, fmt, compression, header, ids, values, first_row, seen, source):
    empty = np.flatnonzero(ids == "")
    if empty.size:
        (where,) = _where(path, fmt, compression, [first_row + int(empty[0])])
        raise MatrixInputError(
            f"{path}: {where}, column 1 ({header[0]!r}): empty feature id; every feature needs an id"
        )
    infinite = np.isinf(values)
    if infinite.any():
        r, c = np.argwhere(infinite)[0]
        (where,) = _where(path, fmt, compression, [first_row + int(r)])
        text = str(values[r, c])
        if fmt != "parquet":
            found = _lines_of_data_rows(path, fmt, compression, [first_row + int(r)])
            text = next(iter(found.values()))[1][c + 1] if found else text
        raise MatrixInputError(
            f"{path}: {where}, column {c + 2} ({header[c + 1]!r}): value {text[:60]!r} is "
            "infinite; use NA for a value that is missing or undefined (e.g. log of 0: add an "
            "offset before the log or give the untransformed values)"
        )
    ids_list = ids.tolist()
    piece = set(ids_list)
    if len(piece) < len(ids_list) or not seen.isdisjoint(piece):
        dup_at = _first_duplicate(ids_list, seen)
        dup_id = ids_list[dup_at]
        first_at = _first_row_with(path, dup_id, ((i, f) for i, _, f in source()))
        where = _where(path, fmt, compression, [first_at, first_row + dup_at])
        raise MatrixInputError(
            f"{path}: feature id {dup_id!r} appears twice ({where[0]} and {where[1]}); feature ids "
            "must be unique: remove or rename the duplicated rows (e.g. aggregate probes per gene "
            "beforehand)"
        )
    seen.update(piece)


def _first_duplicate(ids_list: list[str], seen: set[str]) -> int:
    local: set[str] = set()
    for k, fid in enumerate(ids_list):
        if fid in seen or fid in local:
            return k
        local.add(fid)
    raise AssertionError("no duplicate found")


def read_matrix(path, fmt: str | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The whole matrix: (feature_ids, sample names, values G x n float64 with NaN = missing).

    Peak memory is about twice the matrix (blocks, then their concatenation); stream with
    :func:`read_matrix_blocks` for large inputs."""
    _, samples = read_matrix_header(path, fmt)
    blocks = list(read_matrix_blocks(path, fmt))
    ids = np.concatenate([b.feature_ids for b in blocks])
    values = np.concatenate([b.values for b in blocks], axis=0)
    return ids, samples, values


# --------------------------------------------------------------------------------------------------
# binary store


def _check_names(kind: str, names: Sequence[str]) -> list[str]:
    out = [str(x) for x in names]
    for x in out:
        if "\n" in x or "\r" in x:
            raise ValueError(f"{kind} {x!r} contains a line break; it cannot be stored")
        if x == "":
            raise ValueError(f"empty {kind} name")
    if len(set(out)) != len(out):
        raise ValueError(f"duplicated {kind} names")
    return out


class BinaryMatrixWriter:
    """Write a binary matrix store (see module docstring) row block by row block.

    Everything goes to a temporary directory beside ``path``, renamed to ``path`` on :meth:`close`
    (replacing an existing store there).  Used as a context manager, an exception removes the
    temporary directory and leaves nothing behind.

    ``dtype`` is the storage precision, ``"float64"`` (exact) or ``"float32"`` (half the bytes;
    values are rounded to float32's 24-bit significand, ~6e-8 relative; a finite value outside
    float32's normal range, |x| > 3.4e38 or 0 < |x| < 1.2e-38, is an error)."""

    def __init__(self, path, samples: Sequence[str], dtype: str = "float64"):
        self.path = Path(path)
        self.samples = _check_names("sample", samples)
        if not self.samples:
            raise ValueError("a binary matrix needs at least one sample")
        if dtype not in STORE_DTYPES:
            raise ValueError(f"unknown store dtype {dtype!r}; use 'float64' or 'float32'")
        self.dtype = dtype
        self._numpy_dtype, values_name = STORE_DTYPES[dtype]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        self._values = open(self._tmp / values_name, "wb")
        self._features = open(self._tmp / "features.txt", "w", encoding="utf-8", newline="\n")
        self._seen: set[str] = set()
        self.n_features = 0
        self._closed = False

    def append(self, feature_ids, values) -> None:
        """Append rows (in order): ``values`` is b x n (n = number of samples)."""
        if self._closed:
            raise ValueError("BinaryMatrixWriter is closed")
        ids = _check_names("feature", list(np.asarray(feature_ids, dtype=object).ravel()))
        values = np.ascontiguousarray(values, dtype="<f8")
        if values.ndim != 2 or values.shape != (len(ids), len(self.samples)):
            raise ValueError(
                f"values must be {len(ids)} x {len(self.samples)} (features x samples), "
                f"got shape {values.shape}"
            )
        if not self._seen.isdisjoint(ids):
            dup = next(x for x in ids if x in self._seen)
            raise ValueError(f"feature id {dup!r} was already written")
        self._seen.update(ids)
        if self.dtype == "float32" and values.size:
            values = _to_float32(values)
        if values.size:
            self._values.write(memoryview(values).cast("B"))
        if ids:
            self._features.write("\n".join(ids) + "\n")
        self.n_features += len(ids)

    def close(self) -> None:
        """Finish the store: write metadata, flush to disk and move it into place."""
        if self._closed:
            return
        try:
            for fh in (self._values, self._features):
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
            (self._tmp / "samples.txt").write_text(
                "".join(s + "\n" for s in self.samples), encoding="utf-8"
            )
            meta = {
                "format": STORE_FORMAT,
                "version": STORE_VERSION,
                "dtype": self._numpy_dtype,
                "order": "C",
                "n_features": self.n_features,
                "n_samples": len(self.samples),
            }
            (self._tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            _replace_dir(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Discard everything written so far."""
        self._closed = True
        for fh in (self._values, self._features):
            try:
                fh.close()
            except OSError:
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BinaryMatrixWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _to_float32(values: np.ndarray) -> np.ndarray:
    """``values`` as little-endian float32, refusing finite values float32 cannot hold."""
    with np.errstate(over="ignore"):  # overflow is detected (and refused) just below
        out = values.astype("<f4")
    finite = np.isfinite(values)
    lost = finite & ~np.isfinite(out)
    tiny = finite & (values != 0) & (np.abs(values) < np.finfo(np.float32).tiny)
    bad = lost | tiny
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"value {values[r, c]!r} is outside float32's range (1.2e-38 .. 3.4e38 in absolute "
            "value); use precision: float64"
        )
    return out


def _replace_dir(tmp: Path, path: Path) -> None:
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink():
            contents = {p.name for p in path.iterdir()}
            if contents and "meta.json" not in contents:
                raise FileExistsError(
                    f"{path} exists and is not a stacklm binary matrix; remove it first"
                )
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, trash / "store")
            os.rename(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
            return
        raise FileExistsError(f"{path} exists and is not a directory; remove it first")
    os.rename(tmp, path)


@dataclass
class BinaryMatrix:
    """A binary matrix store opened read-only; ``values`` is a G x n memory map of the stored dtype
    (float64, or float32 for a float32 store): use :meth:`rows` or convert to float64."""

    path: Path
    feature_ids: np.ndarray | None  # None when opened with load_feature_ids=False
    samples: list[str]
    values: np.ndarray

    @property
    def n_features(self) -> int:
        return int(self.values.shape[0])

    def read_feature_ids(self, start: int, stop: int) -> np.ndarray:
        """Feature ids of rows ``start:stop`` (clipped as a slice), streamed from ``features.txt``:
        only those ids are held (for a store opened with ``load_feature_ids=False``)."""
        if self.feature_ids is not None:
            return self.feature_ids[start:stop]
        start, stop, _ = slice(start, stop).indices(self.n_features)
        with open(self.path / "features.txt", encoding="utf-8", newline="\n") as fh:
            ids = [line[:-1] for line in itertools.islice(fh, start, max(stop, start))]
        return np.array(ids, dtype=object)

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """A copy (in memory, writable, float64) of rows ``start:stop`` (clipped as a slice).

        Read from the file with one positioned read, not through the memory map, so the pages read
        do not stay resident in the process: a job that works through its rows block by block holds
        one block, however many rows it covers."""
        g, n = self.n_features, self.n_samples
        start, stop, _ = slice(start, stop).indices(g)
        count = max(stop - start, 0)
        filename = getattr(self.values, "filename", None)
        if filename is None or count == 0:
            return np.array(self.values[start:stop], dtype=np.float64, copy=True)
        dtype = self.values.dtype
        with open(filename, "rb") as fh:
            block = np.fromfile(fh, dtype=dtype, count=count * n, offset=start * n * dtype.itemsize)
        return block.reshape(count, n).astype(np.float64, copy=dtype != np.float64)


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            count += chunk.count(b"\n")
    return count


def open_binary_matrix(path, load_feature_ids: bool = True) -> BinaryMatrix:
    """Open a store written by :class:`BinaryMatrixWriter`; the values are memory-mapped read-only.

    ``load_feature_ids=False`` leaves ``feature_ids`` None (a job on a row range then reads only its
    ids with :meth:`BinaryMatrix.read_feature_ids`, and its memory does not grow with the store)."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError:
        raise MatrixInputError(f"{path}: not a stacklm binary matrix (no meta.json)") from None
    if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
        raise MatrixInputError(f"{path}: unknown binary matrix format {meta.get('format')!r}")
    g, n = int(meta["n_features"]), int(meta["n_samples"])
    dtype = meta.get("dtype", "<f8")
    names = {d: name for d, name in STORE_DTYPES.values()}
    if dtype not in names:
        raise MatrixInputError(f"{path}: unknown binary matrix dtype {dtype!r}")
    if load_feature_ids:
        features = (path / "features.txt").read_text(encoding="utf-8").split("\n")[:-1]
        n_ids = len(features)
    else:
        features, n_ids = None, _count_lines(path / "features.txt")
    samples = (path / "samples.txt").read_text(encoding="utf-8").split("\n")[:-1]
    values_path = path / names[dtype]
    try:
        size = values_path.stat().st_size
    except FileNotFoundError:
        size = None
    itemsize = np.dtype(dtype).itemsize
    if n_ids != g or len(samples) != n or size != itemsize * g * n:
        raise MatrixInputError(
            f"{path}: binary matrix is inconsistent (meta says {g} x {n}, found {n_ids} "
            f"features, {len(samples)} samples, {'no' if size is None else size} bytes of values); "
            "re-create it"
        )
    if g == 0:
        values = np.empty((0, n), dtype=dtype)
        values.flags.writeable = False
    else:
        values = np.memmap(values_path, dtype=dtype, mode="r", shape=(g, n), order="C")
    ids = None if features is None else np.array(features, dtype=object)
    return BinaryMatrix(path, ids, samples, values)


def write_binary_matrix(path, feature_ids, samples, values, dtype: str = "float64") -> None:
    """Write a whole G x n matrix as a binary store (atomically)."""
    with BinaryMatrixWriter(path, samples, dtype=dtype) as writer:
        writer.append(feature_ids, values)


def chunk_bounds(n_features: int, n_chunks: int) -> list[tuple[int, int]]:
    """Exactly ``n_chunks`` contiguous row ranges ``(start, stop)`` covering ``0..n_features``, sizes
    differing by at most one (the first ``n_features % n_chunks`` are one longer); ranges are empty
    when there are more chunks than features."""
    if n_chunks < 1:
        raise ValueError("n_chunks must be >= 1")
    if n_features < 0:
        raise ValueError("n_features must be >= 0")
    base, extra = divmod(n_features, n_chunks)
    bounds, start = [], 0
    for k in range(n_chunks):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


__all__ = [
    "BinaryMatrix",
    "BinaryMatrixWriter",
    "MatrixBlock",
    "MatrixInputError",
    "chunk_bounds",
    "matrix_format",
    "open_binary_matrix",
    "read_matrix",
    "read_matrix_blocks",
    "read_matrix_header",
    "write_binary_matrix",
]
