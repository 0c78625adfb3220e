"""Snakemake entry point: rule results_tsv (results.parquet as gzipped TSV; see
workflow/rules/moderate.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.io.outputs import parquet_to_tsv
from stacklm.workflow.steps import workflow_step

with workflow_step("results_tsv", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    rows = parquet_to_tsv(snakemake.input.results, snakemake.output.tsv, snakemake.threads)  # noqa: F821
    log.info("%d rows written to %s", rows, snakemake.output.tsv)  # noqa: F821
