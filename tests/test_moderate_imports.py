"""The moderate job's modules import without scipy.stats, scipy.interpolate and formulaic (~0.5 s
of every job's start-up); they are imported where a setting needs them."""

import subprocess
import sys


def test_moderate_step_imports_stay_light():
    code = (
        "import sys\n"
        "import stacklm.workflow.analysis_steps, stacklm.workflow.genotype_results\n"
        "heavy = ('scipy.stats', 'scipy.interpolate', 'formulaic')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_fit_job_imports_stay_without_pandas():
    """The fit jobs (store, direct Parquet) read the design as arrays and import neither pandas
    nor scipy.fft (0.2 s of each fit job's start-up); the Snakemake script preamble is included."""
    code = (
        "import sys\n"
        "import snakemake.script\n"
        "import stacklm.workflow.direct, stacklm.workflow.pipeline, stacklm.workflow.steps\n"
        "heavy = ('pandas', 'scipy.fft', 'scipy.stats', 'formulaic')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
