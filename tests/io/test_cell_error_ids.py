"""A matrix cell that is not a number, or is infinite, is reported with the feature id of its row
(the first column of that line) besides the line and column (issue 14, item 10)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import stacklm.io.text as sio
from stacklm.io.formats import MatrixInputError
from stacklm.io.matrix import read_matrix


def _message(path) -> str:
    with pytest.raises(MatrixInputError) as info:
        read_matrix(path)
    return str(info.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            "id\ta\tb\nf1\t1\t2\n\ngeneX\t1\tabc\n",
            "line 4 (data row 2), column 3 ('b'): value 'abc' is not a number (feature 'geneX')",
        ),
        (
            "id\ta\tb\nf1\t1\t2\ncg0042\t1\t-Inf\n",
            "line 3 (data row 2), column 3 ('b'): value '-Inf' is infinite (feature 'cg0042')",
        ),
        (
            "id\ta\tb\nENSG1\t1e400\t2\n",
            "line 2 (data row 1), column 2 ('a'): value '1e400' is infinite (feature 'ENSG1')",
        ),
    ],
)
def test_text_cell_errors_name_the_feature(tmp_path, content, expected):
    path = tmp_path / "m.tsv"
    path.write_text(content)
    assert expected in _message(path)


def test_csv_and_late_gzip_cell_errors_name_the_feature(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    path.write_text("gene,s1,s2\ng1,1,2\nBRCA1,x,2\n")
    assert "value 'x' is not a number (feature 'BRCA1')" in _message(path)
    monkeypatch.setattr(sio, "ARROW_BLOCK_BYTES", 4096)
    lines = ["id\ts1\ts2"] + [f"f{i}\t{i}\t0.5" for i in range(5000)]
    lines[4321] = "f4320\t1\toops"
    lines[4400] = "f4399\tinf\t0.5"
    path = tmp_path / "late.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert "line 4322 (data row 4321), column 3 ('s2'): value 'oops' is not a number " in (
        _message(path)
    )
    assert "(feature 'f4320')" in _message(path)
    lines[4321] = "f4320\t1\t0.5"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert "value 'inf' is infinite (feature 'f4399')" in _message(path)


def test_parquet_infinite_value_names_the_feature(tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"id": ["a", "probe7"], "s1": [1.0, -np.inf]}).to_parquet(path, index=False)
    assert "row 2, column 2 ('s1'): value '-inf' is infinite (feature 'probe7')" in _message(path)
