"""The workflow's counts / weights / block steps (stacklm.workflow.weighting) run as the rules run
them, chunk by chunk, without Snakemake: against R (edgeR 3.40.2 + limma 3.63.2 on the 2,000-gene
counts subset, tests/data/counts and tests/data/counts_workflow/make_reference.R; the continuous
block references of tests/data/dupcor) and against the one-shot library calls for several numbers
of chunks (issues 16 and 17)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_matches, read_table

from stacklm.analysis import moderate_and_test
from stacklm.design.analysis import analysis_design
from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.filterbyexpr import filter_by_expr
from stacklm.io.matrix import read_matrix
from stacklm.io.outputs import write_tsv
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.limma.dupcor import duplicate_correlation
from stacklm.limma.glsseries import gls_series
from stacklm.limma.voom import voom
from stacklm.limma.voomquality import voom_with_quality_weights
from stacklm.limma.weightedfit import lm_wfit
from stacklm.spec import AnalysisSpec
from stacklm.workflow.config import validate_config
from stacklm.workflow.pipeline import merge_chunk_fits, normalize_matrix
from stacklm.workflow.weighting.counts import counts_step
from stacklm.workflow.weighting.rows import read_keep, read_libraries
from stacklm.workflow.weighting.run import run_weighted_chunks
from stacklm.workflow.weighting.state import WeightingState
from stacklm.workflow.weighting.summary import weighting_summary

DATA = Path(__file__).resolve().parents[1] / "data"
COUNTS = DATA / "counts"
REF = DATA / "counts_workflow"
DUPCOR = DATA / "dupcor"
SHEET = REF / "samples.tsv"  # tests/data/counts/samples.tsv with a sample-weight column
BASE = {
    "formula": "~ treatment + region + sex",
    "levels": {"treatment": ["before", "after"], "region": ["Agadir", "Desert", "Mountain"]},
    "test": ["regionDesert", "regionMountain"],
}
COEFS = ["treatmentafter", "regionDesert", "regionMountain", "sexM"]
#: agreement with R: relative, with an absolute floor for statistics near 0 (measured <= 1.1e-10)
R_RTOL, R_ATOL = 1e-9, 1e-12
#: chunked vs one-shot: relative, abs. floor (measured: bit-equal on complete counts; <= 4.4e-13
#: relative on t / s2.post with missing values)
CHUNK_RTOL, CHUNK_ATOL = 1e-12, 1e-12


def _spec(input_scale="counts", **settings):
    config = validate_config(
        {
            "matrix": "m",
            "samples": "s",
            "input_scale": input_scale,
            "analyses": {"a": dict(BASE, **settings)},
        }
    )
    return AnalysisSpec.from_settings("a", config["analyses"]["a"]), config


@pytest.fixture(scope="module")
def count_store(tmp_path_factory):
    work = tmp_path_factory.mktemp("counts_store")
    store = work / "store"
    normalize_matrix(COUNTS / "counts.tsv.gz", store, input_scale="counts", filters={})
    return store


def _design(spec, sheet_path, work, matrix_samples):
    sheet = read_sample_sheet(sheet_path, "sample_id")
    design, _ = analysis_design(sheet, matrix_samples, spec)
    path = work / "design.tsv"
    write_tsv(design.rename_axis("sample_id"), path, index=True)
    return design, path


def _run(store, work, chunks, input_scale="counts", sheet=SHEET, **settings):
    """The analysis through the workflow's steps: (results table, paths, spec, design)."""
    spec, config = _spec(input_scale, **settings)
    samples = read_matrix(COUNTS / "counts.tsv.gz")[1] if input_scale == "counts" else None
    if samples is None:
        samples = open_binary_matrix(store, load_feature_ids=False).samples
    work.mkdir(parents=True, exist_ok=True)
    design, design_path = _design(spec, sheet, work, samples)
    paths = run_weighted_chunks(
        store,
        design_path,
        sheet,
        "sample_id",
        spec,
        input_scale,
        work / "w",
        chunks,
        config["normalize"]["method"],
    )
    fit = merge_chunk_fits(paths["fits"])
    table, stats, _ = moderate_and_test(fit, {}, list(spec.test), asdict(spec.moderation))
    return table, stats, paths, spec, design


