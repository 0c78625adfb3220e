rule base_design:
    """The design of one analysis from the sample sheet: subset, formula, levels (before SVs)."""
    input:
        samples=config["samples"],
        store="results/normalized/matrix",
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


rule design:
    """The design as fitted: the base design plus the analysis' surrogate variables."""
    input:
        base="results/{analysis}/intermediate/base_design.tsv",
        sv="results/{analysis}/surrogate_variables.tsv",
    output:
        design="results/{analysis}/design.tsv",
    log:
        "logs/{analysis}/design.log",
    benchmark:
        "logs/{analysis}/design.benchmark.tsv",
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/design.py"
