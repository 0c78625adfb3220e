rule design:
    """The design as fitted: the base design plus the analysis' surrogate variables."""
    input:
        base=rules.base_design.output.design,
        sv=rules.surrogate_variables.output.sv,
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
