"""Traps a new user hits with the workflow (issue 14): each test reproduces one.

* item 3: results follow the umask (files 0644 / folders 0755 under umask 022, 0664 / 0775 under 002)
* item 7: ``stacklm run`` finds the workflow (and its profiles) in an installed package
* item 8: a failed step's cause, in one line with its log, is the last thing on the console
* item 12: warnings are one line of text (no Python file:line and source line)
* item 15: ``features: null`` writes no feature annotation table
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import REPO, example_config, write_config


def _snakemake_with_umask(workdir, configfile, umask: int, *extra: str):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    cmd += ["--configfile", str(configfile), "--directory", str(workdir), "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, umask=umask)


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_results_follow_the_umask(tmp_path, umask):
    cfg = write_config(tmp_path / "config.yaml", example_config(chunks=2))
    out = _snakemake_with_umask(tmp_path, cfg, umask)
    assert out.returncode == 0, out.stderr[-4000:]
    results = tmp_path / "results"
    wrong = []
    n_files = n_dirs = 0
    for root, _dirs, files in os.walk(results):
        mode = stat.S_IMODE(os.stat(root).st_mode)
        n_dirs += 1
        if mode != 0o777 & ~umask:
            wrong.append(f"{os.path.relpath(root, tmp_path)}/ {mode:04o}")
        for name in files:
            path = os.path.join(root, name)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            n_files += 1
            if mode != 0o666 & ~umask:
                wrong.append(f"{os.path.relpath(path, tmp_path)} {mode:04o}")
    assert n_files > 20 and n_dirs > 3
    assert not wrong, f"{len(wrong)} of {n_files} files and {n_dirs} folders: " + ", ".join(
        wrong[:20]
    )


# --------------------------------------------------------------------------------------------
# item 7: `stacklm run` finds the workflow after a non-editable install (the slow test that
# installs into a fresh venv is tests/workflow/test_plain_install.py)
def _fake_install(root, *, checkout: bool, packaged: bool):
    """A package stacklm/ under ``root`` (site-packages or a checkout), with or without the
    workflow beside it (a checkout) or inside it (stacklm/workflow_files)."""
    package = root / "stacklm"
    (package / "workflow").mkdir(parents=True)
    where = []
    if checkout:
        (root / "pyproject.toml").write_text("[project]\nname = 'stacklm'\n")
        where.append(root)
    if packaged:
        where.append(package / "workflow_files")
    for base in where:
        (base / "workflow" / "rules").mkdir(parents=True)
        (base / "Snakefile").write_text("# stacklm\n")
    return str(package / "workflow" / "cli.py")


def test_find_snakefile_in_the_checkout_and_in_an_installed_package(tmp_path, monkeypatch):
    import stacklm.workflow.cli as cli

    monkeypatch.delenv("STACKLM_SNAKEFILE", raising=False)
    # the tests run from this checkout: with an editable install stacklm is imported from it (its
    # Snakefile); with `pip install .` (CI, README) from site-packages (the packaged copy)
    if "site-packages" not in Path(cli.__file__).resolve().parts:
        assert cli.find_snakefile() == REPO / "Snakefile"
    else:
        assert cli.find_snakefile() == cli.packaged_snakefile()
        assert (cli.packaged_snakefile().parent / "workflow" / "rules").is_dir()
    # a non-editable install: the copy in the package
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(cli, "__file__", _fake_install(site, checkout=False, packaged=True))
    assert cli.find_snakefile() == site / "stacklm" / "workflow_files" / "Snakefile"
    # a checkout wins over a stale copy in the package
    repo = tmp_path / "repo"
    monkeypatch.setattr(cli, "__file__", _fake_install(repo, checkout=True, packaged=True))
    assert cli.find_snakefile() == repo / "Snakefile"
    # an installation without the workflow: the message says so, and never calls it a checkout
    broken = tmp_path / "broken" / "site-packages"
    monkeypatch.setattr(cli, "__file__", _fake_install(broken, checkout=False, packaged=False))
    with pytest.raises(cli.CliError) as err:
        cli.find_snakefile()
    message = str(err.value)
    assert "checkout" not in message and "missing from this installation" in message
    assert "pip install ." in message and "--snakefile" in message


def test_run_finds_the_workflow_profiles_from_any_folder(tmp_path, monkeypatch):
    import argparse

    from stacklm.workflow.cli import snakemake_arguments

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text("matrix: x\n")
    args = argparse.Namespace(
        config="my.yaml",
        cores=2,
        directory=None,
        profile=["profiles/slurm"],
        dry_run=True,
        snakemake_options=[],
    )
    argv = snakemake_arguments(args, REPO / "Snakefile")
    assert argv[argv.index("--profile") + 1] == str(REPO / "profiles" / "slurm")
    # a profile folder in the working directory comes first, a profile name is passed on as is
    (tmp_path / "profiles" / "slurm").mkdir(parents=True)
    argv = snakemake_arguments(args, REPO / "Snakefile")
    assert argv[argv.index("--profile") + 1] == str(tmp_path / "profiles" / "slurm")
    args.profile = ["myclusterprofile"]
    argv = snakemake_arguments(args, REPO / "Snakefile")
    assert argv[argv.index("--profile") + 1] == "myclusterprofile"


# --------------------------------------------------------------------------------------------
# items 8 and 12: the cause of a failed step last, warnings in one line
def _inputs_with_traps(tmp_path):
    import sys as _sys

    _sys.path.insert(0, str(REPO / "tests" / "workflow"))
    from test_errors import _config, _make_inputs

    sheet, _ = _make_inputs(tmp_path)
    sheet.loc[3, "age"] = None  # a missing formula value: a warning at the config check
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    lines = (tmp_path / "expr.tsv").read_text().splitlines()
    fields = lines[5].split("\t")
    fields[3] = "high"  # a cell that is not a number: the normalize step fails
    lines[5] = "\t".join(fields)
    (tmp_path / "expr.tsv").write_text("\n".join(lines) + "\n")
    return write_config(tmp_path / "c.yaml", _config(tmp_path))


def test_failed_step_shows_its_cause_last_and_warnings_in_one_line(tmp_path):
    from workflow_helpers import snakemake

    out = snakemake(tmp_path, _inputs_with_traps(tmp_path))
    assert out.returncode != 0
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    last = lines[-1]
    assert last.startswith("stacklm error in step normalize: "), lines[-6:]
    for part in (
        "expr.tsv: line 6 (data row 5), column 4 ('S02'): value 'high' is not a number",
        "(feature 'F004')",
        "missing values written as NA",  # the fix
    ):
        assert part in last, last
    assert last.endswith(f"[log: {tmp_path / 'logs' / 'normalize.log'}]"), last
    assert lines[-2] == "stacklm: 1 step failed; the cause:"
    # the step's log ends with the same cause (after the traceback, for a bug report)
    log = (tmp_path / "logs" / "normalize.log").read_text().splitlines()
    assert last.startswith(log[-1])
    # item 12: the config check's warning is one line, without Python's file:line and source
    assert (
        "stacklm warning: dropping 1 sample(s) with a missing value in a formula variable: S03"
        in out.stderr.splitlines()
    )
    assert "UserWarning" not in out.stderr
    assert not [x for x in out.stderr.splitlines() if ".py:" in x and "Warning" in x]


SNAKEMAKE_LOG = """\
Building DAG of jobs...
[Tue Dec  1 07:54:31 2026]
Error in rule fit_chunk:
    message: None
    jobid: 7
    input: results/normalized/matrix
    output: results/a/chunks/fit_1.npz
    log: logs/a/fit_chunk_1.log (check log file(s) for error details)
    wildcards: analysis=a, chunk=1