def _kept_counts(design):
    ids, _, Y = read_matrix(COUNTS / "counts.tsv.gz")
    X = design.to_numpy(dtype=float)
    keep = filter_by_expr(Y, X)
    k = Y[keep]
    lib = k.sum(axis=0)
    return ids[keep], k, lib, calc_norm_factors(k, lib_size=lib)


def _assert_r(table, ref_path, columns=None):
    ref = read_table(ref_path).set_index("feature_id")
    t = table.set_index("feature_id").loc[ref.index]
    pairs = columns or {
        "s2_post": "s2.post",
        "estimate_treatmentafter": "coefficients.treatmentafter",
        "t_treatmentafter": "t.treatmentafter",
        "p_treatmentafter": "p.value.treatmentafter",
        "statistic": "F",
        "p_value": "F.p.value",
    }
    worst = 0.0
    for ours, theirs in pairs.items():
        a = t[ours].to_numpy(dtype=float)
        b = ref[theirs].to_numpy(dtype=float)
        np.testing.assert_allclose(a, b, rtol=R_RTOL, atol=R_ATOL, err_msg=f"{ours} vs {theirs}")
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), R_ATOL))))
    return worst


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, lods_rtol: float = CHUNK_RTOL):
    """Every column within 1e-12 relative (abs. floor 1e-12), NaN in the same places: bit-equal
    on complete counts.  With missing values eBayes' prior (R's optimize in fitFDistUnequalDF1)
    turns last-bit differences of the chunks' sigma (<= 4e-16) into ~4e-13 of s2.post, and the
    B-statistics' var.prior into ~7e-12 of lods (``lods_rtol``)."""
    assert list(a.columns) == list(b.columns)
    assert (a["feature_id"].to_numpy() == b["feature_id"].to_numpy()).all()
    for c in a.columns[1:]:
        rtol = lods_rtol if c.startswith("lods_") else CHUNK_RTOL
        assert_matches(a[c], b[c], c, rtol=rtol, atol=CHUNK_ATOL)


def _scalars():
    out = {}
    for line in (REF / "scalars.tsv").read_text().splitlines():
        k, v = line.split("\t")
        out[k] = np.array([float(x) for x in v.split(",")])
    return out


# ------------------------------------------------------------------------------------------------
# counts step: filterByExpr and calcNormFactors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["TMM", "TMMwsp", "upperquartile", "none"])
def test_library_sizes_and_keep_flags_are_edgers(count_store, tmp_path, method):
    spec, _ = _spec()
    design, design_path = _design(spec, SHEET, tmp_path, read_matrix(COUNTS / "counts.tsv.gz")[1])
    summary = counts_step(
        count_store,
        design_path,
        spec,
        method,
        tmp_path / "libraries.tsv",
        tmp_path / "keep.tsv.gz",
        tmp_path / "summary.json",
    )
    _, keep = read_keep(tmp_path / "keep.tsv.gz")
    flags = read_table(COUNTS / "filter_by_expr.tsv.gz")
    assert (keep == flags["design"].to_numpy(dtype=bool)).all()
    nf = read_table(COUNTS / "norm_factors.tsv").set_index("sample_id")
    libs = read_libraries(tmp_path / "libraries.tsv").loc[nf.index]
    assert (libs["lib_size"].to_numpy() == nf["lib.size.kept"].to_numpy()).all()
    np.testing.assert_allclose(libs["norm_factors"], nf[method], rtol=1e-14)
    np.testing.assert_array_equal(
        libs["effective_lib_size"], libs["lib_size"] * libs["norm_factors"]
    )
    counts = summary["counts"]
    assert counts["n_features_kept"] == 1815 and counts["n_removed_by_filter_by_expr"] == 185
    assert counts["normalize_method"] == method and len(counts["libraries"]) == 24


