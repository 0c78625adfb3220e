"""Reading a features x samples matrix file in blocks (any format), with its checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stacklm.io.blocks import rows_not_finite, rows_per_block
from stacklm.io.formats import MatrixBlock, MatrixInputError, _text_compression, matrix_format
from stacklm.io.parquet import _parquet_batches, _parquet_file, _parquet_layout
from stacklm.io.text import (
    _check_header,
    _check_unique_samples,
    _first_row_with,
    _lines_of_data_rows,
    _read_text_header,
    _text_batches,
    _where,
)

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


#: values per block when read_matrix_blocks chooses the rows (64 MB of float64)
READ_BLOCK_VALUES = 1 << 23


def read_matrix_blocks(
    path, fmt: str | None = None, block_rows: int | None = None, buffers: int = 0
) -> Iterator[MatrixBlock]:
    """Stream a matrix file as :class:`MatrixBlock` s of ``block_rows`` features (the last may be
    shorter; default: :data:`READ_BLOCK_VALUES` values, at least 1,000 rows), checking every block:
    numbers or missing only, no +/-Inf, non-empty unique feature ids (also across blocks), at least
    one data row.  Memory use is about one block plus arrow's buffer.

    ``buffers`` >= 2: the blocks' values are filled into a ring of that many arrays, so a block's
    array is overwritten ``buffers - 1`` blocks later (the caller must be done with it by then;
    e.g. with 2, while block k + 1 is read, block k may still be in use but block k - 1 not).
    Fresh 64 MB arrays for every block cost their page faults again (a third of normalize's time
    at 850,000 x 400); 0 (default): every block gets its own array."""
    if block_rows is not None and block_rows < 1:
        raise ValueError("block_rows must be >= 1")
    if buffers == 1 or buffers < 0:
        raise ValueError("buffers must be 0 (a new array per block) or at least 2")
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
    if block_rows is None:
        block_rows = rows_per_block(n_samples, READ_BLOCK_VALUES, minimum=1000)
    block_ids = block_values = None
    filled = 0
    block_first = 0
    ring: list[np.ndarray] = []
    n_blocks = 0
    for ids, columns, first_row in source():
        b, done = len(ids), 0
        while done < b:
            if block_values is None:
                # np.empty maps untouched pages lazily: a large block_rows costs only what is filled
                block_ids = np.empty(block_rows, dtype=object)
                if buffers and len(ring) == buffers:
                    block_values = ring[n_blocks % buffers]
                else:
                    block_values = np.empty((block_rows, n_samples), dtype=np.float64)
                    if buffers:
                        ring.append(block_values)
                n_blocks += 1
                filled = 0
            take = min(b - done, block_rows - filled)
            block_ids[filled : filled + take] = ids[done : done + take]
            target = block_values[filled : filled + take]
            _fill_rows(target, columns, done)
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


#: values per piece of :func:`_fill_rows`' transposition (4 MB: 1.3-2x faster than 1 MB pieces
#: at 100-1,000 samples, as fewer pieces mean fewer column slices), at least FILL_MIN_ROWS rows
FILL_CELLS = 1 << 19
FILL_MIN_ROWS = 512


def _fill_rows(target: np.ndarray, columns, start: int) -> None:
    """``target[:, j] = columns[j][start : start + len(target)]`` for every column j, through a
    small column-major buffer transposed into ``target`` piece by piece: writing each column
    straight into the row-major block strides over all of it per column (3x slower at 100
    samples)."""
    rows, n = target.shape
    step = max(FILL_MIN_ROWS, FILL_CELLS // max(n, 1))
    buffer = np.empty((n, min(step, rows)))
    for a in range(0, rows, step):
        b = min(rows, a + step)
        piece = buffer[:, : b - a]
        for j, column in enumerate(columns):
            piece[j] = column[start + a : start + b]
        target[a:b] = piece.T


def _check_piece(path, fmt, compression, header, ids, values, first_row, seen, source):
    empty = np.flatnonzero(ids == "")
    if empty.size:
        (where,) = _where(path, fmt, compression, [first_row + int(empty[0])])
        raise MatrixInputError(
            f"{path}: {where}, column 1 ({header[0]!r}): empty feature id; every feature needs an id"
        )
    found = _first_infinite(values)
    if found is not None:
        r, c = found
        (where,) = _where(path, fmt, compression, [first_row + int(r)])
        text = str(values[r, c])
        if fmt != "parquet":
            found = _lines_of_data_rows(path, fmt, compression, [first_row + int(r)])
            text = next(iter(found.values()))[1][c + 1] if found else text
        raise MatrixInputError(
            f"{path}: {where}, column {c + 2} ({header[c + 1]!r}): value {text[:60]!r} is "
            f"infinite (feature {str(ids[r])[:60]!r}); use NA for a value that is missing or undefined (e.g. log of 0: add an "
            "offset before the log or give the untransformed values)"
        )
    if seen is None:  # the caller checks the ids' uniqueness over the whole file itself
        return
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


def _first_infinite(values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first infinite value in row-major order, or None: cell by cell only
    in the rows :func:`stacklm.io.blocks.rows_not_finite` gives."""
    if values.size == 0:
        return None
    rows = rows_not_finite(values)
    if isinstance(rows, np.ndarray) and rows.size == 0:
        return None
    infinite = np.isinf(values[rows])
    if not infinite.any():
        return None
    r, c = np.argwhere(infinite)[0]
    return (int(r) if isinstance(rows, slice) else int(rows[r])), int(c)


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
