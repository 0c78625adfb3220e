rule design:
    """The design of one analysis, in one job: the base design from the sample sheet (subset,
    formula, levels) and what later steps need from the formula (base_design.json: variables,
    numeric covariates, the null design of sva, dropped samples; the formula is parsed only here),
    the surrogate variables (sva on the whole normalized matrix; none unless the analysis asks), and
    the design as fitted (base design + SVs).  Without SVs it needs only the matrix's sample ids
    (its header or .fam), so it runs beside normalize instead of after it."""
    input:
        samples=config["samples"],
        data=design_data_input,
        plink=plink_side_files,
    output:
        design="results/{analysis}/design.tsv",
        info="results/{analysis}/intermediate/base_design.json",
        sv="results/{analysis}/surrogate_variables.tsv",
        associations="results/{analysis}/sv_associations.tsv",
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
        matrix_format=config.get("matrix_format"),
    log:
        "logs/{analysis}/design.log",
    benchmark:
        "logs/{analysis}/design.benchmark.tsv",
    # sva's BLAS on two threads; without SVs a small job on one, beside normalize
    threads: lambda wildcards: 2 if _uses_svs(wildcards) else 1
    resources:
        mem_mb=sv_mem_mb,
        runtime=sv_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/design.py"
