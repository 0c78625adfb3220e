"""topTable's confidence intervals and row orders, and the ordinary t, against limma 3.63.2
(tests/data/limma_results, made by make_reference.R): 1500 bladderbatch probes with 8 copies of
other probes (exact ties: R's order() keeps them in input order), complete and with 2% NA (current
prior and legacy=TRUE)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, limma_results_inputs, read_table

from stacklm.limma.ebayes import e_bayes
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.toptable import top_table
from stacklm.limma.toptableextras import confint_columns, ordinary_t, top_table_order

DATA = TEST_DATA / "limma_results"
DESIGN = ["Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5"]
SUB = ["cancerCancer", "cancerNormal"]
SETS = {"complete": (False, None), "na": (True, None), "na_legacy": (True, True)}


@pytest.fixture(scope="module", params=list(SETS))
def case(request):
    complete, with_na, samples = limma_results_inputs()
    design = samples[DESIGN]
    has_na, legacy = SETS[request.param]
    expr = with_na if has_na else complete
    fit = lm_fit(expr, design)
    eb = e_bayes(fit, legacy=legacy)
    ebr = e_bayes(fit, robust=True, legacy=legacy)
    ref = read_table(DATA / f"results_{request.param}.tsv.gz", index_col=0)
    return request.param, eb, ebr, ref


def test_confidence_intervals(case):
    name, eb, _, ref = case
    levels = [0.95, 0.9] if name == "complete" else [0.95]
    for level in levels:
        low, high = confint_columns(eb, level, SUB)
        for i, k in enumerate(SUB):
            assert_matches(low[:, i], ref[f"CI.L.{level}.{k}"], f"{name} CI.L {level} {k}")
            assert_matches(high[:, i], ref[f"CI.R.{level}.{k}"], f"{name} CI.R {level} {k}")
    low, high = confint_columns(eb, True)  # confint = TRUE is 95%, all coefficients by default
    j = eb.coef_index("cancerNormal")[0]
    assert_matches(low[:, j], ref["CI.L.0.95.cancerNormal"], f"{name} confint=TRUE")
    assert low.shape == eb.coefficients.shape


def test_ordinary_t(case):
    name, eb, _, ref = case
    if name == "na_legacy":
        ref = read_table(DATA / "results_na.tsv.gz", index_col=0)  # no prior: the same numbers
    t, p = ordinary_t(eb, SUB)
    for i, k in enumerate(SUB):
        assert_matches(t[:, i], ref[f"t.ordinary.{k}"], f"{name} t.ordinary {k}")
        assert_matches(p[:, i], ref[f"p.ordinary.{k}"], f"{name} p.ordinary {k}")
    # moderation does not enter: the lmFit fit gives the same
    t0, _ = ordinary_t(eb.replace(t=None, p_value=None, s2_post=None), SUB)
    np.testing.assert_array_equal(t0, t)


def _expected(ref, column):
    values = ref[column].to_numpy(dtype=np.float64)
    return values[~np.isnan(values)].astype(np.int64) - 1


def test_orders_single_coefficient(case):
    name, eb, _, ref = case
    for k in SUB:
        for sort_by in ("B", "P", "t", "logFC", "AveExpr"):
            order = top_table_order(eb, k, sort_by=sort_by)
            np.testing.assert_array_equal(
                order, _expected(ref, f"order.{sort_by}.{k}"), err_msg=f"{name} {sort_by} {k}"
            )
        np.testing.assert_array_equal(
            top_table_order(eb, k, sort_by="P", p_value=0.05), _expected(ref, f"order.P.fdr05.{k}")
        )
        np.testing.assert_array_equal(
            top_table_order(eb, k, sort_by="P", p_value=0.05, lfc=1),
            _expected(ref, f"order.P.fdr05.lfc1.{k}"),
        )
        np.testing.assert_array_equal(
            top_table_order(eb, k, sort_by="B", number=50), _expected(ref, f"order.B.top50.{k}")
        )


def test_orders_f(case):
    name, eb, ebr, ref = case
    expected = _expected(ref, "order.F")
    for sort_by in ("F", "B", "P"):  # topTable turns B into F; P is accepted here as F
        np.testing.assert_array_equal(top_table_order(eb, SUB, sort_by=sort_by), expected)
    np.testing.assert_array_equal(
        top_table_order(ebr, SUB, sort_by="F"), _expected(ref, "order.F.robust")
    )
    np.testing.assert_array_equal(
        top_table_order(eb, SUB, sort_by="F", p_value=0.05), _expected(ref, "order.F.fdr05")
    )
    np.testing.assert_array_equal(
        top_table_order(eb, SUB, sort_by="F", lfc=1), _expected(ref, "order.F.lfc1")
    )


def test_ties_keep_input_order(case):
    """The copied probes tie exactly with their sources, also in our numbers, and the earlier
    row comes first (both directions of copying are in the data)."""
    name, eb, _, ref = case
    ids = list(ref.index)
    order = top_table_order(eb, "cancerNormal", sort_by="P")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    j = eb.coef_index("cancerNormal")[0]
    for i, fid in enumerate(ids):
        if fid.endswith("_copy"):
            src = ids.index(fid[: -len("_copy")])
            assert eb.p_value[i, j] == eb.p_value[src, j]
            first, second = sorted((i, src))
            assert rank[second] == rank[first] + 1


def test_matches_top_table_order(case):
    """The existing top_table sorts the same way (sort.by P and B, the F table)."""
    name, eb, _, ref = case
    tab = top_table(eb, coef="cancerCancer", sort_by="P")
    assert list(tab.index) == list(ref.index[top_table_order(eb, "cancerCancer", sort_by="P")])
    tab = top_table(eb, coef=SUB)
    assert list(tab.index) == list(ref.index[top_table_order(eb, SUB, sort_by="F")])


def test_defaults_and_errors(case):
    name, eb, _, ref = case
    # coef=None: all but the intercept (an F over six coefficients)
    assert top_table_order(eb).size == eb.coefficients.shape[0]
    with pytest.raises(ValueError, match="sort_by"):
        top_table_order(eb, SUB, sort_by="t")
    with pytest.raises(ValueError, match="sort_by"):
        top_table_order(eb, "cancerCancer", sort_by="F")
    with pytest.raises(ValueError, match="fc"):
        top_table_order(eb, "cancerCancer", fc=0.5)
    np.testing.assert_array_equal(
        top_table_order(eb, "cancerCancer", fc=2.0, p_value=0.05),
        top_table_order(eb, "cancerCancer", lfc=1.0, p_value=0.05),
    )
