"""The RNA-seq counts example end to end through Snakemake (config/rnaseq.yaml on
resources/example_counts, issues 16 and 17): one run, whose results equal the one-shot library
calls of edgeR's and limma's recipes (filterByExpr, calcNormFactors, voom, lmFit, eBayes; and the
User's Guide voom + duplicateCorrelation recipe for the paired analysis), with the counts / weights
/ block entries of summary.json and the analysis-specific plots."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import yaml
from conftest import read_table
from workflow_helpers import REPO, snakemake, write_config

from stacklm.analysis import moderate_and_test
from stacklm.design.analysis import analysis_design
from stacklm.edger.calcnormfactors import calc_norm_factors
from stacklm.edger.filterbyexpr import filter_by_expr
from stacklm.io.matrix import read_matrix
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.limma.dupcor import duplicate_correlation
from stacklm.limma.glsseries import gls_series
from stacklm.limma.voom import voom
from stacklm.limma.weightedfit import lm_wfit
from stacklm.spec import AnalysisSpec
from stacklm.workflow.config import validate_config

EXAMPLE = REPO / "resources" / "example_counts"
#: the workflow against the one-shot library calls in this process (measured: bit-equal)
RTOL, ATOL = 1e-12, 1e-15
ANALYSES = ("region", "treatment_paired")
PLOTS = {
    "region": ("library_sizes", "voom_trend"),
    "treatment_paired": ("library_sizes", "voom_trend", "block_correlation"),
}


def _config() -> dict:
    config = yaml.safe_load((REPO / "config" / "rnaseq.yaml").read_text())
    for key in ("matrix", "samples"):
        config[key] = str(REPO / config[key])
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("rnaseq")
    # the results and the counts / weights / block plots (the standard plots and summary.md,
    # tested on the other examples, are left out to keep the run short)
    targets = [f"results/{a}/{f}" for a in ANALYSES for f in ("results.tsv.gz", "summary.json")]
    targets += [f"results/{a}/plots/{stem}.png" for a, stems in PLOTS.items() for stem in stems]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STACKLM_PROGRESS_SECONDS", "0")  # a progress line after every row block
        out = snakemake(work, write_config(work / "rnaseq.yaml", _config()), *targets)
    assert out.returncode == 0, out.stderr[-4000:]
    return work


@pytest.fixture(scope="module")
def library(run):
    """The recipes with the library's one-shot calls on the whole example."""
    config = validate_config(_config())
    ids, samples, Y = read_matrix(EXAMPLE / "counts.tsv.gz")
    sheet = read_sample_sheet(EXAMPLE / "samples.tsv", "sample_id")
    out = {}
    for name, settings in config["analyses"].items():
        spec = AnalysisSpec.from_settings(name, settings)
        design, _ = analysis_design(sheet, samples, spec)
        X = design.to_numpy(dtype=float)
        keep = filter_by_expr(Y, X)
        k = Y[keep]
        lib = k.sum(axis=0)
        nf = calc_norm_factors(k, lib_size=lib, method="TMM")
        v = voom(k, X, lib_size=lib, norm_factors=nf)
        if spec.weighting.block is None:
            fit = lm_wfit(v.E, design, v.weights, feature_ids=ids[keep])
            extra = {}
        else:
            block = sheet.loc[design.index, spec.weighting.block].tolist()
            c1 = duplicate_correlation(v.E, X, block=block, weights=v.weights)
            v = voom(k, X, lib_size=lib, norm_factors=nf, block=block, correlation=c1.consensus)
            c2 = duplicate_correlation(v.E, X, block=block, weights=v.weights)
            fit = gls_series(v.E, design, block, c2.consensus, v.weights, feature_ids=ids[keep])
            extra = {"c1": c1, "c2": c2}
        table, stats, _ = moderate_and_test(fit, {}, list(spec.test), asdict(spec.moderation))
        out[name] = {"table": table, "stats": stats, "keep": keep, "lib": lib, "nf": nf, **extra}
        out[name]["samples"] = list(design.index)
    return out


def test_weighted_fit_jobs_log_their_progress(run):
    """Each weighted fit job's log says how far it is (STACKLM_PROGRESS_SECONDS=0: after every
    row block), ending at all of its chunk's rows."""
    logs = sorted((run / "logs").glob("*/fit_chunk_*.log"))
    assert logs
    for log in logs:
        chunk = log.stem.removeprefix("fit_chunk_")
        lines = [t for t in log.read_text().splitlines() if f"chunk {chunk}: " in t and "%)" in t]
        assert lines, log
        done = [int(t.split(f"chunk {chunk}: ")[1].split()[0]) for t in lines]
        total = int(lines[-1].split(" of ")[1].split()[0])
        assert done == sorted(done) and done[-1] == total and lines[-1].endswith("(100%)")


