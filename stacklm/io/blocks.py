"""Row blocks of a features x samples matrix: how many rows hold about a given number of values,
and the consecutive row slices of that size.  Every row-blocked pass (reading, fitting,
element-wise statistics) sizes its blocks with these, so memory stays bounded by a block."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


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


def rows_not_finite(values: np.ndarray) -> np.ndarray | slice:
    """The rows of a 2-D block that may hold a NaN or an infinite value, from one pass of row
    sums: the rows whose sum is not finite (a NaN, an infinite value, or an overflowing sum), as
    indices; ``slice(None)`` (every row) when they are more than 1/8 of the rows, where one pass
    over all cells costs less than picking them.  Checks that look cell by cell (missing counts,
    infinite values) only need to look at these rows."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, an overflowing sum
        rows = np.flatnonzero(~np.isfinite(values.sum(axis=1)))
    return slice(None) if rows.size > len(values) // 8 else rows
