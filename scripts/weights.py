"""Snakemake entry point: rules weights_setup and weights_chunk (the weighting state of one
analysis and its chunk passes; see workflow/rules/counts.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)

from stacklm.workflow.steps import workflow_step

rule = snakemake.rule  # noqa: F821
with workflow_step(rule, snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    w = snakemake.wildcards  # noqa: F821
    if rule == "weights_setup":
        from stacklm.spec import AnalysisSpec
        from stacklm.workflow.weighting.setup_step import setup_with_counts_step

        setup_with_counts_step(
            inp.store,
            inp.design,
            inp.samples,
            p.sample_id,
            AnalysisSpec.from_settings(w.analysis, p.analysis),
            p.input_scale,
            out.state,
            p.normalize_method,
            out.get("libraries"),
            out.get("keep"),
            out.get("summary"),
            log=log,
        )
    else:  # weights_chunk
        from stacklm.workflow.weighting.rounds import round_chunk_step, start_state

        state = start_state(
            inp.get("previous") or inp.get("state"),  # the round before's parts / setup's state
            inp.design,
            inp.get("samples"),  # without a setup job: the blocks of the sheet
            p.sample_id,
            p.block,
        )
        n = round_chunk_step(
            inp.store,
            inp.design,
            state,
            p.task,
            int(w.chunk),
            p.chunks,
            out.part,
            inp.get("libraries"),
            inp.get("keep"),
        )
        log.info("round %s (%s), chunk %s: %d features", w.round, p.task, w.chunk, n)
