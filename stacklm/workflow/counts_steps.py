"""Weighted and block-correlated analyses in the workflow's chunks: RNA-seq counts (edgeR's
filterByExpr and calcNormFactors, limma's voom and voomWithQualityWeights, limma-trend on log-CPM),
prior and estimated sample weights (``sample_weights``, limma's arrayWeights) and blocks of
correlated samples (limma's duplicateCorrelation and the block-correlated lmFit, gls.series), for
any input.  Callable without Snakemake; ``scripts/counts.py`` and ``scripts/weights.py`` only pass
Snakemake's paths to these.

R's recipe is global in three places (library sizes, voom's lowess trend, duplicateCorrelation's
consensus) and row-local everywhere else, so an analysis runs as:

1. **counts step** (per analysis, counts only; :func:`counts_step`): column sums, filterByExpr on
   the analysis' design, the kept features' column sums (``keep.lib.sizes = FALSE``) and
   calcNormFactors on them -> ``results/<A>/counts/libraries.tsv`` and ``filter_by_expr.tsv.gz``.
   It holds the kept counts of the analysis' samples (calcNormFactors' trimmed means are over all
   features): about 8 bytes x kept features x samples, twice.
2. **setup** (per analysis; :func:`setup_step`): the sample weights of the sheet, the blocks, and
   the two global estimators that need every feature's values at once: arrayWeights
   (``array_weights: true``) and the whole voomWithQualityWeights recipe (``weights:
   voom_quality``, with its duplicateCorrelation rounds when ``block`` is set).  Those hold the
   analysis' (kept) matrix with voom's weights and fitted values: about 8 bytes x features x
   samples x 6 (60,000 genes x 500 samples: 1.5 GB), which is why they are not run beyond ~60k
   features per job.
3. **rounds** (:func:`weighting_rounds`), each a pass over the chunks (:func:`round_chunk_step`)
   followed by one small global step (:func:`round_global_step`): ``voom`` (per chunk the trend
   points ``sx``, ``sy`` of :func:`stacklm.limma.voom.voom_trend_points`; globally the lowess trend)
   and ``dupcor`` (per chunk :func:`stacklm.limma.dupcor.duplicate_correlation_rows`; globally the
   consensus).  With ``weights: voom`` and an estimated block correlation these are the four rounds
   of the limma User's Guide recipe (voom, duplicateCorrelation, voom with block and correlation,
   duplicateCorrelation).
4. **fit** (per chunk; :func:`weighted_fit_chunk`): the values (voom's log-CPM, edgeR's log-CPM or
   the input) and weights recomputed for the chunk's rows from the final state, then lm_wfit,
   gls.series or lmFit, written as the chunk fit file the unweighted fit writes, so that the
   moderation and the plots run unchanged.  Weights are never stored as a features x samples
   matrix.

Every per-feature quantity depends only on its row (and the global state), so the results equal
the one-shot library calls (``voom`` + ``lm_wfit`` / ``gls_series`` + ``e_bayes``) for any number
of chunks, up to BLAS rounding (<= 1e-12 relative, tested).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stacklm.diagnostics.crossproducts import (
    chunk_cross_products,
    cross_products_path,
    save_cross_products,
)
from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.cpm import cpm
from stacklm.edger.filterbyexpr import filter_by_expr
from stacklm.io.outputs import atomic_path, write_json, write_tsv
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.io.store import chunk_bounds, open_binary_matrix
from stacklm.limma.arrayweights import array_weights
from stacklm.limma.dupcor import (
    consensus_correlation,
    duplicate_correlation,
    duplicate_correlation_rows,
)
from stacklm.limma.fitstore import concat_fits, save_fit
from stacklm.limma.glsseries import gls_series
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.voom import VoomTrend, voom, voom_trend, voom_trend_points, voom_weights
from stacklm.limma.weightedfit import lm_wfit
from stacklm.spec import AnalysisSpec
from stacklm.workflow.pipeline import FIT_BLOCK_VALUES, read_design
from stacklm.workflow.weighting_plan import (
    block_of,
    sample_weights_of,
    values_kind,
    weighting_rounds,
)

_log = logging.getLogger("stacklm")

#: edgeR's log-CPM of limma-trend (weights: none on counts): cpm(y, log = TRUE, prior.count = 2)
PRIOR_COUNT = 2.0
#: voom's lowess span (limma's default)
VOOM_SPAN = 0.5
#: duplicateCorrelation's trim of the atanh correlations (limma's default)
DUPCOR_TRIM = 0.15


# --------------------------------------------------------------------------------------------
# the analysis' rows
# --------------------------------------------------------------------------------------------
def read_libraries(path) -> pd.DataFrame:
    """``libraries.tsv`` (indexed by sample id), floats read back bit-equal."""
    kw = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    table = pd.read_csv(path, sep="\t", dtype={"sample_id": str}, **kw)  # pandas 3: exact
    return table.set_index("sample_id")


def read_keep(path) -> tuple[np.ndarray, np.ndarray]:
    """(feature ids, keep flags) of ``filter_by_expr.tsv.gz`` (store order)."""
    table = pd.read_csv(path, sep="\t", dtype={"feature_id": str})
    return table["feature_id"].to_numpy(dtype=object), table["keep"].to_numpy(dtype=bool)


class AnalysisRows:
    """The rows of the store an analysis uses, in blocks: its samples (design order), the features
    filterByExpr keeps (counts) and the effective library sizes."""

    def __init__(self, store_path, design: pd.DataFrame, libraries_path=None, keep_path=None):
        self.store = open_binary_matrix(store_path, load_feature_ids=False)
        self.samples = [str(s) for s in design.index]
        position = {s: i for i, s in enumerate(self.store.samples)}
        self.columns = [position[s] for s in self.samples]
        self.lib = None
        if libraries_path:
            libs = read_libraries(libraries_path)
            self.lib = libs.loc[self.samples, "effective_lib_size"].to_numpy(dtype=np.float64)
        self.keep = None
        self.keep_ids = None
        if keep_path:
            self.keep_ids, self.keep = read_keep(keep_path)
            if self.keep.size != self.store.n_features:
                raise ValueError(
                    f"{keep_path} has {self.keep.size} features, the store {self.store.n_features}"
                )

    @property
    def n_features(self) -> int:
        return self.store.n_features

    def blocks(self, start: int, stop: int, block_values: int = FIT_BLOCK_VALUES):
        """(feature ids, values) of the kept rows of ``start:stop``, in row blocks of about
        ``block_values`` values (the analysis' sample columns, design order)."""
        ids = self.store.read_feature_ids(start, stop)
        if self.keep_ids is not None and not np.array_equal(
            np.asarray(self.keep_ids[start:stop]).astype(str), np.asarray(ids).astype(str)
        ):
            raise ValueError("the filter_by_expr flags do not follow the store's features")
        step = max(1, block_values // max(len(self.columns), 1))
        for a in range(start, stop, step):
            b = min(a + step, stop)
            Y = self.store.rows(a, b)[:, self.columns]
            block_ids = ids[a - start : b - start]
            if self.keep is not None:
                k = self.keep[a:b]
                Y, block_ids = Y[k], block_ids[k]
            yield np.asarray(block_ids), Y

    def all_rows(self):
        """(feature ids, values) of every kept row (one matrix: the global estimators)."""
        parts = list(self.blocks(0, self.n_features))
        ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=object)
        n = len(self.columns)
        Y = np.vstack([p[1] for p in parts]) if parts else np.empty((0, n))
        return ids, Y


# --------------------------------------------------------------------------------------------
# 1. counts step: library sizes, filterByExpr, calcNormFactors
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# the state carried between the global steps and the chunks
# --------------------------------------------------------------------------------------------
@dataclass
class WeightingState:
    """What the chunks need from the global steps (written as one ``.npz``).

    ``values``: :func:`values_kind`; ``samples``: design order; ``block``: the block label of every
    sample (None without a block); ``sample_weights``: the sample weights of the fits (the sheet
    column, arrayWeights or voomWithQualityWeights; None for none), which multiply voom's;
    ``voom_prior_weights``: the prior weights of voom's own fit (the sheet column; for
    voomWithQualityWeights its first arrayWeights, as limma's second voom call);
    ``voom_correlation``: the correlation voom's fit used with the block (None: voom fitted
    without it); ``correlation``: the final block correlation; ``trend``: voom's trend;
    ``complete``: no missing value in the analysis' matrix (decides limma's cov.coefficients with
    sample weights); ``sx``/``sy``: voom's trend points (plots); ``atanh``: the per-feature
    correlations of the last duplicateCorrelation (plots); ``history``: one record per step."""

    values: str
    samples: list
    block: list | None = None
    block_column: str | None = None
    sample_weights: np.ndarray | None = None
    sample_weights_source: str | None = None
    voom_prior_weights: np.ndarray | None = None
    voom_correlation: float | None = None
    correlation: float | None = None
    correlation_estimated: bool = False
    trend: VoomTrend | None = None
    complete: bool = True
    sx: np.ndarray | None = None
    sy: np.ndarray | None = None
    atanh: np.ndarray | None = None
    atanh_ids: np.ndarray | None = None
    n_not_converged: int | None = None
    history: list = field(default_factory=list)

    def save(self, path) -> None:
        meta = {
            "values": self.values,
            "samples": list(self.samples),
            "block": self.block,
            "block_column": self.block_column,
            "sample_weights_source": self.sample_weights_source,
            "voom_correlation": self.voom_correlation,
            "correlation": self.correlation,
            "correlation_estimated": self.correlation_estimated,
            "complete": self.complete,
            "n_not_converged": self.n_not_converged,
            "history": _plain(self.history),
            "trend_span": None if self.trend is None else self.trend.span,
            "trend_constant_one": None if self.trend is None else self.trend.constant_one,
        }
        arrays = {"meta": np.array(json.dumps(meta))}
        for name in ("sample_weights", "voom_prior_weights", "sx", "sy", "atanh"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value, dtype=np.float64)
        if self.atanh_ids is not None:
            arrays["atanh_ids"] = np.asarray(self.atanh_ids).astype(str)
        if self.trend is not None:
            for name in ("line_x", "line_y", "knots_x", "knots_y"):
                arrays[f"trend_{name}"] = getattr(self.trend, name)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path) -> WeightingState:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
        trend = None
        if "trend_line_x" in arrays:
            trend = VoomTrend(
                line_x=arrays["trend_line_x"],
                line_y=arrays["trend_line_y"],
                knots_x=arrays["trend_knots_x"],
                knots_y=arrays["trend_knots_y"],
                span=float(meta["trend_span"]),
                constant_one=bool(meta["trend_constant_one"]),
            )
        return cls(
            values=meta["values"],
            samples=meta["samples"],
            block=meta["block"],
            block_column=meta["block_column"],
            sample_weights=arrays.get("sample_weights"),
            sample_weights_source=meta["sample_weights_source"],
            voom_prior_weights=arrays.get("voom_prior_weights"),
            voom_correlation=meta["voom_correlation"],
            correlation=meta["correlation"],
            correlation_estimated=bool(meta["correlation_estimated"]),
            trend=trend,
            complete=bool(meta["complete"]),
            sx=arrays.get("sx"),
            sy=arrays.get("sy"),
            atanh=arrays.get("atanh"),
            atanh_ids=arrays.get("atanh_ids"),
            n_not_converged=meta["n_not_converged"],
            history=list(meta["history"]),
        )