Logfile logs/a/fit_chunk_1.log:
================================================================================
stacklm error in step fit_chunk: an old message shown by show-failed-logs
================================================================================
Error in rule plots:
    jobid: 9
    log: logs/a/plots.log (check log file(s) for error details)
    wildcards: analysis=a
Error in rule all_done:
    jobid: 11
Shutting down, this might take some time.
"""


def test_failure_lines_name_step_wildcards_cause_and_log(tmp_path):
    from stacklm.workflow.failures import failure_lines

    (tmp_path / "logs" / "a").mkdir(parents=True)
    (tmp_path / "logs" / "a" / "fit_chunk_1.log").write_text(
        "08:00:00 INFO [fit_chunk] fitting rows 100-200\n"
        "stacklm error in step fit_chunk: an earlier line\n"
        "Traceback (most recent call last):\n  File x, line 1\nValueError: boom\n"
        "stacklm error in step fit_chunk: design has 3 rows but the matrix has 4 sample columns\n"
    )
    (tmp_path / "logs" / "a" / "plots.log").write_text(
        "08:00:00 INFO [plots] start\nTraceback (most recent call last):\n"
        '  File "plots.py", line 3, in <module>\n    draw()\nMemoryError: cannot allocate 8 GiB\n'
    )
    log = tmp_path / "snakemake.log"
    log.write_text(SNAKEMAKE_LOG)
    lines = failure_lines([str(log)], tmp_path)
    assert lines == [
        "stacklm error in step fit_chunk (analysis=a, chunk=1): design has 3 rows but the matrix "
        f"has 4 sample columns  [log: {tmp_path / 'logs' / 'a' / 'fit_chunk_1.log'}]",
        "stacklm error in step plots (analysis=a): MemoryError: cannot allocate 8 GiB  "
        f"[log: {tmp_path / 'logs' / 'a' / 'plots.log'}]",
        "stacklm error in step all_done failed without stating a cause  [no log of its own: see "
        "Snakemake's messages above]",
    ]
    assert failure_lines(tmp_path / "absent.log", tmp_path) == []


def test_workflow_step_logs_warnings_in_one_line_and_the_cause_last(tmp_path, capsys):
    import warnings

    from stacklm.workflow.steps import workflow_step

    log = tmp_path / "step.log"
    with pytest.raises(SystemExit), workflow_step("design", str(log)):
        warnings.warn("column 'batch' has 3 integer values:\n  use levels", stacklevel=1)
        warnings.warn("overflow in exp", RuntimeWarning, stacklevel=1)
        raise ValueError("formula '~ x' uses 'x', not a column of the sample sheet")
    text = log.read_text().splitlines()
    assert text[0].endswith("WARNING [design] column 'batch' has 3 integer values: use levels")
    assert text[1].endswith("WARNING [design] RuntimeWarning: overflow in exp")
    assert text[-1] == (
        "stacklm error in step design: formula '~ x' uses 'x', not a column of the sample sheet"
    )
    err = capsys.readouterr().err
    assert "UserWarning" not in err and "test_user_traps.py:" not in err
    # an unexpected error also ends the log with one line, and keeps its traceback
    with pytest.raises(ZeroDivisionError), workflow_step("fit_chunk", str(log)):
        1 / 0  # noqa: B018
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert text.splitlines()[-1].startswith(
        "stacklm error in step fit_chunk: unexpected ZeroDivisionError: division by zero"
    )


# --------------------------------------------------------------------------------------------
# item 15: no feature annotation table without a feature annotation
def test_no_feature_annotation_table_when_features_is_null(tmp_path):
    import sys as _sys

    from workflow_helpers import snakemake

    _sys.path.insert(0, str(REPO / "tests" / "workflow"))
    from test_errors import _config, _make_inputs

    _make_inputs(tmp_path)
    config = dict(_config(tmp_path), features=None)
    out = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config))
    assert out.returncode == 0, out.stderr[-4000:]
    results = tmp_path / "results" / "a"
    assert (results / "results.tsv.gz").is_file() and (results / "summary.md").is_file()
    assert not (results / "feature_annotation.tsv.gz").exists()
    assert not list((results / "plots").glob("estimate_annotation*"))
    # the plot of SV associations says why there are none (surrogate_variables: 0)
    assert (results / "plots" / "sv_associations.png").is_file()
