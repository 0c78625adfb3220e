"""``chunks: auto``: the number of fit jobs from the size of the data and, on a local run, the
cores, decided when the workflow is read (before the matrix is normalized).

The rule: one job per :data:`CHUNK_TARGET_MB` (512 MB) of the matrix as float64 (estimated from
the file: text ~1x its bytes, gzip ~4x; exact for Parquet, rows x columns from its footer; a PLINK
.bed as the int8 store the fit jobs read, 1 byte per genotype), at least one.  On a local run with
``--cores C`` a plain fit takes fewer, larger chunks when that still keeps every core busy: a
multiple of C, one round of jobs per :data:`LOCAL_CHUNK_TARGET_MB` (2 GB) of matrix per core,
never more than the size rule gives.  A fit job's memory does not grow with its chunk (it reads
the chunk in blocks), but every job pays ~1 s of start-up and, reading Parquet directly, a row
group shared with its neighbour; on 2 cores 850,000 x 400 (2.7 GB) runs as 2 jobs instead of 6 and
10^6 x 1,000 (8 GB) as 4 instead of 16.  The example (12,000 x 96, ~9 MB) is one job and 10^6 x
100 (800 MB) two either way.  On a cluster (a run given ``--jobs``, as the SLURM profile does,
and inside its jobs) only the size rule applies, so chunks have a useful size for a scheduler and every process of a
run counts the same.  When an analysis fits with weights or blocks (counts, voom, sample weights,
block correlation) the target is :data:`WEIGHTED_CHUNK_TARGET_MB` (128 MB) and the cores do not
count: those fits cost ~10x more per feature and run several passes over the chunks, which many
jobs balance.  The results do not depend on the chunking (to 1e-12, tested).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stacklm.genotype.inputs import is_genotype_config
from stacklm.io.formats import MatrixInputError, matrix_format
from stacklm.io.parquet import _parquet_file
from stacklm.workflow.weighting.plan import uses_weighted_path

#: float64 megabytes of the matrix per fit job
CHUNK_TARGET_MB = 512
#: ... when an analysis fits with weights or blocks (counts, voom, sample weights, correlation)
WEIGHTED_CHUNK_TARGET_MB = 128
#: on a local run: float64 megabytes of the matrix per core for each round of plain fit jobs
LOCAL_CHUNK_TARGET_MB = 2048


def estimated_values_mb(
    path, matrix_format: str | None = None, n_samples: int | None = None
) -> float:
    """The matrix as the fit jobs read it, in MB: float64 values estimated from the file, or for a
    PLINK .bed its int8 store (1 byte per genotype; the jobs decode it in blocks)."""
    name = str(path).lower()
    size = os.path.getsize(path) / 1e6
    if name.endswith(".bed") or matrix_format == "plink":
        # 2 bits per genotype on disk, 1 byte in the int8 store
        return size * 4
    if name.endswith((".parquet", ".pq")) or matrix_format == "parquet":
        try:  # the footer holds the shape: rows x (columns - the id) float64 values
            meta = pq.read_metadata(path)
            return meta.num_rows * max(meta.num_columns - 1, 1) * 8 / 1e6
        except (OSError, ValueError, pa.ArrowException):  # not readable: normalize will say why
            return 2 * size
    if name.endswith((".gz", ".bgz", ".bz2", ".xz", ".zst")):
        return 4 * size
    return size


def auto_chunks(
    path, matrix_format: str | None = None, weighted: bool = False, cores: int | None = None
) -> int:
    """The number of fit jobs for ``chunks: auto`` (``weighted``: an analysis fits with weights
    or blocks; ``cores``: the cores of a local run, None on a cluster or when unknown)."""
    values = estimated_values_mb(path, matrix_format)
    if weighted:
        return max(1, math.ceil(values / WEIGHTED_CHUNK_TARGET_MB))
    by_size = max(1, math.ceil(values / CHUNK_TARGET_MB))
    if not cores or cores < 1:
        return by_size
    local = cores * max(1, math.ceil(values / (cores * LOCAL_CHUNK_TARGET_MB)))
    return min(by_size, local)


def direct_fit_reason(config: Mapping, specs: Mapping, chunks: int) -> str | None:
    """Why the fit jobs cannot read a Parquet matrix directly (None: they can;
    :mod:`stacklm.workflow.direct`), decided when the workflow is read. ``specs``:
    the analyses' :class:`stacklm.spec.AnalysisSpec` by name; ``chunks``: the number of fit jobs
    (each takes whole row groups, so the file needs at least that many)."""
    if config.get("fit_input", "auto") == "store":
        return "fit_input: store"
    if is_genotype_config(config):
        return "genotype input"
    try:
        fmt = matrix_format(Path(config["matrix"]), config.get("matrix_format"))
    except (MatrixInputError, ValueError, OSError):
        return "matrix format unknown"
    if fmt != "parquet":
        return "not a Parquet matrix"
    if config["input_scale"] == "counts":
        return "counts"
    if (config.get("normalize") or {}).get("method", "none") != "none":
        return "between-sample normalization"
    if config.get("precision", "float64") != "float64":
        return "precision float32"
    for name, spec in specs.items():
        if spec.surrogate.wanted or uses_weighted_path(spec, config["input_scale"]):
            return f"analysis {name} needs the normalized matrix"
        if spec.export_corrected:
            return f"analysis {name} exports corrected values"
    try:
        groups = _parquet_file(Path(config["matrix"])).metadata.num_row_groups
    except MatrixInputError:
        return "matrix unreadable"
    if groups < chunks:
        return "fewer row groups than chunks"
    return None


def direct_chunk_groups(path, chunks: int) -> list[tuple[int, int, int]]:
    """Each chunk's ``(first row group, end row group, first row)``: contiguous row groups, as
    even as their number allows (needs at least ``chunks`` row groups)."""
    meta = _parquet_file(Path(path)).metadata
    n = meta.num_row_groups
    if n < chunks:
        raise ValueError(f"{path}: {n} row groups cannot make {chunks} chunks")
    starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(n)])
    edges = [round(c * n / chunks) for c in range(chunks + 1)]
    return [(edges[c], edges[c + 1], int(starts[edges[c]])) for c in range(chunks)]
