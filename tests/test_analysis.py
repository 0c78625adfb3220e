"""The results table of an analysis (stacklm.analysis.run_analysis = the workflow's moderate step)
against limma 3.63.2 (tests/data/limma_results, made by its make_reference.R): the current prior for
missing values and moderation.legacy, treat(fc=), decideTests, topTable confidence intervals,
ordinary t, topTable's order, and moderation.method none."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, limma_results_inputs, read_table

from stacklm.analysis import moderate_and_test, run_analysis, top_table
from stacklm.limma.lmfit import lm_fit

DATA = TEST_DATA / "limma_results"
TESTED = ["cancerCancer", "cancerNormal"]
SETTINGS = {
    "formula": "~ cancer + batch",
    "levels": {"cancer": ["Biopsy", "Cancer", "Normal"], "batch": [1, 2, 3, 4, 5]},
    "test": TESTED,
    "threshold": {"fc": 1.5},
}


@pytest.fixture(scope="module")
def data():
    expr, with_na, sheet = limma_results_inputs()
    return {"complete": expr, "na": with_na}, sheet


@pytest.mark.parametrize("which", ["complete", "na", "na_legacy"])
def test_results_columns_match_limma_3_63_2(data, which):
    matrices, sheet = data
    settings = dict(SETTINGS, moderation={"legacy": which == "na_legacy"})
    table, stats, _ = run_analysis(
        matrices["na" if which != "complete" else "complete"], sheet, settings
    )
    ref = read_table(DATA / f"results_{which}.tsv.gz", index_col=0)
    assert list(table["feature_id"]) == list(ref.index.astype(str))
    for k in TESTED:
        assert_matches(table[f"t_treat_{k}"], ref[f"treat.t.{k}"], f"treat t {k}")
        assert_matches(table[f"p_treat_{k}"], ref[f"treat.p.value.{k}"], f"treat p {k}")
        assert_matches(table[f"ci_low_{k}"], ref[f"CI.L.0.95.{k}"], f"CI.L {k}")
        assert_matches(table[f"ci_high_{k}"], ref[f"CI.R.0.95.{k}"], f"CI.R {k}")
        if which != "na_legacy":  # no prior: the legacy reference does not repeat them
            assert_matches(table[f"t_ordinary_{k}"], ref[f"t.ordinary.{k}"], f"t.ordinary {k}")
            assert_matches(table[f"p_ordinary_{k}"], ref[f"p.ordinary.{k}"], f"p.ordinary {k}")
    scalars = read_table(DATA / "scalars.tsv", index_col=0).loc[which]
    assert abs(stats["df_prior"] - scalars["df.prior"]) <= 1e-8 * scalars["df.prior"]
    assert stats["treat"]["lfc"] == np.log2(1.5)
    assert stats["moderation"]["legacy"] is (which == "na_legacy")


@pytest.mark.parametrize("which", ["complete", "na"])
@pytest.mark.parametrize("lfc", [0, 1])
def test_decisions_are_limma_decide_tests(data, which, lfc):
    """decision_* equals decideTests(fit, lfc = ) per column (method separate; the global and
    nestedF methods depend on the set of columns and are tested against R in
    tests/limma/test_decide_tests.py)."""
    matrices, sheet = data
    method = "separate"
    settings = dict(SETTINGS, decide={"method": method, "lfc": lfc})
    table, stats, _ = run_analysis(matrices[which], sheet, settings)
    ref = read_table(DATA / f"results_{which}.tsv.gz", index_col=0)
    name = method if lfc == 0 else f"{method}_lfc1"
    for k in TESTED:
        column = f"decide.{name}.{k}"
        expected = ref[column].to_numpy(dtype=float)
        np.testing.assert_array_equal(table[f"decision_{k}"].to_numpy(), expected)
        counts = stats["decide"]["counts"][k]
        assert counts == {
            "Down": int(np.sum(expected == -1)),
            "NotSig": int(np.sum(expected == 0)),
            "Up": int(np.sum(expected == 1)),
        }
    assert stats["decide"]["method"] == "separate" and stats["decide"]["lfc"] == lfc


def test_top_table_is_in_limma_order(data):
    matrices, sheet = data
    table, stats, _ = run_analysis(matrices["complete"], sheet, SETTINGS)
    ref = read_table(DATA / "results_complete.tsv.gz", index_col=0)
    fit = lm_fit(matrices["complete"], _design(sheet))
    _, _, eb = moderate_and_test(fit, {}, TESTED, {})
    top = top_table(table, eb, TESTED, 0.05)
    order = ref["order.F"].to_numpy() - 1  # topTable(fit, coef = 2:3, number = Inf): F order
    assert len(top) == max(int((table["fdr"] <= 0.05).sum()), 100)
    assert list(top["feature_id"]) == list(ref.index[order[: len(top)]].astype(str))


def test_method_none_gives_ordinary_statistics(data):
    matrices, sheet = data
    table, stats, _ = run_analysis(
        matrices["na"], sheet, dict(SETTINGS, moderation={"method": "none"})
    )
    for k in TESTED:
        np.testing.assert_array_equal(table[f"t_{k}"], table[f"t_ordinary_{k}"])
        np.testing.assert_array_equal(table[f"p_{k}"], table[f"p_ordinary_{k}"])
    assert np.all(table["df_prior"] == 0) and np.array_equal(
        table["df_total"], table["df_residual"]
    )
    assert np.allclose(table["s2_post"], table["sigma"] ** 2, rtol=1e-15, atol=0, equal_nan=True)
    # the F over the two columns from the unmoderated variances: t'(cor)^-1 t / 2 on df.residual
    ok = np.isfinite(table["statistic"]).to_numpy()
    assert stats["test_statistic"] == "ordinary F" and ok.sum() > 1400
    from scipy import stats as st

    p = st.f.sf(table["statistic"][ok], 2, table["df_residual"][ok])
    assert_matches(table["p_value"][ok], p, "F p", rtol=1e-10)


def test_threads_give_the_same_table(data):
    """moderate_and_test(threads=2) computes the per-column statistics side by side: the table and
    the summary numbers are those of one thread, bit for bit (missing values, treat, contrasts)."""
    matrices, sheet = data
    fit = lm_fit(matrices["na"], _design(sheet))
    contrasts = {"CancerVsNormal": "cancerCancer - cancerNormal"}
    args = (fit, contrasts, TESTED + ["CancerVsNormal"], {"robust": True})
    one = moderate_and_test(*args, threshold_fc=1.5, threads=1)
    two = moderate_and_test(*args, threshold_fc=1.5, threads=2)
    assert list(one[0].columns) == list(two[0].columns)
    assert "fdr_treat_CancerVsNormal" in one[0].columns
    assert one[0].equals(two[0])
    assert one[1] == two[1]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"contrasts": {"CancerVsNormal": "cancerCancer - cancerNormal"}, "threshold_fc": 1.5},
        {"moderation": {"method": "none"}},
    ],
    ids=["ebayes", "contrasts_treat", "none"],
)
def test_a_column_major_fit_gives_the_same_table_from_views(data, settings):
    """The moderate step's merged fit is column-major (load_fits(order="F")): the table has the
    bits of the row-major fit's, and its estimate, stdev_unscaled, t, p, lods, ordinary t and p and
    confidence columns are views of the fit's and e_bayes' column-major matrices, not copies."""
    from stacklm.analysis import moderate_columns

    matrices, sheet = data
    fit = lm_fit(matrices["na"], _design(sheet))
    column_major = fit.replace(
        coefficients=np.asfortranarray(fit.coefficients),
        stdev_unscaled=np.asfortranarray(fit.stdev_unscaled),
    )
    contrasts = settings.get("contrasts")
    test = TESTED + list(contrasts or [])
    kwargs = {"threshold_fc": settings.get("threshold_fc"), "threads": 2}
    want, want_stats, _ = moderate_columns(
        fit, contrasts, test, settings.get("moderation"), **kwargs
    )
    got, stats, eb = moderate_columns(
        column_major, contrasts, test, settings.get("moderation"), **kwargs
    )
    assert list(got) == list(want)
    assert json.dumps(stats, sort_keys=True) == json.dumps(want_stats, sort_keys=True)  # NaN too
    assert got["feature_id"].equals(want["feature_id"])  # Arrow strings
    for name in list(got)[1:]:
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    if contrasts:  # contrasts_fit's products make row-major coefficients: those are copied
        return
    j = eb.coef_names.index("cancerCancer")
    bases = {"estimate": column_major.coefficients, "stdev_unscaled": column_major.stdev_unscaled,
             "t": eb.t, "p": eb.p_value}  # fmt: skip
    if settings.get("moderation") is None:
        bases["lods"] = eb.lods
    for prefix, matrix in bases.items():
        assert np.shares_memory(got[f"{prefix}_cancerCancer"], matrix[:, j]), prefix
    # the ordinary t and p, and the confidence limits: computed column by column, contiguous
    for prefix in ("t_ordinary", "p_ordinary", "ci_low", "ci_high"):
        column = got[f"{prefix}_cancerCancer"]
        assert column.flags.c_contiguous and column.base is not None, prefix


def _design(sheet):
    from stacklm.design.formula import design_matrix

    return design_matrix(sheet, SETTINGS["formula"], SETTINGS["levels"])


def test_public_top_table_confint_and_limma_names(data):
    """stacklm.top_table(confint=) as topTable(confint = 0.95); treat, decide_tests and
    remove_batch_effect are exported under limma's names."""
    import stacklm

    matrices, sheet = data
    eb = stacklm.e_bayes(lm_fit(matrices["complete"], _design(sheet)))
    ref = read_table(DATA / "results_complete.tsv.gz", index_col=0)
    top = stacklm.top_table(eb, "cancerCancer", sort_by="none", confint=True)
    assert list(top.columns[:3]) == ["logFC", "CI.L", "CI.R"]
    assert_matches(top["CI.L"], ref["CI.L.0.95.cancerCancer"], "CI.L")
    assert_matches(top["CI.R"], ref["CI.R.0.95.cancerCancer"], "CI.R")
    for name in ("treat", "decide_tests", "remove_batch_effect", "voom", "duplicate_correlation"):
        assert callable(getattr(stacklm, name))


