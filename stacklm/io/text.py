"""Text matrices (TSV/CSV, gzipped or not): header checks, arrow batches, and the slow scanner
that gives precise error locations (line, column, feature id)."""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from stacklm.io.formats import (
    _DELIMITERS,
    _NUMBER,
    MISSING_VALUES,
    MatrixInputError,
    _open_text_binary,
)

# --------------------------------------------------------------------------------------------------
# text matrices: header, slow-path scanner for precise error locations

#: bytes of (decompressed) text arrow parses per internal batch
ARROW_BLOCK_BYTES = 1 << 20


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
                f"value {cell[:60]!r} is not a number (feature {fields[0][:60]!r}); sample "
                "columns must hold numbers, with "
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
