rule corrected:
    """export_corrected: the normalized matrix with the adjustment columns' fitted effects removed
    (limma removeBatchEffect), as Parquet written in row blocks, and its sample PCA."""
    input:
        store=STORE,
        design=rules.design.output.design,
        info=rules.design.output.info,
        samples=config["samples"],
    output:
        parquet="results/{analysis}/corrected.parquet",
        png=report(
            "results/{analysis}/plots/pca_corrected.png",
            caption="../report/pca_corrected.rst",
            category="{analysis}",
            subcategory="4 Sample structure",
        ),
        data="results/{analysis}/plots/pca_corrected.tsv",
    params:
        analysis=analysis_settings,
        sample_id=config["sample_id"],
    log:
        "logs/{analysis}/corrected.log",
    benchmark:
        "logs/{analysis}/corrected.benchmark.tsv",
    threads: 1
    resources:
        mem_mb=fit_chunk_mem_mb,
        runtime=lambda wildcards, input, attempt: attempt * CHUNKS * fit_chunk_runtime(
            wildcards, input, 1
        ),
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/corrected.py"