# ------------------------------------------------------------------------------------------------
# against R (limma 3.63.2): every recipe of README "RNA-seq counts" / "Paired and repeated samples"
# ------------------------------------------------------------------------------------------------
def test_voom_matches_limma(count_store, tmp_path):
    table, stats, *_ = _run(count_store, tmp_path, 3)
    ref = read_table(COUNTS / "voom_ebayes.tsv.gz").set_index("feature_id")
    assert list(table["feature_id"]) == list(ref.index)
    pairs = {"sigma": "sigma", "average": "Amean", "s2_post": "s2.post"}
    for c in COEFS:
        pairs |= {
            f"estimate_{c}": f"coefficients.{c}",
            f"t_{c}": f"t.{c}",
            f"p_{c}": f"p.value.{c}",
        }
    pairs |= {"statistic": "F", "p_value": "F.p.value"}
    worst = _assert_r(table, COUNTS / "voom_ebayes.tsv.gz", pairs)
    print(f"voom vs limma: max relative difference {worst:.2e}")
    assert stats["df_prior"] == pytest.approx(26.911509127583567, rel=1e-12)


@pytest.mark.parametrize(
    "case, settings",
    [
        ("voom_block", {"block": "donor"}),
        ("logcpm_trend", {"weights": "none", "moderation": {"trend": True}}),
        ("logcpm_block_trend", {"weights": "none", "moderation": {"trend": True}, "block": "donor"}),
        ("voomqw_block", {"weights": "voom_quality", "block": "donor"}),
        ("voom_sample_weights", {"sample_weights": "weight"}),
        (
            "logcpm_aw_block_trend",
            {"weights": "none", "array_weights": True, "block": "donor", "moderation": {"trend": True}},
        ),
        ("voom_block_given", {"block": "donor", "correlation": 0.3}),
    ],
)  # fmt: skip
def test_recipes_match_limma(count_store, tmp_path, case, settings):
    table, _, paths, *_ = _run(count_store, tmp_path, 3, **settings)
    worst = _assert_r(table, REF / f"{case}.tsv.gz")
    print(f"{case} vs limma: max relative difference {worst:.2e}")
    state = WeightingState.load(paths["state"])
    sc = _scalars()
    if case in ("voom_block", "voomqw_block"):
        assert state.voom_correlation == pytest.approx(sc[f"{case}.c1"][0], rel=1e-10)
        assert state.correlation == pytest.approx(sc[f"{case}.c2"][0], rel=1e-10)
    if case == "logcpm_block_trend":
        assert state.correlation == pytest.approx(sc["logcpm_block.c"][0], rel=1e-10)
    if case == "logcpm_aw_block_trend":
        assert state.correlation == pytest.approx(sc["logcpm_aw_block.c"][0], rel=1e-10)
        np.testing.assert_allclose(
            state.sample_weights, sc["logcpm_aw_block.sample_weights"], rtol=1e-12
        )
    if case == "voomqw_block":
        np.testing.assert_allclose(
            state.sample_weights, sc["voomqw_block.sample_weights"], rtol=1e-12
        )
    if case == "voom_block":  # per-feature atanh correlations of the last round
        ref = read_table(REF / "voom_block_atanh.tsv.gz")
        assert list(state.atanh_ids) == list(ref["feature_id"])
        np.testing.assert_allclose(state.atanh, ref["atanh.correlations"], rtol=0, atol=1e-6)
        close = np.abs(state.atanh - ref["atanh.correlations"].to_numpy()) <= 1e-8
        assert close.mean() > 0.99
        summary = weighting_summary(paths["state"], paths["counts_summary"])
        assert summary["block"]["consensus_correlation"] == state.correlation
        assert summary["block"]["column"] == "donor" and summary["block"]["estimated"]
        assert summary["block"]["n_not_converged"] >= 0
        assert [s["step"] for s in summary["weights"]["steps"]] == [
            "voom",
            "duplicateCorrelation",
            "voom (block, correlation)",
            "duplicateCorrelation",
        ]