def _summary(run, analysis):
    return json.loads((run / "results" / analysis / "summary.json").read_text())


@pytest.mark.parametrize("analysis", ["region", "treatment_paired"])
def test_results_equal_the_library_recipe(run, library, analysis):
    res = read_table(run / "results" / analysis / "results.tsv.gz", dtype={"feature_id": str})
    ref = library[analysis]["table"]
    assert list(res.columns) == list(ref.columns)
    assert (res["feature_id"].to_numpy() == ref["feature_id"].to_numpy()).all()
    for c in ref.columns[1:]:
        np.testing.assert_allclose(
            res[c].to_numpy(dtype=float), ref[c].to_numpy(dtype=float), rtol=RTOL, atol=ATOL,
            err_msg=c,
        )  # fmt: skip


def test_libraries_and_filter_are_edgers(run, library):
    for analysis in ("region", "treatment_paired"):
        ref = library[analysis]
        libs = read_table(run / "results" / analysis / "counts" / "libraries.tsv")
        assert list(libs["sample_id"]) == ref["samples"]
        np.testing.assert_array_equal(libs["lib_size"], ref["lib"])
        np.testing.assert_array_equal(libs["norm_factors"], ref["nf"])
        keep = read_table(run / "results" / analysis / "counts" / "filter_by_expr.tsv.gz")
        np.testing.assert_array_equal(keep["keep"].to_numpy(dtype=bool), ref["keep"])
        counts = _summary(run, analysis)["counts"]
        assert counts["n_features_input"] == 6000
        assert counts["n_removed_by_filter_by_expr"] == int((~ref["keep"]).sum()) > 0
        assert counts["n_features_kept"] == _summary(run, analysis)["n_features"]
        assert counts["normalize_method"] == "TMM" and len(counts["libraries"]) == 48


def test_block_summary_and_plots(run, library):
    paired = _summary(run, "treatment_paired")
    ref = library["treatment_paired"]
    block = paired["block"]
    assert block["column"] == "donor" and block["estimated"] and block["n_blocks"] == 24
    assert block["consensus_correlation"] == pytest.approx(ref["c2"].consensus, rel=1e-14)
    assert block["voom_correlation"] == pytest.approx(ref["c1"].consensus, rel=1e-14)
    assert block["n_not_converged"] == ref["c2"].n_not_converged
    assert 0.3 < block["consensus_correlation"] < 0.6  # the simulated donor effect (sd 0.35)
    assert "block" not in _summary(run, "region")
    assert paired["weights"]["observation_weights"] == "voom"
    plots = run / "results" / "treatment_paired" / "plots"
    for stem in ("library_sizes", "voom_trend", "block_correlation"):
        assert (plots / f"{stem}.png").stat().st_size > 10_000
    hist = read_table(plots / "block_correlation.tsv")
    np.testing.assert_allclose(hist["atanh_correlation"], ref["c2"].atanh_correlations, rtol=1e-13)
    region_plots = run / "results" / "region" / "plots"
    assert (region_plots / "voom_trend.png").exists()
    assert not (region_plots / "block_correlation.png").exists()
    trend = read_table(region_plots / "voom_trend.tsv")
    assert len(trend) == _summary(run, "region")["n_features"]


def test_paired_analysis_finds_the_treatment_genes(run):
    res = read_table(run / "results" / "treatment_paired" / "results.tsv.gz").set_index(
        "feature_id"
    )
    truth = read_table(EXAMPLE / "truth.tsv").set_index("feature_id").loc[res.index]
    called = res["fdr"].to_numpy() <= 0.05
    true = truth["de_treatment"].to_numpy().astype(bool)
    fdp = (called & ~true).sum() / max(called.sum(), 1)
    power = (called & true).sum() / true.sum()
    print(f"treatment within donors: {called.sum()} called, FDP {fdp:.3f}, power {power:.3f}")
    assert fdp <= 0.1 and power > 0.4


def test_lint_is_clean_with_the_counts_config():
    """`snakemake --lint` with config/rnaseq.yaml: the counts / weights / block rules (and the
    per-analysis plot rules defined in a loop) pass as the example's do."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile"),
         "--configfile", str(REPO / "config" / "rnaseq.yaml"), "--directory", str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr, out.stdout + out.stderr