def _values(kind: str, Y: np.ndarray, lib: np.ndarray | None) -> np.ndarray:
    """The modelled values of a block: edgeR's log-CPM or the input (voom's come with its points)."""
    if kind == "logcpm":
        return cpm(Y, lib_size=lib, log=True, prior_count=PRIOR_COUNT)
    return Y


def _voom_points(Y, X, state: WeightingState, lib, correlation=None):
    """voom's share of a block under the state: its fit uses the prior sample weights and, with a
    correlation (default: ``voom_correlation``, the one the state's trend was fitted with), the
    block (``voom(y, design, weights, block, correlation)``)."""
    if correlation is None:
        correlation = state.voom_correlation
    block = state.block if correlation is not None else None
    return voom_trend_points(
        Y,
        X,
        lib_size=lib,
        weights=state.voom_prior_weights,
        block=block,
        correlation=correlation,
    )


def _values_and_weights(Y, X, state: WeightingState, lib):
    """(E, weights) of a block: voom's E and weights (times the sample weights), or the values with
    the sample weights (None without)."""
    if state.values == "voom":
        points = _voom_points(Y, X, state, lib)
        W = voom_weights(points.fitted_logcount, state.trend)
        if state.sample_weights is not None:
            W = W * state.sample_weights
        return points.E, W
    E = _values(state.values, Y, lib)
    W = state.sample_weights
    if W is not None and not state.complete and state.block is None:
        # limma fits every row of a matrix with a missing value by lm.wfit (lm.series' loop),
        # complete rows included: so do the chunks, also those without a missing value
        W = np.broadcast_to(W, E.shape)
    return E, W


