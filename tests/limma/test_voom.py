"""limma 3.63.2 voom against R on 1,815 filtered genes x 24 samples (tests/data/counts,
make_reference.R): E, weights, the trend points and lowess line, eBayes on the weighted fit (t, p,
F over the region coefficients), variants (prior sample weights, adaptive span, span 0.3, no
design, column-sum library sizes, unfiltered counts with all-zero genes, block = donor with a
correlation), and the chunked
(two-pass) form equal to the one-shot call."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_json, read_table
from limma_columns import reference_columns

from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.filterbyexpr import filter_by_expr
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.loessfit import choose_lowess_span
from stacklm.limma.voom import (
    VoomTrend,
    voom,
    voom_trend,
    voom_trend_points,
    voom_weights,
)
from stacklm.limma.weightedfit import lm_wfit

DATA = TEST_DATA / "counts"
# lowess sums are numpy (pairwise) sums, R's are sequential: measured 7e-14 on the weights
RTOL = 1e-12
F_COEFS = ["regionDesert", "regionMountain"]


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0)
    design = read_table(DATA / "design.tsv", index_col=0)
    keep = filter_by_expr(counts, design)
    kept = counts.to_numpy(dtype=np.float64)[keep]
    lib = kept.sum(axis=0)
    nf = calc_norm_factors(kept, lib)
    return counts, design, keep, kept, lib, nf


@pytest.fixture(scope="module")
def v(data):
    _, design, _, kept, lib, nf = data
    return voom(kept, design, lib_size=lib, norm_factors=nf)


def test_voom_matches_limma(data, v):
    _, _, keep, kept, lib, nf = data
    assert keep.sum() == 1815
    assert_matches(v.lib_size, lib * nf, "lib.size", rtol=0)
    assert_matches(v.E[:200], read_table(DATA / "voom_E.tsv.gz", index_col=0).to_numpy(), "E", RTOL)
    ref_w = read_table(DATA / "voom_weights.tsv.gz", index_col=0).to_numpy()
    assert_matches(v.weights, ref_w, "weights", RTOL)
    trend = read_table(DATA / "voom_trend.tsv.gz")
    assert_matches(v.sx, trend["sx"].to_numpy(), "voom.xy$x", RTOL)
    assert_matches(v.sy, trend["sy"].to_numpy(), "voom.xy$y", RTOL)
    assert_matches(v.trend.line_x, trend["line_x"].to_numpy(), "voom.line$x", RTOL)
    assert_matches(v.trend.line_y, trend["line_y"].to_numpy(), "voom.line$y", RTOL)
    assert v.span == 0.5


def test_voom_ebayes_matches_limma(data, v):
    counts, design, keep, *_ = data
    fit = lm_wfit(v.E, design, v.weights, feature_ids=counts.index[keep])
    eb = e_bayes(fit)
    ours = reference_columns(eb, F_COEFS)
    ref = read_table(DATA / "voom_ebayes.tsv.gz", index_col=0)
    assert list(ref.index) == list(fit.feature_ids)
    compared = 0
    for col in ref.columns:
        assert_matches(ours[col], ref[col].to_numpy(), col, rtol=1e-10)
        compared += 1
    assert compared == 4 + 4 * 5 + 2
    meta = read_json(DATA / "voom_ebayes.json")
    assert_matches(eb.s2_prior, meta["s2.prior"], "s2.prior", rtol=1e-12)
    assert_matches(eb.df_prior, meta["df.prior"], "df.prior", rtol=1e-12)


def test_voom_variants_match_limma(data):
    counts, design, keep, kept, lib, nf = data
    scalars = json.loads((DATA / "voom_scalars.json").read_text())
    sw = np.array(scalars["sample.weights"])
    runs = {
        "sw": voom(kept, design, lib, nf, weights=sw),
        "adaptive": voom(kept, design, lib, nf, adaptive_span=True),
        "nodesign": voom(kept, None, lib, nf),
        "matrix": voom(kept, design),  # R: voom(counts matrix, design), lib.size = colSums
        "span03": voom(kept, design, lib, nf, span=0.3),
    }
    for name, res in runs.items():
        ref = read_table(DATA / f"voom_weights_{name}.tsv.gz", index_col=0).to_numpy()
        assert_matches(res.weights[:200], ref, name, RTOL)
    assert_matches(runs["adaptive"].span, scalars["adaptive.span"], "span", rtol=1e-15)
    assert runs["adaptive"].span == choose_lowess_span(1815)
    # unfiltered counts, TMM on all genes: the genes with only zero counts leave the trend
    all_counts = counts.to_numpy(dtype=np.float64)
    nf_all = calc_norm_factors(all_counts)
    assert_matches(nf_all, scalars["norm.factors.unfiltered"], "TMM unfiltered", rtol=1e-12)
    res = voom(all_counts, design, norm_factors=nf_all)
    assert res.sx.size == all_counts.shape[0] - scalars["allzero.first2000"]
    assert scalars["allzero.first2000"] > 0
    ref = read_table(DATA / "voom_weights_unfiltered.tsv.gz", index_col=0).to_numpy()
    assert_matches(res.weights[:200], ref, "unfiltered", RTOL)


def test_voom_block_matches_limma(data):
    """voom(y, design, block = donor, correlation = consensus): the trend from limma's gls.series
    fit (stacklm.limma.glsseries)."""
    _, design, _, kept, lib, nf = data
    samples = read_table(DATA / "samples.tsv")
    scalars = json.loads((DATA / "voom_scalars.json").read_text())
    res = voom(
        kept,
        design,
        lib,
        nf,
        block=samples["donor"].to_numpy(),
        correlation=scalars["block.correlation"],
    )
    ref = read_table(DATA / "voom_weights_block.tsv.gz", index_col=0).to_numpy()
    assert_matches(res.weights[:200], ref, "block", RTOL)
    plain = read_table(DATA / "voom_weights.tsv.gz", index_col=0).to_numpy()[:200]
    assert np.max(np.abs(ref / plain - 1)) > 1e-3  # the block fit does change the weights


def test_chunked_voom_equals_one_shot(data, v):
    """Pass 1 per chunk (trend points), one global lowess, pass 2 per chunk (weights from the
    global trend, weighted fit): the one-shot call's numbers, for three chunks of unequal size.
    Not always the same bits: OpenBLAS's matrix products may round a row by where it falls in the
    kernel's blocks (its Haswell kernel, which it picks on AMD EPYC, gave the last row of a chunk
    a sigma one bit apart, and every array within 7e-16 of its largest value; its SkylakeX kernel
    gives the same bits), so the chunked numbers agree to 1e-13 of each array's largest value."""
    _, design, _, kept, lib, nf = data
    design = design.to_numpy()
    parts = np.split(np.arange(kept.shape[0]), [601, 1390])
    eff = lib * nf  # the analysis' library sizes, not the chunks' column sums
    first = [voom_trend_points(kept[p], design, eff) for p in parts]
    trend = voom_trend(
        np.concatenate([q.sx for q in first]),
        np.concatenate([q.sy for q in first]),
        span=0.5,
        n_with_reps=sum(q.n_with_reps for q in first),
    )
    # the trend travels between jobs as plain numbers
    trend = VoomTrend.from_parameters(json.loads(json.dumps(trend.parameters())))
    second = [voom_trend_points(kept[p], design, eff) for p in parts]
    weights = np.concatenate([voom_weights(q.fitted_logcount, trend) for q in second])
    E = np.concatenate([q.E for q in second])
    assert np.array_equal(E, v.E)  # elementwise: the same bits on every kernel
    _assert_close_to_largest(trend.line_y, v.trend.line_y, "trend")
    _assert_close_to_largest(weights, v.weights, "weights")
    whole = lm_wfit(v.E, design, v.weights)
    fits = [lm_wfit(E[p], design, weights[p]) for p in parts]
    for name in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        chunked = np.concatenate([getattr(f, name) for f in fits])
        _assert_close_to_largest(chunked, getattr(whole, name), name)


