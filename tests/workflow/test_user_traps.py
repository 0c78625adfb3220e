"""Traps a new user hits with the workflow (issue 14): each test reproduces one.

* item 3: results follow the umask (files 0644 / folders 0755 under umask 022, 0664 / 0775 under 002)
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

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
    # this checkout (the editable install the tests run from)
    assert cli.find_snakefile() == REPO / "Snakefile"
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
