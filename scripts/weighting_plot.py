"""Snakemake entry point: rule weighting_plots_<analysis> (the counts / weights diagnostics of one
analysis; see workflow/rules/counts.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.steps import workflow_step
from stacklm.workflow.weighting.plots import weighting_plots_step

with workflow_step("weighting_plots", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    weighting_plots_step(
        {stem: (out[stem], out[f"{stem}_data"]) for stem in p.plots},
        inp.state,
        libraries_path=inp.get("libraries"),
        analysis_name=p.analysis,
    )
    log.info("%s plots of %s written", ", ".join(p.plots), p.analysis)
