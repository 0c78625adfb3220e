"""File-level steps of the workflow, callable without Snakemake: normalize a matrix file into the
binary store, fit one row chunk of the store, merge and moderate chunk fits.  The scripts in
``scripts/`` only pass Snakemake's paths and params to these."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stacklm.diagnostics.crossproducts import (
    block_cross_products,
    cross_products_path,
    save_cross_products,
)
from stacklm.io.atomic import atomic_path
from stacklm.io.blocks import rows_per_block
from stacklm.io.matrix import read_matrix_blocks, read_matrix_header
from stacklm.io.store import BinaryMatrixWriter, chunk_bounds, open_binary_matrix
from stacklm.limma.fitstore import concat_fits, load_fits, save_fit
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.normalize import cyclic_loess, quantile_normalize
from stacklm.preprocess.counts import check_count_block
from stacklm.preprocess.filters import feature_filter
from stacklm.preprocess.scales import transform_values
from stacklm.workflow.progress import Progress

if TYPE_CHECKING:
    import pandas as pd

#: values (rows x samples) a fit job holds at once: 4M float64 = 32 MB
FIT_BLOCK_VALUES = 1 << 22

_log = logging.getLogger("stacklm")


def normalize_matrix(
    matrix_path,
    store_path,
    matrix_format: str | None = None,
    input_scale: str = "expression",
    beta_epsilon: float = 1e-6,
    normalize: Mapping | None = None,
    filters: Mapping | None = None,
    min_features: int = 1,
    log: logging.Logger = _log,
    precision: str = "float64",
    distributions=None,
) -> dict:
    """Read ``matrix_path`` in row blocks, transform, normalize between samples, filter features and
    write the binary store ``store_path``.  Row-wise steps stream block by block; quantile and
    cyclic loess normalization need whole columns and hold one float64 matrix.  All of that is in
    float64; ``precision`` (``"float64"`` or ``"float32"``) is only the storage precision of the
    store (see :class:`stacklm.io.BinaryMatrixWriter`).  ``distributions``: an optional
    :class:`stacklm.diagnostics.distributions.InputDistributions` fed every block on the analysis
    scale (before normalization and filters).  Returns the summary (feature counts removed by each
    filter, settings)."""
    normalize = dict(normalize or {})
    filters = {k: v for k, v in dict(filters or {}).items() if v is not None}
    method = normalize.get("method", "none")
    _, samples = read_matrix_header(matrix_path, matrix_format)
    removed: dict[str, int] = {}
    n_input = 0
    n_kept = 0

    def add_counts(counts):
        for k, v in counts.items():
            removed[k] = removed.get(k, 0) + int(v)

    with (
        BinaryMatrixWriter(store_path, samples, dtype=precision) as writer,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        if method == "none" or input_scale == "counts":  # counts: normalized per analysis
            # the store writer writes the previous block (the write releases the GIL) while the
            # next one is read and checked
            written = None
            # two value arrays in turn: block k is written while k + 1 is read into the other
            for block in read_matrix_blocks(matrix_path, matrix_format, buffers=2):
                raw = block.values
                if input_scale == "counts":
                    raw = check_count_block(
                        raw, block.feature_ids, samples, matrix_path, matrix_format, block.first_row
                    )
                values = transform_values(
                    raw, input_scale, beta_epsilon, normalize, block.feature_ids, samples
                )
                if distributions is not None:
                    distributions.add(values, raw)
                keep, counts = feature_filter(values, **filters)
                add_counts(counts)
                if written is not None:
                    written.result()  # in order, and its error (a duplicated id) here
                if keep.all():  # no copy of the block when every feature is kept
                    written = pool.submit(writer.append, block.feature_ids, values)
                else:
                    written = pool.submit(writer.append, block.feature_ids[keep], values[keep])
                n_input += len(block.feature_ids)
                n_kept += int(keep.sum())
                log.info("read %d features", n_input)
            if written is not None:
                written.result()
        else:
            ids, blocks = [], []
            for block in read_matrix_blocks(matrix_path, matrix_format):
                ids.append(block.feature_ids)
                blocks.append(
                    transform_values(
                        block.values,
                        input_scale,
                        beta_epsilon,
                        normalize,
                        block.feature_ids,
                        samples,
                    )
                )
                if distributions is not None:
                    distributions.add(blocks[-1], block.values)
                n_input += len(block.feature_ids)
                log.info("read %d features", n_input)
            values = np.vstack(blocks)
            del blocks
            feature_ids = np.concatenate(ids)
            log.info("%s normalization of %d x %d", method, *values.shape)
            if method == "quantile":
                values = quantile_normalize(values)
            elif method == "cyclicloess":
                values = cyclic_loess(values)
            else:
                raise ValueError(
                    f"unknown normalize.method {method!r}; use none, quantile or cyclicloess"
                )
            keep, counts = feature_filter(values, **filters)
            add_counts(counts)
            writer.append(feature_ids[keep], values[keep])
            n_kept = int(keep.sum())
        for name, count in removed.items():
            log.info("filter %s removed %d features", name, count)
        summary = normalize_summary(
            matrix_path, n_input, n_kept, len(samples), removed, input_scale, normalize, filters,
            precision,
        )  # fmt: skip
        if n_kept < min_features:
            raise ValueError(
                f"'chunks' ({min_features}) is larger than the number of features kept ({n_kept}); "
                "lower 'chunks'"
            )
    return summary


def normalize_summary(
    matrix_path, n_input, n_kept, n_samples, removed, input_scale, normalize, filters, precision
) -> dict:
    """normalize's summary (results/normalized/summary.json without the checksum): feature counts,
    each filter's count and the settings; refuses a matrix the filters left no feature of."""
    if n_kept == 0:
        raise ValueError(
            f"all {n_input} features of {matrix_path} were removed by the filters "
            f"({', '.join(f'{k}: {v}' for k, v in removed.items())}); relax 'filter'"
        )
    return {
        "n_input_features": n_input,
        "n_features": n_kept,
        "n_samples": n_samples,
        "removed_by_filter": removed,
        "input_scale": input_scale,
        "normalize": normalize,
        "filter": filters,
        "precision": precision,
    }


