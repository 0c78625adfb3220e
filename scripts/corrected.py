"""Snakemake entry point: rule corrected (export_corrected; see workflow/rules/corrected.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.plots.samples import plot_pca_scores
from stacklm.plots.style import analysis_labels, labelled
from stacklm.spec import AnalysisSpec
from stacklm.workflow.corrected_steps import corrected_step
from stacklm.workflow.steps import workflow_step

with workflow_step("corrected", snakemake.log[0]) as log:  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    name = snakemake.wildcards.analysis  # noqa: F821
    pca, covariates = corrected_step(
        inp.store,
        inp.design,
        inp.info,
        inp.samples,
        snakemake.params.sample_id,  # noqa: F821
        AnalysisSpec.from_settings(name, snakemake.params.analysis),  # noqa: F821
        out.parquet,
        log=log,
    )
    with labelled(analysis_labels(name, {})):
        plot_pca_scores(pca, covariates, "corrected", out.png, out.data)
