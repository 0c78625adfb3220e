"""edgeR's ``filterByExpr`` (``filterByExpr.default``, edgeR 3.40.2).

Ported rather than approximated: the keep flags must be identical to R's, which needs the same CPM
arithmetic (``count * (1e6 / lib.size)``, as edgeR's C++ ``calculate_cpm_raw``), the same cutoff
(``min.count / median(lib.size) * 1e6``), the same minimum group size (``1 / max(hat(design))``,
where R's ``hat`` adds an intercept column and uses LINPACK's QR with tolerance 1e-7) and the same
tolerance of 1e-14 on the comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.blocks import row_blocks
from ..rstats.qr import estimable_columns
from .cpm import count_matrix, library_sizes


def hat_values(design) -> np.ndarray:
    """R's ``hat(design)`` (``intercept = TRUE``): leverages of ``cbind(1, design)``.

    R adds a column of ones, takes ``qr()`` (LINPACK dqrdc2, tolerance 1e-7, aliased columns
    moved to the end) and sums the squares of the first ``rank`` columns of Q by row; that is the
    diagonal of the projection onto the columns dqrdc2 keeps.
    """
    X = np.asarray(design, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    X1 = np.column_stack([np.ones(X.shape[0]), X])
    keep = estimable_columns(X1)
    q, _ = np.linalg.qr(X1[:, keep])
    return np.einsum("ij,ij->i", q, q)


def filter_by_expr(
    counts,
    design=None,
    group=None,
    lib_size=None,
    min_count: float = 10,
    min_total_count: float = 15,
    large_n: int = 10,
    min_prop: float = 0.7,
) -> np.ndarray:
    """Which features to keep, as edgeR's ``filterByExpr(y, design, group, lib.size, ...)``.

    ``counts`` is features x samples (array or DataFrame).  ``lib_size`` defaults to the column sums.
    The minimum sample size is ``1 / max(hat(design))`` with a design, the smallest non-empty group
    size with ``group`` (which takes precedence, as in edgeR), and all samples with neither.  Above
    ``large_n`` it becomes ``large_n + (size - large_n) * min_prop``.  A feature is kept when at
    least that many samples (less 1e-14) reach ``min_count / median(lib_size) * 1e6`` counts per
    million, and its total count reaches ``min_total_count`` (less 1e-14).  Returns a boolean array.
    """
    y = count_matrix(counts)
    n = y.shape[1]
    lib = library_sizes(y, lib_size)
    if group is None:
        if design is None:
            min_sample_size = float(n)
        else:
            if isinstance(design, pd.DataFrame):
                design = design.to_numpy(dtype=np.float64)
            design = np.asarray(design, dtype=np.float64)
            if design.shape[0] != n:
                raise ValueError(f"design has {design.shape[0]} rows for {n} samples")
            min_sample_size = 1.0 / float(np.max(hat_values(design)))
    else:
        codes = pd.factorize(pd.Series(np.asarray(group)).astype(str), sort=True)[0]
        if codes.size != n or (codes < 0).any():
            raise ValueError("group must give one non-missing level per sample")
        sizes = np.bincount(codes)
        min_sample_size = float(sizes[sizes > 0].min())
    if min_sample_size > large_n:
        min_sample_size = large_n + (min_sample_size - large_n) * min_prop
    median_lib = float(np.median(lib))
    cutoff = min_count / median_lib * 1e6
    if np.any(~np.isfinite(lib)) or np.any(lib <= 0):
        raise ValueError("library sizes should be finite and positive")
    scale = 1e6 / lib  # edgeR's calculate_cpm_raw: count *= one_million / lib.size
    n_above = np.empty(y.shape[0], dtype=np.int64)
    totals = np.empty(y.shape[0])
    for rows in row_blocks(y.shape[0], n, 1 << 16):  # no features x samples temporaries
        block = y[rows]
        totals[rows] = block.sum(axis=1)  # each row's sum does not depend on the block
        cpm = block * scale
        n_above[rows] = np.count_nonzero(cpm >= cutoff, axis=1)
    tol = 1e-14
    keep_cpm = n_above >= (min_sample_size - tol)
    keep_total = totals >= (min_total_count - tol)
    return keep_cpm & keep_total
