rule fit_chunk:
    """Fit the stacked regressions of one row chunk (memory-mapped rows only) and write the compact
    un-moderated fit (coefficients, stdev.unscaled, sigma, df, Amean) as binary, and the chunk's
    sample cross-products of input, fitted values and residuals (for the PCA diagnostics)."""
    input:
        unpack(weighted_fit_inputs),  # counts, weights or blocks: the state (counts.smk)
        store=rules.normalize.output.store,
        design=rules.design.output.design,
    output:
        fit="results/{analysis}/intermediate/fit/chunk_{chunk}.npz",
        crossprod="results/{analysis}/intermediate/fit/chunk_{chunk}.crossprod.npz",
    params:
        chunks=CHUNKS,
    log:
        "logs/{analysis}/fit_chunk_{chunk}.log",
    benchmark:
        "logs/{analysis}/fit_chunk_{chunk}.benchmark.tsv",
    threads: 1
    resources:
        mem_mb=fit_chunk_mem_mb,
        runtime=fit_chunk_runtime,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/fit_chunk.py"
