"""A piece of R arithmetic the edgeR ports need bit for bit (R's sums and means are in
:mod:`stacklm.rstats.sums`).

* :func:`log2_libm`: ``log2`` as R computes it (the C library's ``log2``).  numpy's ``log2`` uses
  its own SIMD kernels on some CPUs (AVX-512), which differ from the C library in the last bit for
  about 1 value in 4,000.  Usually harmless, but edgeR's TMM trims by ranks and orders of log
  ratios, where a last-bit difference can create or break a tie (rank averaging) between values
  computed from different counts.  So values whose numpy logarithm lies within a few ulps of a
  neighbouring distinct value's are recomputed with :func:`math.log2` (the C library), which makes
  the tie structure (and so the trimming) the one R sees on the same platform.
* :func:`log2_libm_rows`: the same for each row of a 2-D block independently (edgeR's per-sample
  vectors as the rows of a samples x features block), optionally with the sort order it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: values whose numpy log2 lies within this many ulps of a neighbour's are recomputed exactly
_NEAR_TIE_ULPS = 4


#: an upper bound of any ``_NEAR_TIE_ULPS`` ulps of a finite log2 of a double (|log2| < 1075, so an
#: ulp is at most 2^-42): pairs farther apart than this are not near ties (a cheap first filter)
_NEAR_TIE_BOUND = 1e-9


@dataclass
class RowLogs:
    """:func:`log2_libm_rows`' result: ``values`` (the logarithms, shape of the input);
    ``n_finite`` (per row, how many are finite); ``sorted`` (each row's logarithms in the order
    of increasing input, the non-finite ones last as ``+inf``); with ``order``, ``order`` (the
    positions in that order)."""

    values: np.ndarray
    n_finite: np.ndarray
    sorted: np.ndarray
    order: np.ndarray | None = None


def _c_log2(x: np.ndarray) -> np.ndarray:
    """The C library's log2 (R's) of each value, one call per distinct value."""
    if x.size and np.all(x == x[0]):
        return np.full(x.size, math.log2(float(x[0])))
    values, inverse = np.unique(x, return_inverse=True)
    return np.array(list(map(math.log2, values.tolist())))[inverse]


def _recompute_near_ties(xs, ls, out, order, near, n_finite: int) -> None:
    """One row's fix: every copy of a value involved in a near tie (sorted values ``near`` and
    ``near + 1``) gets the C library's log2, in ``ls`` (sorted order) and ``out`` (positions
    ``order``), since the same input must give the same output everywhere.  The copies of a value
    are a run of the sorted row (found by bisection)."""
    vals = np.unique(np.concatenate([xs[near], xs[near + 1]]))
    head = xs[:n_finite]
    lo = np.searchsorted(head, vals, "left")
    count = np.searchsorted(head, vals, "right") - lo
    total = int(count.sum())
    pos = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(total)
    exact = _c_log2(vals)
    ls[pos] = np.repeat(exact, count)
    out[order[pos]] = ls[pos]


def log2_libm_rows(x, order: bool = False) -> RowLogs:
    """:func:`log2_libm` of each row of the 2-D ``x`` on its own (neighbours within the row).

    Row ``r`` of the result equals ``log2_libm(x[r])`` bit for bit.  Inputs whose logarithm is not
    finite (zero, negative, infinite, NaN) are sorted last as ``+inf``, so the finite ones keep
    their order.  The rows are sorted by value (``order``: by an argsort, whose positions are
    returned; use it when near ties are common, since a row with near ties needs the positions to
    put the recomputed values back, and a value sort then costs a second sort)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("log2_libm_rows needs a 2-D array")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(x)
    valid = np.isfinite(out)
    key = np.where(valid, x, np.inf)
    if order:
        idx = np.argsort(key, axis=1)
        xs = np.take_along_axis(key, idx, axis=1)
    else:
        idx = None
        xs = np.sort(key, axis=1)
    # the finite values sort first (the others are +inf keys)
    n_finite = np.count_nonzero(valid, axis=1).astype(np.int64)
    m = x.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.log2(xs)  # numpy's log2 of a value does not depend on where it sits
        if m >= 2:
            gap = np.subtract(ls[:, 1:], ls[:, :-1])
            np.abs(gap, out=gap)  # NaN or inf next to a non-finite value
            cand = gap <= _NEAR_TIE_BOUND
            cand &= xs[:, 1:] != xs[:, :-1]
            flat = np.flatnonzero(cand)
            bounds = np.searchsorted(flat, np.arange(x.shape[0] + 1) * (m - 1))
            for r in np.flatnonzero(np.diff(bounds)).tolist():  # the rows with candidates
                k = flat[bounds[r] : bounds[r + 1]] - r * (m - 1)
                l0, l1 = ls[r, k], ls[r, k + 1]
                ulp = np.spacing(np.maximum(np.abs(l1), np.abs(l0)))
                near = k[gap[r, k] <= _NEAR_TIE_ULPS * ulp]
                if near.size:
                    row_order = idx[r] if order else np.argsort(key[r])
                    _recompute_near_ties(xs[r], ls[r], out[r], row_order, near, n_finite[r])
    return RowLogs(values=out, n_finite=n_finite, sorted=ls, order=idx)


def log2_libm(x) -> np.ndarray:
    """``log2(x)`` elementwise, equal to the C library's ``log2`` wherever ties could depend on it.

    Non-positive values give ``-inf`` / NaN as in R.  The bulk is numpy's ``log2``; values whose
    result is within ``_NEAR_TIE_ULPS`` ulps of the result of a different neighbouring input (in
    sorted order, over all of ``x``) are recomputed one by one with :func:`math.log2` (a handful
    per sample).  :func:`log2_libm_rows` does this for each row of a block separately.
    """
    x = np.asarray(x, dtype=np.float64)
    return log2_libm_rows(x.reshape(1, -1)).values.reshape(x.shape)
