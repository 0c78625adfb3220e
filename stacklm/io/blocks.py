"""Row blocks of a features x samples matrix: how many rows hold about a given number of values,
and the consecutive row slices of that size.  Every row-blocked pass (reading, fitting,
element-wise statistics) sizes its blocks with these, so memory stays bounded by a block."""

from __future__ import annotations

from collections.abc import Iterator


def rows_per_block(width: int, values: int, minimum: int = 1) -> int:
    """Rows per block so that a block of rows ``width`` values wide holds about ``values`` values
    (at least ``minimum`` rows)."""
    return max(minimum, values // max(width, 1))


def row_blocks(n_rows: int, width: int, values: int, minimum: int = 1) -> Iterator[slice]:
    """Consecutive slices over ``n_rows`` rows of :func:`rows_per_block` rows each (the last one
    shorter)."""
    step = rows_per_block(width, values, minimum)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
