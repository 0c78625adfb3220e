"""Numerically awkward but valid data (tests/data/awkward, made by make_reference.R there, against
R limma 3.54.1): magnitudes of 1e-150 and 1e150 in one matrix, squares that underflow (1e-300:
sigma exactly 0, which limma offsets away from zero); whole matrices scaled by 1e-150 and 1e150
(t, p and F do not change with the scale); exact fits and p-values that underflow to 0 (checked
without R: their values are round-off). pi0 on p-values with no nulls: test_multiple_testing.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, read_json, read_table
from limma_columns import reference_columns

from stacklm.analysis import run_analysis
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.lmfit import lm_fit

DIR = TEST_DATA / "awkward"
CANCER = ["cancerCancer", "cancerNormal"]


@pytest.fixture(scope="module")
def data():
    expr = read_table(DIR / "expression_awkward.tsv.gz", index_col=0)
    design = read_table(DIR / "design.tsv", index_col=0)
    return expr, design


def compare(eb, ref):
    ours = reference_columns(eb, CANCER)
    compared = 0
    for col in ref.columns[1:]:
        assert_matches(ours[col], ref[col].to_numpy(), col)
        compared += 1
    assert compared == 7 + 7 * 5 + 4


def test_mixed_magnitudes_and_underflow_match_limma(data, quiet):
    expr, design = data
    ref = read_table(DIR / "awkward_ebayes.tsv.gz")
    meta = read_json(DIR / "awkward_ebayes.json")
    eb = e_bayes(lm_fit(expr, design))
    compare(eb, ref)
    assert_matches(eb.s2_prior, meta["s2.prior"], "s2.prior")
    assert_matches(eb.df_prior, meta["df.prior"], "df.prior")
    # the 1e-300 row: its squares underflow, sigma is exactly 0 as in R, the statistics are finite
    assert eb.sigma[4] == 0 and np.isfinite(eb.t[4]).all()


@pytest.mark.parametrize("scale", ["tiny", "huge"])
def test_scaled_matrices_match_limma_and_are_scale_free(data, scale, quiet):
    """R scaled bladderbatch rows 6..500 (E[6:500, ]); expression_awkward holds them unchanged."""
    expr, design = data
    bladder = expr.iloc[5:500]
    eb = e_bayes(lm_fit(bladder * (1e-150 if scale == "tiny" else 1e150), design))
    compare(eb, read_table(DIR / f"scaled_{scale}_ebayes.tsv.gz"))
    unscaled = e_bayes(lm_fit(bladder, design))
    for name in ("t", "p_value", "F", "F_p_value"):
        assert_matches(getattr(eb, name), getattr(unscaled, name), name, rtol=1e-9)


def test_exact_fits_are_kept_with_finite_statistics(data, quiet):
    expr, design = data
    Y = expr.to_numpy().copy()
    Y[0] = design.to_numpy() @ np.array([7, 1.5, -0.5, 0.2, 0, 0.1, -0.3])  # exact fit
    Y[1] = 5.0  # constant
    eb = e_bayes(lm_fit(Y, design.to_numpy()))
    assert eb.sigma[0] < 1e-13 and eb.sigma[1] < 1e-13  # round-off, as in R
    j = 1  # cancerCancer: 1.5 exactly, moderated by the prior (s2.post > 0)
    assert abs(eb.coefficients[0, j] - 1.5) < 1e-12 and eb.s2_post[0] > 0
    assert np.isfinite(eb.t[:2]).all() and np.isfinite(eb.p_value[:2]).all()
    assert np.abs(eb.t[1, 1:]).max() < 1e-6  # a constant has no effects


def test_underflowed_p_values_are_zero_in_the_results_table(data, quiet):
    """A 1e7 shift between groups: t ~ 1e8, so p underflows to 0 (R prints 0 too; that row's small
    coefficients are round-off, of order eps * 1e7, so it is not in the R reference table)."""
    expr, design = data
    expr = expr.copy()
    expr.iloc[3] += 1e7 * design["cancerCancer"].to_numpy()
    group = np.select(
        [design.cancerCancer == 1, design.cancerNormal == 1], ["Cancer", "Normal"], "Biopsy"
    )
    sheet = pd.DataFrame({"cancer": group}, index=expr.columns)
    table, _, _ = run_analysis(expr, sheet, {"formula": "~ cancer", "test": ["cancerCancer"]})
    row = table.iloc[3]
    assert row["statistic"] > 1e6 and row["p_value"] == 0 and row["fdr"] == 0
    assert (table["p_value"].drop(table.index[3]) > 0).all()


def test_underflowed_p_values_stay_finite_on_the_plots_axes():
    from stacklm.diagnostics.crossproducts import neg_log10_p
    from stacklm.diagnostics.features import qq_data

    y = neg_log10_p([0.0, 1e-300, 0.5, 1.0, np.nan])
    assert y[0] == pytest.approx(323.306, abs=1e-3) and y[1] == pytest.approx(300)
    assert y[2] == pytest.approx(0.30103) and y[3] == 0 and np.isnan(y[4])
    qq = qq_data(np.r_[0.0, 0.0, np.linspace(0.001, 1, 200)])
    assert np.isfinite(qq["observed"]).all() and qq["observed"].max() == y[0]
