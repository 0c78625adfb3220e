"""decideTests (separate, global, hierarchical, nestedF; lfc; BH / holm / bonferroni / none) and
summary(decideTests()) against limma 3.63.2 (tests/data/limma_results, made by make_reference.R),
on 1500 bladderbatch probes, complete and with 2% NA (current prior, and legacy=TRUE)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, limma_results_inputs, read_table

from stacklm.limma.decidetests import classify_tests_f, decide_tests, summary_decide_tests
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.ftest import moderated_f
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.treat import treat
from stacklm.multiple_testing.padjust import p_adjust

DATA = TEST_DATA / "limma_results"
DESIGN = ["Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5"]
SUB = ["cancerCancer", "cancerNormal"]
SETS = {"complete": (False, None), "na": (True, None), "na_legacy": (True, True)}
# name in the reference -> (fit, on the rows without NA F p-values?, decide_tests arguments)
CALLS = {
    "separate": ("eb", False, {}),
    "global": ("eb", False, {"method": "global"}),
    "nestedF": ("eb", True, {"method": "nestedF"}),
    "hierarchical": ("eb", True, {"method": "hierarchical"}),
    "separate_lfc1": ("eb", False, {"lfc": 1}),
    "global_lfc1": ("eb", False, {"method": "global", "lfc": 1}),
    "nestedF_lfc1": ("eb", True, {"method": "nestedF", "lfc": 1}),
    "separate_holm_p01": ("eb", False, {"adjust_method": "holm", "p_value": 0.01}),
    "nestedF_holm": ("eb", True, {"method": "nestedF", "adjust_method": "holm"}),
    "hierarchical_bonferroni": (
        "eb",
        True,
        {"method": "hierarchical", "adjust_method": "bonferroni"},
    ),
    "nestedF_none_p001": (
        "eb",
        True,
        {"method": "nestedF", "adjust_method": "none", "p_value": 0.001},
    ),
    "nestedF_robust": ("ebr", True, {"method": "nestedF"}),
    "separate_treat": ("tr", False, {}),
}
_ROW_FIELDS = (
    "coefficients",
    "stdev_unscaled",
    "sigma",
    "df_residual",
    "amean",
    "feature_ids",
    "s2_post",
    "df_total",
    "t",
    "p_value",
    "lods",
    "F",
    "F_p_value",
)


def _rows(fit, keep):
    """fit[keep, ] (limma's row subsetting)."""
    changes = {k: getattr(fit, k)[keep] for k in _ROW_FIELDS if getattr(fit, k) is not None}
    for k in ("s2_prior", "df_prior"):
        v = getattr(fit, k)
        if v is not None and np.ndim(v):
            changes[k] = np.asarray(v)[keep]
    return fit.replace(**changes)


@pytest.fixture(scope="module", params=list(SETS))
def case(request):
    complete, with_na, samples = limma_results_inputs()
    design = samples[DESIGN]
    has_na, legacy = SETS[request.param]
    expr = with_na if has_na else complete
    fit = lm_fit(expr, design)
    fits = {
        "eb": e_bayes(fit, legacy=legacy),
        "ebr": e_bayes(fit, robust=True, legacy=legacy),
        "tr": treat(fit, fc=1.5, legacy=legacy),
    }
    ref = read_table(DATA / f"results_{request.param}.tsv.gz", index_col=0)
    summary = read_table(DATA / f"summary_{request.param}.tsv")
    return request.param, fits, ref, summary


@pytest.mark.parametrize("call", list(CALLS))
def test_decide_tests(case, call):
    name, fits, ref, summary = case
    which, complete_rows, kwargs = CALLS[call]
    fit = fits[which]
    n = fit.coefficients.shape[0]
    if complete_rows:  # limma's nestedF / hierarchical stop on NA F p-values: R ran on these rows
        _, fp = moderated_f(fit, SUB)
        keep = ~np.isnan(fp)
        decided = decide_tests(_rows(fit, keep), coefs=SUB, **kwargs)
        full = np.full((n, len(SUB)), np.nan)
        full[keep] = decided
    else:
        decided = full = decide_tests(fit, coefs=SUB, **kwargs)
    expected = ref[[f"decide.{call}.{k}" for k in SUB]].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(full, expected, err_msg=f"{name} {call}")
    ours = summary_decide_tests(decided, SUB)
    theirs = summary[summary["call"] == call].set_index("level").loc[["Down", "NotSig", "Up"], SUB]
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())
    assert list(ours.index) == ["Down", "NotSig", "Up"] and list(ours.columns) == SUB


