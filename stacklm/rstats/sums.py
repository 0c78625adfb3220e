"""R's sums and means of doubles, accumulated in long double as R's C code does (numpy
``longdouble``: the x87 80-bit format on x86-64, as R's ``LDOUBLE``): ``sum``, ``mean`` (with
``trim`` and ``na.rm``), ``rowMeans`` and ``colSums``.

numpy's float64 sums round every partial sum to double (and ``np.mean`` has no correction pass), so
they differ from R's in the last bits; those bits decide ties and trims downstream (edgeR's TMM,
limma's quantile target, the consensus correlation).
"""

from __future__ import annotations

import numpy as np

from stacklm.io.blocks import rows_per_block

_LD = np.longdouble


def r_sum(x) -> float:
    """R's ``sum`` of doubles: accumulated in long double, rounded once to double.

    The long-double accumulation is numpy's (pairwise within blocks); R adds in order.  The rounded
    doubles agree except for about one sum in a hundred, by one ulp."""
    return float(np.sum(x, dtype=_LD))


def r_mean(x, trim: float = 0.0, na_rm: bool = False) -> float:
    """R's ``mean(x, trim, na.rm)`` of doubles: trimmed by ``floor(n * trim)`` values at each end
    after a sort (the median for ``trim >= 0.5``), then R's C code: the long double sum in order
    divided by n, plus the mean of the residuals from it (one correction pass)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if na_rm:
        x = x[~np.isnan(x)]
    n = x.size
    if trim > 0 and n:
        if np.isnan(x).any():
            return float("nan")
        if trim >= 0.5:
            return float(np.median(x))
        lo = int(np.floor(n * trim)) + 1
        hi = n + 1 - lo
        x = np.sort(x)[lo - 1 : hi]
        n = x.size
    if n == 0:
        return float("nan")
    xl = x.astype(_LD)
    s = np.cumsum(xl)[-1] / n  # sequential, as R's loop
    if np.isfinite(s):
        s = s + np.cumsum(xl - s)[-1] / n
    return float(s)


#: values per row block of :func:`row_means` (a block's long double running sums stay in cache)
_ROW_BLOCK_VALUES = 1 << 14


def row_means(x, na_rm: bool = False) -> np.ndarray:
    """R's ``rowMeans(x, na.rm)``: long double sums accumulated column by column, divided (in long
    double) by the number of columns or, with ``na_rm``, of non-missing values (NaN for none).

    The column-by-column order also makes each row's value independent of the other rows (numpy's
    ``sum(axis=1)`` picks its summation order from the array's shape), which chunked results need.
    Computed by row blocks as a long double running sum along each row (``cumsum``: sequential,
    as R's loop; missing values add 0).  A 1-D ``x`` is one row."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    g, n = x.shape
    out = np.empty(g)
    if n == 0:
        out[:] = np.nan
        return out
    step = rows_per_block(n, _ROW_BLOCK_VALUES)
    for start in range(0, g, step):
        block = x[start : start + step]
        count = n
        if na_rm:
            ok = ~np.isnan(block)
            if not ok.all():
                block = np.where(ok, block, 0.0)
                count = ok.sum(axis=1)
        acc = np.cumsum(block, axis=1, dtype=_LD)[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = (acc / count).astype(np.float64)
    return out


def col_sums(x) -> np.ndarray:
    """R's ``colSums(x)``: each column's long double sum (rows added in order), rounded to double."""
    return np.sum(np.asarray(x, dtype=np.float64), axis=0, dtype=_LD).astype(np.float64)
