"""Inputs that carry labels are matched by label, not by position (issue 14, item 1).

A DataFrame matrix's columns and a DataFrame design's index name the samples; a contrast matrix's
index names the fit's coefficients; a trend Series' index names the features.  Reordered inputs
give the fit of the ordered ones; label sets that differ are refused, naming the labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stacklm import contrasts_fit, e_bayes, lm_fit


def _data(seed=3, G=40, n=8):
    rng = np.random.default_rng(seed)
    samples = [f"s{i}" for i in range(n)]
    design = pd.DataFrame(
        {
            "(Intercept)": 1.0,
            "groupB": np.tile([0.0, 1.0], n // 2),
            "age": rng.normal(50, 10, n),
        },
        index=samples,
    )
    expr = pd.DataFrame(
        rng.normal(size=(G, n)) + np.linspace(0, 2, n),
        index=[f"g{g}" for g in range(G)],
        columns=samples,
    )
    expr.iloc[3, 2] = np.nan  # a partial row takes the other fit paths
    return expr, design


def _same_fit(a, b):
    for name in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-14)
    assert a.coef_names == b.coef_names
    assert list(a.feature_ids) == list(b.feature_ids)


def test_reordered_matrix_columns_are_matched_to_the_design_by_sample():
    expr, design = _data()
    ref = lm_fit(expr, design)
    _same_fit(lm_fit(expr.iloc[:, ::-1], design), ref)
    _same_fit(lm_fit(expr, design.iloc[[3, 1, 0, 2, 7, 6, 5, 4]]), ref)
    # the fit keeps the design in the matrix's sample order
    reordered = lm_fit(expr.iloc[:, ::-1], design)
    np.testing.assert_array_equal(reordered.design, design.iloc[::-1].to_numpy())


def test_different_sample_labels_are_refused_naming_them():
    expr, design = _data()
    renamed = expr.rename(columns={"s2": "s2 ", "s5": "S5"})
    with pytest.raises(ValueError, match=r"'s2 '.*'S5'.*'s2'.*'s5'|'S5'.*'s2 '"):
        lm_fit(renamed, design)


def test_duplicated_sample_labels_are_refused_unless_in_the_same_order():
    expr, design = _data()
    dup = expr.rename(columns={"s1": "s0"})
    dup_design = design.rename(index={"s1": "s0"})
    _same_fit(lm_fit(dup, dup_design), lm_fit(expr, design))  # same order: by position
    with pytest.raises(ValueError, match="s0"):
        lm_fit(dup.iloc[:, ::-1], dup_design)


def test_unlabelled_inputs_are_matched_by_position():
    expr, design = _data()
    ref = lm_fit(expr, design)
    _same_fit(lm_fit(expr.to_numpy(), design), ref.replace(feature_ids=np.arange(len(expr))))
    _same_fit(lm_fit(expr, design.to_numpy(), coef_names=list(design.columns)), ref)
    # a default RangeIndex carries no labels, nor do R's default row names 1..n (model.matrix)
    _same_fit(lm_fit(expr, design.reset_index(drop=True)), ref)
    _same_fit(lm_fit(expr, design.set_axis(np.arange(1, len(design) + 1))), ref)
    _same_fit(lm_fit(expr.T.reset_index(drop=True).T, design), ref)


def _contrast_matrix(design):
    return pd.DataFrame(
        {"B_vs_A": [0.0, 1.0, 0.0], "age_plus_B": [0.0, 1.0, 1.0]}, index=list(design.columns)
    )


def test_contrast_rows_are_matched_to_coefficients_by_name():
    expr, design = _data()
    fit = lm_fit(expr, design)
    C = _contrast_matrix(design)
    ref = contrasts_fit(fit, C)
    shuffled = C.iloc[[2, 0, 1]]
    out = contrasts_fit(fit, shuffled)
    # the same products in another row order: equal up to BLAS kernel rounding (1e-12 relative)
    np.testing.assert_allclose(out.coefficients, ref.coefficients, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.stdev_unscaled, ref.stdev_unscaled, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(out.contrasts, C.to_numpy())
    # a contrast vector with named entries (a Series) is matched the same way
    vec = contrasts_fit(fit, C["B_vs_A"].iloc[::-1])
    np.testing.assert_allclose(
        vec.coefficients[:, 0], ref.coefficients[:, 0], rtol=1e-12, atol=1e-14
    )
    assert vec.coef_names == ["B_vs_A"]


def test_contrast_rows_that_are_not_coefficients_are_refused_naming_them():
    expr, design = _data()
    fit = lm_fit(expr, design)
    C = _contrast_matrix(design).rename(index={"groupB": "group_B"})
    with pytest.raises(ValueError, match="coefficient names differ") as err:
        contrasts_fit(fit, C)
    assert "'group_B'" in str(err.value) and "'groupB'" in str(err.value)


def test_trend_series_is_matched_to_features_by_id():
    expr, design = _data(G=300)
    fit = lm_fit(expr, design)
    covariate = pd.Series(np.linspace(0, 5, len(expr)) ** 2, index=expr.index)
    ref = e_bayes(fit, trend=covariate.to_numpy())
    out = e_bayes(fit, trend=covariate.iloc[::-1])
    np.testing.assert_allclose(out.s2_prior, ref.s2_prior, rtol=1e-12)
    np.testing.assert_allclose(out.t, ref.t, rtol=1e-12)
    with pytest.raises(ValueError, match="g0"):
        e_bayes(fit, trend=covariate.rename(index={"g0": "gene0"}))
