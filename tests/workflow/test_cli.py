"""The `stacklm` command: `init` writes a starter config and sample sheet template from a matrix,
`run` runs the workflow through Snakemake's Python API (both for real, in temporary directories)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import assert_matches
from workflow_helpers import EXAMPLE, REPO

from stacklm.analysis import run_analysis
from stacklm.io.matrix import read_matrix_header
from stacklm.io.samplesheet import read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.workflow.cli import CliError, find_snakefile, init_project, main

SNAKEFILE = str(REPO / "Snakefile")


def stacklm(*args, cwd=None, timeout=600):
    """The installed console script (as a user runs it)."""
    script = Path(sys.executable).parent / "stacklm"
    assert script.exists(), (
        f"{script}: the entry point stacklm = stacklm.workflow.cli:main is not installed"
    )
    return subprocess.run(
        [str(script), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.fixture(scope="module")
def small_matrix(tmp_path_factory):
    path = tmp_path_factory.mktemp("matrix") / "expression.tsv"
    pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", nrows=1500).to_csv(
        path, sep="\t", index=False
    )
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_matrix):
    """`stacklm init`, the sheet filled in from the example's, then `stacklm run` for real."""
    project = tmp_path_factory.mktemp("project")
    out = stacklm("init", project, "--matrix", small_matrix)
    assert out.returncode == 0, out.stderr
    assert "stacklm run --config" in out.stdout
    sheet = pd.read_csv(project / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    example = pd.read_csv(EXAMPLE / "samples.tsv", sep="\t").set_index("sample_id")
    sheet["group"] = np.where(example.loc[sheet["sample_id"], "sex"] == "M", "case", "control")
    sheet["age"] = example.loc[sheet["sample_id"], "age"].to_numpy()
    sheet.to_csv(project / "samples.tsv", sep="\t", index=False)
    config = project / "config.yaml"
    text = config.read_text().replace('formula: "~ group"', 'formula: "~ group + age"')
    text = text.replace("chunks: 8 ", "chunks: 3 ")
    config.write_text(text)
    run = stacklm(
        "run", "--config", config, "--cores", 2, "--directory", project, "--snakefile", SNAKEFILE
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return project, run


def test_init_writes_config_and_sheet_template(tmp_path, small_matrix):
    config_path, sheet_path = init_project(tmp_path / "new", small_matrix)
    _, samples = read_matrix_header(small_matrix)
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == ["sample_id", "group"]
    assert list(sheet["sample_id"]) == samples and (sheet["group"] == "").all()
    config = yaml.safe_load(config_path.read_text())
    assert config["matrix"] == str(small_matrix.resolve())
    assert config["samples"] == str(sheet_path.resolve())
    assert config["analyses"]["main"]["formula"] == "~ group"
    # the starter config is valid for the workflow's schema
    from snakemake.utils import validate

    validate(config, str(REPO / "config" / "schema.yaml"))
    assert config["chunks"] == 8 and config["normalize"]["method"] == "none"
    # files are not overwritten without --force
    with pytest.raises(CliError, match="already exist"):
        init_project(tmp_path / "new", small_matrix)
    init_project(tmp_path / "new", small_matrix, force=True)


def test_init_errors_are_one_line(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p"), "--matrix", str(tmp_path / "missing.tsv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stacklm init: matrix ") and "does not exist" in err
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tA\tA\ng1\t1\t2\n")
    assert main(["init", str(tmp_path / "p"), "--matrix", str(bad)]) == 2
    assert "cannot read the matrix header" in capsys.readouterr().err


def test_run_results_equal_the_python_api(project):
    project, run = project
    assert "stacklm run = snakemake --snakefile" in run.stderr
    assert f"results: {project / 'results' / 'main' / 'results.parquet'}" in run.stderr
    config = yaml.safe_load((project / "config.yaml").read_text())
    store = open_binary_matrix(project / "results" / "normalized" / "matrix")
    matrix = pd.DataFrame(np.asarray(store.values), index=store.feature_ids, columns=store.samples)
    sheet = read_sample_sheet(project / "samples.tsv")
    with pytest.warns(UserWarning, match="dropping 2 sample"):
        table, stats, _ = run_analysis(matrix, sheet, config["analyses"]["main"])
    res = pd.read_parquet(project / "results" / "main" / "results.parquet")
    assert list(res["feature_id"]) == list(table["feature_id"])
    assert "estimate_groupcase" in res.columns and "estimate_age" in res.columns
    for col in table.columns[1:]:
        assert_matches(res[col].to_numpy(), table[col].to_numpy(dtype=float), col, rtol=1e-12)
    assert (
        len(list((project / "results" / "main" / "intermediate" / "fit").glob("chunk_[0-9].npz")))
        == 3
    )


def test_run_again_has_nothing_to_do(project):
    project, _ = project
    out = stacklm(
        "run",
        "--config",
        project / "config.yaml",
        "--directory",
        project,
        "--snakefile",
        SNAKEFILE,
        "--dry-run",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr


def test_run_passes_profiles_and_snakemake_options(project, tmp_path):
    """A profile (and options after --) mean what they mean to snakemake; unsupported ones are
    refused, not ignored."""
    project, _ = project
    profile = tmp_path / "profile"
    profile.mkdir()
    # the rule's default is 2 threads: the profile's 1 must win
    (profile / "config.yaml").write_text("set-threads: {moderate: 1}\nforcerun: [moderate]\n")
    base = ["run", "--config", project / "config.yaml", "--directory", project]
    base += ["--snakefile", SNAKEFILE, "--cores", 2, "--dry-run"]
    out = stacklm(*base, "--profile", profile)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "rule moderate:" in text
    # the moderate job's lines (up to the next job's timestamp; the plots job after it has 2 threads)
    moderate_job = text.split("rule moderate:", 1)[1].split("\n[", 1)[0]
    assert "threads: 2" not in moderate_job
    assert "rule fit_chunk:" not in text  # only the forced rule is planned
    out = stacklm(*base, "--", "--forcerun", "fit_chunk")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert text.count("rule fit_chunk:") == 3 and "rule normalize:" not in text
    (profile / "config.yaml").write_text("summary: true\n")
    out = stacklm(*base, "--profile", profile)
    assert out.returncode == 2
    assert "stacklm run does not pass on --summary" in out.stderr


def test_run_reports_failures(tmp_path, small_matrix):
    config_path, _ = init_project(tmp_path, small_matrix)  # sheet left empty: the checks fail
    out = stacklm(
        "run",
        "--config",
        config_path,
        "--cores",
        1,
        "--directory",
        tmp_path,
        "--snakefile",
        SNAKEFILE,
    )
    assert out.returncode == 1
    assert "stacklm run: the workflow failed" in out.stderr
    assert not (tmp_path / "results").exists()
    out = stacklm("run", "--config", tmp_path / "nope.yaml", "--snakefile", SNAKEFILE)
    assert out.returncode == 2 and "config file" in out.stderr and "does not exist" in out.stderr


def test_find_snakefile(tmp_path, monkeypatch):
    monkeypatch.delenv("STACKLM_SNAKEFILE", raising=False)
    assert find_snakefile(SNAKEFILE) == REPO / "Snakefile"
    monkeypatch.setenv("STACKLM_SNAKEFILE", SNAKEFILE)
    assert find_snakefile() == REPO / "Snakefile"
    (tmp_path / "Snakefile").write_text("")
    with pytest.raises(CliError, match="no stacklm workflow at"):
        find_snakefile(tmp_path / "Snakefile")
