"""Step 1 of a counts analysis: edgeR's library sizes, filterByExpr and calcNormFactors on the
analysis' samples (``results/<A>/counts/``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.filterbyexpr import filter_by_expr
from stacklm.io.outputs import write_json, write_tsv
from stacklm.spec import AnalysisSpec
from stacklm.workflow.pipeline import read_design
from stacklm.workflow.weighting.rows import AnalysisRows

_log = logging.getLogger("stacklm")


def counts_step(
    store_path,
    design_path,
    spec: AnalysisSpec,
    normalize_method: str,
    libraries_path,
    keep_path,
    summary_path,
    log: logging.Logger = _log,
) -> dict:
    """edgeR's recipe up to the library sizes, for one analysis' samples:

    ``y <- DGEList(counts[, samples]); keep <- filterByExpr(y, design, min.count, min.total.count,
    large.n, min.prop); y <- y[keep, , keep.lib.sizes = FALSE]; y <- calcNormFactors(y, method)``.

    Writes ``libraries.tsv`` (sample_id, lib_size_all_features, lib_size = the kept features'
    column sums, norm_factors, effective_lib_size = lib_size x norm_factors), ``filter_by_expr.tsv.gz``
    (feature_id, keep; every feature of the store) and the summary (JSON; returned)."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    rows = AnalysisRows(store_path, design)
    n = len(rows.samples)
    # column sums of all features (DGEList's lib.size): counts are whole numbers, so these sums
    # are exact in double precision (as R's long double colSums)
    lib_all = np.zeros(n)
    for _, Y in rows.blocks(0, rows.n_features):
        lib_all += Y.sum(axis=0)
    fbe = spec.filter_by_expr
    ids_all, keep_all, kept_blocks = [], [], []
    for ids, Y in rows.blocks(0, rows.n_features):
        if fbe is None:
            keep = np.ones(len(ids), dtype=bool)
        else:
            keep = filter_by_expr(
                Y,
                X,
                lib_size=lib_all,
                min_count=fbe.min_count,
                min_total_count=fbe.min_total_count,
                large_n=fbe.large_n,
                min_prop=fbe.min_prop,
            )
        ids_all.append(ids)
        keep_all.append(keep)
        kept_blocks.append(Y[keep])
    ids = np.concatenate(ids_all)
    keep = np.concatenate(keep_all)
    kept = np.vstack(kept_blocks) if kept_blocks else np.empty((0, n))
    del kept_blocks
    n_kept = int(keep.sum())
    if n_kept < 2:
        raise ValueError(
            f"analysis {spec.name!r}: filter_by_expr keeps {n_kept} of {keep.size} features; "
            "voom and the moderation need at least 2: lower filter_by_expr.min_count / "
            "min_total_count, or set filter_by_expr: false"
        )
    lib = kept.sum(axis=0)
    if np.any(lib <= 0):
        empty = [s for s, v in zip(rows.samples, lib, strict=True) if v <= 0]
        raise ValueError(
            f"analysis {spec.name!r}: sample(s) {', '.join(empty[:5])} have no counts in the "
            "features kept; remove them (subset) or check the matrix"
        )
    method = normalize_method or "none"
    nf = calc_norm_factors(kept, lib_size=lib, method=method)
    effective = lib * nf
    libraries = pd.DataFrame(
        {
            "sample_id": rows.samples,
            "lib_size_all_features": lib_all,
            "lib_size": lib,
            "norm_factors": nf,
            "effective_lib_size": effective,
        }
    )
    write_tsv(libraries, libraries_path)
    write_tsv(pd.DataFrame({"feature_id": ids.astype(str), "keep": keep}), keep_path)
    summary = {
        "counts": {
            "n_features_input": int(keep.size),
            "n_features_kept": n_kept,
            "n_removed_by_filter_by_expr": int(keep.size - n_kept),
            "filter_by_expr": None if fbe is None else dict(vars(fbe)),
            "normalize_method": method,
            "keep_lib_sizes": False,
            "libraries": {
                s: {
                    "lib_size_all_features": float(a),
                    "lib_size": float(b),
                    "norm_factor": float(c),
                    "effective_lib_size": float(d),
                }
                for s, a, b, c, d in zip(rows.samples, lib_all, lib, nf, effective, strict=True)
            },
        }
    }
    write_json(summary, summary_path)
    log.info(
        "filterByExpr kept %d of %d features; %s norm factors %.4g .. %.4g",
        n_kept,
        keep.size,
        method,
        nf.min(),
        nf.max(),
    )
    return summary