def _any_missing(rows: AnalysisRows) -> bool:
    for _, Y in rows.blocks(0, rows.n_features):
        if np.isnan(Y).any():
            return True
    return False


# --------------------------------------------------------------------------------------------
# 2. setup: sheet weights and blocks, arrayWeights, voomWithQualityWeights
# --------------------------------------------------------------------------------------------
def setup_step(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    state_path,
    libraries_path=None,
    keep_path=None,
    log: logging.Logger = _log,
) -> WeightingState:
    """The analysis' weighting state before the rounds (see the module docstring, step 2)."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    samples = [str(s) for s in design.index]
    sheet = read_sample_sheet(samples_path, sample_id)
    w = spec.weighting
    kind = values_kind(spec, input_scale)
    state = WeightingState(values=kind, samples=samples)
    if w.block is not None:
        state.block = block_of(sheet, w.block, samples)
        state.block_column = w.block
        if w.correlation is not None:
            state.correlation = float(w.correlation)
            state.history.append({"step": "correlation given", "correlation": state.correlation})
    if w.sample_weights is not None:
        state.sample_weights = sample_weights_of(sheet, w.sample_weights, samples)
        state.sample_weights_source = f"sample sheet column {w.sample_weights!r}"
        if kind == "voom":
            state.voom_prior_weights = state.sample_weights  # voom(y, design, weights = sw)
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    if kind == "input" and (state.sample_weights is not None or w.array_weights):
        state.complete = not _any_missing(rows)  # limma's NoProbeWts (lm.series, gls.series)
    if w.array_weights:
        _, Y = rows.all_rows()
        E = _values(kind, Y, rows.lib)
        del Y
        state.sample_weights = array_weights(E, X)
        state.sample_weights_source = "arrayWeights"
        state.history.append({"step": "arrayWeights", "sample_weights": state.sample_weights})
        log.info(
            "arrayWeights: %.4g .. %.4g", state.sample_weights.min(), state.sample_weights.max()
        )
    if kind == "voom" and w.weights == "voom_quality":
        _voom_quality(rows, X, state, spec, log)
    if kind == "voom" and w.weights == "voom" and w.block is not None and w.correlation is not None:
        state.voom_correlation = state.correlation
    state.save(state_path)
    return state


def _quality_weights(Y, X, lib, block=None, correlation=None):
    """limma's voomWithQualityWeights step by step (the calls of
    :func:`stacklm.limma.voomquality.voom_with_quality_weights`): ``v <- voom(y, design);
    aw1 <- arrayWeights(v, design); v <- voom(y, design, weights = aw1); aw2 <- arrayWeights(v,
    design)``.  Returns ``(v, aw1, aw2)``: the final weights are ``v$weights`` times ``aw2``, and
    aw1 is kept because pass 2 refits voom's fit with it."""
    kw = dict(lib_size=lib, span=VOOM_SPAN, block=block, correlation=correlation)
    v = voom(Y, X, save_plot=False, **kw)
    aw1 = array_weights(v.E, X, weights=v.weights, method="genebygene")
    v = voom(Y, X, weights=aw1, save_plot=True, **kw)
    aw2 = array_weights(v.E, X, weights=v.weights, method="genebygene")
    return v, aw1, aw2


