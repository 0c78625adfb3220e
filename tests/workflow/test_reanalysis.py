"""Re-running analyses by editing the config (real Snakemake runs in a temporary directory), and the
provenance every result folder records.

Three analyses share one normalize step.  Editing one analysis (formula, levels, subset, contrasts,
test, moderation, surrogate variables) re-plans only that analysis' jobs; editing the normalization
or the filters re-plans everything.  Jobs are counted from Snakemake's dry-run job table."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import EXAMPLE, REPO, example_config, snakemake, write_config

import stacklm

CHUNKS = 2
#: rules every analysis runs (at least; the plan is compared with the full plan of the analysis)
ANALYSIS_RULES = {"design", "fit_chunk", "moderate"}


def planned_jobs(workdir: Path, configfile: Path, *extra: str) -> Counter:
    """The jobs Snakemake would run now, as a multiset of (rule, analysis) pairs (analysis None for
    the shared jobs), read from its dry-run output."""
    out = snakemake(workdir, configfile, "--dry-run", *extra)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    jobs: list[list] = []
    for line in text.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line):
            jobs.append([m.group(1), None])
        elif jobs and (m := re.match(r"\s+wildcards: .*\banalysis=([\w.-]+)", line)):
            jobs[-1][1] = m.group(1)
    counts = Counter(tuple(job) for job in jobs)
    if not counts:
        assert "Nothing to be done" in text, text[-3000:]
    else:  # the job table agrees with the job list
        table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
        total = int(re.search(r"^total\s+(\d+)", table, flags=re.M).group(1))
        assert total == sum(counts.values()), table
    return counts


def analysis_jobs(full_plan: Counter, analysis: str) -> Counter:
    """The jobs of one analysis in a full plan, plus the target rule `all`."""
    jobs = Counter({job: n for job, n in full_plan.items() if job[1] == analysis})
    jobs[("all", None)] = 1
    return jobs


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A real run of three analyses on 1,500 features."""
    work = tmp_path_factory.mktemp("reanalysis")
    matrix = work / "expression.tsv"
    pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", nrows=1500).to_csv(
        matrix, sep="\t", index=False
    )
    config = example_config(matrix=str(matrix), chunks=CHUNKS)
    config["analyses"]["sex"] = {"formula": "~ sex + age", "test": "sexM"}
    config["analyses"]["batch"] = {
        "formula": "~ batch + sex",
        "levels": {"batch": [1, 2, 3, 4]},
        "test": ["batch2", "batch3", "batch4"],
    }
    cfg = write_config(work / "config.yaml", config)
    full_plan = planned_jobs(work, cfg)
    out = snakemake(work, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    assert planned_jobs(work, cfg) == Counter()
    # what one analysis runs: its own rules, one fit job per chunk
    geography = analysis_jobs(full_plan, "geography")
    assert {rule for rule, _ in geography} >= ANALYSIS_RULES | {"all"}
    assert geography[("fit_chunk", "geography")] == CHUNKS
    assert full_plan[("normalize", None)] == 1
    return work, cfg, config, full_plan


def _edit(config: dict, path: str, value) -> dict:
    edited = copy.deepcopy(config)
    *parents, key = path.split(".")
    node = edited
    for p in parents:
        node = node.setdefault(p, {})
    node[key] = value
    return edited


ANALYSIS_EDITS = {
    "formula": ("analyses.geography.formula", "~ geography + sex + batch"),
    "levels": (
        "analyses.geography.levels",
        {"geography": ["Agadir", "Desert", "Mountain"], "batch": [4, 3, 2, 1]},
    ),
    "subset": ("analyses.geography.subset", "age >= 20"),
    "contrasts": ("analyses.geography.contrasts", {}),
    "test": ("analyses.geography.test", ["geographyDesert"]),
    "moderation": ("analyses.geography.moderation", {"trend": True, "robust": True}),
    "surrogate_variables": ("analyses.geography.surrogate_variables", 2),
    "sex_test": ("analyses.sex.formula", "~ sex"),
}


@pytest.mark.parametrize("edit", list(ANALYSIS_EDITS))
def test_editing_one_analysis_replans_only_that_analysis(project, edit):
    work, cfg, config, full_plan = project
    path, value = ANALYSIS_EDITS[edit]
    analysis = path.split(".")[1]
    try:
        write_config(cfg, _edit(config, path, value))
        planned = planned_jobs(work, cfg)
    finally:
        write_config(cfg, config)
    assert planned == analysis_jobs(full_plan, analysis), planned


@pytest.mark.parametrize(
    "path, value",
    [("normalize.method", "quantile"), ("normalize.log2", True), ("filter.max_missing", 0.2)],
)
def test_editing_the_normalization_replans_everything(project, path, value):
    work, cfg, config, full_plan = project
    try:
        write_config(cfg, _edit(config, path, value))
        planned = planned_jobs(work, cfg)
    finally:
        write_config(cfg, config)
    # every job but the designs: an analysis without surrogate variables reads only the matrix's
    # sample ids and the sheet (its design runs beside normalize), and none of these three has SVs
    assert not any(a.get("surrogate_variables") for a in config["analyses"].values())
    expected = Counter({job: n for job, n in full_plan.items() if job[0] != "design"})
    assert planned == expected, planned
    assert {a for _, a in planned} == set(config["analyses"]) | {None}


def test_rerun_after_an_edit_rewrites_only_that_analysis(project):
    work, cfg, config, full_plan = project
    n_jobs = sum(analysis_jobs(full_plan, "sex").values())
    results = {a: work / "results" / a / "summary.json" for a in config["analyses"]}
    before = {a: p.stat().st_mtime_ns for a, p in results.items()}
    store_before = (work / "results" / "normalized" / "matrix" / "values.f64").stat().st_mtime_ns
    edited = _edit(config, "analyses.sex.moderation", {"trend": True})
    try:
        write_config(cfg, edited)
        out = snakemake(work, cfg)
        assert out.returncode == 0, out.stderr[-4000:]
        assert f"{n_jobs} of {n_jobs} steps (100%) done" in out.stderr
        after = {a: p.stat().st_mtime_ns for a, p in results.items()}
        assert after["sex"] != before["sex"]
        assert {a: after[a] for a in after if a != "sex"} == {
            a: before[a] for a in before if a != "sex"
        }
        assert (
            work / "results" / "normalized" / "matrix" / "values.f64"
        ).stat().st_mtime_ns == store_before
        summary = json.loads(results["sex"].read_text())
        assert summary["provenance"]["config"]["analyses"]["sex"]["moderation"]["trend"] is True
        assert summary["s2_prior_per_feature"] is True
        assert planned_jobs(work, cfg) == Counter()
    finally:
        write_config(cfg, config)
        out = snakemake(work, cfg)  # back to the original results for the other tests
        assert out.returncode == 0, out.stderr[-4000:]


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_every_result_records_its_provenance(project):
    work, _, config, _ = project
    for name in config["analyses"]:
        summary = json.loads((work / "results" / name / "summary.json").read_text())
        prov = summary["provenance"]
        # the config the results were made from: global settings and this analysis only
        assert list(prov["config"]["analyses"]) == [name]
        recorded = prov["config"]["analyses"][name]
        for key, value in config["analyses"][name].items():
            if isinstance(value, dict):  # the schema's defaults fill the block's other keys
                assert {k: recorded[key][k] for k in value} == value, (name, key)
            else:
                assert recorded[key] == value, (name, key)
        for key in ("chunks", "normalize", "filter", "fdr", "input_scale"):
            assert key in prov["config"]
        assert prov["config"]["chunks"] == CHUNKS
        # checksums of the inputs
        for key in ("matrix", "samples", "features"):
            entry = prov["inputs"][key]
            path = Path(config[key]).resolve()
            assert entry == {
                "path": str(path),
                "bytes": path.stat().st_size,
                "sha256": _sha256(path),
            }, key
        # versions of stacklm and what its numbers depend on
        versions = prov["versions"]
        assert versions["stacklm"] == stacklm.__version__
        for pkg in ("numpy", "scipy", "pandas", "snakemake", "python"):
            assert versions[pkg] and versions[pkg] != "not installed", pkg
        assert prov["blas"] and all("internal_api" in lib for lib in prov["blas"])
        assert prov["source"]["path"] == str(REPO)
        if (REPO / ".git").exists():
            head = subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            assert prov["source"]["git_commit"] == head
        assert prov["working_directory"] == str(work)
