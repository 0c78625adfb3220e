"""A block of correlated samples on continuous input through Snakemake (issue 17): the analysis has
no setup job (its round-1 chunks read the blocks from the sample sheet) and no job for the
consensus (the fit chunks, moderate and the plot compute it from the round's parts); its results
match limma's duplicateCorrelation + lmFit(block, correlation) + eBayes(trend = TRUE) on
tests/data/dupcor's log-CPM (1,500 genes x 24 samples of 12 donors, limma 3.63.2), and equal the
same steps run in one process with one chunk."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_table
from workflow_helpers import snakemake, write_config

from stacklm.analysis import moderate_and_test
from stacklm.io.store import open_binary_matrix
from stacklm.spec import AnalysisSpec
from stacklm.workflow.config import validate_config
from stacklm.workflow.pipeline import merge_chunk_fits
from stacklm.workflow.weighting.run import run_weighted_chunks

DATA = Path(__file__).resolve().parents[1] / "data"
DUPCOR = DATA / "dupcor"
COUNTS = DATA / "counts"
ANALYSIS = {
    "formula": "~ treatment + region + sex",
    "levels": {"treatment": ["before", "after"], "region": ["Agadir", "Desert", "Mountain"]},
    "test": ["regionDesert", "regionMountain"],
    "block": "donor",
    "moderation": {"trend": True},
}
COEFS = ["treatmentafter", "regionDesert", "regionMountain", "sexM"]
#: against R (relative, abs. floor for statistics near 0), as tests/workflow/test_counts_steps.py
#: (measured: 5.1e-12)
R_RTOL, R_ATOL = 1e-9, 1e-12
#: 3 workflow chunks against 1 in-process chunk (measured: bit-equal)
CHUNK_RTOL = 1e-12


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("block")
    lcpm = read_table(DUPCOR / "logcpm.tsv.gz", index_col=0)
    matrix = work / "logcpm.tsv"
    lcpm.rename_axis("feature_id").to_csv(matrix, sep="\t", float_format="%.17g")
    design = read_table(DUPCOR / "design.tsv")
    base = read_table(COUNTS / "samples.tsv").set_index("sample_id").loc[design["sample_id"]]
    sheet = pd.DataFrame(
        {
            "sample_id": design["sample_id"],
            "donor": design["donor"],
            "treatment": np.where(design["treatmentafter"] == 1, "after", "before"),
            "region": base["region"].to_numpy(),
            "sex": base["sex"].to_numpy(),
        }
    )
    samples = work / "samples.tsv"
    sheet.to_csv(samples, sep="\t", index=False)
    config = {
        "matrix": str(matrix),
        "samples": str(samples),
        "sample_id": "sample_id",
        "chunks": 3,
        "filter": {"max_missing": 1.0},
        "analyses": {"paired": ANALYSIS},
    }
    targets = [f"results/paired/{f}" for f in ("results.tsv.gz", "summary.json")]
    targets.append("results/paired/plots/block_correlation.png")
    out = snakemake(work, write_config(work / "config.yaml", config), *targets)
    assert out.returncode == 0, out.stderr[-4000:]
    return work, config, samples


def _scalar(name: str) -> float:
    lines = (DUPCOR / "scalars.tsv").read_text().splitlines()
    return float(dict(line.split("\t") for line in lines)[name])


def test_jobs_without_setup_and_consensus(run):
    work, *_ = run
    logs = {p.name for p in (work / "logs" / "paired").iterdir()}
    assert {f"weights_round_1_chunk_{c}.log" for c in range(3)} <= logs
    assert not any(n.startswith(("weights_setup", "weights_round_1.")) for n in logs)
    weights = work / "results" / "paired" / "intermediate" / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["round_1"]


def test_block_results_match_limma(run):
    work, *_ = run
    summary = json.loads((work / "results" / "paired" / "summary.json").read_text())
    block = summary["block"]
    assert block["column"] == "donor" and block["estimated"] and block["n_blocks"] == 12
    assert block["consensus_correlation"] == pytest.approx(_scalar("consensus.logcpm"), rel=1e-10)
    assert block["n_features"] == 1500
    assert [s["step"] for s in summary["weights"]["steps"]] == ["duplicateCorrelation"]
    res = read_table(work / "results" / "paired" / "results.tsv.gz", dtype={"feature_id": str})
    ref = read_table(DUPCOR / "gls_logcpm.tsv.gz").set_index("feature_id")
    ours = res.set_index("feature_id").loc[ref.index]
    pairs = {f"t_{c}": f"t.{c}" for c in COEFS} | {f"p_{c}": f"p.value.{c}" for c in COEFS}
    pairs |= {"statistic": "F", "p_value": "F.p.value", "df_residual": "df.residual"}
    worst = 0.0
    for a, b in pairs.items():
        x, y = ours[a].to_numpy(dtype=float), ref[b].to_numpy(dtype=float)
        np.testing.assert_allclose(x, y, rtol=R_RTOL, atol=R_ATOL, err_msg=a)
        worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), R_ATOL))))
    print(f"workflow block analysis vs limma: max relative difference {worst:.2e}")
    atanh = read_table(DUPCOR / "dupcor_logcpm.tsv.gz")
    hist = read_table(work / "results" / "paired" / "plots" / "block_correlation.tsv")
    np.testing.assert_allclose(hist["atanh_correlation"], atanh["atanh.correlations"], atol=1e-6)


def test_three_chunks_equal_one(run, tmp_path):
    """The workflow's 3 chunks against the same steps in one process with 1 chunk (measured:
    bit-equal; asserted to CHUNK_RTOL, since the rows' exp / log may take other SIMD paths in other
    row blocks on other CPUs)."""
    work, config, samples = run
    spec = AnalysisSpec.from_settings("paired", validate_config(config)["analyses"]["paired"])
    store = work / "results" / "normalized" / "matrix"
    assert open_binary_matrix(store, load_feature_ids=False).n_features == 1500
    design = work / "results" / "paired" / "design.tsv"
    paths = run_weighted_chunks(
        store, design, samples, "sample_id", spec, "expression", tmp_path, 1
    )
    assert not (tmp_path / "setup.npz").exists()
    fit = merge_chunk_fits(paths["fits"])
    one, _, _ = moderate_and_test(fit, {}, list(spec.test), asdict(spec.moderation))
    res = read_table(work / "results" / "paired" / "results.tsv.gz", dtype={"feature_id": str})
    assert list(res["feature_id"]) == list(one["feature_id"])
    for c in ("s2_post", "t_treatmentafter", "p_treatmentafter", "statistic", "p_value"):
        x, y = res[c].to_numpy(dtype=float), one[c].to_numpy(dtype=float)
        np.testing.assert_allclose(x, y, rtol=CHUNK_RTOL, atol=1e-300, err_msg=c)