# ------------------------------------------------------------------------------------------------
# chunks: the same numbers as the one-shot library calls, for any number of chunks
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_shot(count_store, tmp_path_factory):
    """The library calls of each recipe on the whole kept matrix at once."""
    spec, _ = _spec()
    work = tmp_path_factory.mktemp("one_shot")
    design, _ = _design(spec, SHEET, work, read_matrix(COUNTS / "counts.tsv.gz")[1])
    X = design.to_numpy(dtype=float)
    ids, k, lib, nf = _kept_counts(design)
    block = read_sample_sheet(SHEET, "sample_id").loc[design.index, "donor"].tolist()
    out = {}
    v = voom(k, X, lib_size=lib, norm_factors=nf)
    out["voom"] = lm_wfit(v.E, design, v.weights, feature_ids=ids)
    c1 = duplicate_correlation(v.E, X, block=block, weights=v.weights).consensus
    v2 = voom(k, X, lib_size=lib, norm_factors=nf, block=block, correlation=c1)
    c2 = duplicate_correlation(v2.E, X, block=block, weights=v2.weights).consensus
    out["block"] = gls_series(v2.E, design, block, c2, weights=v2.weights, feature_ids=ids)
    vq = voom_with_quality_weights(k, X, lib_size=lib, norm_factors=nf)
    out["quality"] = lm_wfit(vq.E, design, vq.weights, feature_ids=ids)
    tables = {}
    for name, fit in out.items():
        tables[name] = moderate_and_test(fit, {}, list(spec.test), asdict(spec.moderation))[0]
    return tables


@pytest.mark.parametrize("chunks", [1, 4, 7])
@pytest.mark.parametrize(
    "name, settings",
    [("voom", {}), ("block", {"block": "donor"}), ("quality", {"weights": "voom_quality"})],
)
def test_chunks_equal_one_shot(count_store, tmp_path, one_shot, name, settings, chunks):
    table, *_ = _run(count_store, tmp_path, chunks, **settings)
    _assert_same(table, one_shot[name])


def test_voom_quality_steps_are_the_library_function(count_store, tmp_path):
    """The setup step's voomWithQualityWeights (step by step, keeping the first arrayWeights for
    pass 2) gives the library function's sample weights and trend."""
    _, _, paths, spec, design = _run(count_store, tmp_path, 2, weights="voom_quality")
    _, k, lib, nf = _kept_counts(design)
    vq = voom_with_quality_weights(k, design.to_numpy(dtype=float), lib_size=lib, norm_factors=nf)
    state = WeightingState.load(paths["state"])
    np.testing.assert_array_equal(state.sample_weights, vq.sample_weights)
    np.testing.assert_array_equal(state.trend.knots_y, vq.trend.knots_y)
    ref = read_table(DATA / "counts_quality" / "voomqw_sample_weights.tsv")
    np.testing.assert_allclose(state.sample_weights, ref["genebygene"], rtol=1e-13)


# ------------------------------------------------------------------------------------------------
# continuous input: blocks with missing values, sample weights with a given correlation
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def logcpm_inputs(tmp_path_factory):
    """tests/data/dupcor's log-CPM (1,500 genes x 24) as continuous input: complete, and with its
    missing cells (the all-missing row left out, as R's eBayes leaves it out); the sample sheet
    with the donors and the array weights as a column."""
    work = tmp_path_factory.mktemp("logcpm")
    lcpm = read_table(DUPCOR / "logcpm.tsv.gz", index_col=0)
    na = read_table(DUPCOR / "na_cells.tsv")
    with_na = lcpm.copy()
    values = with_na.to_numpy().copy()
    values[na["row"].to_numpy() - 1, na["col"].to_numpy() - 1] = np.nan
    with_na = pd.DataFrame(values, index=lcpm.index, columns=lcpm.columns).iloc[1:]
    stores = {}
    for name, table in (("complete", lcpm), ("na", with_na)):
        path = work / f"{name}.tsv.gz"
        write_tsv(table.rename_axis("feature_id"), path, index=True)
        stores[name] = work / f"{name}_store"
        normalize_matrix(path, stores[name], filters={"max_missing": 1.0})
    sheet = read_table(DUPCOR / "design.tsv")[["sample_id", "donor"]]
    sheet["treatment"] = np.where(
        read_table(DUPCOR / "design.tsv")["treatmentafter"] == 1, "after", "before"
    )
    base = read_table(COUNTS / "samples.tsv").set_index("sample_id").loc[sheet["sample_id"]]
    sheet["region"] = base["region"].to_numpy()
    sheet["sex"] = base["sex"].to_numpy()
    sheet["aw"] = read_table(DUPCOR / "array_weights.tsv")["weight"].to_numpy()
    sheet_path = work / "samples.tsv"
    sheet.to_csv(sheet_path, sep="\t", index=False, float_format="%.17g")
    return stores, sheet_path


