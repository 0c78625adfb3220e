"""Config validation (issue 14 items 2 and 9): unknown keys are one-line errors naming the key, where
it is and the closest valid keys; defaults come from config/schema.yaml only; the library validates
an analysis exactly as the workflow does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stacklm.analysis import run_analysis
from stacklm.spec import AnalysisSpec
from stacklm.workflow.config import ConfigError, load_schema, validate_analysis, validate_config

BASE = {"formula": "~ group", "test": "groupB"}


def test_misspelled_analysis_keys_name_the_closest_valid_key():
    with pytest.raises(ConfigError) as err:
        validate_analysis(dict(BASE, surogate_variables=3), "a")
    msg = str(err.value)
    assert "\n" not in msg
    assert "'surogate_variables'" in msg and "did you mean 'surrogate_variables'" in msg
    with pytest.raises(
        ConfigError, match=r"unknown key 'trnd' in moderation; did you mean 'trend'"
    ):
        validate_analysis(dict(BASE, moderation={"trnd": True}), "a")


def test_misspelled_top_level_and_analysis_keys_in_a_config():
    config = {
        "matrix": "m.tsv",
        "samples": "s.tsv",
        "analyses": {"a": {"fromula": "~ g", "test": "x"}},
    }
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400
    assert "'fromula'" in msg and "analyses.a" in msg and "'formula'" in msg
    with pytest.raises(
        ConfigError, match="unknown key 'chunk' in the top level; did you mean 'chunks'"
    ):
        validate_config({"matrix": "m", "samples": "s", "chunk": 2, "analyses": {"a": BASE}})


def test_wrong_values_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"analyses.a.surrogate_variables is 'many'"):
        validate_config(
            {
                "matrix": "m",
                "samples": "s",
                "analyses": {"a": dict(BASE, surrogate_variables="many")},
            }
        )
    with pytest.raises(
        ConfigError, match=r"normalize.method is 'vsn'; use one of 'none', 'quantile'"
    ):
        validate_config(
            {"matrix": "m", "samples": "s", "normalize": {"method": "vsn"}, "analyses": {"a": BASE}}
        )


def test_defaults_come_from_the_schema():
    spec = AnalysisSpec.from_settings("a", BASE)
    props = load_schema()["properties"]["analyses"]["additionalProperties"]["properties"]
    assert spec.surrogate.method == props["surrogate_method"]["default"]
    assert spec.surrogate.seed == props["surrogate_seed"]["default"]
    assert spec.surrogate.requested == props["surrogate_variables"]["default"]
    assert spec.moderation.trend is props["moderation"]["properties"]["trend"]["default"]
    assert spec.test == ("groupB",)
    full = validate_config({"matrix": "m", "samples": "s", "analyses": {"a": BASE}})
    assert full["chunks"] == load_schema()["properties"]["chunks"]["default"]
    assert full["analyses"]["a"]["surrogate_method"] == props["surrogate_method"]["default"]


def test_run_analysis_rejects_misspelled_keys():
    sheet = pd.DataFrame({"group": ["A", "B"] * 4}, index=[f"s{i}" for i in range(8)])
    matrix = pd.DataFrame([[float(i + j) for j in range(8)] for i in range(5)], columns=sheet.index)
    with pytest.raises(ConfigError, match="did you mean 'surrogate_variables'"):
        run_analysis(matrix, sheet, dict(BASE, surogate_variables="auto"))
    with pytest.raises(ConfigError, match="did you mean 'trend'"):
        run_analysis(matrix, sheet, dict(BASE, moderation={"trnd": True}))


def test_auto_chunks_follow_the_data_size(tmp_path):
    from stacklm.workflow.chunks import CHUNK_TARGET_MB, WEIGHTED_CHUNK_TARGET_MB, auto_chunks

    assert (
        validate_config({"matrix": "m", "samples": "s", "analyses": {"a": BASE}})["chunks"]
        == "auto"
    )
    small = tmp_path / "m.tsv"
    small.write_text("feature_id\ta\nf1\t1\n")
    assert auto_chunks(small) == 1
    big = tmp_path / "m.tsv.gz"
    with open(big, "wb") as fh:  # 100 MB of gzip ~ 400 MB of values
        fh.truncate(100 * 10**6)
    assert auto_chunks(big) == 1 and CHUNK_TARGET_MB == 512
    # weighted or block-correlated fits: smaller chunks (128 MB)
    assert auto_chunks(big, weighted=True) == 4 and WEIGHTED_CHUNK_TARGET_MB == 128
    with open(big, "wb") as fh:  # 300 MB of gzip ~ 1200 MB of values
        fh.truncate(300 * 10**6)
    assert auto_chunks(big) == 3 and auto_chunks(big, weighted=True) == 10
    parquet = tmp_path / "m.parquet"
    with open(parquet, "wb") as fh:
        fh.truncate(64 * 10**6)
    assert auto_chunks(parquet) == 1 and auto_chunks(parquet.with_suffix(".parquet")) == 1
    # a readable Parquet file counts exactly, rows x sample columns from its footer: 200,000 x 100
    # float64 zeros are 160 MB of values (2 weighted jobs) in a file of a few hundred kB
    zeros = pa.array(np.zeros(200_000))
    table = pa.table({"feature_id": pa.array(np.arange(200_000).astype(str)),
                      **{f"s{j}": zeros for j in range(100)}})  # fmt: skip
    pq.write_table(table, tmp_path / "real.parquet", compression="zstd")
    assert (tmp_path / "real.parquet").stat().st_size < 10**6
    assert auto_chunks(tmp_path / "real.parquet", weighted=True) == 2
    assert auto_chunks(tmp_path / "real.parquet") == 1


def test_auto_chunks_of_a_local_run_keep_its_cores_busy_with_fewer_jobs(tmp_path):
    from stacklm.workflow.chunks import LOCAL_CHUNK_TARGET_MB, auto_chunks

    assert LOCAL_CHUNK_TARGET_MB == 2048
    big = tmp_path / "m.tsv"

    def chunks(values_mb, **kw):
        with open(big, "wb") as fh:  # text: ~1 MB of values per MB of file
            fh.truncate(values_mb * 10**6)
        return auto_chunks(big, **kw)

    assert chunks(9, cores=2) == 1  # small data: one job, whatever the cores
    assert chunks(800) == chunks(800, cores=2) == 2  # 10^6 x 100
    assert chunks(2720) == 6 and chunks(2720, cores=2) == 2  # 850,000 x 400
    assert chunks(2720, cores=1) == 2 and chunks(2720, cores=4) == 4
    assert chunks(2720, cores=8) == 6  # never more than the size rule
    assert chunks(8000) == 16 and chunks(8000, cores=2) == 4  # 10^6 x 1,000: 2 rounds
    # weights or blocks: the 128 MB rule, whatever the cores (several passes balance many jobs)
    assert chunks(2720, weighted=True, cores=2) == chunks(2720, weighted=True) == 22
