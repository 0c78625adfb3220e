"""The README's commands after the README's own install, ``pip install .`` (not editable, not the
test extra), in a fresh virtual environment (issue 14, items 6 and 7):

* the quick start ``snakemake --cores 2`` then ``snakemake --report results/report.html`` in the
  checkout (the report needs pygments, which only the test extra pulled in before).

Slow (the install takes a minute or two).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from workflow_helpers import REPO

pytestmark = pytest.mark.slow

_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".snakemake",
    "results",
    "logs",
    "build",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
)


def _run(cmd, env, cwd, timeout=1200):
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory):
    """A copy of the checkout, and a fresh venv where it is installed with ``pip install .``."""
    base = tmp_path_factory.mktemp("plain_install")
    checkout = base / "stacklm"
    shutil.copytree(REPO, checkout, ignore=_NOT_SOURCE)
    venv = base / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    made = _run([sys.executable, "-m", "venv", venv], env, base)
    assert made.returncode == 0, made.stderr
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    install = _run([venv / "bin" / "pip", "install", "--quiet", "."], env, checkout)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return checkout, venv, env


def test_readme_quick_start_and_report(plain_install):
    checkout, _, env = plain_install
    run = _run(["snakemake", "--cores", "2"], env, checkout)
    assert run.returncode == 0, run.stderr[-4000:]
    assert (checkout / "results" / "geography" / "results.tsv.gz").is_file()
    report = _run(["snakemake", "--report", "results/report.html"], env, checkout)
    assert report.returncode == 0, report.stderr[-4000:]
    html = (checkout / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "volcano" in html
