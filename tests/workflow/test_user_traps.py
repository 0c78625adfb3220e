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
