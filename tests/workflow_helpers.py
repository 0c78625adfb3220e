"""Run the real Snakemake workflow in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "resources" / "example"


def example_config(**overrides) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key in ("matrix", "samples", "features"):
        if config.get(key):
            config[key] = str(REPO / config[key])
    config.update(overrides)
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path, configfile: Path | None = None, *extra: str, cores: int = 2, timeout: int = 900
):
    """Run Snakemake in ``workdir``; ``extra`` are more options and targets (the config file comes
    first: ``--configfile`` takes several values and would swallow a target that follows it)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--directory", str(workdir), "--cores", str(cores), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
