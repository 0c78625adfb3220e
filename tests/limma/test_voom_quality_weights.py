"""stacklm.limma.voomquality against R's limma 3.63.2 ``voomWithQualityWeights`` (R 4.2.2, edgeR
3.40.2 filterByExpr + TMM): sample weights (default gene-by-gene, and REML with var.group),
observation weights, and ``eBayes(lmFit(vq, design))`` (t, p, F over the region coefficients) on
1,815 filtered genes x 24 samples of the shared simulated counts.  References in
tests/data/counts_quality, written by make_reference.R there."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_json, read_table
from limma_columns import reference_columns

from stacklm.limma.arrayweights import array_weights
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.voom import voom
from stacklm.limma.voomquality import VoomQualityResult, voom_with_quality_weights
from stacklm.limma.weightedfit import lm_wfit

DATA = TEST_DATA / "counts_quality"
F_COEFS = ["regionDesert", "regionMountain"]
# measured: sample weights 4.4e-15, weights 1.0e-13 (voom's lowess sums), eBayes columns
# 1.0e-10 raw relative on coefficients near zero and 0 beyond the 1e-12 absolute floor
RTOL = 1e-10


def _read(name: str, **kw):
    path = DATA / name
    if not path.exists():
        pytest.fail(f"reference {path} is missing")
    return read_table(path, **kw)


@pytest.fixture(scope="module")
def data():
    counts = _read("counts_kept.tsv.gz", index_col=0)
    lib = _read("libraries.tsv")
    design = _read("design.tsv", index_col=0)
    return counts, design, lib


@pytest.fixture(scope="module")
def vq(data):
    counts, design, lib = data
    return voom_with_quality_weights(
        counts.to_numpy(dtype=float),
        design,
        lib_size=lib["lib.size"].to_numpy(),
        norm_factors=lib["norm.factors"].to_numpy(),
    )


def test_sample_and_observation_weights_match_limma(vq):
    assert isinstance(vq, VoomQualityResult)
    ref = _read("voomqw_sample_weights.tsv", index_col=0)
    assert_matches(vq.sample_weights, ref["genebygene"].to_numpy(), "sample.weights", RTOL)
    ref_w = _read("voomqw_weights.tsv.gz", index_col=0).to_numpy()
    assert_matches(vq.weights, ref_w, "weights", RTOL)


def test_steps_are_limmas(data, vq):
    """voom -> arrayWeights -> voom with the sample weights -> arrayWeights; weights = voom weights
    of the second voom times the final sample weights, E unchanged."""
    counts, design, lib = data
    c = counts.to_numpy(dtype=float)
    args = dict(lib_size=lib["lib.size"].to_numpy(), norm_factors=lib["norm.factors"].to_numpy())
    v1 = voom(c, design, **args)
    aw1 = array_weights(v1.E, design, weights=v1.weights, method="genebygene")
    v2 = voom(c, design, weights=aw1, **args)
    aw2 = array_weights(v2.E, design, weights=v2.weights, method="genebygene")
    np.testing.assert_array_equal(vq.sample_weights, aw2)
    np.testing.assert_array_equal(vq.weights, v2.weights * aw2)
    np.testing.assert_array_equal(vq.E, v1.E)
    np.testing.assert_array_equal(vq.trend.line_y, v2.trend.line_y)
    assert vq.sx is not None and vq.sx.shape == (c.shape[0],)


def test_reml_with_var_group_matches_limma(data):
    counts, design, lib = data
    res = voom_with_quality_weights(
        counts.to_numpy(dtype=float),
        design,
        lib_size=lib["lib.size"].to_numpy(),
        norm_factors=lib["norm.factors"].to_numpy(),
        method="reml",
        var_group=lib["region"].to_numpy(),
    )
    ref = _read("voomqw_sample_weights.tsv", index_col=0)
    assert_matches(res.sample_weights, ref["reml_vg"].to_numpy(), "sample.weights reml", RTOL)


def test_ebayes_on_quality_weights_matches_limma(data, vq):
    counts, design, _ = data
    fit = lm_wfit(vq.E, design, vq.weights, feature_ids=counts.index)
    eb = e_bayes(fit)
    ours = reference_columns(eb, F_COEFS)
    ref = _read("voomqw_ebayes.tsv.gz", index_col=0)
    assert list(ref.index) == list(counts.index)
    for col in ref.columns:
        assert_matches(ours[col], ref[col].to_numpy(), col, rtol=RTOL)
    assert len(ref.columns) == 2 + 3 * 5 + 4
    meta = read_json(DATA / "voomqw_ebayes.json")
    assert_matches(eb.s2_prior, meta["s2.prior"], "s2.prior", rtol=1e-12)
    assert_matches(eb.df_prior, meta["df.prior"], "df.prior", rtol=1e-12)
