"""Surrogate variables in the workflow on the embedded example: SVs recover the hidden confounders
and bring the false discovery proportion back to the nominal level (issue: surrogate variables)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import read_table
from workflow_helpers import EXAMPLE, example_config, snakemake, write_config

ALPHA = 0.05


@pytest.fixture(scope="module")
def sv_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("sv")
    config = example_config(chunks=2)
    base = config["analyses"]["geography"]
    config["analyses"] = {
        "plain": dict(base, surrogate_variables=0),
        "sva": dict(base, surrogate_variables="auto", surrogate_method="be", surrogate_seed=1),
    }
    cfg = write_config(work / "c.yaml", config)
    out = snakemake(work, cfg, "results/plain/results.tsv.gz", "results/sva/results.tsv.gz")
    assert out.returncode == 0, out.stderr[-3000:]
    return work


def _fdp_power(work, analysis):
    res = read_table(work / "results" / analysis / "results.tsv.gz").set_index("feature_id")
    truth = read_table(EXAMPLE / "truth.tsv").set_index("feature_id").loc[res.index]
    called = res["fdr"].to_numpy() <= ALPHA
    true = truth["de_geography"].to_numpy().astype(bool)
    return (called & ~true).sum() / max(called.sum(), 1), (called & true).sum() / true.sum()


def test_surrogate_variables_recover_the_hidden_confounders(sv_run):
    sv = read_table(sv_run / "results" / "sva" / "surrogate_variables.tsv", index_col=0)
    summary = json.loads((sv_run / "results" / "sva" / "summary.json").read_text())
    assert summary["n_surrogate_variables"] == sv.shape[1] >= 2
    assert (
        summary["surrogate_variables"]["method"] == "be"
        and summary["surrogate_variables"]["seed"] == 1
    )
    assert [c for c in summary["design_columns"] if c.startswith("sv")] == list(sv.columns)
    hidden = read_table(EXAMPLE / "truth_samples.tsv", index_col=0).loc[sv.index]
    X = np.column_stack([np.ones(len(sv)), sv.to_numpy()])
    r2 = {}
    for name in ("hidden1", "hidden2"):
        y = hidden[name].to_numpy()
        fitted = X @ np.linalg.lstsq(X, y, rcond=None)[0]
        r2[name] = 1 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)
    print("R2 of the hidden confounders on the SVs:", r2)
    assert r2["hidden1"] > 0.8 and r2["hidden2"] > 0.8


def test_surrogate_variables_bring_fdp_to_nominal(sv_run):
    fdp_plain, power_plain = _fdp_power(sv_run, "plain")
    fdp_sv, power_sv = _fdp_power(sv_run, "sva")
    print(
        f"without SVs: FDP {fdp_plain:.3f} power {power_plain:.3f}; with SVs: FDP {fdp_sv:.3f} power {power_sv:.3f}"
    )
    assert fdp_sv <= ALPHA + 0.02
    assert fdp_plain > fdp_sv + 0.02
    assert power_sv > 0.3


def test_sv_association_table_lists_every_sv_and_covariate(sv_run):
    assoc = read_table(sv_run / "results" / "sva" / "sv_associations.tsv")
    sv = read_table(sv_run / "results" / "sva" / "surrogate_variables.tsv", index_col=0)
    assert set(assoc["sv"]) == set(sv.columns)
    assert {"geography", "sex", "batch", "age", "rna_quality"} <= set(assoc["covariate"])
    assert assoc.loc[assoc["covariate"] == "batch", "kind"].eq("categorical").all()
    defined = assoc["covariate"] != "tissue"  # one level ("blood"): no association defined
    assert assoc.loc[~defined, "r2"].isna().all()
    assert ((assoc.loc[defined, "r2"] >= 0) & (assoc.loc[defined, "r2"] <= 1)).all()
    plain = read_table(sv_run / "results" / "plain" / "surrogate_variables.tsv", index_col=0)
    assert plain.shape[1] == 0


def test_run_analysis_runs_what_the_workflow_runs_with_surrogate_variables(sv_run):
    """Issue 14 item 2: ``run_analysis`` estimates the SVs the settings ask for ('auto'), with the
    workflow's defaults, and gives the workflow's numbers."""
    import pandas as pd
    from conftest import assert_matches

    from stacklm.analysis import run_analysis
    from stacklm.io.samplesheet import read_sample_sheet
    from stacklm.io.store import open_binary_matrix

    store = open_binary_matrix(sv_run / "results" / "normalized" / "matrix")
    matrix = pd.DataFrame(np.asarray(store.values), index=store.feature_ids, columns=store.samples)
    sheet = read_sample_sheet(EXAMPLE / "samples.tsv")
    settings = dict(example_config()["analyses"]["geography"], surrogate_variables="auto")
    with pytest.warns(UserWarning, match="dropping 2 sample"):
        table, stats, design = run_analysis(matrix, sheet, settings)
    fitted = read_table(sv_run / "results" / "sva" / "design.tsv", index_col=0)
    assert list(design.columns) == list(fitted.columns)
    assert sum(c.startswith("sv") for c in design.columns) >= 2
    res = read_table(sv_run / "results" / "sva" / "results.tsv.gz")
    assert list(res["feature_id"].astype(str)) == list(table["feature_id"])
    for col in table.columns[1:]:
        assert_matches(res[col].to_numpy(), table[col].to_numpy(dtype=float), col, rtol=1e-12)
    summary = json.loads((sv_run / "results" / "sva" / "summary.json").read_text())
    assert stats["n_significant"] == summary["n_significant"]
