"""Read counts as input values: the check of every block of the matrix while it is read (the
normalize step stores counts as they are; voom / edgeR's log-CPM are taken per analysis)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stacklm.io.formats import MatrixInputError, _text_compression, matrix_format
from stacklm.io.text import _where

#: values may differ from a whole number by this much (and are then rounded to it)
COUNT_TOLERANCE = 1e-6


def check_count_block(
    values: np.ndarray, feature_ids, samples: Sequence[str], path, fmt: str | None, first_row: int
) -> np.ndarray:
    """A block of the input matrix as counts: non-negative whole numbers (within
    :data:`COUNT_TOLERANCE`, then rounded), finite and not missing.  Otherwise a
    :class:`~stacklm.io.formats.MatrixInputError` naming the file, line, column, sample and feature
    of the first bad value and how many there are.  ``first_row``: the block's first data row
    (0-based)."""
    x = np.asarray(values, dtype=np.float64)
    rounded = np.round(x)
    with np.errstate(invalid="ignore"):
        missing = ~np.isfinite(x)
        negative = x < 0
        fractional = np.abs(x - rounded) > COUNT_TOLERANCE
    bad = missing | negative | fractional
    if not bad.any():
        return rounded
    r, c = np.argwhere(bad)[0]
    value = x[r, c]
    if missing[r, c]:
        what = "missing (NA) or not finite"
    elif negative[r, c]:
        what = f"negative ({value:g})"
    else:
        what = f"not a whole number ({value:.10g})"
    path_obj = Path(path)
    fmt = matrix_format(path_obj, fmt)
    compression = None if fmt == "parquet" else _text_compression(path_obj)
    (where,) = _where(path_obj, fmt, compression, [first_row + int(r)])
    n_bad = int(bad.sum())
    raise MatrixInputError(
        f"{path}: {where}, column {c + 2} ({samples[c]!r}): the count of feature "
        f"{str(feature_ids[r])!r} is {what}; input_scale: counts needs non-negative whole numbers "
        f"(read counts) in every cell ({n_bad} bad value(s) in this block of {x.shape[0]} rows): "
        "give the raw counts (featureCounts, or tximport's counts rounded), or set input_scale: "
        "expression for values that are not counts"
    )
