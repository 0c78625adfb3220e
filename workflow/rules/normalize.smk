rule normalize:
    """Read the input matrix in row blocks, transform (log2 / M-values), normalize between samples,
    filter features, and write one binary float64 matrix that later steps memory-map by row range."""
    input:
        matrix=config["matrix"],
    output:
        store=directory("results/normalized/matrix"),
        summary="results/normalized/summary.json",
    params:
        matrix_format=config.get("matrix_format"),
        input_scale=config["input_scale"],
        beta_epsilon=config["beta_epsilon"],
        normalize=config["normalize"],
        filter=config["filter"],
        chunks=CHUNKS,
    log:
        "logs/normalize.log",
    benchmark:
        "logs/normalize.benchmark.tsv",
    threads: 2
    resources:
        mem_mb=normalize_mem_mb,
        runtime=normalize_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/normalize.py"
