"""``export_corrected``: the normalized matrix with the fitted effects of the adjustment columns
removed, as ``limma::removeBatchEffect(x, covariates = X[, adj], design = X[, kept])`` where
``adj`` are the design columns neither tested nor the intercept (surrogate variables included) and
``kept`` the others; written as Parquet in row blocks (memory bounded by a block), with the PCA of
the corrected matrix as a diagnostic panel."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stacklm.diagnostics.associations import covariate_table
from stacklm.diagnostics.crossproducts import block_cross_products, sketch_matrix
from stacklm.diagnostics.pca import gram_pca, sketch_pca
from stacklm.io.blocks import rows_per_block
from stacklm.io.outputs import atomic_path
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.limma.lmfit import lm_fit
from stacklm.spec import AnalysisSpec, DesignInfo
from stacklm.workflow.pipeline import FIT_BLOCK_VALUES, read_design

_log = logging.getLogger("stacklm")


def adjustment_columns(design_columns: Sequence[str], info: DesignInfo) -> tuple[list, list]:
    """``(kept, adj)``: the intercept and the tested columns (for a tested contrast, the columns it
    involves), and the adjustment columns (the other base-design columns and the SVs)."""
    tested = set(info.design_columns) - set(info.null_design_columns)
    kept = [c for c in design_columns if c == "Intercept" or c in tested]
    adj = [c for c in design_columns if c not in kept]
    return kept, adj


def remove_adjustment_effects(Y: np.ndarray, design: pd.DataFrame, kept, adj) -> np.ndarray:
    """``removeBatchEffect(Y, covariates = design[, adj], design = design[, kept])``: lmFit on
    ``cbind(kept, adj)`` (limma's column order, which decides the aliased columns of features with
    missing values), then ``Y - beta_adj %*% t(X_adj)`` with non-estimable coefficients as 0."""
    if not adj:
        return np.array(Y, dtype=np.float64, copy=True)
    X = design[list(kept) + list(adj)]
    fit = lm_fit(Y, X)
    beta = np.nan_to_num(fit.coefficients[:, len(kept) :], nan=0.0)
    return Y - beta @ design[list(adj)].to_numpy(dtype=np.float64).T


def corrected_step(
    store_path,
    design_path,
    info_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    parquet_path,
    log: logging.Logger = _log,
):
    """Write results/<analysis>/corrected.parquet (feature_id, then one float64 column per sample of
    the analysis) and return the corrected matrix's sample PCA (for the plot) and covariates."""
    design = read_design(design_path)
    info = DesignInfo.read(info_path)
    kept, adj = adjustment_columns(list(design.columns), info)
    log.info(
        "removing the effects of %s (keeping %s)", ", ".join(adj) or "nothing", ", ".join(kept)
    )
    store = open_binary_matrix(store_path)
    samples = [str(s) for s in design.index]
    columns = store.columns_of(samples)
    step = rows_per_block(len(columns), FIT_BLOCK_VALUES)
    schema = pa.schema([("feature_id", pa.string())] + [(s, pa.float64()) for s in samples])
    cross = None
    ones = np.ones((len(samples), 1))
    with atomic_path(parquet_path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for a in range(0, store.n_features, step):
                b = min(a + step, store.n_features)
                Y = store.rows(a, b)[:, columns]
                corrected = remove_adjustment_effects(Y, design, kept, adj)
                arrays = [pa.array(np.asarray(store.feature_ids[a:b]).astype(str))]
                arrays += [pa.array(corrected[:, j]) for j in range(len(samples))]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                block = block_cross_products(
                    corrected, ones, np.zeros((b - a, 1)), samples, range(a, b), store.n_features
                )
                cross = block if cross is None else cross + block
    log.info("corrected matrix: %d features x %d samples", store.n_features, len(samples))
    if cross.kind == "gram":
        pca = gram_pca(cross.matrices["input"], cross.samples, 10)
    else:
        omega = sketch_matrix(len(samples), cross.sketch_size, cross.sketch_seed)
        pca = sketch_pca(
            cross.matrices["input"], omega, cross.samples, cross.sums_of_squares["input"], 10
        )
    sheet = read_sample_sheet(samples_path, sample_id)
    covariates = covariate_table(
        sheet, samples, spec.levels_dict, numeric=list(info.numeric_covariates)
    )
    return pca, covariates
