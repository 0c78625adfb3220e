"""Snakemake entry point: rule normalize (see workflow/rules/normalize.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.io.outputs import write_json
from stacklm.workflow.genotype_steps import normalize_genotypes
from stacklm.workflow.pipeline import normalize_matrix
from stacklm.workflow.provenance import background_checksum
from stacklm.workflow.steps import workflow_step

with workflow_step("normalize", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    checksum = background_checksum(snakemake.input.matrix)  # noqa: F821  (for summary.json)
    if p.genotype:  # PLINK input: QC by SNP chunks into an int8 store (issue 18)
        summary = normalize_genotypes(
            snakemake.input.matrix,  # noqa: F821
            snakemake.output.store,  # noqa: F821
            snakemake.output.snps,  # noqa: F821
            counted_allele=p.genotype["counted_allele"],
            filters=p.filter,
            min_features=p.chunks,
            threads=snakemake.threads,  # noqa: F821
            log=log,
        )
    else:
        summary = normalize_matrix(
            snakemake.input.matrix,  # noqa: F821
            snakemake.output.store,  # noqa: F821
            matrix_format=p.matrix_format,
            input_scale=p.input_scale,
            beta_epsilon=p.beta_epsilon,
            normalize=p.normalize,
            filters=p.filter,
            min_features=p.chunks,
            log=log,
            precision=p.precision,
        )
    summary["input_checksums"] = {"matrix": checksum.result()}
    write_json(summary, snakemake.output.summary)  # noqa: F821
