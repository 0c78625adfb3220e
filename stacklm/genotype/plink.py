"""PLINK 1 binary genotypes (.bed/.bim/.fam) read by SNP range with the ``bed-reader`` package.

A ``.bed`` file stores 2 bits per genotype, SNP-major: 10^6 SNPs x 10^4 samples is 2.5 GB on disk
but 80 GB as float64.  :func:`read_genotypes` therefore reads only a range (or a selection) of SNPs,
and returns them as rows (SNPs) x columns (samples), the orientation of every stacklm matrix.  The
array bed-reader fills is Fortran-ordered samples x SNPs, whose transpose is a C-ordered
SNPs x samples array without a copy, so the memory used is that of the requested block only
(``n_snps_in_range x n_samples`` values of ``dtype``).  ``dtype=np.int8`` gives 1 byte per genotype
with :data:`MISSING_INT8` (-127) for a missing call, 8 times less than float64.

Allele coding follows PLINK: the .bim's column 5 is allele 1 (A1, usually the minor allele; plink2
calls it ALT when it reads a .bed) and column 6 allele 2 (A2, REF for plink2).  ``counted_allele=1``
gives the number of copies of A1 (PLINK 1.x's and bed-reader's default, ``count_A1=True``);
``counted_allele=2`` the number of copies of A2 (snpStats' ``as(G, "numeric")`` for a file written
by ``write.plink``, and plink2's ``--glm`` A1 column when it reports REF).  Sample ids are the .fam's
IID (column 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

#: missing call in an int8 genotype array (bed-reader's convention)
MISSING_INT8 = -127

#: the three magic bytes that start a SNP-major PLINK 1 .bed file
BED_MAGIC = b"\x6c\x1b\x01"

BIM_COLUMNS = ["chromosome", "snp_id", "cm_position", "position", "allele1", "allele2"]
FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "phenotype"]


def _plink_path(path, ext: str) -> str:
    """``prefix``, ``prefix.bed`` or ``prefix.bim`` -> ``prefix.<ext>``."""
    path = os.fspath(path)
    root, e = os.path.splitext(path)
    if e.lower() in (".bed", ".bim", ".fam"):
        path = root
    return f"{path}.{ext}"


def _read_table(path, names: list[str], skip: int = 0, nrows: int | None = None) -> pd.DataFrame:
    tab = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        skiprows=skip,
        nrows=nrows,
        engine="c",
    )
    bad = tab.shape[1] != len(names) or not isinstance(tab.index, pd.RangeIndex)
    if bad or tab.isna().to_numpy().any() or (tab == "").to_numpy().any():
        raise ValueError(f"{path}: expected {len(names)} whitespace-separated columns per line")
    return tab


def read_bim(path, snp_slice: slice | None = None) -> pd.DataFrame:
    """The .bim of a PLINK 1 fileset: ``chromosome, snp_id, cm_position, position, allele1, allele2``.

    ``path`` is the .bim, the .bed or the prefix.  Chromosome codes, SNP ids and alleles stay strings;
    ``position`` is int64 and ``cm_position`` float.  With ``snp_slice`` (a ``slice`` with step 1)
    only those lines are parsed (``skiprows``/``nrows``), so a chunk job does not parse a 10^7-line
    .bim; the index then holds the SNPs' positions in the file.
    """
    path = _plink_path(path, "bim")
    skip, nrows, start = 0, None, 0
    if snp_slice is not None:
        if snp_slice.step not in (None, 1):
            raise ValueError("read_bim: snp_slice must have step 1")
        if (snp_slice.start or 0) < 0 or (snp_slice.stop is not None and snp_slice.stop < 0):
            raise ValueError("read_bim: snp_slice must have non-negative bounds")
        start = snp_slice.start or 0
        skip = start
        if snp_slice.stop is not None:
            nrows = max(snp_slice.stop - start, 0)
    if nrows == 0:
        tab = pd.DataFrame({c: pd.Series(dtype=str) for c in BIM_COLUMNS})
    else:
        tab = _read_table(path, BIM_COLUMNS, skip=skip, nrows=nrows)
    tab["cm_position"] = tab["cm_position"].astype(np.float64)
    tab["position"] = tab["position"].astype(np.int64)
    tab.index = pd.RangeIndex(start, start + len(tab))
    return tab


def read_fam(path) -> pd.DataFrame:
    """The .fam: ``fid, iid, father, mother, sex, phenotype`` (strings), indexed by ``iid``.

    The sample ids are the IIDs (column 2); they must be unique.  ``path`` is the .fam, the .bed or
    the prefix.
    """
    tab = _read_table(_plink_path(path, "fam"), FAM_COLUMNS)
    dup = tab["iid"].duplicated()
    if dup.any():
        raise ValueError(
            f"{_plink_path(path, 'fam')}: duplicated IIDs (sample ids must be unique): "
            + ", ".join(tab.loc[dup, "iid"].unique()[:10])
        )
    tab.index = pd.Index(tab["iid"].to_numpy(), name="sample_id")
    return tab


def sample_index(fam: pd.DataFrame, sample_ids: Sequence) -> np.ndarray:
    """Positions in the .fam of ``sample_ids`` (e.g. the sample sheet's ids, in sheet order).

    Raises a ValueError naming the ids that are not IIDs of the .fam.
    """
    ids = pd.Index([str(s) for s in sample_ids])
    pos = pd.Index(fam["iid"].to_numpy()).get_indexer(ids)
    if (pos < 0).any():
        missing = ids[pos < 0]
        raise ValueError(
            f"{missing.size} sample ids are not IIDs of the .fam: " + ", ".join(missing[:10])
        )
    return pos.astype(np.int64)


def _count_lines(path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def bed_shape(bed_path, n_samples: int | None = None) -> tuple[int, int]:
    """``(n_samples, n_snps)`` of a SNP-major .bed, from the .fam's line count and the .bed's size.

    The .bed is checked: its magic bytes, and a size of ``3 + n_snps * ceil(n_samples / 4)`` bytes.
    The .bim is not read (a chunk job need not count its 10^7 lines).
    """
    bed_path = _plink_path(bed_path, "bed")
    if n_samples is None:
        n_samples = _count_lines(_plink_path(bed_path, "fam"))
    with open(bed_path, "rb") as fh:
        magic = fh.read(3)
    if magic != BED_MAGIC:
        raise ValueError(
            f"{bed_path}: not a SNP-major PLINK 1 .bed (magic bytes {magic!r}, expected {BED_MAGIC!r})"
        )
    per_snp = (n_samples + 3) // 4
    body = os.path.getsize(bed_path) - 3
    if per_snp == 0 or body % per_snp:
        raise ValueError(
            f"{bed_path}: size {body + 3} bytes does not fit {n_samples} samples "
            f"({per_snp} bytes per SNP); .fam and .bed do not belong together"
        )
    return int(n_samples), int(body // per_snp)


def _snp_selection(snp_slice, n_snps: int):
    """slice / range / (start, stop) / int / index array / bool mask -> bed-reader index, count."""
    if snp_slice is None:
        return slice(0, n_snps), n_snps
    if isinstance(snp_slice, range):
        snp_slice = slice(snp_slice.start, snp_slice.stop, snp_slice.step)
    if isinstance(snp_slice, tuple) and len(snp_slice) == 2:
        snp_slice = slice(*snp_slice)
    if isinstance(snp_slice, slice):
        start, stop, step = snp_slice.indices(n_snps)
        return slice(start, stop, step), len(range(start, stop, step))
    if np.isscalar(snp_slice) and isinstance(snp_slice, (int, np.integer)):
        return [int(snp_slice)], 1
    sel = np.asarray(snp_slice)
    if sel.dtype == bool:
        if sel.shape != (n_snps,):
            raise ValueError(f"boolean SNP mask has length {sel.size}, the .bed has {n_snps} SNPs")
        sel = np.flatnonzero(sel)
    sel = sel.astype(np.intp)
    if sel.size and (sel.min() < -n_snps or sel.max() >= n_snps):
        raise IndexError(f"SNP index out of range for {n_snps} SNPs")
    return sel, int(sel.size)


def read_genotypes(
    bed_path,
    snp_slice=None,
    counted_allele: int = 1,
    sample_index: Sequence[int] | np.ndarray | None = None,
    dtype=np.float64,
    *,
    n_samples: int | None = None,
    num_threads: int | None = 1,
) -> np.ndarray:
    """Genotypes of a range of SNPs: rows = SNPs, columns = samples, copies of the counted allele.

    ``snp_slice``: a ``slice``/``range``/``(start, stop)`` of SNP positions in the .bed/.bim (``None``
    = all), or an index array / boolean mask.  ``counted_allele``: 1 counts the .bim's allele 1
    (column 5, PLINK's A1), 2 the .bim's allele 2 (column 6).  ``sample_index``: positions in the
    .fam of the samples to return, in that order (see :func:`sample_index`); ``None`` = all, in .fam
    order.  ``dtype``: float64 or float32 (NaN for a missing call) or int8 (:data:`MISSING_INT8`).

    Only the requested SNPs' bytes are read (bed-reader seeks to each SNP) and the only allocation is
    the result (``n_snps x n_samples`` of ``dtype``, C order): no full-matrix copy.  The .bim is not
    read; the sample count comes from the .fam (or ``n_samples``) and the SNP count from the .bed's
    size.  ``num_threads`` goes to bed-reader (1 by default: the workflow runs one job per core).
    """
    from bed_reader import open_bed

    if counted_allele not in (1, 2):
        raise ValueError(
            f"counted_allele must be 1 (.bim column 5) or 2 (column 6), not {counted_allele!r}"
        )
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int8)):
        raise ValueError(f"dtype must be float64, float32 or int8, not {dtype}")
    bed_path = _plink_path(bed_path, "bed")
    n_iid, n_sid = bed_shape(bed_path, n_samples)
    sid, n_sel = _snp_selection(snp_slice, n_sid)
    iid = slice(None) if sample_index is None else np.asarray(sample_index, dtype=np.intp)
    n_cols = n_iid if sample_index is None else len(iid)
    if n_sel == 0 or n_cols == 0:
        return np.empty((n_sel, n_cols), dtype=dtype)
    with open_bed(
        bed_path,
        iid_count=n_iid,
        sid_count=n_sid,
        count_A1=counted_allele == 1,
        num_threads=num_threads,
    ) as bed:
        # Fortran-ordered samples x SNPs: its transpose is C-ordered SNPs x samples (a view)
        val = bed.read(index=np.s_[iid, sid], dtype=dtype, order="F")
    return val.T


def iter_genotypes(
    bed_path,
    chunk_snps: int,
    counted_allele: int = 1,
    sample_index=None,
    dtype=np.float64,
    *,
    start: int = 0,
    stop: int | None = None,
    num_threads: int | None = 1,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, genotypes)`` for consecutive SNP ranges of ``chunk_snps`` SNPs.

    Memory stays bounded by one chunk (``chunk_snps x n_samples`` values of ``dtype``).
    """
    if chunk_snps < 1:
        raise ValueError("chunk_snps must be at least 1")
    n_iid, n_sid = bed_shape(bed_path)
    stop = n_sid if stop is None else min(stop, n_sid)
    for s0 in range(start, stop, chunk_snps):
        s1 = min(s0 + chunk_snps, stop)
        yield (
            s0,
            s1,
            read_genotypes(
                bed_path,
                slice(s0, s1),
                counted_allele,
                sample_index,
                dtype,
                n_samples=n_iid,
                num_threads=num_threads,
            ),
        )


def int8_to_float(genotypes: np.ndarray, dtype=np.float64) -> np.ndarray:
    """An int8 genotype block (missing = -127) as float with NaN for a missing call."""
    out = genotypes.astype(dtype)
    out[genotypes == MISSING_INT8] = np.nan
    return out
