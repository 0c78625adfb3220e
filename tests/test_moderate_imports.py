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
