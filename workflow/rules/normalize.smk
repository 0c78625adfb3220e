if DIRECT:

    rule normalize:
        """The fit jobs read the Parquet matrix directly (stacklm/workflow/direct.py): what
        normalize reports comes from the first analysis' chunks (their input pieces: rows kept,
        each filter's count, every k-th input row for the per-sample densities and quantiles), with
        the feature ids checked unique over the whole file; no store is written."""
        input:
            matrix=config["matrix"],
            pieces=lambda wildcards: direct_input_pieces(ANALYSES[0]),
            checksum="results/normalized/matrix_checksum.json",
        output:
            summary="results/normalized/summary.json",
            densities="results/normalized/sample_densities.tsv",
            quantiles="results/normalized/sample_quantiles.tsv",
        params:
            input_scale=config["input_scale"],
            normalize=config["normalize"],
            filter=config["filter"],
            precision=config["precision"],
        log:
            "logs/normalize.log",
        benchmark:
            "logs/normalize.benchmark.tsv",
        # ~1 s of one core, mostly start-up, ready when moderate is: on a local run it takes no
        # core from the scheduler and runs beside moderate (which leaves ~0.6 of its two cores
        # idle on average) instead of alone before the plots
        threads: 0 if LOCAL_RUN else 1
        resources:
            mem_mb=PYTHON_MB + 500,
            runtime=10,
        conda:
            "../../envs/stacklm.yaml"
        script:
            "../../scripts/normalize_direct.py"

    rule matrix_checksum:
        """The matrix's SHA-256 for the provenance (normalize hashes it on the store path): its
        own job, ready at the start, which on a local run takes no core from the scheduler and so
        runs beside the design and fit jobs (one core's hashing at ~2 GB/s)."""
        input:
            matrix=config["matrix"],
        output:
            checksum="results/normalized/matrix_checksum.json",
        log:
            "logs/matrix_checksum.log",
        benchmark:
            "logs/matrix_checksum.benchmark.tsv",
        threads: 0 if LOCAL_RUN else 1
        resources:
            mem_mb=PYTHON_MB,
            runtime=lambda wildcards, input: int(10 + os.path.getsize(input.matrix) / 1e9),
        conda:
            "../../envs/stacklm.yaml"
        script:
            "../../scripts/matrix_checksum.py"

else:

    rule normalize:
        """Read the input matrix in row blocks, transform (log2 / M-values), normalize between
        samples, filter features, and write one binary matrix (float64, or float32 with
        `precision: float32`) that later steps memory-map by row range and compute on in float64;
        and the per-sample densities and quantiles before and after normalization (a random sample
        of the rows read, and of the store)."""
        input:
            matrix=config["matrix"],
            plink=plink_side_files,
        output:
            store=directory("results/normalized/matrix"),
            summary="results/normalized/summary.json",
            densities="results/normalized/sample_densities.tsv",
            quantiles="results/normalized/sample_quantiles.tsv",
            # genotypes: the kept SNPs' .bim fields and QC (stacklm.workflow.genotype_steps)
            **({"snps": "results/normalized/snps.tsv.gz"} if GENOTYPE else {}),
        params:
            matrix_format=config.get("matrix_format"),
            input_scale=config["input_scale"],
            beta_epsilon=config["beta_epsilon"],
            normalize=config["normalize"],
            filter=config["filter"],
            chunks=CHUNKS,
            precision=config["precision"],
            genotype=config["genotype"] if GENOTYPE else None,
        log:
            "logs/normalize.log",
        benchmark:
            "logs/normalize.benchmark.tsv",
        # row-wise steps take one core (the store is written and the matrix hashed by background
        # threads that mostly wait on I/O), so a design without SVs runs beside it on two cores;
        # PLINK decoding and quantile / cyclic loess normalization use two
        threads: NORMALIZE_THREADS
        resources:
            mem_mb=normalize_mem_mb,
            runtime=normalize_runtime,
        conda:
            "../../envs/stacklm.yaml"
        script:
            "../../scripts/normalize.py"
