"""Design matrices from formulas (R's model.matrix naming and coding) and contrast strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

from stacklm.design.contrasts import ContrastError, make_contrasts
from stacklm.design.formula import DesignError, design_matrix, parse_formula


@pytest.fixture
def samples():
    return pd.DataFrame(
        {
            "geography": [
                "Agadir",
                "Desert",
                "Mountain",
                "Desert",
                "Agadir",
                "Mountain",
                "Agadir",
                "Desert",
            ],
            "sex": ["F", "M", "M", "F", "M", "F", "F", "M"],
            "batch": [1, 2, 1, 2, 3, 3, 1, 3],
            "age": [31.0, 45.0, 52.0, 28.0, 39.0, 61.0, 44.0, 50.0],
        },
        index=[f"S{i}" for i in range(8)],
    )


def test_r_column_names_and_treatment_coding(samples):
    X = design_matrix(samples, "~ geography + sex + batch + age", levels={"batch": [1, 2, 3]})
    assert list(X.columns) == [
        "Intercept",
        "geographyDesert",
        "geographyMountain",
        "sexM",
        "batch2",
        "batch3",
        "age",
    ]
    assert X.loc["S1", "geographyDesert"] == 1 and X.loc["S1", "geographyMountain"] == 0
    assert X.loc["S0", ["geographyDesert", "geographyMountain", "sexM"]].sum() == 0
    assert X["age"].tolist() == samples["age"].tolist()


def test_levels_fix_the_reference(samples):
    X = design_matrix(
        samples, "~ geography", levels={"geography": ["Mountain", "Agadir", "Desert"]}
    )
    assert list(X.columns) == ["Intercept", "geographyAgadir", "geographyDesert"]


def test_bladder_design_equals_r_model_matrix():
    pheno = read_table(TEST_DATA / "bladder" / "samples.tsv", index_col=0)
    ref = read_table(TEST_DATA / "bladder" / "limma" / "design.tsv", index_col=0)
    X = design_matrix(pheno, "~ cancer + batch", levels={"batch": [1, 2, 3, 4, 5]})
    assert list(X.columns) == list(ref.columns)
    assert np.array_equal(X.to_numpy(), ref.loc[X.index].to_numpy())


def test_interaction_names_follow_r(samples):
    X = design_matrix(samples, "~ geography * sex")
    assert list(X.columns) == [
        "Intercept",
        "geographyDesert",
        "geographyMountain",
        "sexM",
        "geographyDesert:sexM",
        "geographyMountain:sexM",
    ]
    row = X.loc["S1"]
    assert row["geographyDesert:sexM"] == 1


def test_no_intercept_codes_first_factor_fully(samples):
    X = design_matrix(samples, "~ 0 + geography + sex")
    assert list(X.columns) == ["geographyAgadir", "geographyDesert", "geographyMountain", "sexM"]


def test_missing_covariate_drops_samples_with_warning(samples):
    s = samples.copy()
    s.loc["S3", "age"] = np.nan
    with pytest.warns(UserWarning, match="S3"):
        X = design_matrix(s, "~ geography + age")
    assert "S3" not in X.index and len(X) == 7


def test_rank_deficient_design_names_aliased_columns(samples):
    s = samples.copy()
    s["site"] = s["geography"].map({"Agadir": "coast", "Desert": "inland", "Mountain": "inland"})
    with pytest.raises(
        DesignError,
        match="siteinland is a linear combination of geographyDesert, geographyMountain",
    ):
        design_matrix(s, "~ geography + site")


def test_bad_formulas_and_levels(samples):
    with pytest.raises(DesignError, match="'tissue', not a column"):
        design_matrix(samples, "~ geography + tissue")
    with pytest.raises(DesignError, match="value\\(s\\) 'Mountain' not in its levels"):
        design_matrix(samples, "~ geography", levels={"geography": ["Agadir", "Desert"]})
    with pytest.raises(DesignError, match="'Oasis' of 'geography' listed in 'levels' do not occur"):
        design_matrix(
            samples, "~ geography", levels={"geography": ["Agadir", "Desert", "Mountain", "Oasis"]}
        )
    with pytest.raises(DesignError, match="single level"):
        design_matrix(samples.iloc[[0, 4, 6]], "~ geography + sex")
    with pytest.raises(DesignError, match="must start with '~'"):
        design_matrix(samples, "geography")
    with pytest.raises(DesignError, match="cannot read term"):
        design_matrix(samples, "~ log(age)")
    assert parse_formula("~ a + b - 1").intercept is False


def test_make_contrasts():
    names = ["Intercept", "geographyDesert", "geographyMountain", "sexM"]
    C = make_contrasts(
        {
            "DvM": "geographyDesert - geographyMountain",
            "avg": "(geographyDesert + geographyMountain)/2",
        },
        names,
    )
    assert C["DvM"].tolist() == [0, 1, -1, 0]
    assert C["avg"].tolist() == [0, 0.5, 0.5, 0]
    with pytest.raises(ContrastError, match="not a coefficient; coefficients are: Intercept"):
        make_contrasts(["geographyOasis - geographyDesert"], names)
    with pytest.raises(ContrastError, match="not a valid expression"):
        make_contrasts(["geographyDesert -- * geographyMountain"], names)
    with pytest.raises(ContrastError, match="linear"):
        make_contrasts(["geographyDesert * geographyMountain"], names)


def test_contrast_with_interaction_names():
    names = ["Intercept", "geographyDesert", "sexM", "geographyDesert:sexM"]
    C = make_contrasts(["geographyDesert + geographyDesert:sexM"], names)
    assert C.iloc[:, 0].tolist() == [0, 1, 0, 1]


def test_na_reference_design_is_bladder_design():
    ref = read_table(TEST_DATA / "limma_na" / "design.tsv", index_col=0)
    assert list(ref.columns)[:3] == ["Intercept", "cancerCancer", "cancerNormal"]
