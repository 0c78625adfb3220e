"""The results table's two formats: Parquet (primary, typed) and gzipped TSV made from it."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from stacklm.io.outputs import parquet_to_tsv, read_table, write_parquet, write_tsv
from stacklm.workflow.targets import RESULTS_TSV_AUTO_MB, wants_results_tsv


def _table(n: int = 300_000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(n)
    x[::7] = np.nan
    return pd.DataFrame(
        {
            "feature_id": [f"1e{i}" if i % 2 else f"g{i}" for i in range(n)],
            "estimate": x,
            "p": np.abs(x) * 1e-300,
            "df_residual": np.full(n, 93.0),
            "decision": rng.integers(-1, 2, n).astype(np.int8),
            "decision_c": np.where(
                np.isnan(x), np.nan, np.sign(np.round(x))
            ),  # decideTests: float, NaN
            "n": np.arange(n, dtype=np.int64),
        }
    )


def test_parquet_keeps_types_and_values(tmp_path):
    table = _table()
    write_parquet(table, tmp_path / "r.parquet", int8_columns=["decision_c"])
    back = read_table(tmp_path / "r.parquet")
    schema = pq.read_schema(tmp_path / "r.parquet")
    assert str(schema.field("decision_c").type) == "int8"  # R's arrow reads integer with NA
    np.testing.assert_array_equal(back["decision_c"].to_numpy(), table["decision_c"].to_numpy())
    assert list(back.columns) == list(table.columns)
    assert back["feature_id"].tolist() == table["feature_id"].tolist()  # "1e1" stays a string
    assert back["decision"].dtype == np.int8 and back["n"].dtype == np.int64
    for col in ("estimate", "p", "df_residual"):
        np.testing.assert_array_equal(back[col].to_numpy(), table[col].to_numpy())
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert meta.num_row_groups == 3  # 131,072-row groups: readers can take ranges
    assert read_table(tmp_path / "r.parquet", ["p"]).columns.tolist() == ["p"]


def test_tsv_from_parquet_equals_tsv_from_the_table(tmp_path):
    # the results_tsv job's file is byte for byte what moderate used to write directly
    table = _table()
    write_tsv(table, tmp_path / "direct.tsv.gz", threads=2)
    write_parquet(table, tmp_path / "r.parquet", int8_columns=["decision_c"])
    assert parquet_to_tsv(tmp_path / "r.parquet", tmp_path / "via.tsv.gz", threads=2) == len(table)
    direct = (tmp_path / "direct.tsv.gz").read_bytes()
    assert (tmp_path / "via.tsv.gz").read_bytes() == direct
    lines = gzip.decompress(direct).decode().splitlines()
    assert lines[0] == "feature_id\testimate\tp\tdf_residual\tdecision\tdecision_c\tn"
    assert lines[1].split("\t")[1] == lines[1].split("\t")[5] == "NA"  # row 0 is missing
    assert {line.split("\t")[5] for line in lines[1:]} == {"-1", "0", "1", "NA"}
    # as README reads it: ids stay text ("1e1"), NA is missing
    back = pd.read_csv(
        tmp_path / "via.tsv.gz", sep="\t", keep_default_na=False, na_values=["NA"],
        dtype={"feature_id": str},
    )  # fmt: skip
    assert back["feature_id"].tolist() == table["feature_id"].tolist()
    np.testing.assert_array_equal(back["p"].to_numpy(), table["p"].to_numpy())


def test_int8_columns_must_hold_small_whole_numbers(tmp_path):
    with pytest.raises(ValueError, match="'x' does not hold int8 values"):
        write_parquet(pd.DataFrame({"x": [0.5, 1.0]}), tmp_path / "x.parquet", int8_columns=["x"])


def test_results_tsv_auto_follows_the_input_size(tmp_path):
    small = tmp_path / "m.tsv"
    small.write_bytes(b"x" * 1000)
    assert wants_results_tsv("auto", small) and not wants_results_tsv(False, small)
    big = tmp_path / "m.parquet"  # Parquet counts 2x its size as float64 values
    with open(big, "wb") as fh:
        fh.truncate(int(RESULTS_TSV_AUTO_MB * 1e6 / 2) + 1000)
    assert not wants_results_tsv("auto", big) and wants_results_tsv(True, big)
    bed = tmp_path / "g.bed"  # a .bed as its int8 store: 4x its size
    with open(bed, "wb") as fh:
        fh.truncate(int(RESULTS_TSV_AUTO_MB * 1e6 / 4) - 1000)
    assert wants_results_tsv("auto", bed)
