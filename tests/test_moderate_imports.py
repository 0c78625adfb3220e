"""The jobs' modules import without the heavy libraries they do not use (each is part of every
job's start-up); those are imported where a setting needs them."""

import subprocess
import sys


def _loaded(modules: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has loaded after ``import <modules>``."""
    code = (
        f"import sys\nimport {modules}\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_moderate_step_imports_stay_light():
    """moderate: no scipy.stats, scipy.interpolate or formulaic (~0.5 s)."""
    modules = "stacklm.workflow.analysis_steps, stacklm.workflow.genotype_results"
    assert _loaded(modules, ("scipy.stats", "scipy.interpolate", "formulaic")) == []


def test_fit_job_imports_stay_without_pandas():
    """The fit jobs (store, direct Parquet) read the design as arrays and import neither pandas
    nor scipy.fft (0.2 s of each fit job's start-up); the Snakemake script preamble is included."""
    modules = "snakemake.script, stacklm.workflow.direct, stacklm.workflow.pipeline, stacklm.workflow.steps"
    assert _loaded(modules, ("pandas", "scipy.fft", "scipy.stats", "formulaic")) == []
