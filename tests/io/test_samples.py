"""Sample sheets: reading, matching the matrix, and the safe subset language."""

from __future__ import annotations

import pandas as pd
import pytest

from stacklm.io.samplesheet import (
    SampleSheetError,
    evaluate_subset,
    match_samples,
    read_sample_sheet,
)


@pytest.fixture
def sheet():
    return pd.DataFrame(
        {
            "tissue": ["blood", "blood", "skin", None],
            "age": [30, 50, 40, 20],
            "geography": ["Agadir", "Desert", "Mountain", "Desert"],
        },
        index=["A", "B", "C", "D"],
    )


def test_subset_expressions(sheet):
    assert list(sheet.index[evaluate_subset(sheet, "tissue == 'blood'")]) == ["A", "B"]
    assert list(sheet.index[evaluate_subset(sheet, "tissue != 'blood'")]) == [
        "C"
    ]  # NA never matches
    assert list(
        sheet.index[evaluate_subset(sheet, "age >= 30 and geography in ['Desert', 'Mountain']")]
    ) == ["B", "C"]
    assert list(sheet.index[evaluate_subset(sheet, "not (age > 35) or tissue == 'skin'")]) == [
        "A",
        "C",
        "D",
    ]
    assert list(sheet.index[evaluate_subset(sheet, "(age < 45) & (geography != 'Agadir')")]) == [
        "C",
        "D",
    ]
    assert list(sheet.index[evaluate_subset(sheet, "20 < age <= 40")]) == ["A", "C"]


@pytest.mark.parametrize(
    "expr, message",
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("tissue.str.contains('b')", "not allowed"),
        ("age > ", "not a valid expression"),
        ("height > 1", "'height', not a column"),
        ("age in 30", "needs a list"),
    ],
)
def test_subset_rejects_code_and_typos(sheet, expr, message):
    with pytest.raises(SampleSheetError, match=message):
        evaluate_subset(sheet, expr)


def test_read_sample_sheet_errors(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text("sample_id\tage\nA\t1\nB\t2\nA\t3\n")
    with pytest.raises(SampleSheetError, match="duplicated 'sample_id' value\\(s\\) A"):
        read_sample_sheet(p)
    with pytest.raises(SampleSheetError, match="no column 'id'.*columns are: sample_id, age"):
        read_sample_sheet(p, "id")
    with pytest.raises(SampleSheetError, match="does not exist"):
        read_sample_sheet(tmp_path / "missing.tsv")
    q = tmp_path / "s.csv"
    q.write_text("sample_id,age\n01,1\n02,2\n")
    assert list(read_sample_sheet(q).index) == ["01", "02"]  # ids stay text


def test_match_samples_lists_both_sides(sheet):
    with pytest.raises(
        SampleSheetError,
        match=r"1 matrix column\(s\) not in the sample sheet: E; 1 sample sheet row\(s\) not in the matrix: D",
    ):
        match_samples(["A", "B", "C", "E"], sheet)
    match_samples(["D", "C", "B", "A"], sheet)
