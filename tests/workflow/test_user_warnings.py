"""Issue 14 items 4, 5, 11, 13, 14: silent traps that now warn or say where to look."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from stacklm.analysis import analysis_design
from stacklm.diagnostics.summary import reviewer_notes, summary_markdown
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.spec import AnalysisSpec
from stacklm.workflow.checks import ConfigCheckError, check_config


def _sheet(n=20):
    return pd.DataFrame(
        {
            "group": ["a", "b"] * (n // 2),
            "batch": np.arange(n) % 5 + 1,
            "age": np.linspace(20, 60, n),
        },
        index=[f"s{i}" for i in range(n)],
    )


def test_integer_codes_fitted_as_one_covariate_are_warned_about():
    sheet = _sheet()
    spec = AnalysisSpec.from_settings("a", {"formula": "~ group + batch + age", "test": "groupb"})
    with pytest.warns(UserWarning) as record:
        design, _ = analysis_design(sheet, list(sheet.index), spec)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages  # batch only: age has 20 distinct values
    msg = messages[0]
    assert "'batch'" in msg and "ONE numeric covariate" in msg
    assert "levels: {batch: [1, 2, 3, 4, 5]}" in msg and "factor(batch)" in msg
    assert "batch" in design.columns  # the fit R would do: one column
    levels = AnalysisSpec.from_settings(
        "a", {"formula": "~ group + batch", "levels": {"batch": [1, 2, 3, 4, 5]}, "test": "groupb"}
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        design, _ = analysis_design(sheet, list(sheet.index), levels)
    assert [c for c in design.columns if c.startswith("batch")] == [
        "batch2",
        "batch3",
        "batch4",
        "batch5",
    ]


def test_spaces_around_sheet_values_are_stripped_and_said(tmp_path):
    path = tmp_path / "s.tsv"
    rows = [
        "sample_id\tcancer",
        "A\tcancerNormal",
        "B\tcancerNormal ",
        "C\t cancerTumour",
        "D\tcancerTumour",
    ]
    path.write_text("\n".join(rows) + "\n")
    with pytest.warns(
        UserWarning, match=r"removed leading/trailing spaces from 2 value\(s\) of 'cancer'"
    ):
        sheet = read_sample_sheet(path)
    assert sorted(sheet["cancer"].unique()) == ["cancerNormal", "cancerTumour"]


def test_a_missing_relative_path_names_the_absolute_path_and_the_working_directory(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigCheckError) as err:
            check_config(
                {
                    "matrix": "data/m.tsv",
                    "samples": "s.tsv",
                    "analyses": {"a": {"formula": "~ g", "test": "gB"}},
                }
            )
    finally:
        os.chdir(cwd)
    msg = str(err.value)
    assert str(tmp_path / "data" / "m.tsv") in msg and f"working directory {tmp_path}" in msg


def test_lambda_gc_is_flagged_when_most_features_are_associated():
    summary = {"pi0": 0.33, "lambda_gc": 9.07, "alpha": 0.05}
    notes = reviewer_notes(summary)
    assert len(notes) == 1 and "λGC = 9.07 is not a measure of inflation" in notes[0]
    assert "33%" in notes[0]
    md = summary_markdown("a", summary, {}, notes=notes)
    assert "9.07 (uninformative: see the notes)" in md and "## Notes" in md
    assert reviewer_notes({"pi0": 0.9, "lambda_gc": 1.1}) == []


def test_svs_associated_with_the_design_and_the_seed_of_auto_are_noted():
    assoc = pd.DataFrame(
        {
            "sv": ["sv1", "sv2", "sv2"],
            "covariate": ["batch", "cancer", "outcome"],
            "kind": ["categorical"] * 3,
            "r2": [0.9, 0.38, 0.5],
            "p_value": [1e-9, 1e-4, 1e-5],
            "n": [57] * 3,
        }
    )
    summary = {
        "pi0": 0.9,
        "surrogate_variables": {"requested": "auto", "n": 2, "method": "be", "seed": 1},
    }
    notes = reviewer_notes(summary, assoc, ["cancer"])
    assert any(
        "`sv2` is associated with the design variable `cancer` (R² = 0.38" in n for n in notes
    )
    assert not any("`batch`" in n or "`outcome`" in n for n in notes)  # not in the design
    assert any("permutation seed 1" in n and "can depend on the seed" in n for n in notes)
