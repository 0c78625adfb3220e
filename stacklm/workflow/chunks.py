"""``chunks: auto``: the number of fit jobs from the size of the data, decided when the workflow is
read (before the matrix is normalized), the same on every machine.

The rule: one job per :data:`CHUNK_TARGET_MB` (512 MB) of the matrix as float64 (estimated from
the file: text ~1x its bytes, gzip ~4x; exact for Parquet, rows x columns from its footer; a PLINK
.bed as the int8 store the fit jobs read, 1 byte per genotype), at least one; one per
:data:`WEIGHTED_CHUNK_TARGET_MB` (128 MB) when an analysis fits with weights or blocks (counts,
voom, sample weights, block correlation), whose per-feature work is ~10x that of a plain fit and
which run more passes over the chunks.  A plain fit of 512 MB takes well under a second, so
smaller chunks would only add job start-ups (~0.5 s each); every fit job reads its chunk in
blocks, so its memory does not grow with the chunk.  The example (12,000 x 96, ~9 MB) is one job,
10^6 x 100 (800 MB) two, 850,000 x 400 (2.7 GB) six.  The count does not depend on ``--cores`` or
the executor, so a laptop and a cluster run of one config fit the same chunks (results do not
depend on the chunking anyway, to 1e-12).
"""

from __future__ import annotations

import math
import os

import pyarrow as pa
import pyarrow.parquet as pq

#: float64 megabytes of the matrix per fit job
CHUNK_TARGET_MB = 512
#: ... when an analysis fits with weights or blocks (counts, voom, sample weights, correlation)
WEIGHTED_CHUNK_TARGET_MB = 128


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


def auto_chunks(path, matrix_format: str | None = None, weighted: bool = False) -> int:
    """The number of fit jobs for ``chunks: auto`` (``weighted``: an analysis fits with weights
    or blocks)."""
    target = WEIGHTED_CHUNK_TARGET_MB if weighted else CHUNK_TARGET_MB
    return max(1, math.ceil(estimated_values_mb(path, matrix_format) / target))