def fit_chunk(
    store_path,
    design: pd.DataFrame | DesignTable,
    chunk: int,
    chunks: int,
    out_path,
    crossprod_path=None,
) -> int:
    """Fit rows of chunk ``chunk`` (of ``chunks``) of the store on ``design`` (indexed by sample id;
    a DataFrame or a :class:`DesignTable`) and write the un-moderated fit; only those rows are read (memory-mapped).

    Also writes the chunk's sample cross-products of the centred input, fitted values and residuals
    (:func:`stacklm.diagnostics.crossproducts.block_cross_products`: its rows among every k-th
    feature of the store, for the PCA diagnostics) to ``crossprod_path`` (default: beside
    ``out_path``, see :func:`stacklm.diagnostics.cross_products_path`).  An int8 store (allele
    counts) is fitted as int8 (:func:`stacklm.lm_fit` takes it without a float64 copy)."""
    store = open_binary_matrix(store_path, load_feature_ids=False)
    start, stop = chunk_bounds(store.n_features, chunks)[chunk]
    ids = store.read_feature_ids(start, stop)
    samples, coef_names, X = design_arrays(design)
    columns = store.columns_of(samples)
    same_columns = columns == list(range(store.n_samples))
    int8 = getattr(store.values, "raw", store.values).dtype == np.int8
    # row blocks of a fixed number of values: memory does not grow with the chunk (every row's fit
    # is its own, and the cross-products are sums over rows); int8 blocks (1 byte a value) 8x longer
    step = rows_per_block(len(columns), FIT_BLOCK_VALUES * (8 if int8 else 1))
    fits, cross = [], None
    progress = Progress(f"chunk {chunk}", stop - start)
    for a in range(start, max(stop, start + 1), step):
        b = min(a + step, stop)
        Y = store.rows(a, b, raw=int8)
        if not same_columns:
            Y = Y[:, columns]
        block_fit = lm_fit(Y, X, coef_names=coef_names, feature_ids=ids[a - start : b - start])
        block_cross = block_cross_products(
            Y, X, block_fit.coefficients, samples, range(a, b), store.n_features
        )
        cross = block_cross if cross is None else cross + block_cross
        fits.append(block_fit)
        progress.at(b - start)
        del Y
    write_chunk_fit(fits, cross, out_path, crossprod_path)
    return stop - start


