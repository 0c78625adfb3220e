"""The embedded example is reproducible from its generator and keeps the shape the README describes.

``scripts/simulate_example.py`` (seed 20101) must rebuild ``resources/example`` byte for byte, so the
committed data can be checked and regenerated; the checks below pin the properties the README and
the workflow tests rely on (sample sheet columns, the truth tables, the hidden confounders).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "example"
FILES = ["expression.tsv.gz", "samples.tsv", "features.tsv", "truth.tsv", "truth_samples.tsv"]


def test_generator_rebuilds_the_committed_example_byte_for_byte(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "simulate_example.py"), "--outdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


def test_another_seed_gives_other_data(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "simulate_example.py"),
            "--outdir",
            str(tmp_path),
            "--seed",
            "7",
            "--n-features",
            "500",
            "--n-samples",
            "30",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    matrix = pd.read_csv(tmp_path / "expression.tsv.gz", sep="\t", index_col=0)
    assert matrix.shape == (500, 30)
    committed = pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", index_col=0, nrows=500)
    assert not np.allclose(matrix.iloc[:, :30].to_numpy(), committed.iloc[:, :30].to_numpy())


def test_example_tables_fit_together():
    matrix = pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", index_col=0)
    samples = pd.read_csv(EXAMPLE / "samples.tsv", sep="\t")
    features = pd.read_csv(EXAMPLE / "features.tsv", sep="\t")
    truth = pd.read_csv(EXAMPLE / "truth.tsv", sep="\t")
    hidden = pd.read_csv(EXAMPLE / "truth_samples.tsv", sep="\t")

    assert matrix.shape == (12000, 96)
    assert list(matrix.columns) == list(samples["sample_id"]) == list(hidden["sample_id"])
    assert list(matrix.index) == list(features.iloc[:, 0]) == list(truth["feature_id"])
    assert {"geography", "sex", "age", "batch", "tissue", "rna_quality"} <= set(samples.columns)
    assert set(samples["geography"]) == {"Agadir", "Desert", "Mountain"}
    # the hidden confounders are not in the sample sheet; RNA quality tracks the second one
    assert not {"hidden1", "hidden2"} & set(samples.columns)
    r = np.corrcoef(samples["rna_quality"], hidden["hidden2"])[0, 1]
    assert abs(r) > 0.5, r
    # about 10% of the features differ by geography, and a few values are missing
    share = truth["de_geography"].mean()
    assert 0.08 < share < 0.12, share
    missing = matrix.isna().to_numpy().mean()
    assert 0 < missing < 0.01, missing