def test_separate_with_adjusted_p_given(case):
    """decide_tests(adjusted_p=) (the caller's per-column BH, as moderate_and_test passes it)
    gives decideTests' separate calls, with and without lfc; other methods refuse it."""
    name, fits, ref, _ = case
    fit = fits["eb"]
    cols = [fit.coef_index(k)[0] for k in SUB]
    adjusted = np.column_stack([p_adjust(fit.p_value[:, j], "BH") for j in cols])
    for lfc, call in ((0.0, "separate"), (1.0, "separate_lfc1")):
        expected = ref[[f"decide.{call}.{k}" for k in SUB]].to_numpy(dtype=np.float64)
        for given in (adjusted, list(adjusted.T)):  # the matrix, or its columns
            decided = decide_tests(fit, coefs=SUB, lfc=lfc, adjusted_p=given)
            np.testing.assert_array_equal(decided, expected, err_msg=f"{name} {call}")
            if lfc == 0:  # and the signed zeros of sign(coef) * (adj.p < 0.05)
                with np.errstate(invalid="ignore"):
                    signed = np.sign(fit.coefficients[:, cols]) * np.where(
                        np.isnan(adjusted), np.nan, adjusted < 0.05
                    )
                np.testing.assert_array_equal(np.signbit(decided), np.signbit(signed))
    with pytest.raises(ValueError, match="separate method only"):
        decide_tests(fit, method="global", coefs=SUB, adjusted_p=adjusted)
    with pytest.raises(ValueError, match="adjusted_p must be"):
        decide_tests(fit, coefs=SUB, adjusted_p=adjusted[:, :1])
    with pytest.raises(ValueError, match="adjusted_p must be"):
        decide_tests(fit, coefs=SUB, adjusted_p=list(adjusted.T)[:1])


def test_nested_f_stops_on_na(case):
    name, fits, ref, summary = case
    if name == "complete":
        assert not np.isnan(moderated_f(fits["eb"], SUB)[1]).any()
        return
    with pytest.raises(ValueError, match="NA p-values"):
        decide_tests(fits["eb"], method="nestedF", coefs=SUB)


def test_classify_tests_f_on_a_matrix():
    """classifyTestsF on a plain t matrix (identity correlation, df = inf), by hand: F = |t|^2 / 2
    against qf(0.01, 2, Inf) = qchisq(0.99, 2) / 2 = 4.60517; the step-down sets the larger |t|
    to the smaller one."""
    t = np.array([[4.0, 0.5], [-3.2, 3.1], [1.0, 1.0], [np.nan, 5.0], [0.0, -3.04]])
    out = classify_tests_f(t, p_value=0.01)
    # row 0: F = 8.125 > 4.605; step 2: F(0.5, 0.5) = 0.25: only the first
    # row 1: F = 9.93; step 2: F(-3.1, 3.1) = 9.61 > 4.605: both
    # row 4: F = 4.62 > 4.605: the larger; step 2: F(0, 0) = 0
    expected = np.array([[1, 0], [-1, 1], [0, 0], [np.nan, np.nan], [0, -1]], dtype=float)
    np.testing.assert_array_equal(out, expected)
    F, df1, df2 = classify_tests_f(t, fstat_only=True)
    np.testing.assert_allclose(F[:3], [8.125, (3.2**2 + 3.1**2) / 2, 1.0], rtol=1e-15)
    assert df1 == 2 and np.isinf(df2)
