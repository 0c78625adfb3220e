"""A piece of R arithmetic the edgeR ports need bit for bit (R's sums and means are in
:mod:`stacklm.rstats.sums`).

* :func:`log2_libm`: ``log2`` as R computes it (the C library's ``log2``).  numpy's ``log2`` uses
  its own SIMD kernels on some CPUs (AVX-512), which differ from the C library in the last bit for
  about 1 value in 4,000.  Usually harmless, but edgeR's TMM trims by ranks and orders of log
  ratios, where a last-bit difference can create or break a tie (rank averaging) between values
  computed from different counts.  So values whose numpy logarithm lies within a few ulps of a
  neighbouring distinct value's are recomputed with :func:`math.log2` (the C library), which makes
  the tie structure (and so the trimming) the one R sees on the same platform.
"""

from __future__ import annotations

import math

import numpy as np

#: values whose numpy log2 lies within this many ulps of a neighbour's are recomputed exactly
_NEAR_TIE_ULPS = 4


def log2_libm(x) -> np.ndarray:
    """``log2(x)`` elementwise, equal to the C library's ``log2`` wherever ties could depend on it.

    Non-positive values give ``-inf`` / NaN as in R.  The bulk is numpy's ``log2``; values whose
    result is within ``_NEAR_TIE_ULPS`` ulps of the result of a different neighbouring input (in
    sorted order) are recomputed one by one with :func:`math.log2` (a handful per sample).
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(x)
    flat_x = x.ravel()
    flat = out.ravel()
    finite = np.flatnonzero(np.isfinite(flat))
    if finite.size < 2:
        return out
    order = finite[np.argsort(flat_x[finite])]  # equal inputs end up adjacent
    xs = flat_x[order]
    ls = flat[order]
    distinct = xs[1:] != xs[:-1]
    gap = np.abs(ls[1:] - ls[:-1])
    ulp = np.spacing(np.maximum(np.abs(ls[1:]), np.abs(ls[:-1])))
    near = distinct & (gap <= _NEAR_TIE_ULPS * ulp)
    if near.any():
        # runs of equal inputs (adjacent after sorting): every copy of a value involved in a near
        # tie is recomputed, since the same input must give the same output everywhere
        run = np.concatenate([[0], np.cumsum(distinct)])
        involved = np.zeros(run[-1] + 1, dtype=bool)
        involved[run[1:][near]] = True
        involved[run[:-1][near]] = True
        members = involved[run]
        starts = np.flatnonzero(np.concatenate([[True], distinct]) & members)
        exact = np.empty(involved.size)
        exact[run[starts]] = [math.log2(v) for v in xs[starts].tolist()]  # the C library's log2
        pos = np.flatnonzero(members)
        flat[order[pos]] = exact[run[pos]]
    return flat.reshape(out.shape)
