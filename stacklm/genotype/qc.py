"""Per-SNP quality control as PLINK 2 computes it: call rate, allele frequency, exact HWE test, filters.

All functions work on a block of SNPs (rows) x samples (columns) of allele counts, as
:func:`stacklm.genotype.plink.read_genotypes` returns it (float with NaN, or int8 with -127 for a
missing call), vectorised over SNPs.

The Hardy-Weinberg test is plink2's ``HweP`` (``plink2_stats.cc``, PLINK v2.00a3.5, the version in
Debian): Wigginton, Cutler & Abecasis (2005)'s exact test (SNPHWE), rewritten by Christopher Chang
to walk the heterozygote-count distribution from the observed count with a recurrence of ratios,
relative to the observed configuration's probability (scaled to 2^-83), stopping when a tail's
terms no longer change its sum, and counting a configuration as "as extreme as observed" when its
probability is at most the observed one times ``1 + 2^-44`` (a tolerance against rounding).  It
uses only multiplications, divisions and additions, so :func:`hwe_exact` ports it operation by
operation (same order), and its p-values are the same doubles plink2 computes -- not merely the same
printed digits.  Why a port rather than a library: no Python package computes plink2's p-value
(the tie tolerance and the early stops are plink2's own); scipy has no HWE exact test.  plink2's
default is the ordinary p-value (``--hwe``/``--hardy`` without ``midp``); ``midp=True`` gives the
mid-p variant (Graffelman & Moreno 2013) as ``--hwe ... midp``.

Vectorisation: the p-value depends on the genotype-count triple only, and many SNPs share a triple,
so the test runs once per distinct triple; the walks of all distinct triples advance together, one
step of the recurrence per loop iteration (a loop over the steps of the recurrence, not over SNPs),
with finished triples dropped from the active set.

:func:`qc_filter` applies ``filter.max_missing`` (plink2 ``--geno``), ``filter.min_hwe_p``
(``--hwe``) and ``filter.min_maf`` (``--maf``) in plink2's order (geno, then hwe, then maf), with
plink2's floating-point guards, and reports the SNPs removed by each, then drops the SNPs whose
dosage is constant among the called samples (monomorphic: no linear model can be fitted) with a
count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stacklm.io.blocks import rows_per_block

from .plink import MISSING_INT8

#: plink2's kSmallEpsilon (2^-44) and kExactTestBias (2^-83), plink2_string.h
SMALL_EPSILON = 2.0**-44
EXACT_TEST_BIAS = 2.0**-83
_DBL_MAX = np.finfo(np.float64).max
_DBL_MIN = np.finfo(np.float64).tiny  # smallest normal double

#: values per row block of :func:`genotype_counts` (its temporaries stay in the cache)
COUNT_BLOCK_VALUES = 1 << 18

#: chromosomes plink2's autosomal HWE test skips (chrX has its own test, Y and MT are haploid)
NON_AUTOSOMAL = {"X", "Y", "MT", "M", "XY", "23", "24", "25", "26", "chrX", "chrY", "chrM", "chrMT"}
_HWE_SKIPPED = {"X", "Y", "MT", "M", "23", "24", "26", "chrX", "chrY", "chrM", "chrMT"}


# --------------------------------------------------------------------------------------------
# genotype counts, frequencies, call rates
# --------------------------------------------------------------------------------------------
def genotype_counts(genotypes: np.ndarray) -> np.ndarray:
    """Per SNP ``[n0, n1, n2, n_missing]``: samples with 0, 1, 2 copies of the counted allele, missing.

    ``genotypes`` is SNPs x samples, float (NaN missing) or int8 (:data:`MISSING_INT8` missing).
    Returns an int64 array of shape (n_snps, 4).  Values other than 0, 1, 2 or missing are an error.
    """
    g = np.asarray(genotypes)
    if g.ndim == 1:
        g = g[None, :]
    out = np.empty((g.shape[0], 4), dtype=np.int64)
    # row blocks of ~2^18 values: the comparisons' boolean temporaries stay in the cache
    step = rows_per_block(g.shape[1], COUNT_BLOCK_VALUES)
    for a in range(0, g.shape[0], step):  # loop over row blocks
        b = g[a : a + step]
        if g.dtype.kind == "f":
            out[a : a + step, 3] = np.count_nonzero(np.isnan(b), axis=1)
        else:
            out[a : a + step, 3] = np.count_nonzero(b == MISSING_INT8, axis=1)
        for k in range(3):
            out[a : a + step, k] = np.count_nonzero(b == k, axis=1)
    if (out.sum(axis=1) != g.shape[1]).any():
        raise ValueError("genotypes must be 0, 1, 2 (copies of the counted allele) or missing")
    return out


def allele_frequency(counts: np.ndarray) -> np.ndarray:
    """Frequency of the counted allele among the called genotypes, ``(n1 + 2 n2) / (2 n_called)``.

    NaN for a SNP without calls.  (plink2's ``--freq``, founders only there; hard calls.)
    """
    c = np.asarray(counts)
    called = c[:, 0] + c[:, 1] + c[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(called > 0, (c[:, 1] + 2.0 * c[:, 2]) / (2.0 * called), np.nan)


# --------------------------------------------------------------------------------------------
# exact Hardy-Weinberg test (plink2 HweP)
# --------------------------------------------------------------------------------------------
def _hwe_walk(het, homr, homc, midp):
    """plink2 ``HweP`` for arrays of distinct (het, hom_rare, hom_common) with 2N > 0.

    The three loops of ``HweP`` (towards the centre of the distribution; the rest of that side; the
    other side beyond the observed count) are run one after the other for all triples together:
    each triple's arithmetic is the same sequence of operations as in plink2.
    """
    n = het.size
    het = het.astype(np.int64)
    homr = homr.astype(np.int64)
    homc = homc.astype(np.int64)
    rare = 2 * homr + het
    geno2 = 2 * (het + homc + homr)
    upper = het * geno2 > rare * (geno2 - rare)

    start = (1 - SMALL_EPSILON) * EXACT_TEST_BIAS
    tailp = np.full(n, start)
    centerp = np.zeros(n)
    lastp2 = np.full(n, start)
    lastp1 = np.full(n, start)
    tie = np.ones(n)
    h2, r2, c2 = het.astype(np.float64), homr.astype(np.float64), homc.astype(np.float64)
    result = np.full(n, np.nan)
    done = np.zeros(n, dtype=bool)

    def step2(idx):
        # one step of tail 2 (towards fewer hets when upper, more hets when lower), in place
        up, lo = idx[upper[idx]], idx[~upper[idx]]
        if up.size:
            r2[up] += 1
            c2[up] += 1
            lastp2[up] *= (h2[up] * (h2[up] - 1)) / (4 * r2[up] * c2[up])
            h2[up] -= 2
        if lo.size:
            h2[lo] += 2
            lastp2[lo] *= (4 * r2[lo] * c2[lo]) / (h2[lo] * (h2[lo] - 1))
            r2[lo] -= 1
            c2[lo] -= 1

    def can_step2(idx):
        return np.where(upper[idx], h2[idx] > 1.5, r2[idx] > 0.5)

    # loop 1: sum the configurations more probable than the observed one (the centre)
    active = np.arange(n)
    while active.size:
        active = active[can_step2(active)]
        if not active.size:
            break
        step2(active)
        crossed = lastp2[active] < EXACT_TEST_BIAS
        x = active[crossed]
        tie[x] += lastp2[x] > (1 - 2 * SMALL_EPSILON) * EXACT_TEST_BIAS
        tailp[x] += lastp2[x]
        stay = active[~crossed]
        centerp[stay] += lastp2[stay]
        over = stay[centerp[stay] > _DBL_MAX]
        result[over] = 0.0
        done[over] = True
        active = stay[centerp[stay] <= _DBL_MAX]
    if not midp:
        one = ~done & (centerp == 0)
        result[one] = 1.0
        done |= one

    # loop 2: the rest of tail 2, until its terms no longer change the sum
    active = np.flatnonzero(~done)
    while active.size:
        active = active[can_step2(active)]
        if not active.size:
            break
        step2(active)
        pre = tailp[active]
        tailp[active] += lastp2[active]
        active = active[tailp[active] > pre]

    # loop 3: tail 1, beyond the observed count away from the centre
    h1 = np.where(upper, het + 2, het).astype(np.float64)
    r1, c1 = homr.astype(np.float64), homc.astype(np.float64)
    active = np.flatnonzero(~done)
    while active.size:
        up = upper[active]
        active = active[np.where(up, r1[active] > 0.5, h1[active] > 1.5)]
        if not active.size:
            break
        u, lo = active[upper[active]], active[~upper[active]]
        if u.size:
            lastp1[u] *= (4 * r1[u] * c1[u]) / (h1[u] * (h1[u] - 1))
        if lo.size:
            r1[lo] += 1
            c1[lo] += 1
            lastp1[lo] *= (h1[lo] * (h1[lo] - 1)) / (4 * r1[lo] * c1[lo])
        pre = tailp[active]
        tailp[active] += lastp1[active]
        grew = tailp[active] > pre
        active = active[grew]
        u, lo = active[upper[active]], active[~upper[active]]
        h1[u] += 2
        r1[u] -= 1
        c1[u] -= 1
        h1[lo] -= 2

    rest = ~done
    if midp:
        result[rest] = (tailp[rest] - (start * 0.5) * tie[rest]) / (tailp[rest] + centerp[rest])
    else:
        result[rest] = tailp[rest] / (tailp[rest] + centerp[rest])
    # a subnormal result (p < 2.2e-308 in IEEE arithmetic, also from plink2's source compiled
    # without fast-math) is reported as 0 by plink2 v2.00a3.5 as installed (Debian): do the same
    result[result < _DBL_MIN] = 0.0
    return result


def hwe_exact(het, hom1, hom2, midp: bool = False) -> np.ndarray:
    """Exact Hardy-Weinberg test p-values as plink2 ``--hardy`` / ``--hwe`` (``HweP``), per SNP.

    ``het``, ``hom1``, ``hom2``: heterozygote and the two homozygote counts (arrays of equal shape;
    the homozygotes' order does not matter).  ``midp=True`` gives plink2's mid-p (``midp``
    modifier); the default, as plink2's, is the ordinary exact p-value.  A SNP without calls gets 1
    (0.5 with mid-p), as in plink2.  A p-value below the smallest normal double (2.2e-308) is
    returned as 0, as the installed plink2 reports it (the IEEE value is subnormal).  Computed
    once per distinct count triple.
    """
    het = np.asarray(het, dtype=np.int64)
    h1 = np.asarray(hom1, dtype=np.int64)
    h2 = np.asarray(hom2, dtype=np.int64)
    shape = np.broadcast_shapes(het.shape, h1.shape, h2.shape)
    het, h1, h2 = (np.broadcast_to(a, shape).ravel() for a in (het, h1, h2))
    if (het < 0).any() or (h1 < 0).any() or (h2 < 0).any():
        raise ValueError("genotype counts must be non-negative")
    homr = np.minimum(h1, h2)
    homc = np.maximum(h1, h2)
    triples, inverse = np.unique(np.stack([het, homr, homc], axis=1), axis=0, return_inverse=True)
    p = np.full(triples.shape[0], 0.5 if midp else 1.0)
    nonempty = triples.sum(axis=1) > 0
    if nonempty.any():
        t = triples[nonempty]
        # the centre sum may overflow to inf (plink2 then returns 0, as here): no warning
        with np.errstate(over="ignore"):
            p[nonempty] = _hwe_walk(t[:, 0], t[:, 1], t[:, 2], midp)
    return p[inverse.ravel()].reshape(shape)


# --------------------------------------------------------------------------------------------
# per-SNP summary and filters
# --------------------------------------------------------------------------------------------
def snp_qc(
    genotypes: np.ndarray | None = None,
    *,
    counts: np.ndarray | None = None,
    founders: np.ndarray | None = None,
    hwe_midp: bool = False,
) -> pd.DataFrame:
    """Per-SNP QC statistics of a block (SNPs x samples) of counted-allele copies.

    Columns: ``n_0, n_1, n_2`` (samples with 0/1/2 copies of the counted allele), ``n_missing``,
    ``n_called``, ``call_rate`` (= n_called / n), ``missing_fraction`` (plink2 ``--missing``'s
    F_MISS), ``allele_freq`` (frequency of the counted allele), ``maf`` (min(f, 1 - f), plink2's
    ``--maf`` default "nonmajor" mode for a biallelic SNP), ``hwe_p`` (:func:`hwe_exact`),
    ``monomorphic`` (a single genotype class among the calls, or no call: the dosage is constant).

    ``founders``: boolean mask of the samples plink2 would call founders (allele frequencies and
    HWE use founders only in plink2; the call rate uses all samples).  ``None`` = all samples (the
    usual GWAS .fam without parents).  ``counts``: precomputed :func:`genotype_counts` (then
    ``founders`` cannot be applied and ``genotypes`` is not needed).
    """
    if counts is None:
        counts = genotype_counts(genotypes)
        fc = counts if founders is None else genotype_counts(np.asarray(genotypes)[:, founders])
    else:
        if founders is not None:
            raise ValueError("founders needs the genotypes, not counts")
        counts = np.asarray(counts, dtype=np.int64)
        fc = counts
    n = counts.sum(axis=1)
    called = counts[:, :3].sum(axis=1)
    af = allele_frequency(fc)
    classes = (counts[:, :3] > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        call_rate = np.where(n > 0, called / np.maximum(n, 1), np.nan)
    return pd.DataFrame(
        {
            "n_0": counts[:, 0],
            "n_1": counts[:, 1],
            "n_2": counts[:, 2],
            "n_missing": counts[:, 3],
            "n_called": called,
            "call_rate": call_rate,
            "missing_fraction": 1.0 - call_rate,
            "allele_freq": af,
            "maf": np.minimum(af, 1.0 - af),
            "hwe_p": hwe_exact(fc[:, 1], fc[:, 0], fc[:, 2], midp=hwe_midp),
            "monomorphic": classes <= 1,
        }
    )


@dataclass
class QCResult:
    """Outcome of :func:`qc_filter`: which SNPs are kept and how many each filter removed."""

    keep: np.ndarray  # bool per SNP
    removed: dict[str, int] = field(default_factory=dict)  # filter name -> SNPs it removed
    n_input: int = 0

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    def summary(self) -> dict:
        """JSON-ready: input count, removed per filter (in the order applied), kept count."""
        return {"n_input": self.n_input, "removed": dict(self.removed), "n_kept": self.n_kept}


def qc_filter(
    stats: pd.DataFrame,
    min_maf: float | None = None,
    max_missing: float | None = None,
    min_hwe_p: float | None = None,
    *,
    chromosome=None,
    drop_monomorphic: bool = True,
) -> QCResult:
    """Apply ``filter.max_missing``, ``filter.min_hwe_p``, ``filter.min_maf`` as plink2 does.

    ``stats`` is :func:`snp_qc`'s table (possibly of several chunks concatenated).  Filters run in
    plink2's order and each counts the SNPs it removes among those still in:

    - ``max_missing`` (plink2 ``--geno``): remove a SNP whose number of missing calls exceeds
      ``floor(max_missing * (1 + 2^-44) * n)``, i.e. whose missing fraction exceeds max_missing;
    - ``min_hwe_p`` (``--hwe``): remove a SNP whose exact HWE p-value is below
      ``min_hwe_p * (1 - 2^-44)``; with ``chromosome`` given, SNPs on X, Y and MT are not tested
      (plink2 skips Y/MT and tests chrX with Graffelman-Weir's method, which is not ported);
    - ``min_maf`` (``--maf``): remove a SNP whose minor allele frequency is below
      ``min_maf * (1 - 2^-44)`` (a SNP without calls has no frequency and passes, as in plink2; it
      is then dropped as monomorphic);
    - then ``monomorphic``: SNPs left whose dosage is constant among the calls (one genotype class;
      no fit is possible) are dropped, with their count, unless ``drop_monomorphic=False``.

    ``None`` (or 0 for min_maf/min_hwe_p, 1 for max_missing) switches a filter off; it is then not
    listed in ``removed``.
    """
    n_snps = len(stats)
    keep = np.ones(n_snps, dtype=bool)
    removed: dict[str, int] = {}

    def apply(name, fail):
        fail = np.asarray(fail, dtype=bool) & keep
        removed[name] = int(fail.sum())
        keep[fail] = False

    if max_missing is not None and max_missing < 1.0:
        if not 0.0 <= max_missing <= 1.0:
            raise ValueError("filter.max_missing must be in [0, 1]")
        n = (stats["n_called"] + stats["n_missing"]).to_numpy()
        max_ct = np.floor(max_missing * (1 + SMALL_EPSILON) * n.astype(np.float64))
        apply("max_missing", stats["n_missing"].to_numpy() > max_ct)
    if min_hwe_p is not None and min_hwe_p > 0.0:
        if not 0.0 <= min_hwe_p <= 1.0:
            raise ValueError("filter.min_hwe_p must be in [0, 1]")
        tested = np.ones(n_snps, dtype=bool)
        if chromosome is not None:
            chrom = pd.Series(np.asarray(chromosome)).astype(str).str.upper()
            tested = ~chrom.isin({c.upper() for c in _HWE_SKIPPED}).to_numpy()
        apply("min_hwe_p", tested & (stats["hwe_p"].to_numpy() < min_hwe_p * (1 - SMALL_EPSILON)))
    if min_maf is not None and min_maf > 0.0:
        if not 0.0 <= min_maf <= 0.5:
            raise ValueError("filter.min_maf must be in [0, 0.5]")
        maf = stats["maf"].to_numpy()
        apply("min_maf", maf < min_maf * (1 - SMALL_EPSILON))  # NaN (no call) passes, as in plink2
    if drop_monomorphic:
        apply("monomorphic", stats["monomorphic"].to_numpy())
    return QCResult(keep=keep, removed=removed, n_input=n_snps)
