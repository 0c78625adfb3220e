"""File-level workflow steps for SNP genotypes (PLINK 1 .bed/.bim/.fam input), callable without
Snakemake; the scripts in ``scripts/`` pass Snakemake's paths and params to these.

- :func:`normalize_genotypes` (rule normalize): reads the .bed in SNP chunks (int8, bounded
  memory), runs plink2's QC (:func:`stacklm.genotype.qc.qc_filter`: ``filter.max_missing``,
  ``filter.min_hwe_p``, ``filter.min_maf``, then monomorphic SNPs), and writes the kept SNPs as an
  int8 binary store (1 byte per call; the fit chunks read it by SNP range as float64 with NaN) and
  the per-SNP table ``snps.tsv.gz`` (.bim fields, counted allele, QC statistics).  No float64 copy
  of the genotype matrix is ever made.
- :func:`genotype_sample_distributions` (rule normalize, after the store): per-sample distributions of
  the dosages before (random SNPs of the .bed) and after QC (random SNPs of the store).
- :func:`genotype_moderate_step` (rule moderate): :func:`stacklm.workflow.analysis_steps.
  moderate_step` with the SNP columns added to the results (:func:`snp_result_columns`).
- :func:`manhattan_step` (rule manhattan): the Manhattan plot of an analysis.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from stacklm.diagnostics.distributions import reservoir_size, sample_quantiles
from stacklm.genotype.inputs import plink_files
from stacklm.genotype.plink import BIM_COLUMNS, bed_shape, read_fam, read_genotypes
from stacklm.genotype.qc import qc_filter, snp_qc
from stacklm.io.outputs import write_tsv
from stacklm.io.store import BinaryMatrixWriter, open_binary_matrix

_log = logging.getLogger("stacklm")

#: genotypes (SNPs x samples, int8) of one chunk of the normalize step: 32 MB (it holds
#: READ_AHEAD + 2 chunks: those read ahead, the one in QC and the one being written)
QC_CHUNK_VALUES = 1 << 25

#: chunks the normalize step reads ahead (bed-reader in a worker thread)
READ_AHEAD = 2

#: per-SNP columns of the results, before the analysis test's five final columns
SNP_COLUMNS = ["chromosome", "position", "allele1", "allele2", "counted_allele", "maf", "call_rate"]
SNP_TABLE_COLUMNS = ["feature_id", *SNP_COLUMNS, "allele_freq", "n_called", "hwe_p"]


def iter_bim(path, chunk_snps: int) -> Iterator[pd.DataFrame]:
    """The .bim in consecutive chunks of ``chunk_snps`` lines (one pass over the file), with the
    columns of :func:`stacklm.genotype.plink.read_bim` (strings; ``position`` int64)."""
    reader = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=BIM_COLUMNS,
        dtype=str,
        keep_default_na=False,
        chunksize=chunk_snps,
        engine="c",
    )
    start = 0
    for chunk in reader:
        if chunk.isna().to_numpy().any() or (chunk == "").to_numpy().any():
            raise ValueError(
                f"{path}: line {start + 1} or a later one of this block of {len(chunk)} lines does "
                "not have 6 whitespace-separated columns (chromosome, id, cM, position, A1, A2)"
            )
        try:
            chunk["position"] = chunk["position"].astype(np.int64)
        except ValueError:
            bad = int(np.flatnonzero(~chunk["position"].str.fullmatch(r"-?\d+"))[0])
            raise ValueError(
                f"{path}: line {start + bad + 1}: position {chunk['position'].iloc[bad]!r} is not "
                "a whole number (column 4)"
            ) from None
        chunk.index = pd.RangeIndex(start, start + len(chunk))
        start += len(chunk)
        yield chunk


def _qc_thresholds(filters: Mapping | None) -> dict:
    f = dict(filters or {})
    return {
        "max_missing": f.get("max_missing"),
        "min_hwe_p": f.get("min_hwe_p"),
        "min_maf": f.get("min_maf"),
    }


def normalize_genotypes(
    bed_path,
    store_path,
    snps_path,
    counted_allele: int = 1,
    filters: Mapping | None = None,
    min_features: int = 1,
    threads: int = 1,
    log: logging.Logger = _log,
    chunk_values: int = QC_CHUNK_VALUES,
) -> dict:
    """QC a PLINK fileset SNP chunk by SNP chunk and write the kept SNPs as an int8 store.

    ``bed_path``: the .bed (its .bim and .fam beside it); ``counted_allele`` 1 (the .bim's column
    5, PLINK's A1) or 2 (column 6); ``filters``: the config's ``filter`` block (``max_missing``,
    ``min_hwe_p``, ``min_maf``; None switches one off).  QC is computed on every sample of the .fam
    (as plink2 without ``--keep``; allele frequencies and the HWE test on founders, i.e. samples
    whose .fam parents are both 0, as plink2), in plink2's order, then SNPs left with a single
    genotype class are dropped (``monomorphic``).  Memory: READ_AHEAD + 2 chunks of
    ``chunk_values`` int8 genotypes (read ahead, in QC, being written) and the QC tables.

    Writes the store (samples = the .fam's IIDs in .fam order; feature ids = the .bim's SNP ids)
    and ``snps_path`` (:data:`SNP_TABLE_COLUMNS`, one row per kept SNP, store order).  Returns the
    normalize summary with the SNPs each filter removed (``removed_by_filter`` and ``genotype.qc``).
    """
    files = plink_files(bed_path)
    fam = read_fam(files["fam"])
    n_samples, n_snps = bed_shape(files["bed"], len(fam))
    if counted_allele not in (1, 2):
        raise ValueError(f"genotype.counted_allele must be 1 or 2, not {counted_allele!r}")
    founders = ((fam["father"] == "0") & (fam["mother"] == "0")).to_numpy()
    founder_mask = None if founders.all() else founders
    thresholds = _qc_thresholds(filters)
    chunk_snps = max(1, int(chunk_values) // max(n_samples, 1))
    removed: dict[str, int] = {}
    n_seen = n_kept = 0
    snp_tables = []

    def read(s0: int):
        return read_genotypes(
            files["bed"],
            slice(s0, min(s0 + chunk_snps, n_snps)),
            counted_allele,
            dtype=np.int8,
            n_samples=n_samples,
            num_threads=1,
        )

    def append(ids, values):
        try:
            writer.append(ids, values)
        except ValueError as err:
            if "already written" not in str(err) and "duplicated feature" not in str(err):
                raise
            raise ValueError(
                f"{files['bim']}: SNP ids must be unique ({err}); give every SNP its own id "
                "(e.g. plink2 --set-all-var-ids @:#:$r:$a --make-bed)"
            ) from None

    # three stages overlap: bed-reader decodes the next chunks and the store writer writes the
    # previous one (both release the GIL) while this thread computes a chunk's QC
    starts = iter(range(0, n_snps, chunk_snps))
    with (
        BinaryMatrixWriter(store_path, list(fam["iid"]), dtype="int8") as writer,
        ThreadPoolExecutor(max_workers=READ_AHEAD + 1) as pool,  # reads ahead + one write
    ):
        reads = deque(pool.submit(read, s0) for s0 in itertools.islice(starts, READ_AHEAD))
        written = None
        for bim in iter_bim(files["bim"], chunk_snps):
            s1 = int(bim.index[-1]) + 1
            if s1 > n_snps:
                raise ValueError(
                    f"{files['bim']} has more lines than {files['bed']} has SNPs ({n_snps}); "
                    ".bed, .bim and .fam must come from one fileset"
                )
            g = reads.popleft().result()[: len(bim)]  # a short .bim: its end (error below)
            reads.extend(pool.submit(read, s) for s in itertools.islice(starts, 1))
            stats = snp_qc(g, founders=founder_mask)
            qc = qc_filter(stats, chromosome=bim["chromosome"].to_numpy(), **thresholds)
            for name, count in qc.removed.items():
                removed[name] = removed.get(name, 0) + count
            keep = qc.keep
            ids = bim["snp_id"].to_numpy()[keep]
            if written is not None:
                written.result()  # in order, and its error (duplicated ids) here
            written = pool.submit(append, ids, g if keep.all() else g[keep])
            kept = bim.loc[keep]
            s = stats.loc[keep]
            counted = kept["allele1"] if counted_allele == 1 else kept["allele2"]
            snp_tables.append(
                pd.DataFrame(
                    {
                        "feature_id": ids.astype(str),
                        "chromosome": kept["chromosome"].to_numpy(),
                        "position": kept["position"].to_numpy(),
                        "allele1": kept["allele1"].to_numpy(),
                        "allele2": kept["allele2"].to_numpy(),
                        "counted_allele": counted.to_numpy(),
                        "maf": s["maf"].to_numpy(),
                        "call_rate": s["call_rate"].to_numpy(),
                        "allele_freq": s["allele_freq"].to_numpy(),
                        "n_called": s["n_called"].to_numpy(),
                        "hwe_p": s["hwe_p"].to_numpy(),
                    }
                )
            )
            n_seen = s1
            n_kept += int(keep.sum())
            log.info("QC of %d of %d SNPs: %d kept", n_seen, n_snps, n_kept)
        if written is not None:
            written.result()
        if n_seen != n_snps:
            raise ValueError(
                f"{files['bim']} has {n_seen} lines but {files['bed']} has {n_snps} SNPs; "
                ".bed, .bim and .fam must come from one fileset"
            )
        for name, count in removed.items():
            log.info("filter %s removed %d SNPs", name, count)
        if n_kept == 0:
            raise ValueError(
                f"all {n_snps} SNPs of {files['bed']} were removed by the QC filters "
                f"({', '.join(f'{k}: {v}' for k, v in removed.items())}); relax 'filter'"
            )
        if n_kept < min_features:
            raise ValueError(
                f"'chunks' ({min_features}) is larger than the number of SNPs kept ({n_kept}); "
                "lower 'chunks'"
            )
    table = pd.concat(snp_tables, ignore_index=True)[SNP_TABLE_COLUMNS]
    write_tsv(table, snps_path, threads=threads)
    qc_summary = {"n_input": n_snps, "removed": removed, "n_kept": n_kept}
    return {
        "n_input_features": n_snps,
        "n_features": n_kept,
        "n_samples": n_samples,
        "removed_by_filter": removed,
        "input_scale": "dosage",
        "input_format": "plink",
        "normalize": {"method": "none"},
        "filter": {k: v for k, v in thresholds.items() if v is not None},
        "precision": "int8",
        "genotype": {
            "bed": str(files["bed"]),
            "counted_allele": int(counted_allele),
            "counted_allele_column": "allele1 (.bim column 5, PLINK A1)"
            if counted_allele == 1
            else "allele2 (.bim column 6)",
            "qc": qc_summary,
            "qc_order": "max_missing (plink2 --geno), min_hwe_p (--hwe), min_maf (--maf), "
            "then monomorphic SNPs",
            "n_founders": int(founders.sum()),
        },
    }


def genotype_fractions(values: np.ndarray, samples, stage: str) -> pd.DataFrame:
    """The distribution of each sample's dosages (columns of ``values``, NaN = missing call): the
    fraction of its calls with 0, 1 and 2 copies (the exact "density" of a 0/1/2 variable; the
    middle one is the sample's heterozygosity).  Long table ``stage, sample, x, density``."""
    values = np.asarray(values, dtype=np.float64)
    called = np.maximum(np.isfinite(values).sum(axis=0), 1)
    frac = np.stack([(values == k).sum(axis=0) / called for k in (0, 1, 2)], axis=1)  # n x 3
    names = np.asarray([str(s) for s in samples])
    return pd.DataFrame(
        {
            "stage": stage,
            "sample": np.repeat(names, 3),
            "x": np.tile([0.0, 1.0, 2.0], names.size),
            "density": frac.ravel(),
        }
    )


def genotype_sample_distributions(
    bed_path, store_path, counted_allele: int = 1, seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample distributions and quantiles of the dosages (the ``sample_density`` plot's
    tables): ``input`` = a uniform random sample of the .bed's SNPs, ``normalized`` = of the QC'd
    store's SNPs (:func:`stacklm.diagnostics.distributions.reservoir_size` SNPs each, read by
    index).  A kernel density of 0/1/2 values would only blur three points, so the "densities"
    are the fractions of each sample's calls with 0, 1, 2 copies (:func:`genotype_fractions`): 3
    rows per sample and stage, whatever the number of samples."""
    files = plink_files(bed_path)
    fam = read_fam(files["fam"])
    n_samples, n_snps = bed_shape(files["bed"], len(fam))
    rng = np.random.default_rng(seed)
    size = min(reservoir_size(n_samples), n_snps)
    idx = np.sort(rng.choice(n_snps, size, replace=False))
    before = read_genotypes(files["bed"], idx, counted_allele, n_samples=n_samples)
    store = open_binary_matrix(store_path, load_feature_ids=False)
    size = min(reservoir_size(store.n_samples), store.n_features)
    rows = np.sort(rng.choice(store.n_features, size, replace=False))
    after = store.take_rows(rows) if size else np.empty((0, store.n_samples))
    dens, quant = [], []
    for stage, values, names in (
        ("input", before, list(fam["iid"])),
        ("normalized", after, store.samples),
    ):
        dens.append(genotype_fractions(values, names, stage))
        q = sample_quantiles(values, names)
        q.insert(0, "stage", stage)
        quant.append(q)
    return pd.concat(dens, ignore_index=True), pd.concat(quant, ignore_index=True)


# --------------------------------------------------------------------------------------------
# the results of a genotype analysis
# --------------------------------------------------------------------------------------------
def read_snp_table(path) -> pd.DataFrame:
    """``snps.tsv.gz`` as written by :func:`normalize_genotypes` (ids, alleles, chromosome codes
    as strings)."""
    text = {c: str for c in ("feature_id", "chromosome", "allele1", "allele2", "counted_allele")}
    return pd.read_csv(
        path, sep="\t", dtype=text, keep_default_na=False, na_values=["NA"], engine="c"
    )
