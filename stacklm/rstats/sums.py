"""R's sums and means of doubles, accumulated in long double as R's C code does (numpy
``longdouble``: the x87 80-bit format on x86-64, as R's ``LDOUBLE``): ``sum``, ``mean`` (with
``trim`` and ``na.rm``), ``rowMeans`` and ``colSums``.

numpy's float64 sums round every partial sum to double (and ``np.mean`` has no correction pass), so
they differ from R's in the last bits; those bits decide ties and trims downstream (edgeR's TMM,
limma's quantile target, the consensus correlation).
"""

from __future__ import annotations

import numpy as np

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


def row_means(x, na_rm: bool = False) -> np.ndarray:
    """R's ``rowMeans(x, na.rm)``: long double sums accumulated column by column, divided (in long
    double) by the number of columns or, with ``na_rm``, of non-missing values (NaN for none).

    The column-by-column order also makes each row's value independent of the other rows (numpy's
    ``sum(axis=1)`` picks its summation order from the array's shape), which chunked results need.
    A 1-D ``x`` is one row."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    acc = np.zeros(x.shape[0], dtype=_LD)
    if not na_rm:
        for j in range(x.shape[1]):  # a loop over samples, vectorised over rows
            acc += x[:, j]
        return (acc / x.shape[1]).astype(np.float64)
    count = np.zeros(x.shape[0], dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        ok = ~np.isnan(col)
        acc += np.where(ok, col, 0.0)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return (acc / count).astype(np.float64)


def col_sums(x) -> np.ndarray:
    """R's ``colSums(x)``: each column's long double sum (rows added in order), rounded to double."""
    return np.sum(np.asarray(x, dtype=np.float64), axis=0, dtype=_LD).astype(np.float64)
