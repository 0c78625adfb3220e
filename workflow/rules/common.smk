# Helpers shared by the rules.
import errno
import json

import pyarrow.parquet as pq


def analysis_settings(wildcards):
    """The analysis' validated settings (defaults filled in from the schema) as a plain dict: a
    params value, so editing them re-runs that analysis; scripts rebuild its AnalysisSpec."""
    return dict(SPECS[wildcards.analysis].settings)


def analysis_config(wildcards):
    """The configuration an analysis depends on: global settings and this analysis only."""
    out = {k: v for k, v in config.items() if k != "analyses"}
    out["analyses"] = {wildcards.analysis: analysis_settings(wildcards)}
    return out


def chunk_files(wildcards):
    """The fit files of an analysis' chunks (rule fit_chunk's output)."""
    return expand(rules.fit_chunk.output.fit, analysis=wildcards.analysis, chunk=range(CHUNKS))


def direct_input_pieces(analysis):
    """The input pieces of an analysis' chunks (direct Parquet fits: rule fit_chunk's output)."""
    return expand(
        "results/{analysis}/intermediate/fit/chunk_{chunk}.input.npz",
        analysis=analysis,
        chunk=range(CHUNKS),
    )


def chunk_cross_products(wildcards):
    """The cross-product files of an analysis' chunks (rule fit_chunk's output)."""
    return expand(
        rules.fit_chunk.output.crossprod, analysis=wildcards.analysis, chunk=range(CHUNKS)
    )


# Cluster resources: memory (mem_mb) and wall time (runtime, minutes) from the data size, so that
# one profile serves small and large studies; `attempt` doubles both on a retry.  Before the input
# of a step exists (dry run), a FileNotFoundError naming the input makes Snakemake show <TBD>.
PYTHON_MB = 500  # interpreter, numpy, pandas, pyarrow


def _store_shape(store):
    """(features, samples) of the normalized binary matrix, from its meta.json."""
    meta = os.path.join(store, "meta.json")
    if not os.path.exists(meta):
        raise FileNotFoundError(errno.ENOENT, "not written yet", store)
    with open(meta) as fh:
        info = json.load(fh)
    return int(info["n_features"]), int(info["n_samples"])