def _voom_quality(rows: AnalysisRows, X, state: WeightingState, spec: AnalysisSpec, log) -> None:
    """limma's voomWithQualityWeights on the analysis' kept counts (and with a block the recipe
    ``vq <- voomWithQualityWeights(y, design); c <- duplicateCorrelation(vq, design, block);
    vq <- voomWithQualityWeights(y, design, block, correlation = c$consensus);
    c <- duplicateCorrelation(vq, design, block)``), into the state."""
    ids, Y = rows.all_rows()
    block = state.block
    given = spec.weighting.correlation
    if block is not None and given is None:
        v, _, aw = _quality_weights(Y, X, rows.lib)
        c1 = duplicate_correlation(v.E, X, block=block, weights=v.weights * aw, trim=DUPCOR_TRIM)
        state.history.append(_dupcor_record("duplicateCorrelation (voomWithQualityWeights)", c1))
        log.info("round 1 consensus correlation %.6g", c1.consensus)
        v, aw1, aw = _quality_weights(Y, X, rows.lib, block=block, correlation=c1.consensus)
        state.voom_correlation = c1.consensus
        c2 = duplicate_correlation(v.E, X, block=block, weights=v.weights * aw, trim=DUPCOR_TRIM)
        state.history.append(
            _dupcor_record("duplicateCorrelation (voomWithQualityWeights, block)", c2)
        )
        state.correlation = c2.consensus
        state.correlation_estimated = True
        state.atanh = c2.atanh_correlations
        state.atanh_ids = ids
        state.n_not_converged = c2.n_not_converged
        log.info("round 2 consensus correlation %.6g", c2.consensus)
    elif block is not None:
        v, aw1, aw = _quality_weights(Y, X, rows.lib, block=block, correlation=given)
        state.voom_correlation = float(given)
    else:
        v, aw1, aw = _quality_weights(Y, X, rows.lib)
    state.trend = v.trend
    state.sx, state.sy = v.sx, v.sy
    state.sample_weights = aw
    state.voom_prior_weights = aw1
    state.sample_weights_source = "voomWithQualityWeights"
    state.history.append({"step": "voomWithQualityWeights", "sample_weights": aw, "span": v.span})
    log.info("voomWithQualityWeights: sample weights %.4g .. %.4g", aw.min(), aw.max())


