"""Snakemake entry point: rule normalize when the fit jobs read the Parquet matrix directly
(see workflow/rules/normalize.smk and stacklm/workflow/direct.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.io.outputs import write_json, write_tsv
from stacklm.workflow.direct import direct_distributions, direct_normalize_summary
from stacklm.workflow.steps import workflow_step

with workflow_step("normalize", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    p, inp, out = snakemake.params, snakemake.input, snakemake.output  # noqa: F821
    summary = direct_normalize_summary(
        inp.matrix, inp.pieces, p.input_scale, p.normalize, p.filter, p.precision,
        checksum_path=inp.checksum,
    )  # fmt: skip
    for name, count in summary["removed_by_filter"].items():
        log.info("filter %s removed %d features", name, count)
    densities, quantiles = direct_distributions(inp.pieces)
    write_tsv(densities, out.densities)
    write_tsv(quantiles, out.quantiles)
    log.info("sample densities of %d samples", quantiles["sample"].nunique())
    write_json(summary, out.summary)
