"""Snakemake entry point: rule matrix_checksum (the direct Parquet path; see
workflow/rules/normalize.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.provenance import write_checksum
from stacklm.workflow.steps import workflow_step

with workflow_step("matrix_checksum", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    record = write_checksum(snakemake.input.matrix, snakemake.output.checksum)  # noqa: F821
    log.info("sha256 of %s (%d bytes): %s", record["path"], record["bytes"], record["sha256"])