def _gls_pairs():
    pairs = {f"t_{c}": f"t.{c}" for c in COEFS} | {f"p_{c}": f"p.value.{c}" for c in COEFS}
    return pairs | {"statistic": "F", "p_value": "F.p.value", "df_residual": "df.residual"}


def test_continuous_block_with_missing_values_matches_limma(logcpm_inputs, tmp_path):
    stores, sheet = logcpm_inputs
    settings = {"block": "donor", "moderation": {"trend": True}}
    table, _, paths, *_ = _run(stores["na"], tmp_path, 3, "expression", sheet, **settings)
    state = WeightingState.load(paths["state"])
    consensus = float(
        dict(line.split("\t") for line in (DUPCOR / "scalars.tsv").read_text().splitlines())[
            "consensus.logcpm_na"
        ]
    )
    assert state.correlation == pytest.approx(consensus, rel=1e-10)
    worst = _assert_r(table, DUPCOR / "gls_logcpm_na.tsv.gz", _gls_pairs())
    print(f"block, missing values vs limma: max relative difference {worst:.2e}")
    one, *_ = _run(stores["na"], tmp_path / "one", 1, "expression", sheet, **settings)
    _assert_same(table, one)


def test_continuous_sample_weights_and_given_correlation_match_limma(logcpm_inputs, tmp_path):
    """Prior sample weights from the sheet with a given (negative) correlation: gls.series' fast
    path, whose cov.coefficients is the weighted one (the F test uses it)."""
    stores, sheet = logcpm_inputs
    settings = {"block": "donor", "correlation": -0.05, "sample_weights": "aw",
                "moderation": {"trend": True}}  # fmt: skip
    table, *_ = _run(stores["complete"], tmp_path, 3, "expression", sheet, **settings)
    worst = _assert_r(table, DUPCOR / "gls_logcpm_aw_rhoneg.tsv.gz", _gls_pairs())
    print(f"sample weights, given correlation vs limma: max relative difference {worst:.2e}")


def test_chunks_without_kept_features(count_store, tmp_path):
    """filterByExpr keeping 120 of 2,000 features over 100 chunks: many chunks keep no row and
    write an empty fit of the same design; the merged results are those of one chunk."""
    settings = {"filter_by_expr": {"min_count": 5000}, "block": "donor"}
    many, *_ = _run(count_store, tmp_path / "many", 100, **settings)
    one, *_ = _run(count_store, tmp_path / "one", 1, **settings)
    assert len(one) == 120
    _assert_same(many, one)


def test_continuous_sample_weights_with_missing_values_in_one_chunk(logcpm_inputs, tmp_path):
    """Sample weights on continuous values with missing values in the first rows only: limma's
    cov.coefficients (which the F test uses) is the unweighted one for the whole matrix, also in
    the chunks without a missing value, so chunks equal the one-shot lm_wfit."""
    stores, sheet = logcpm_inputs
    lcpm = read_table(DUPCOR / "logcpm.tsv.gz", index_col=0)
    values = lcpm.to_numpy().copy()
    values[[0, 1, 2], [3, 7, 11]] = np.nan
    table = pd.DataFrame(values, index=lcpm.index, columns=lcpm.columns)
    path = tmp_path / "few_na.tsv.gz"
    write_tsv(table.rename_axis("feature_id"), path, index=True)
    store = tmp_path / "store"
    normalize_matrix(path, store, filters={"max_missing": 1.0})
    chunked, _, _, spec, design = _run(store, tmp_path, 4, "expression", sheet, sample_weights="aw")
    aw = read_sample_sheet(sheet, "sample_id").loc[design.index, "aw"].to_numpy(dtype=float)
    fit = lm_wfit(table[list(design.index)], design, aw)
    ref = moderate_and_test(fit, {}, list(spec.test), asdict(spec.moderation))[0]
    _assert_same(chunked, ref, lods_rtol=1e-10)
