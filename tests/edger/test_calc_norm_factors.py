"""edgeR 3.40.2 calcNormFactors (TMM, TMMwsp, upperquartile, none) and cpm against R on 2,000
genes x 24 samples, filtered (the recipe's y[keep, , keep.lib.sizes = FALSE]) and unfiltered
(all-zero and low-count genes: many ties in the log ratios), with non-default arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.edger._rmath import log2_libm
from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.cpm import cpm, log_cpm_voom
from stacklm.rstats.sums import r_mean

DATA = TEST_DATA / "counts"
RTOL = (
    1e-12  # TMM factors came out bit-equal to R here; transcendental functions may differ by an ulp
)


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0).to_numpy(dtype=np.float64)
    keep = read_table(DATA / "filter_by_expr.tsv.gz", index_col=0)["design"].to_numpy(dtype=bool)
    nf = read_table(DATA / "norm_factors.tsv")
    lib13 = read_table(DATA / "lib13.tsv")["lib13"].to_numpy()
    return counts, keep, nf, lib13


def test_norm_factors_match_edger(data):
    counts, keep, nf, lib13 = data
    xk = counts[keep]
    assert np.array_equal(xk.sum(axis=0), nf["lib.size.kept"].to_numpy())
    ours = {
        "TMM": calc_norm_factors(xk),
        "TMMwsp": calc_norm_factors(xk, method="TMMwsp"),
        "upperquartile": calc_norm_factors(xk, method="upperquartile"),
        "none": calc_norm_factors(xk, method="none"),
        "TMM_unfiltered": calc_norm_factors(counts),
        "TMMwsp_unfiltered": calc_norm_factors(counts, method="TMMwsp"),
        "upperquartile_unfiltered": calc_norm_factors(counts, method="upperquartile"),
        "TMM_noweight": calc_norm_factors(xk, do_weighting=False),
        "TMMwsp_noweight": calc_norm_factors(counts, method="TMMwsp", do_weighting=False),
        "TMM_ref6": calc_norm_factors(xk, ref_column=5),
        "TMM_trim": calc_norm_factors(counts, logratio_trim=0.2, sum_trim=0.1, a_cutoff=-20),
        "TMM_libsize": calc_norm_factors(counts, lib_size=lib13),
        "uq_p90": calc_norm_factors(counts, method="upperquartile", p=0.9),
    }
    assert set(ours) == set(nf.columns) - {"sample_id", "lib.size.kept"}
    for name, f in ours.items():
        assert_matches(f, nf[name].to_numpy(), name, rtol=RTOL)
        assert abs(np.exp(np.mean(np.log(f))) - 1) < 1e-14
    # the methods give different factors (a swapped method would be noticed)
    assert np.max(np.abs(nf["TMM"] - nf["upperquartile"])) > 1e-3
    assert np.max(np.abs(nf["TMM"] - nf["TMM_ref6"])) > 1e-4


def test_degenerate_inputs():
    assert np.array_equal(calc_norm_factors(np.zeros((5, 3))), np.ones(3))
    assert np.array_equal(calc_norm_factors(np.ones((5, 1)) * 7), np.ones(1))
    same = np.tile(np.arange(1.0, 21.0)[:, None], (1, 4))
    assert np.allclose(calc_norm_factors(same), 1.0, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="method"):
        calc_norm_factors(same, method="RLE")
    with pytest.raises(ValueError, match="NA"):
        calc_norm_factors(np.full((2, 2), np.nan))


def test_cpm_matches_edger(data):
    counts, keep, nf, _ = data
    xk = counts[keep]
    eff = xk.sum(axis=0) * nf["TMM"].to_numpy()
    ref_raw = read_table(DATA / "cpm_raw.tsv.gz", index_col=0).to_numpy()
    ref_log = read_table(DATA / "cpm_log.tsv.gz", index_col=0).to_numpy()
    ref_log05 = read_table(DATA / "cpm_log_prior05.tsv.gz", index_col=0).to_numpy()
    # the raw CPM is one multiplication and one division: bit-equal to edgeR's C++
    assert np.array_equal(cpm(xk, eff)[:200], ref_raw)
    assert_matches(cpm(xk, eff, log=True)[:200], ref_log, "cpm log", rtol=1e-13)
    assert_matches(
        cpm(xk, eff, log=True, prior_count=0.5)[:200], ref_log05, "prior 0.5", rtol=1e-13
    )
    per_gene = np.full(xk.shape[0], 2.0)
    assert_matches(cpm(xk, eff, log=True, prior_count=per_gene)[:200], ref_log, "per gene prior")


def test_voom_log_cpm_matches_limma(data):
    counts, keep, nf, _ = data
    xk = counts[keep]
    eff = xk.sum(axis=0) * nf["TMM"].to_numpy()
    ref = read_table(DATA / "voom_E.tsv.gz", index_col=0).to_numpy()
    assert_matches(log_cpm_voom(xk, eff)[:200], ref, "voom E", rtol=1e-14)


def test_r_arithmetic_helpers():
    x = np.array([0.1, 0.2, 0.3, 1e16, -1e16])
    assert r_mean(x) == float(np.sum(np.array(x, dtype=np.longdouble)) / 5)
    # numerically adjacent ratios keep the C library's tie structure
    v = np.array([3 / 7, np.nextafter(3 / 7, 1), 8.0, np.nextafter(8.0, 9), 0.0, 5.0])
    out = log2_libm(v)
    assert out[:4].tolist() == [math.log2(t) for t in v[:4]]
    assert out[4] == -np.inf and out[5] == pytest.approx(math.log2(5.0), rel=1e-15)