def write_chunk_fit(fits: Sequence, cross, out_path, crossprod_path=None):
    """Write one chunk's fit (its row blocks' fits concatenated) and its sample cross-products
    (default path: beside the fit, :func:`stacklm.diagnostics.crossproducts.cross_products_path`),
    each atomically. Returns the chunk's fit."""
    fit = fits[0] if len(fits) == 1 else concat_fits(fits)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        save_fit(fit, fh)
    crossprod_path = crossprod_path or cross_products_path(out_path)
    with atomic_path(crossprod_path) as tmp, open(tmp, "wb") as fh:
        save_cross_products(cross, fh)
    return fit


def merge_chunk_fits(paths: Sequence, threads: int = 1, order: str = "C"):
    """Concatenate chunk fits in chunk order (read by ``threads`` threads, each chunk straight into
    the concatenated arrays: :func:`stacklm.limma.fitstore.load_fits`; ``order="F"``: its
    coefficient matrices column-major)."""
    return load_fits(paths, threads=threads, order=order)


def read_design(path) -> pd.DataFrame:
    """An analysis' design.tsv (rule design) as a DataFrame indexed by sample id; its numbers
    read back exactly as written (shortest round-trip form), as :func:`read_design_table` reads
    them."""
    import pandas as pd  # here: the fit jobs read the design with read_design_table

    # pandas >= 3 parses floats exactly by default (and deprecates the option); 2.x needs it
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    design = pd.read_csv(path, sep="\t", index_col=0, dtype={0: str}, **exact)
    design.index = design.index.astype(str)
    return design


@dataclass(frozen=True)
class DesignTable:
    """An analysis' design.tsv as arrays, what the fit jobs need (read without pandas, whose
    import is 0.2 s of every fit job's start-up): the sample ids (its rows), the design columns
    and the values (samples x columns, float64)."""

    samples: list[str]
    columns: list[str]
    values: np.ndarray


def read_design_table(path) -> DesignTable:
    """design.tsv (sample id, then one column per design column; shortest round-trip floats,
    ``NA`` for a missing value) as a :class:`DesignTable`, with the numbers :func:`read_design`
    reads."""
    with open(path) as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        rows = [line.rstrip("\r\n").split("\t") for line in fh if line.strip()]
    width = len(header) - 1
    for k, row in enumerate(rows):
        if len(row) != width + 1:
            raise ValueError(f"{path}: line {k + 2} has {len(row)} fields, the header {width + 1}")
    values = np.array(
        [[float("nan") if v == "NA" else float(v) for v in row[1:]] for row in rows],
        dtype=np.float64,
    ).reshape(len(rows), width)
    return DesignTable([row[0] for row in rows], header[1:], values)


def design_arrays(design) -> tuple[list[str], list[str], np.ndarray]:
    """``(sample ids, column names, float64 values)`` of a design given as a DataFrame (indexed
    by sample id) or as a :class:`DesignTable`."""
    if isinstance(design, DesignTable):
        return list(design.samples), list(design.columns), np.asarray(design.values, np.float64)
    return (
        [str(s) for s in design.index],
        [str(c) for c in design.columns],
        design.to_numpy(dtype=np.float64),
    )
