"""design_matrix against R's model.matrix for a battery of formulas (tests/data/design, made by
make_reference.R with R 4.2.2): column names and order, treatment coding, level orders, the
samples kept (na.omit), bit-equal values."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

from stacklm.design.formula import DesignError, design_matrix, parse_formula

DATA = TEST_DATA / "design"
CASES = pd.read_csv(DATA / "cases.tsv", sep="\t", keep_default_na=False).set_index("case")


def _sheet() -> pd.DataFrame:
    sheet = read_table(DATA / "samples.tsv", index_col="sample_id")
    # a code held as Python ints (an object column): a factor, levels in numeric order 1, 2, 10 as
    # R's factor() of the integer column (R's text sort would give 1, 10, 2)
    sheet["lane"] = sheet["lane"].astype(object)
    return sheet


def _levels(text: str) -> dict[str, list]:
    """'batch=1,2,10;sex=M,F' -> {'batch': [1, 2, 10], 'sex': ['M', 'F']} (numbers as numbers, as a
    YAML config gives them)."""
    out = {}
    for spec in filter(None, text.split(";")):
        var, values = spec.split("=")
        out[var] = [int(v) if v.isdigit() else v for v in values.split(",")]
    return out


def _r_name(name: str) -> str:
    """R's column name as stacklm writes it: ``Intercept`` for ``(Intercept)``, backticked names
    without their backticks."""
    return "Intercept" if name == "(Intercept)" else name.replace("`", "")


@pytest.mark.parametrize("case", list(CASES.index))
def test_design_matrix_equals_r_model_matrix(case):
    formula, levels = CASES.loc[case, "formula"], _levels(CASES.loc[case, "levels"])
    ref = read_table(DATA / "model_matrix" / f"{case}.tsv", index_col="sample_id")
    sheet = _sheet()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = design_matrix(sheet, formula, levels)
    assert list(X.columns) == [_r_name(c) for c in ref.columns]
    assert list(X.index) == list(ref.index)  # the samples R's na.omit keeps, in sheet order
    assert X.dtypes.eq(np.float64).all()
    assert np.array_equal(X.to_numpy(), ref.to_numpy(dtype=np.float64))
    dropped = [s for s in sheet.index if s not in set(ref.index)]
    messages = [str(w.message) for w in caught]
    if dropped:
        assert messages == [
            f"dropping {len(dropped)} sample(s) with a missing value in a formula variable: "
            + ", ".join(dropped)
        ]
    else:
        assert messages == []


def test_the_battery_covers_the_cases_named():
    r_names = {
        case: list(read_table(DATA / "model_matrix" / f"{case}.tsv", nrows=0).columns[1:])
        for case in CASES.index
    }
    assert "`cell type`T cell:geographyDesert" in r_names["backticked_and_dotted"]
    assert r_names["factor_x_factor_variable_order"][-1] == "sexM:geographyMountain"
    assert r_names["interaction_written_first"][1:3] == ["sexM", "geographyDesert"]
    assert r_names["numeric_code_factor"][1:3] == ["lane2", "lane10"]
    assert "geographyAgadir:sexM:age" in r_names["three_way_without_two_way_margin"]
    assert r_names["zero_then_one"][0] == r_names["minus_zero"][0] == "(Intercept)"


def test_parse_formula_variables_in_formula_order():
    f = parse_formula("~ geography:sex + sex + geography + `cell type` + cell.kind * age")
    assert f.variables == ["geography", "sex", "cell type", "cell.kind", "age"]
    assert f.intercept is True
    assert f.terms == [
        ("sex",),
        ("geography",),
        ("cell type",),
        ("cell.kind",),
        ("age",),
        ("geography", "sex"),
        ("cell.kind", "age"),
    ]
    assert parse_formula("~ 0 + a + 1").intercept is True  # as R
    assert parse_formula("~ a - 0").intercept is True
    assert parse_formula("~ -1 + a").intercept is False


def test_syntax_formulaic_would_accept_keeps_the_errors_users_see():
    sheet = _sheet().dropna()
    cases = {
        "~ (geography + sex):age": "cannot read term '(geography' in formula",
        "~ geography + sex - sex": "removing term 'sex' with '-' is not supported",
        "~ geography^2": "cannot read term 'geography^2'",
        "~ factor(batch)": "cannot read term 'factor(batch)'",
        "~ geography + geography:age": "interaction geography:age needs the main effect 'age'",
        "~ age + sex:age": "interaction sex:age needs the main effect 'sex'",
    }
    for formula, message in cases.items():
        with pytest.raises(DesignError, match=re.escape(message)):
            design_matrix(sheet, formula)
