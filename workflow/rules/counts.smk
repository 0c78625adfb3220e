# RNA-seq counts, sample weights and blocks of correlated samples (issues 16, 17): the rules of
# stacklm/workflow/weighting/ (helpers and what runs for which analysis: counts_common.smk).
# A round's global step (voom's trend, duplicateCorrelation's consensus) has no job: every job
# that reads the round (the next round's chunks, the fit chunks, moderate, the plots) computes it
# from the round's parts (stacklm.workflow.weighting.rounds.load_state).


rule weights_setup:
    """The analysis' weighting state before the chunk rounds.  Counts first: column sums,
    filterByExpr on the analysis' design, the kept features' column sums (keep.lib.sizes = FALSE)
    and calcNormFactors (normalize.method).  Then the sample weights of the sheet, the blocks,
    arrayWeights and voomWithQualityWeights (global over features)."""
    input:
        store=STORE,
        design=rules.design.output.design,
        samples=config["samples"],
    output:
        state="results/{analysis}/intermediate/weights/setup.npz",
        **(
            {
                "libraries": "results/{analysis}/counts/libraries.tsv",
                "keep": "results/{analysis}/counts/filter_by_expr.tsv.gz",
                "summary": "results/{analysis}/counts/summary.json",
            }
            if COUNTS
            else {}
        ),
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
        input_scale=INPUT_SCALE,
        normalize_method=config["normalize"]["method"],
    log:
        "logs/{analysis}/weights_setup.log",
    benchmark:
        "logs/{analysis}/weights_setup.benchmark.tsv",
    threads: 1
    resources:
        mem_mb=setup_mem_mb,
        runtime=setup_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/weights.py"


rule weights_chunk:
    """One chunk's share of a weighting round: voom's trend points, or per-feature
    duplicateCorrelation (REML) correlations.  The job starts from the state after the round
    before, which it computes from that round's parts (the lowess trend or the consensus: every
    job reading a round does), or from setup's state (round 1; without a setup job it reads the
    blocks from the sample sheet itself).  Its part carries that state for the next reader."""
    input:
        unpack(counts_inputs),
        unpack(round_start_inputs),
        store=STORE,
        design=rules.design.output.design,
    output:
        part="results/{analysis}/intermediate/weights/round_{round}/chunk_{chunk}.npz",
    params:
        task=round_task,
        chunks=CHUNKS,
        # the sheet's block column, for round 1 without a setup job (not the whole analysis:
        # editing its moderation or tests does not re-run the REML passes)
        block=lambda wildcards: SPECS[wildcards.analysis].weighting.block,
        sample_id=config["sample_id"],
    wildcard_constraints:
        round=r"[1-9]\d*",
    log:
        "logs/{analysis}/weights_round_{round}_chunk_{chunk}.log",
    benchmark:
        "logs/{analysis}/weights_round_{round}_chunk_{chunk}.benchmark.tsv",
    threads: 1
    resources:
        mem_mb=weights_chunk_mem_mb,
        runtime=fit_chunk_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/weights.py"


# one rule per analysis that has counts / weights / block plots, with exactly those plots
for _analysis in ANALYSES:
    _stems = weighting_plots(_analysis)
    if not _stems:
        continue
    _rule_suffix = re.sub(r"\W", "_", _analysis)

    rule:
        name:
            f"weighting_plots_{_rule_suffix}"
        input:
            **weighting_plot_inputs(_analysis),
        output:
            **{
                stem: report(
                    f"results/{_analysis}/plots/{stem}.png",
                    caption=f"../report/{stem}.rst",
                    category=_analysis,
                    subcategory="6 Counts and weights",
                )
                for stem in _stems
            },
            **{f"{stem}_data": f"results/{_analysis}/plots/{stem}.tsv" for stem in _stems},
        params:
            plots=_stems,
            analysis=_analysis,
        log:
            f"logs/{_analysis}/weighting_plots.log",
        benchmark:
            f"logs/{_analysis}/weighting_plots.benchmark.tsv",
        threads: 1
        resources:
            mem_mb=1500,
            runtime=30,
        conda:
            "../../envs/stacklm.yaml"
        script:
            "../../scripts/weighting_plot.py"
