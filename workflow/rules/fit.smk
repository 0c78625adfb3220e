rule fit_chunk:
    """Fit the stacked regressions of one row chunk and write the compact un-moderated fit
    (coefficients, stdev.unscaled, sigma, df, Amean) as binary, and the chunk's sample
    cross-products of input, fitted values and residuals (for the PCA diagnostics).  It reads its
    rows of the normalized store (memory-mapped), or with the direct Parquet path its row groups of
    the matrix (stacklm/workflow/direct.py: normalize's checks, transform and filters here, and
    what normalize reports in the chunk's input piece)."""
    input:
        unpack(weighted_fit_inputs),  # counts, weights or blocks: the state (counts.smk)
        **({"matrix": config["matrix"]} if DIRECT else {"store": STORE}),
        design=rules.design.output.design,
    output:
        fit="results/{analysis}/intermediate/fit/chunk_{chunk}.npz",
        crossprod="results/{analysis}/intermediate/fit/chunk_{chunk}.crossprod.npz",
        **({"piece": "results/{analysis}/intermediate/fit/chunk_{chunk}.input.npz"} if DIRECT else {}),
    params:
        chunks=CHUNKS,
        direct=(
            {
                "input_scale": config["input_scale"],
                "beta_epsilon": config["beta_epsilon"],
                "normalize": config["normalize"],
                "filters": config["filter"],
            }
            if DIRECT
            else None
        ),
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
