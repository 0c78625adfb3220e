"""export_corrected (issue 15): removeBatchEffect(x, covariates = X[, adj], design = X[, kept]) against
limma 3.63.2 (tests/data/limma_results), and the workflow's corrected.parquet in row blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import TEST_DATA, assert_matches, limma_results_inputs, read_table
from workflow_helpers import EXAMPLE, example_config, snakemake, write_config

from stacklm.io.store import open_binary_matrix
from stacklm.spec import DesignInfo
from stacklm.workflow.corrected_steps import adjustment_columns, remove_adjustment_effects
from stacklm.workflow.pipeline import read_design

DATA = TEST_DATA / "limma_results"
DESIGN = ["Intercept", "cancerCancer", "cancerNormal", "batch2", "batch3", "batch4", "batch5"]
KEPT, ADJ = DESIGN[:3], DESIGN[3:]


@pytest.mark.parametrize("which", ["complete", "na"])
def test_adjustment_effects_removed_as_limma(which):
    complete, with_na, sheet = limma_results_inputs()
    values = (with_na if which == "na" else complete).iloc[:60].to_numpy()
    ref = read_table(DATA / f"rbe_{which}_covariates.tsv.gz", index_col=0)
    out = remove_adjustment_effects(values, sheet[DESIGN], KEPT, ADJ)
    assert_matches(out, ref.to_numpy(), f"removeBatchEffect {which}")


def test_adjustment_columns_follow_the_test():
    info = DesignInfo(
        variables=("g", "batch"),
        numeric_covariates=(),
        design_columns=("Intercept", "gB", "gC", "batch2"),
        null_design_columns=("Intercept", "batch2"),
        dropped_samples=(),
        n_samples=10,
    )
    kept, adj = adjustment_columns(["Intercept", "gB", "gC", "batch2", "sv1"], info)
    assert kept == ["Intercept", "gB", "gC"] and adj == ["batch2", "sv1"]


def test_workflow_writes_the_corrected_matrix_in_blocks(tmp_path, monkeypatch):
    expr = pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", nrows=1500)
    matrix = tmp_path / "small.tsv"
    expr.to_csv(matrix, sep="\t", index=False)
    config = example_config(matrix=str(matrix), chunks=2)
    config["analyses"]["geography"]["export_corrected"] = True
    cfg = write_config(tmp_path / "c.yaml", config)
    out = snakemake(tmp_path, cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    res = tmp_path / "results" / "geography"
    table = pq.read_table(res / "corrected.parquet").to_pandas()
    design = read_design(res / "design.tsv")
    store = open_binary_matrix(tmp_path / "results" / "normalized" / "matrix")
    assert list(table.columns) == ["feature_id", *design.index]
    assert list(table["feature_id"]) == [str(f) for f in store.feature_ids]
    kept, adj = adjustment_columns(
        list(design.columns), DesignInfo.read(res / "intermediate" / "base_design.json")
    )
    assert kept == ["Intercept", "geographyDesert", "geographyMountain"]
    position = {s: i for i, s in enumerate(store.samples)}
    Y = np.asarray(store.values)[:, [position[s] for s in design.index]]
    expected = remove_adjustment_effects(Y, design, kept, adj)
    assert_matches(table.iloc[:, 1:].to_numpy(), expected, "corrected", rtol=1e-12)
    assert (res / "plots" / "pca_corrected.png").stat().st_size > 10_000
