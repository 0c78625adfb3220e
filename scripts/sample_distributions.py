"""Snakemake entry point: rule sample_distributions (per-sample densities and quantiles before and
after normalization; see workflow/rules/plots.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.diagnostics.distributions import stream_sample_distributions
from stacklm.io.outputs import write_tsv
from stacklm.workflow.genotype_steps import genotype_sample_distributions
from stacklm.workflow.steps import workflow_step

with workflow_step("sample_distributions", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    if p.genotype:  # PLINK input: random SNPs of the .bed and of the QC'd store
        densities, quantiles = genotype_sample_distributions(
            snakemake.input.matrix,  # noqa: F821
            snakemake.input.store,  # noqa: F821
            counted_allele=p.genotype["counted_allele"],
        )
    else:
        densities, quantiles = stream_sample_distributions(
            snakemake.input.matrix,  # noqa: F821
            snakemake.input.store,  # noqa: F821
            matrix_format=p.matrix_format,
            input_scale=p.input_scale,
            beta_epsilon=p.beta_epsilon,
            normalize=p.normalize,
        )
    write_tsv(densities, snakemake.output.densities)  # noqa: F821
    write_tsv(quantiles, snakemake.output.quantiles)  # noqa: F821
    log.info("densities of %d samples", quantiles["sample"].nunique())
