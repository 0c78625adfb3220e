"""Snakemake entry point: rule moderate (merge chunks, moderate, test, FDR; see workflow/rules/moderate.smk)."""

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

# the chunk fits are read while the modules below are imported (numpy only so far)
from stacklm.limma.fitstore import load_fits_in_background
from stacklm.workflow.allocator import reuse_freed_memory

reuse_freed_memory()
merged = load_fits_in_background(snakemake.input.chunks, snakemake.threads, order="F")  # noqa: F821

from stacklm.io.outputs import write_tsv
from stacklm.spec import AnalysisSpec
from stacklm.workflow.analysis_steps import aligned_annotation, moderate_step
from stacklm.workflow.genotype_results import genotype_moderate_step
from stacklm.workflow.steps import workflow_step

with workflow_step("moderate", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    step = moderate_step
    if snakemake.input.get("snps"):  # noqa: F821  (genotypes: the SNP columns, issue 18)
        step = functools.partial(genotype_moderate_step, snakemake.input.snps)  # noqa: F821
    if snakemake.input.get("weighting_state"):  # noqa: F821  (counts, weights, blocks: summary)
        from stacklm.workflow.weighting.summary import weighting_moderate_extend

        extend = weighting_moderate_extend(
            snakemake.input.weighting_state,  # noqa: F821
            snakemake.input.get("counts_summary"),  # noqa: F821
        )
        step = functools.partial(moderate_step, extend=extend)
    normalized = snakemake.input.get("normalized")  # noqa: F821
    if snakemake.params.direct:  # noqa: F821  (Parquet read by the fit jobs: direct.py)
        from stacklm.workflow.direct import direct_normalized

        normalized = direct_normalized(
            snakemake.input.matrix,  # noqa: F821
            snakemake.input.pieces,  # noqa: F821
            checksum_path=snakemake.input.checksum,  # noqa: F821
            **snakemake.params.direct,  # noqa: F821  (its settings, by keyword)
        )
    table, _ = step(
        snakemake.input.chunks,  # noqa: F821
        snakemake.input.design,  # noqa: F821
        snakemake.input.sv,  # noqa: F821
        snakemake.input.design_info,  # noqa: F821
        normalized,
        AnalysisSpec.from_settings(snakemake.wildcards.analysis, snakemake.params.analysis),  # noqa: F821
        snakemake.params.fdr,  # noqa: F821
        snakemake.params.config,  # noqa: F821
        snakemake.output.results,  # noqa: F821
        snakemake.output.summary,  # noqa: F821
        workflow_dir=Path(snakemake.scriptdir).parent,  # noqa: F821
        top_table_path=snakemake.output.top_table,  # noqa: F821
        features_path=snakemake.input.features[0] if snakemake.input.features else None,  # noqa: F821
        log=log,
        threads=snakemake.threads,  # noqa: F821
        merged=merged,
    )
    if snakemake.input.features:  # noqa: F821  (features: null writes no annotation table)
        annotation = aligned_annotation(snakemake.input.features[0], table["feature_id"], log=log)  # noqa: F821
        write_tsv(annotation, snakemake.output.annotation)  # noqa: F821
