"""Counts per million: edgeR's ``cpm.default`` (edgeR 3.40.2) and voom's log-CPM.

The arithmetic follows edgeR's C++ (``calculate_cpm_raw``, ``calculate_cpm_log`` with
``add_prior``) so that values compared with cutoffs (``filterByExpr``) are the same doubles.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stacklm.io.blocks import rows_per_block

LN2 = math.log(2.0)
LN_MILLION = math.log(1e6)


def count_matrix(counts, vector_as_row: bool = False) -> np.ndarray:
    """A features x samples count matrix (array or DataFrame) as float64; a 1-D ``counts`` is one
    feature when ``vector_as_row``, else refused."""
    if isinstance(counts, pd.DataFrame):
        counts = counts.to_numpy(dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    if vector_as_row and y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2:
        raise ValueError("counts must be a features x samples matrix")
    return y


def library_sizes(y: np.ndarray, lib_size=None) -> np.ndarray:
    """The library sizes of the count matrix ``y``: ``lib_size`` (one value per sample) or, by
    default, the column sums (as a DGEList's ``lib.size``)."""
    if lib_size is None:
        return y.sum(axis=0)
    lib = np.asarray(lib_size, dtype=np.float64).ravel()
    if lib.size != y.shape[1]:
        raise ValueError(f"lib_size has {lib.size} values for {y.shape[1]} samples")
    return lib


def _lib_sizes(y: np.ndarray, lib_size) -> np.ndarray:
    lib = library_sizes(y, lib_size)
    if not np.all(np.isfinite(lib)) or np.any(lib <= 0):
        raise ValueError("library sizes should be finite and non-negative")
    return lib


def cpm(counts, lib_size=None, log: bool = False, prior_count=2) -> np.ndarray:
    """edgeR's ``cpm(y, lib.size, log, prior.count)`` for a count matrix (features x samples).

    ``lib_size`` defaults to the column sums; pass effective library sizes (``lib.size *
    norm.factors``) to get what ``cpm(DGEList)`` gives.  Without log: ``count * (1e6 / lib.size)``.
    With log, as edgeR's ``addPriorCount``: the prior count is scaled by library size,
    ``prior_j = prior_count * lib_j / mean(lib)``, added to the counts and twice to the library
    sizes, ``log2((count + prior_j) / (lib_j + 2 prior_j) * 1e6)``.  ``prior_count`` is a number or
    one value per feature.
    """
    y = count_matrix(counts, vector_as_row=True)
    lib = _lib_sizes(y, lib_size)
    if not log:
        return y * (1e6 / lib)
    prior = np.asarray(prior_count, dtype=np.float64)
    if prior.ndim == 0:
        prior = prior.reshape(1, 1)
    elif prior.size == y.shape[0]:
        prior = prior.reshape(-1, 1)
    else:
        raise ValueError("prior_count must be a number or one value per feature")
    ave_lib = 0.0
    for value in lib:  # std::accumulate: a sequential double sum
        ave_lib += float(value)
    ave_lib /= lib.size
    adj_prior = prior * lib / ave_lib  # prior * lib / ave_lib, as add_prior::compute
    offset = np.log(lib + 2 * adj_prior)
    total = y + adj_prior
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.log(total) - offset + LN_MILLION) / LN2
    out[~(total > 0)] = np.nan
    return out


#: values per row block of :func:`log_cpm_voom` (computed in place, in cache)
_BLOCK_VALUES = 1 << 16


def log_cpm_voom(counts, lib_size=None) -> np.ndarray:
    """voom's log-CPM: ``log2((count + 0.5) / (lib.size + 1) * 1e6)`` (limma's ``voom``), the
    same operations in that order, computed in place by row blocks."""
    y = count_matrix(counts, vector_as_row=True)
    lib = _lib_sizes(y, lib_size)
    denom = lib + 1
    out = np.empty(y.shape)
    step = rows_per_block(y.shape[1], _BLOCK_VALUES)
    for start in range(0, y.shape[0], step):
        block = out[start : start + step]
        np.add(y[start : start + step], 0.5, out=block)
        block /= denom
        block *= 1e6
        np.log2(block, out=block)
    return out
