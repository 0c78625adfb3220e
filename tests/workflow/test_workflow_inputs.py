"""Input formats and normalization options through the real workflow (issue: input and normalization)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_matches, read_table
from workflow_helpers import snakemake, write_config

from stacklm.io.store import open_binary_matrix
from stacklm.limma.normalize import quantile_normalize
from stacklm.preprocess.scales import beta_to_m

N = 18


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(11)
    ids = [f"S{i:02d}" for i in range(N)]
    sheet = pd.DataFrame(
        {
            "sample_id": ids,
            "group": np.repeat(["a", "b", "c"], N // 3),
            "age": rng.uniform(20, 60, N),
        }
    )
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    values = 2 ** rng.normal(8, 1, (300, N)) * rng.uniform(0.8, 1.2, N)
    values[rng.random(values.shape) < 0.01] = np.nan
    matrix = pd.DataFrame(values, index=[f"g{i}" for i in range(300)], columns=ids).rename_axis(
        "feature_id"
    )
    return sheet, matrix


def _config(tmp_path, matrix_path, **extra):
    config = {
        "matrix": str(matrix_path),
        "samples": str(tmp_path / "samples.tsv"),
        "chunks": 2,
        "analyses": {"g": {"formula": "~ group + age", "test": ["groupb", "groupc"]}},
    }
    config.update(extra)
    return config


def _run(tmp_path, name, config):
    work = tmp_path / name
    work.mkdir()
    out = snakemake(work, write_config(work / "c.yaml", config), "results/g/results.tsv.gz")
    assert out.returncode == 0, out.stderr[-3000:]
    return work


def test_tsv_gzip_csv_and_parquet_give_identical_results(tmp_path, data):
    _, matrix = data
    paths = {
        "tsv": tmp_path / "m.tsv",
        "gz": tmp_path / "m.tsv.gz",
        "csv": tmp_path / "m.csv",
        "parquet": tmp_path / "m.parquet",
    }
    matrix.to_csv(paths["tsv"], sep="\t", float_format="%.17g")
    matrix.to_csv(paths["gz"], sep="\t", float_format="%.17g")
    matrix.to_csv(paths["csv"], float_format="%.17g")
    matrix.reset_index().to_parquet(paths["parquet"], index=False)
    tables = {}
    for name, path in paths.items():
        work = _run(tmp_path, name, _config(tmp_path, path, normalize={"log2": True, "offset": 1}))
        tables[name] = read_table(work / "results" / "g" / "results.tsv.gz")
        store = open_binary_matrix(work / "results" / "normalized" / "matrix")
        expected = np.log2(matrix.to_numpy() + 1)
        assert np.array_equal(np.asarray(store.values), expected, equal_nan=True)
    for name in ("gz", "csv", "parquet"):
        pd.testing.assert_frame_equal(tables[name], tables["tsv"])


def test_quantile_normalization_and_filters_in_the_workflow(tmp_path, data):
    _, matrix = data
    path = tmp_path / "m.tsv"
    matrix.to_csv(path, sep="\t", float_format="%.17g")
    config = _config(
        tmp_path,
        path,
        normalize={"log2": True, "method": "quantile"},
        filter={"max_missing": 0.5, "min_average": 7.5},
    )
    work = _run(tmp_path, "q", config)
    store = open_binary_matrix(work / "results" / "normalized" / "matrix")
    full = quantile_normalize(np.log2(matrix.to_numpy() + 1))
    keep = np.nanmean(full, axis=1) >= 7.5
    assert list(store.feature_ids) == list(matrix.index[keep])
    assert np.array_equal(np.asarray(store.values), full[keep], equal_nan=True)
    summary = json.loads((work / "results" / "normalized" / "summary.json").read_text())
    assert summary["removed_by_filter"]["min_average"] == int((~keep).sum()) > 0
    assert summary["n_features"] == int(keep.sum())


def test_beta_values_become_m_values(tmp_path, data):
    _, matrix = data
    rng = np.random.default_rng(2)
    beta = pd.DataFrame(rng.beta(2, 5, matrix.shape), index=matrix.index, columns=matrix.columns)
    beta.iloc[0, 0] = 0.0  # clipped at beta_epsilon
    path = tmp_path / "beta.tsv"
    beta.to_csv(path, sep="\t", float_format="%.17g")
    work = _run(tmp_path, "b", _config(tmp_path, path, input_scale="beta", beta_epsilon=1e-4))
    store = open_binary_matrix(work / "results" / "normalized" / "matrix")
    assert_matches(
        np.asarray(store.values), beta_to_m(beta.to_numpy(), eps=1e-4), "M-values", rtol=0
    )
    assert store.values[0, 0] == np.log2(1e-4 / (1 - 1e-4))