@pytest.mark.parametrize("which", ["complete", "na"])
def test_top_rows_are_top_table_order(data, which):
    """top_rows sorts only the rows at or below the n-th p: the rows and order of a stable sort
    of all of them (topTable's), ties (rounded p-values) in input order, for one column and for
    the F; a test of every coefficient (no intercept) takes eBayes' own F (computed then only)."""
    from stacklm.analysis import top_rows
    from stacklm.design.formula import design_matrix
    from stacklm.limma.toptableextras import top_table_order

    matrices, sheet = data
    fit = lm_fit(matrices[which], _design(sheet))
    no_intercept = design_matrix(sheet, "~ 0 + cancer + batch", SETTINGS["levels"])
    fit0 = lm_fit(matrices[which], no_intercept)
    for f, test in ((fit, TESTED), (fit, TESTED[:1]), (fit0, list(fit0.coef_names))):
        with warnings.catch_warnings():  # every feature differs from 0 without an intercept
            warnings.simplefilter("ignore", UserWarning)
            table, _, eb = moderate_and_test(f, {}, test, {})
        every = len(test) == len(f.coef_names)
        p = np.round(table["p_value"].to_numpy(), 3)  # many ties
        fdr = table["fdr"].to_numpy()
        for alpha, minimum in ((0.05, 100), (0.0, 100), (0.5, 0), (1.0, 10)):
            rows = top_rows(eb, test, table["p_value"] if every else p, fdr, alpha, minimum)
            if every:
                want = top_table_order(eb, coef=test, sort_by="P")
            else:
                want = np.argsort(p, kind="stable")
            want = want[np.isfinite(p[want])]
            n = max(int(np.sum(fdr <= alpha)), min(minimum, want.size))
            np.testing.assert_array_equal(rows, want[:n])
        assert (eb.F is not None) == every


