"""Project contracts: CI runs exactly README's test command, and README opens with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block and text.index(block.group(0)) < 1000, "README must open with the commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()
    assert "pip install ." in run and "snakemake --cores" in run
    assert "pytest" in test and "pip install '.[test" in test


def test_ci_runs_readme_test_command_verbatim():
    _, test = readme_commands()
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and ln[0] != "#"]
    assert "set -euo pipefail" in lines  # pytest's exit code 5 (no tests) fails CI
    assert lines[-1] == test
