rule surrogate_variables:
    """Surrogate variables for unmeasured confounders (sva), estimated once on the whole normalized
    matrix before the chunked fits; an empty table when the analysis asks for none."""
    input:
        store=rules.normalize.output.store,
        base=rules.base_design.output.design,
        info=rules.base_design.output.info,
        samples=config["samples"],
    output:
        sv="results/{analysis}/surrogate_variables.tsv",
        associations="results/{analysis}/sv_associations.tsv",
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
    log:
        "logs/{analysis}/surrogate_variables.log",
    benchmark:
        "logs/{analysis}/surrogate_variables.benchmark.tsv",
    threads: 2
    resources:
        mem_mb=sv_mem_mb,
        runtime=sv_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/surrogate_variables.py"