def test_arrow_columns_write_the_dataframe_s_bytes(data, tmp_path):
    """moderate_step writes results.parquet and top_table.tsv from the column arrays
    (arrow_columns, the top rows taken) instead of a DataFrame: the same bytes as from
    moderate_and_test's DataFrame (missing values, int8 decisions, -0 decisions in the top table)."""
    import logging

    from stacklm.analysis import moderate_columns
    from stacklm.io.outputs import arrow_columns, arrow_table, write_parquet
    from stacklm.spec import AnalysisSpec
    from stacklm.workflow.analysis_steps import _write_top_table

    matrices, sheet = data
    fit = lm_fit(matrices["na"], _design(sheet))
    cols, stats, eb = moderate_columns(fit, {}, TESTED, {}, threads=2)
    table, stats_df, _ = moderate_and_test(fit, {}, TESTED, {}, threads=2)
    assert stats == stats_df
    decisions = [c for c in cols if c.startswith("decision_")]
    assert (
        np.isnan(table["p_value"]).any()
        and (np.signbit(table[decisions]) & (table[decisions] == 0)).any().any()
    )
    fast, slow = (
        arrow_columns(cols, decisions, threads=2),
        arrow_table(table, int8_columns=decisions),
    )
    assert fast.equals(slow) and fast.schema.equals(slow.schema)
    write_parquet(fast, tmp_path / "fast.parquet")
    write_parquet(table, tmp_path / "slow.parquet", int8_columns=decisions)
    assert (tmp_path / "fast.parquet").read_bytes() == (tmp_path / "slow.parquet").read_bytes()
    spec = AnalysisSpec.from_settings("a", SETTINGS)
    log = logging.getLogger("test")
    _write_top_table(cols, eb, spec, 0.05, tmp_path / "fast.tsv", None, log)
    _write_top_table(table, eb, spec, 0.05, tmp_path / "slow.tsv", None, log)
    assert (tmp_path / "fast.tsv").read_bytes() == (tmp_path / "slow.tsv").read_bytes()
