rule fit_chunk:
    """Fit the stacked regressions of one row chunk (memory-mapped rows only) and write the compact
    un-moderated fit (coefficients, stdev.unscaled, sigma, df, Amean) as binary."""
    input:
        store="results/normalized/matrix",
        design="results/{analysis}/design.tsv",
    output:
        fit="results/{analysis}/intermediate/fit/chunk_{chunk}.npz",
    params:
        chunks=CHUNKS,
    log:
        "logs/{analysis}/fit_chunk_{chunk}.log",
    threads: 1
    resources:
        mem_mb=matrix_mb(factor=4.0 / max(CHUNKS, 1)),
        runtime=60,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/fit_chunk.py"
