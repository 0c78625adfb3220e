rule base_design:
    """The design of one analysis from the sample sheet (subset, formula, levels; before SVs) and
    what later steps need from the formula (base_design.json: variables, numeric covariates, the
    null design of sva, dropped samples): the formula is parsed only here."""
    input:
        samples=config["samples"],
        store=rules.normalize.output.store,
    output:
        design="results/{analysis}/intermediate/base_design.tsv",
        info="results/{analysis}/intermediate/base_design.json",
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
    log:
        "logs/{analysis}/base_design.log",
    benchmark:
        "logs/{analysis}/base_design.benchmark.tsv",
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/base_design.py"