def _chunk_values_mb(store, shape=None):
    """Size (MB) of one fit chunk as float64: ceil(features / chunks) rows x samples x 8 bytes
    (of the store, or of a matrix of ``shape`` features x samples)."""
    n_features, n_samples = shape or _store_shape(store)
    return -(-n_features // CHUNKS) * n_samples * 8 / 1e6


def _uses_svs(wildcards):
    return SPECS[wildcards.analysis].surrogate.wanted


# PLINK genotype input (issue 18): the .bim and .fam beside the .bed are inputs too
from stacklm.genotype.inputs import is_genotype_config, plink_files
from stacklm.workflow.chunks import estimated_values_mb

GENOTYPE = is_genotype_config(config)


NORMALIZE_THREADS = (
    2 if GENOTYPE or config["normalize"]["method"] in ("quantile", "cyclicloess") else 1
)


def design_data_input(wildcards):
    """What the design step reads: the normalized store when the analysis estimates SVs from it,
    else only the matrix file (its sample ids), so the design runs beside normalize."""
    return STORE if _uses_svs(wildcards) else config["matrix"]


def plink_side_files(wildcards):
    """The .bim and .fam of a PLINK genotype input (nothing for a matrix)."""
    return [plink_files(config["matrix"])[k] for k in ("bim", "fam")] if GENOTYPE else []


def normalize_mem_mb(wildcards, input, attempt):
    """Row-wise steps stream blocks (memory ~ feature ids); quantile/cyclic loess hold the matrix.
    Genotypes stream SNP chunks of 16 MB; the per-SNP table grows with the .bim (~3x its size)."""
    if GENOTYPE:
        return int(PYTHON_MB + 500 + attempt * (200 + 3 * os.path.getsize(input.plink[0]) / 1e6))
    values = estimated_values_mb(input.matrix, config.get("matrix_format"))
    copies = 0.25 if config["normalize"]["method"] == "none" else 5
    return int(PYTHON_MB + 500 + attempt * copies * values)


def normalize_runtime(wildcards, input, attempt):
    values = estimated_values_mb(input.matrix, config.get("matrix_format"))
    per_mb = 1 / 100 if config["normalize"]["method"] != "cyclicloess" else 1 / 20
    return int(attempt * (10 + per_mb * values))


def chunk_rows_and_block_mb(store, shape=None):
    """(rows of one chunk, MB of one row block as float64: at most FIT_BLOCK_VALUES, 32 MB) of
    the store (or of a matrix of ``shape`` features x samples): what a chunk job holds at a time."""
    n_features, _ = shape or _store_shape(store)
    return -(-n_features // CHUNKS), min(_chunk_values_mb(store, shape), 32)


def _fit_input_shape(input):
    """(features, samples) the fit jobs read: the store's, or the Parquet matrix's (direct)."""
    if DIRECT:
        meta = pq.read_metadata(input.matrix)
        return meta.num_rows, meta.num_columns - 1
    return _store_shape(input.store)


def _largest_row_group_mb(path):
    meta = pq.read_metadata(path)
    rows = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
    return rows * (meta.num_columns - 1) * 8 / 1e6


def fit_chunk_mem_mb(wildcards, input, attempt):
    """A fit job works through its chunk in row blocks of 4M values (32 MB as float64,
    stacklm.workflow.pipeline.FIT_BLOCK_VALUES): ~4 working copies of a block, the sample
    cross-products (three n x n matrices, or n x 100 sketches above 1,000 samples) and the chunk's
    per-row output (~25 doubles a row); measured 0.31 GiB at 125,000 SNPs x 5,000 per job.
    Reading Parquet directly, it also holds two decoded row groups and their float64 columns."""
    n_features, n_samples = _fit_input_shape(input)
    rows, block_mb = chunk_rows_and_block_mb(None, (n_features, n_samples))
    cross_mb = 3 * n_samples * min(n_samples, 1000) * 8 / 1e6
    groups_mb = 3 * _largest_row_group_mb(input.matrix) if DIRECT else 0
    return int(
        PYTHON_MB + attempt * (200 + 4 * block_mb + cross_mb + groups_mb + rows * 200 / 1e6)
    )


def fit_chunk_runtime(wildcards, input, attempt):
    """~1 min per 50 MB of chunk with scattered missing values on one core; 2x margin."""
    return int(attempt * (10 + _chunk_values_mb(None, _fit_input_shape(input)) / 25))


def sv_mem_mb(wildcards, input, attempt):
    """sva holds the whole matrix of the analysis' samples, its complete rows and residuals."""
    if not _uses_svs(wildcards):
        return PYTHON_MB
    n_features, n_samples = _store_shape(input.data)
    return int(PYTHON_MB + attempt * 4 * n_features * n_samples * 8 / 1e6)


def sv_runtime(wildcards, input, attempt):
    if not _uses_svs(wildcards):
        return 10
    n_features, n_samples = _store_shape(input.data)
    return int(attempt * (10 + n_features * n_samples * 8 / 1e6 / 10))


def moderate_mem_mb(wildcards, input, attempt):
    """All chunk fits merged (their file size) plus the results table: ~10x the chunk files."""
    fits_mb = sum(os.path.getsize(f) for f in input.chunks) / 1e6
    return int(PYTHON_MB + 500 + attempt * 10 * fits_mb)


def moderate_runtime(wildcards, input, attempt):
    fits_mb = sum(os.path.getsize(f) for f in input.chunks) / 1e6
    return int(attempt * (10 + fits_mb / 10))


def results_tsv_mem_mb(wildcards, input, attempt):
    """The results table in Arrow memory (~3x its zstd Parquet size) and the text blocks in flight."""
    return int(PYTHON_MB + 200 + attempt * 3 * os.path.getsize(input.results) / 1e6)


def feature_annotation_input(wildcards):
    """The feature annotation table, when the config names one (an input, so editing it re-runs)."""
    return [config["features"]] if config.get("features") else []