def _dupcor_record(step: str, dc) -> dict:
    return {
        "step": step,
        "consensus_correlation": float(dc.consensus),
        "n_not_converged": int(dc.n_not_converged),
        "n_na": int(dc.n_na),
    }


# --------------------------------------------------------------------------------------------
# 3. rounds: chunk passes and their global steps
# --------------------------------------------------------------------------------------------
def round_chunk_step(
    store_path,
    design_path,
    state_path,
    task: str,
    chunk: int,
    chunks: int,
    out_path,
    libraries_path=None,
    keep_path=None,
) -> int:
    """One chunk's share of a round: ``task`` ``voom`` (voom's trend points ``sx``, ``sy`` and
    the number of rows with residual df > 0) or ``dupcor`` (per-feature atanh correlations and
    whether their REML converged), under the state of the previous step.  Returns the rows done."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    state = WeightingState.load(state_path)
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    start, stop = chunk_bounds(rows.n_features, chunks)[chunk]
    out: dict[str, list] = {"sx": [], "sy": [], "atanh": [], "not_converged": [], "ids": []}
    n_with_reps = 0
    n_rows = 0
    for ids, Y in rows.blocks(start, stop):
        n_rows += len(ids)
        out["ids"].append(np.asarray(ids).astype(str))
        if not len(ids):
            continue
        if task == "voom":
            # this round's voom fits with the current correlation (none before the first
            # duplicateCorrelation round)
            points = _voom_points(Y, X, state, rows.lib, correlation=state.correlation)
            out["sx"].append(points.sx)
            out["sy"].append(points.sy)
            n_with_reps += points.n_with_reps
        elif task == "dupcor":
            E, W = _values_and_weights(Y, X, state, rows.lib)
            rc = duplicate_correlation_rows(E, X, block=state.block, weights=W)
            out["atanh"].append(rc.atanh_correlations)
            out["not_converged"].append(rc.not_converged)
        else:
            raise ValueError(f"unknown round task {task!r}")
    arrays = {
        k: np.concatenate(v) if v else np.empty(0, dtype=bool if k == "not_converged" else float)
        for k, v in out.items()
    }
    arrays["n_with_reps"] = np.array(n_with_reps)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return n_rows


def round_global_step(
    chunk_paths: Sequence, state_path, task: str, out_path, log: logging.Logger = _log
) -> WeightingState:
    """The global step of a round: voom's lowess trend of all chunks' points, or the consensus of
    all chunks' correlations (chunks in order), into the next state."""
    state = WeightingState.load(state_path)
    parts = []
    for p in chunk_paths:
        with np.load(p, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    if task == "voom":
        sx = np.concatenate([p["sx"] for p in parts])
        sy = np.concatenate([p["sy"] for p in parts])
        n_with_reps = int(sum(int(p["n_with_reps"]) for p in parts))
        state.trend = voom_trend(sx, sy, span=VOOM_SPAN, n_with_reps=n_with_reps)
        state.sx, state.sy = sx, sy
        state.voom_correlation = state.correlation if state.block is not None else None
        state.history.append(
            {
                "step": "voom" if state.voom_correlation is None else "voom (block, correlation)",
                "n_trend_points": int(sx.size),
                "span": VOOM_SPAN,
                "correlation": state.voom_correlation,
            }
        )
        log.info("voom trend from %d features (span %g)", sx.size, VOOM_SPAN)
    elif task == "dupcor":
        atanh = np.concatenate([p["atanh"] for p in parts])
        not_converged = np.concatenate([p["not_converged"] for p in parts])
        consensus = consensus_correlation(atanh, trim=DUPCOR_TRIM)
        state.correlation = consensus
        state.correlation_estimated = True
        state.atanh = atanh
        state.atanh_ids = np.concatenate([p["ids"] for p in parts])
        state.n_not_converged = int(not_converged.sum())
        state.history.append(
            {
                "step": "duplicateCorrelation",
                "consensus_correlation": consensus,
                "n_not_converged": state.n_not_converged,
                "n_na": int(np.isnan(atanh).sum()),
            }
        )
        log.info(
            "consensus correlation %.6g (%d features; REML not converged for %d)",
            consensus,
            atanh.size,
            state.n_not_converged,
        )
    else:
        raise ValueError(f"unknown round task {task!r}")
    state.save(out_path)
    return state


# --------------------------------------------------------------------------------------------
# 4. the weighted fit of a chunk
# --------------------------------------------------------------------------------------------
def _fit(E, X, W, state: WeightingState, coef_names, feature_ids) -> LinearModelFit:
    if state.block is not None:
        return gls_series(
            E,
            X,
            block=state.block,
            correlation=state.correlation,
            weights=W,
            coef_names=coef_names,
            feature_ids=feature_ids,
        )
    if W is not None:
        return lm_wfit(E, X, W, coef_names=coef_names, feature_ids=feature_ids)
    return lm_fit(E, X, coef_names=coef_names, feature_ids=feature_ids)


def _reference_fit(X, state: WeightingState, coef_names) -> LinearModelFit:
    """A one-row fit of the analysis' kind whose ``cov_coefficients`` is the one limma gives the
    whole matrix: weighted by the sample weights only when no value is missing anywhere (R's
    NoProbeWts in lm.series / gls.series), else the design's (observation weights: always)."""
    n = X.shape[0]
    row = np.zeros((1, n)) if state.complete else np.full((1, n), np.nan)
    if state.values == "voom":
        W = np.ones((1, n))
    else:
        W = state.sample_weights
    return _fit(row, X, W, state, coef_names, np.array(["reference"]))


def weighted_fit_chunk(
    store_path,
    design_path,
    state_path,
    chunk: int,
    chunks: int,
    out_path,
    crossprod_path=None,
    libraries_path=None,
    keep_path=None,
) -> int:
    """Fit the kept rows of chunk ``chunk`` (of ``chunks``) with the analysis' final state and
    write the un-moderated fit and the sample cross-products of E, fitted values and residuals (the
    PCA diagnostics), as :func:`stacklm.workflow.pipeline.fit_chunk` does for unweighted fits.
    Returns the number of rows fitted."""
    design = read_design(design_path)
    X = design.to_numpy(dtype=np.float64)
    names = [str(c) for c in design.columns]
    state = WeightingState.load(state_path)
    if state.samples != [str(s) for s in design.index]:
        raise ValueError(f"{state_path} was made for other samples than {design_path}")
    rows = AnalysisRows(store_path, design, libraries_path, keep_path)
    start, stop = chunk_bounds(rows.n_features, chunks)[chunk]
    reference = _reference_fit(X, state, names)
    fits, cross = [], None
    for ids, Y in rows.blocks(start, stop):
        if not len(ids):
            continue
        E, W = _values_and_weights(Y, X, state, rows.lib)
        block_fit = _fit(E, X, W, state, names, ids).replace(
            cov_coefficients=reference.cov_coefficients
        )
        block_cross = chunk_cross_products(E, X, block_fit.coefficients, rows.samples)
        cross = block_cross if cross is None else cross + block_cross
        fits.append(block_fit)
    if not fits:  # no kept row in this chunk: an empty fit of the same design
        empty = {
            k: getattr(reference, k)[:0]
            for k in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean")
        }
        fits = [reference.replace(feature_ids=np.empty(0, dtype=str), extra={}, **empty)]
        cross = chunk_cross_products(
            np.empty((0, X.shape[0])), X, np.empty((0, X.shape[1])), rows.samples
        )
    fit = fits[0] if len(fits) == 1 else concat_fits(fits)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        save_fit(fit, fh)
    crossprod_path = crossprod_path or cross_products_path(out_path)
    with atomic_path(crossprod_path) as tmp, open(tmp, "wb") as fh:
        save_cross_products(cross, fh)
    return fit.n_features


# --------------------------------------------------------------------------------------------
# summary.json
# --------------------------------------------------------------------------------------------
def weighting_summary(state_path, counts_summary_path=None) -> dict:
    """The analysis' counts / weights / block entries of summary.json: library sizes and
    filterByExpr (counts), the weights (method, sample weights and where they come from, voom's
    trend), and with a block the consensus correlation, how many features' REML did not converge
    and every duplicateCorrelation round."""
    out: dict = {}
    if counts_summary_path:
        with open(counts_summary_path) as fh:
            out.update(json.load(fh))
    state = WeightingState.load(state_path)
    sw = state.sample_weights
    out["weights"] = {
        "values": {
            "voom": "voom log-CPM: log2((count + 0.5) / (effective lib.size + 1) * 1e6)",
            "logcpm": "edgeR log-CPM: cpm(y, log = TRUE, prior.count = 2)",
            "input": "the stored values",
        }[state.values],
        "observation_weights": "voom" if state.values == "voom" else None,
        "sample_weights_source": state.sample_weights_source,
        "sample_weights": None
        if sw is None
        else {s: float(v) for s, v in zip(state.samples, sw, strict=True)},
        "voom_trend_points": None if state.sx is None else int(state.sx.size),
        "steps": _plain(state.history),
    }
    if state.block is not None:
        out["block"] = {
            "column": state.block_column,
            "n_blocks": int(len(set(map(str, state.block)))),
            "consensus_correlation": state.correlation,
            "estimated": state.correlation_estimated,
            "n_not_converged": state.n_not_converged,
            "n_na": None if state.atanh is None else int(np.isnan(state.atanh).sum()),
            "n_features": None if state.atanh is None else int(state.atanh.size),
            "voom_correlation": state.voom_correlation,
        }
    return out


def _plain(obj):
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def weighting_moderate_extend(state_path, counts_summary_path=None):
    """The ``extend`` hook of :func:`stacklm.workflow.analysis_steps.moderate_step` for a weighted
    analysis: no extra columns, and the counts / weights / block entries of summary.json
    (:func:`weighting_summary`)."""

    def extend(table, fit, spec, normalized):
        return table, weighting_summary(state_path, counts_summary_path)

    return extend


def weighting_plots_step(
    plots: Mapping, state_path, libraries_path=None, analysis_name: str = ""
) -> None:
    """Draw an analysis' counts / weights diagnostics: ``plots`` maps each plot
    (``library_sizes``, ``voom_trend``, ``sample_weights``, ``block_correlation``) to its (PNG,
    data table) paths; from the final state and the library sizes."""
    from stacklm.plots.style import Labels, labelled
    from stacklm.plots.weighting import (
        plot_block_correlation,
        plot_library_sizes,
        plot_sample_weights,
        plot_voom_trend,
    )

    state = WeightingState.load(state_path)
    with labelled(Labels(analysis=analysis_name)):
        for plot, (png, data_path) in plots.items():
            if plot == "library_sizes":
                plot_library_sizes(read_libraries(libraries_path).reset_index(), png, data_path)
            elif plot == "voom_trend":
                plot_voom_trend(state.sx, state.sy, state.trend, png, data_path)
            elif plot == "sample_weights":
                plot_sample_weights(
                    state.samples,
                    state.sample_weights,
                    state.sample_weights_source,
                    png,
                    data_path,
                )
            elif plot == "block_correlation":
                plot_block_correlation(
                    state.atanh,
                    state.correlation,
                    state.atanh_ids,
                    state.n_not_converged,
                    state.correlation_estimated,
                    png,
                    data_path,
                )
            else:
                raise ValueError(f"unknown counts / weights plot {plot!r}")


def setup_with_counts_step(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    state_path,
    normalize_method: str | None = None,
    libraries_path=None,
    keep_path=None,
    counts_summary_path=None,
    log: logging.Logger = _log,
) -> WeightingState:
    """The workflow's setup job: :func:`counts_step` (counts input) then :func:`setup_step`."""
    if input_scale == "counts":
        counts_step(
            store_path,
            design_path,
            spec,
            normalize_method,
            libraries_path,
            keep_path,
            counts_summary_path,
            log=log,
        )
    return setup_step(
        store_path,
        design_path,
        samples_path,
        sample_id,
        spec,
        input_scale,
        state_path,
        libraries_path,
        keep_path,
        log=log,
    )


# --------------------------------------------------------------------------------------------
# all steps in order (what the workflow's rules run), for tests and notebooks
# --------------------------------------------------------------------------------------------
def run_weighted_chunks(
    store_path,
    design_path,
    samples_path,
    sample_id: str,
    spec: AnalysisSpec,
    input_scale: str,
    workdir,
    chunks: int,
    normalize_method: str | None = None,
    log: logging.Logger = _log,
) -> dict:
    """Run an analysis' counts step, setup, rounds and chunk fits in ``workdir`` as the workflow's
    rules do (one process, chunk by chunk).  Returns the paths: ``fits`` (the chunk fit files, in
    order), ``state`` (the final state), ``libraries``, ``keep`` and ``counts_summary`` (None
    without counts)."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    libraries = keep = counts_summary = None
    if input_scale == "counts":
        libraries = work / "libraries.tsv"
        keep = work / "filter_by_expr.tsv.gz"
        counts_summary = work / "counts_summary.json"
        counts_step(
            store_path, design_path, spec, normalize_method, libraries, keep, counts_summary, log
        )
    state = work / "setup.npz"
    setup_step(
        store_path,
        design_path,
        samples_path,
        sample_id,
        spec,
        input_scale,
        state,
        libraries,
        keep,
        log=log,
    )
    for r, task in enumerate(weighting_rounds(spec, input_scale), start=1):
        parts = []
        for c in range(chunks):
            part = work / f"round_{r}" / f"chunk_{c}.npz"
            part.parent.mkdir(exist_ok=True)
            round_chunk_step(store_path, design_path, state, task, c, chunks, part, libraries, keep)
            parts.append(part)
        nxt = work / f"round_{r}.npz"
        round_global_step(parts, state, task, nxt, log=log)
        state = nxt
    fits = []
    for c in range(chunks):
        out = work / "fit" / f"chunk_{c}.npz"
        out.parent.mkdir(exist_ok=True)
        weighted_fit_chunk(
            store_path, design_path, state, c, chunks, out, libraries_path=libraries, keep_path=keep
        )
        fits.append(out)
    return {
        "fits": fits,
        "state": state,
        "libraries": libraries,
        "keep": keep,
        "counts_summary": counts_summary,
    }
