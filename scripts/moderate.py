"""Snakemake entry point: rule moderate (merge chunks, moderate, test, FDR; see workflow/rules/moderate.smk)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (stacklm from this repository)


import json

from stacklm.analysis import moderate_and_test
from stacklm.io.outputs import write_json, write_tsv
from stacklm.workflow.checks import versions
from stacklm.workflow.pipeline import aligned_annotation, merge_chunk_fits, read_design
from stacklm.workflow.provenance import provenance
from stacklm.workflow.steps import workflow_step

with workflow_step("moderate", snakemake.log[0], snakemake.threads) as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    analysis = p.analysis
    fit = merge_chunk_fits(snakemake.input.chunks)  # noqa: F821
    log.info("merged %d chunks: %d features", len(snakemake.input.chunks), fit.n_features)  # noqa: F821
    table, stats = moderate_and_test(
        fit,
        analysis.get("contrasts") or {},
        analysis["test"],
        analysis.get("moderation"),
        fdr_method=p.fdr["method"],
        alpha=p.fdr["alpha"],
    )
    design = read_design(snakemake.input.design)  # noqa: F821
    sv = read_design(snakemake.input.sv)  # noqa: F821
    normalized = json.loads(open(snakemake.input.normalized).read())  # noqa: F821
    design_info = json.loads(open(snakemake.input.design_info).read())  # noqa: F821
    summary = {
        **stats,
        "n_samples": int(design.shape[0]),
        "dropped_samples": design_info["dropped_samples"],
        "design_columns": list(design.columns),
        "n_surrogate_variables": int(sv.shape[1]),
        "surrogate_variables": {
            "requested": analysis.get("surrogate_variables", 0),
            "method": analysis.get("surrogate_method", "be"),
            "seed": analysis.get("surrogate_seed", 1),
            "n": int(sv.shape[1]),
            "features_used": "complete features only (no missing values)",
        },
        "normalization": normalized,
        "versions": versions(),
        "config": p.config,
        "provenance": provenance(p.config, workflow_dir=Path(snakemake.scriptdir).parent),  # noqa: F821
    }
    write_tsv(table, snakemake.output.results, threads=snakemake.threads)  # noqa: F821
    write_json(summary, snakemake.output.summary)  # noqa: F821
    annotation = aligned_annotation(
        snakemake.input.features[0] if snakemake.input.features else None,  # noqa: F821
        table["feature_id"],
        log=log,
    )
    write_tsv(annotation, snakemake.output.annotation)  # noqa: F821
    log.info(
        "%d features; %d significant at %s %.3g",
        stats["n_features"],
        stats["n_significant"],
        p.fdr["method"],
        p.fdr["alpha"],
    )