def _assert_close_to_largest(values, expected, name, tol=1e-13):
    """``values`` equal ``expected`` to ``tol`` of the largest ``|expected|`` (NaN where it is)."""
    scale = float(np.nanmax(np.abs(expected)))
    assert_matches(values, expected, name, rtol=tol, atol=tol * scale)


def test_trend_function_is_rs_approxfun():
    # ties in the lowess line are averaged (ties = list("ordered", mean)); constant beyond the ends
    t = VoomTrend(
        line_x=np.array([1.0, 2.0, 2.0, 4.0]),
        line_y=np.array([1.0, 2.0, 4.0, 5.0]),
        knots_x=np.array([1.0, 2.0, 4.0]),
        knots_y=np.array([1.0, 3.0, 5.0]),
        span=0.5,
    )
    out = t(np.array([0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 9.0, np.nan]))
    assert out[:7].tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    assert np.isnan(out[7])
    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 6.0, 7.0])
    y = np.array([0.5, 0.7, 0.9, 0.6, 0.8, 0.75, 0.7, 0.65])
    tr = voom_trend(x, y, span=0.9)
    assert tr.knots_x.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert tr.line_x.tolist() == sorted(x)


def test_voom_no_replication_and_errors():
    counts = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 4.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = voom(counts, np.eye(2))
    assert any("no replication" in str(w.message) for w in caught)
    assert np.array_equal(res.weights, np.ones((3, 2)))
    with pytest.raises(ValueError, match="Negative"):
        voom(-counts)
    with pytest.raises(ValueError, match="two genes"):
        voom(counts[:1])
