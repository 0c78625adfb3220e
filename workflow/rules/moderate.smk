rule moderate:
    """Merge the chunk fits, then moderate, test and control the FDR over all features at once."""
    input:
        unpack(weighting_summary_inputs),  # counts, weights or blocks (counts.smk)
        chunks=chunk_files,
        design=rules.design.output.design,
        sv=rules.design.output.sv,
        design_info=rules.design.output.info,
        # the normalize summary, or with the direct Parquet path the chunks' input pieces (moderate
        # adds them up itself, so it does not wait for rule normalize)
        **(
            {
                "matrix": config["matrix"],
                "pieces": lambda w: direct_input_pieces(w.analysis),
                "checksum": "results/normalized/matrix_checksum.json",
            }
            if DIRECT
            else {"normalized": rules.normalize.output.summary}
        ),
        features=feature_annotation_input,
        **({"snps": "results/normalized/snps.tsv.gz"} if GENOTYPE else {}),
    output:
        results="results/{analysis}/results.parquet",
        summary="results/{analysis}/summary.json",
        top_table="results/{analysis}/top_table.tsv",
        # the feature annotation aligned to the results, only when the config names one
        **(
            {"annotation": "results/{analysis}/feature_annotation.tsv.gz"}
            if config.get("features")
            else {}
        ),
    params:
        analysis=analysis_settings,
        fdr=config["fdr"],
        config=analysis_config,
        direct=(
            {
                "input_scale": config["input_scale"],
                "normalize": config["normalize"],
                "filters": config["filter"],
                "precision": config["precision"],
            }
            if DIRECT
            else None
        ),
    log:
        "logs/{analysis}/moderate.log",
    benchmark:
        "logs/{analysis}/moderate.benchmark.tsv",
    threads: 2
    resources:
        mem_mb=moderate_mem_mb,
        runtime=moderate_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/moderate.py"


rule results_tsv:
    """The results table as gzipped TSV: results.parquet's columns and rows, floats in their
    shortest round-trip form, missing values as NA (in the default target when results_tsv says
    so; stacklm/workflow/targets.py)."""
    input:
        results=rules.moderate.output.results,
    output:
        tsv="results/{analysis}/results.tsv.gz",
    log:
        "logs/{analysis}/results_tsv.log",
    benchmark:
        "logs/{analysis}/results_tsv.benchmark.tsv",
    threads: 2  # formatted and gzipped in parallel blocks
    resources:
        mem_mb=results_tsv_mem_mb,
        runtime=30,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/results_tsv.py"
