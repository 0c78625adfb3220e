"""Snakemake entry point: rule normalize (see workflow/rules/normalize.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


from stacklm.diagnostics.distributions import InputDistributions
from stacklm.io.matrix import read_matrix_header
from stacklm.io.outputs import write_json, write_tsv
from stacklm.workflow.genotype_steps import genotype_sample_distributions, normalize_genotypes
from stacklm.workflow.pipeline import normalize_matrix
from stacklm.workflow.provenance import background_checksum
from stacklm.workflow.steps import workflow_step

with workflow_step("normalize", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    checksum = background_checksum(inp.matrix)  # for summary.json's provenance
    if p.genotype:  # PLINK input: QC by SNP chunks into an int8 store (issue 18)
        summary = normalize_genotypes(
            inp.matrix,
            out.store,
            out.snps,
            counted_allele=p.genotype["counted_allele"],
            filters=p.filter,
            min_features=p.chunks,
            threads=snakemake.threads,  # noqa: F821
            log=log,
        )
        # random SNPs of the .bed and of the QC'd store (a few thousand rows read by index)
        densities, quantiles = genotype_sample_distributions(
            inp.matrix, out.store, counted_allele=p.genotype["counted_allele"]
        )
    else:
        # the per-sample distributions are collected from the blocks normalize reads
        found = InputDistributions(
            read_matrix_header(inp.matrix, p.matrix_format)[1], p.input_scale
        )
        summary = normalize_matrix(
            inp.matrix,
            out.store,
            matrix_format=p.matrix_format,
            input_scale=p.input_scale,
            beta_epsilon=p.beta_epsilon,
            normalize=p.normalize,
            filters=p.filter,
            min_features=p.chunks,
            log=log,
            precision=p.precision,
            distributions=found,
        )
        densities, quantiles = found.finish(out.store)
    write_tsv(densities, out.densities)
    write_tsv(quantiles, out.quantiles)
    log.info("sample densities of %d samples", quantiles["sample"].nunique())
    summary["input_checksums"] = {"matrix": checksum.result()}
    write_json(summary, out.summary)
