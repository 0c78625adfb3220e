"""The README's commands after the README's own install, ``pip install .`` (not editable, not the
test extra), in a fresh virtual environment (issue 14, items 6 and 7):

* the quick start ``snakemake --cores 2`` then ``snakemake --report results/report.html`` in the
  checkout (the report needs pygments, which only the test extra pulled in before);
* ``stacklm init`` and the command it prints, run outside the checkout: the workflow ships with the
  package, and no message calls site-packages a checkout.

Slow (the install takes a minute or two): one virtual environment serves both tests.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import EXAMPLE, REPO

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


def test_init_and_its_printed_command_outside_the_checkout(plain_install, tmp_path):
    checkout, venv, env = plain_install
    # the package imported there is the installed one, not a checkout
    where = _run(
        [venv / "bin" / "python", "-c", "import stacklm; print(stacklm.__file__)"], env, tmp_path
    )
    assert "site-packages" in where.stdout, where.stdout + where.stderr
    matrix = tmp_path / "expression.tsv"
    pd.read_csv(EXAMPLE / "expression.tsv.gz", sep="\t", nrows=1500).to_csv(
        matrix, sep="\t", index=False
    )
    init = _run(["stacklm", "init", "myproject", "--matrix", matrix], env, tmp_path)
    assert init.returncode == 0, init.stderr
    printed = [
        line.strip() for line in init.stdout.splitlines() if line.strip().startswith("stacklm run")
    ]
    assert len(printed) == 1, init.stdout
    # what the "Next:" line asks for: fill the group column of the sheet
    sheet_path = tmp_path / "myproject" / "samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    example = pd.read_csv(EXAMPLE / "samples.tsv", sep="\t").set_index("sample_id")
    sheet["group"] = np.where(example.loc[sheet["sample_id"], "sex"] == "M", "case", "control")
    sheet.to_csv(sheet_path, sep="\t", index=False)
    run = _run(shlex.split(printed[0]), env, tmp_path)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "checkout" not in run.stderr
    assert (tmp_path / "myproject" / "results" / "main" / "results.tsv.gz").is_file()
    assert (tmp_path / "myproject" / "results" / "main" / "summary.json").is_file()
    # the workflow that ran is the one installed with the package
    used = next(line for line in run.stderr.splitlines() if line.startswith("stacklm run = "))
    assert str(checkout) not in used and "site-packages" in used, used
    # a missing workflow is never described as a checkout when it is site-packages
    bad = _run(
        ["stacklm", "run", "--config", tmp_path / "myproject" / "config.yaml", "--dry-run"],
        {**env, "STACKLM_SNAKEFILE": str(tmp_path / "nowhere" / "Snakefile")},
        tmp_path,
    )
    assert bad.returncode == 2 and "checkout" not in bad.stderr, bad.stderr
