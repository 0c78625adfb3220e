"""treat / topTreat against limma 3.63.2 (tests/data/limma_results, made by make_reference.R there):
1500 bladderbatch probes (8 of them copies of others, so statistics tie), complete and with 2% NA
(current prior estimator, and legacy=TRUE = limma 3.54.1)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, limma_results_inputs, read_table

from stacklm.limma.ebayes import e_bayes
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.toptableextras import confint_columns, top_table_order
from stacklm.limma.treat import top_treat, treat
from stacklm.multiple_testing.padjust import p_adjust

DATA = TEST_DATA / "limma_results"
DESIGN = ["Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5"]
COEFS = ["cancerCancer", "cancerNormal", "batch2"]
# reference set -> (expression with NA?, legacy argument)
SETS = {"complete": (False, None), "na": (True, None), "na_legacy": (True, True)}


@pytest.fixture(scope="module")
def inputs():
    expr, with_na, samples = limma_results_inputs()
    return {False: expr, True: with_na}, samples[DESIGN]


@pytest.fixture(scope="module", params=list(SETS))
def case(request, inputs):
    data, design = inputs
    has_na, legacy = SETS[request.param]
    ref = read_table(DATA / f"results_{request.param}.tsv.gz", index_col=0)
    fit = lm_fit(data[has_na], design)
    return request.param, fit, legacy, ref


def test_treat_fc(case):
    name, fit, legacy, ref = case
    tr = treat(fit, fc=1.5, legacy=legacy)
    assert tr.extra["treat_lfc"] == np.log2(1.5)
    assert tr.lods is None
    assert_matches(tr.s2_post, ref["treat.s2.post"], f"{name} s2.post")
    assert_matches(tr.df_total, ref["treat.df.total"], f"{name} df.total")
    for k in COEFS:
        j = fit.coef_index(k)[0]
        assert_matches(tr.t[:, j], ref[f"treat.t.{k}"], f"{name} t {k}")
        assert_matches(tr.p_value[:, j], ref[f"treat.p.value.{k}"], f"{name} p {k}")
        # topTreat(tr, coef = k, number = Inf): sort.by "p", ties in input order
        order = top_table_order(tr, k, sort_by="p")
        np.testing.assert_array_equal(order + 1, ref[f"topTreat.order.{k}"].to_numpy())


def test_treat_trend_robust(case):
    name, fit, legacy, ref = case
    j = fit.coef_index("cancerNormal")[0]
    trt = treat(fit, lfc=0.5, trend=True, legacy=legacy)
    assert_matches(trt.t[:, j], ref["treat_trend.t.cancerNormal"], f"{name} trend t")
    assert_matches(trt.p_value[:, j], ref["treat_trend.p.value.cancerNormal"], f"{name} trend p")
    trr = treat(fit, robust=True, legacy=legacy)  # fc = 1.2
    assert_matches(trr.t[:, j], ref["treat_robust.t.cancerNormal"], f"{name} robust t")
    assert_matches(trr.p_value[:, j], ref["treat_robust.p.value.cancerNormal"], f"{name} robust p")


def test_treat_shares_the_ebayes_prior(case):
    name, fit, legacy, ref = case
    tr = treat(fit, fc=1.5, legacy=legacy)
    eb = e_bayes(fit, legacy=legacy)
    np.testing.assert_array_equal(tr.s2_post, eb.s2_post)
    np.testing.assert_array_equal(tr.df_total, eb.df_total)
    # a treat fit's confidence intervals are the eBayes fit's (R: checked by make_reference.R)
    lo, hi = confint_columns(tr, 0.95, ["cancerCancer"])
    assert_matches(lo[:, 0], ref["CI.L.0.95.cancerCancer"], f"{name} treat CI.L")
    assert_matches(hi[:, 0], ref["CI.R.0.95.cancerCancer"], f"{name} treat CI.R")


def test_top_treat_table(case):
    name, fit, legacy, ref = case
    tr = treat(fit, fc=1.5, legacy=legacy)
    tab = top_treat(tr, coef="cancerNormal", confint=True)
    assert list(tab.columns) == ["logFC", "CI.L", "CI.R", "AveExpr", "t", "P.Value", "adj.P.Val"]
    rows = ref["topTreat.order.cancerNormal"].to_numpy() - 1
    assert list(tab.index) == list(ref.index[rows])
    j = fit.coef_index("cancerNormal")[0]
    assert_matches(tab["t"], ref["treat.t.cancerNormal"].to_numpy()[rows], f"{name} t")
    assert_matches(tab["P.Value"], ref["treat.p.value.cancerNormal"].to_numpy()[rows], f"{name} p")
    assert_matches(tab["adj.P.Val"], p_adjust(tr.p_value[:, j])[rows], f"{name} adj")
    assert_matches(tab["CI.L"], ref["CI.L.0.95.cancerNormal"].to_numpy()[rows], f"{name} CI.L")
    top = top_treat(tr, coef="cancerNormal", number=10, p_value=0.05)
    assert list(top.index) == list(tab.index[tab["adj.P.Val"] <= 0.05][:10])
    with pytest.raises(ValueError, match="B-statistic"):
        top_treat(tr, coef="cancerNormal", sort_by="B")


def test_treat_na_coefficients_give_zero_t():
    """As limma 3.63.2: a NaN coefficient gets t = 0 and p NaN (limma 3.54.1's treat stopped)."""
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    Y = rng.normal(size=(30, 8))
    Y[0, 4:] = np.nan  # the group coefficient is not estimable
    tr = treat(lm_fit(Y, X), fc=1.1)
    assert tr.t[0, 1] == 0.0 and np.isnan(tr.p_value[0, 1])
    assert np.isfinite(tr.p_value[1:]).all()
