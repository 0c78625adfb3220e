"""Simulate the embedded genotype example: a case/control study in three regions of southern Morocco.

Writes ``resources/example_snps/``: ``example.bed/.bim/.fam`` (PLINK 1, written with bed-reader's
``to_bed``), the sample sheet ``samples.tsv`` (sample_id = .fam IID, status, sex, geography) and
``truth.tsv`` (one row per SNP: its kind, allele frequencies per region, the causal log odds ratio).

    python scripts/simulate_snps.py [--outdir resources/example_snps] [--seed 1818]
                                    [--n-samples 1200] [--check]

Model (all numbers below are module constants):

- geography: Agadir, Desert, Mountain (the expression example's regions), sizes in GEOGRAPHY_SHARE;
  sex male/female with probability 1/2.
- SNPs on chromosomes 1-4 (CHROMOSOMES: lengths and counts), positions uniform without ties.
  Allele 1 (.bim column 5, PLINK's A1) is the minor allele of the ancestral population, frequency
  ``p ~ U(0.05, 0.5)``; each region's frequency is Balding-Nichols, ``Beta(p (1-F)/F, (1-p)(1-F)/F)``,
  with F = FST for most SNPs and F = FST_AIM for the ancestry-informative ones (AIM_SHARE).
  Genotypes = Binomial(2, region frequency) copies of allele 1; SNPs are independent (no LD).
- case/control status: logistic, ``logit P(case) = a + sum_k beta_k g_k + geography effect +
  sex effect`` with N_CAUSAL causal SNPs (|log OR| in CAUSAL_LOG_OR, random sign; allele-1 copies),
  a chosen so that about CASE_SHARE of the samples are cases.  Geography raises risk in the Desert,
  so differentiated SNPs are confounded with status unless geography is a covariate.
- calls missing at random with rate MISSING_RATE; QC targets: SNPs with high missing rates
  (N_HIGH_MISSING, rates in HIGH_MISSING_RATE), out of Hardy-Weinberg equilibrium (N_HWE_FAIL:
  genotypes drawn with an excess of heterozygotes), rare (N_RARE: MAF below 1%) and monomorphic
  (N_MONOMORPHIC).

Only numpy, pandas, bed-reader and the standard library are used; the same arguments give the same bytes
(``--check`` reruns the simulation in memory and compares).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

GEOGRAPHY = ("Agadir", "Desert", "Mountain")
GEOGRAPHY_SHARE = (0.34, 0.31, 0.35)
#: log odds of being a case per geography (against Agadir) and for males
GEOGRAPHY_LOG_OR = {"Agadir": 0.0, "Desert": 0.6, "Mountain": -0.3}
MALE_LOG_OR = 0.2
CASE_SHARE = 0.45
#: chromosome -> (length in bp, number of SNPs)
CHROMOSOMES = {
    "1": (60_000_000, 1300),
    "2": (50_000_000, 1100),
    "3": (40_000_000, 900),
    "4": (30_000_000, 700),
}
FST = 0.02
FST_AIM = 0.12
AIM_SHARE = 0.03
N_CAUSAL = 12
CAUSAL_LOG_OR = (0.35, 0.75)
CAUSAL_MIN_FREQ = 0.15
MISSING_RATE = 0.005
N_HIGH_MISSING = 25
HIGH_MISSING_RATE = (0.12, 0.40)
N_HWE_FAIL = 15
N_RARE = 40
N_MONOMORPHIC = 10
ALLELES = np.array(list("ACGT"))


def simulate(seed: int = 1818, n_samples: int = 1200) -> dict:
    """All arrays of the example (genotypes: samples x SNPs int8 with -127 missing)."""
    rng = np.random.default_rng(seed)
    # samples
    geo = rng.choice(len(GEOGRAPHY), size=n_samples, p=GEOGRAPHY_SHARE)
    geo = np.sort(geo, kind="stable")  # samples listed region by region, as collected
    male = rng.random(n_samples) < 0.5

    # SNP map
    chrom, pos = [], []
    for c, (length, count) in CHROMOSOMES.items():
        p = np.sort(rng.choice(np.arange(10_000, length), size=count, replace=False))
        chrom += [c] * count
        pos.append(p)
    chrom = np.array(chrom)
    pos = np.concatenate(pos)
    m = pos.size
    pair = np.argsort(rng.random((m, 4)), axis=1)[:, :2]  # two distinct alleles per SNP
    allele1, allele2 = ALLELES[pair[:, 0]], ALLELES[pair[:, 1]]

    # roles (disjoint SNP sets)
    kind = np.full(m, "neutral", dtype=object)
    order = rng.permutation(m)
    cut = np.cumsum([N_CAUSAL, N_HIGH_MISSING, N_HWE_FAIL, N_RARE, N_MONOMORPHIC])
    causal, high_missing, hwe_fail, rare, mono, rest = np.split(order, cut)
    kind[causal], kind[high_missing], kind[hwe_fail] = "causal", "high_missing", "hwe_violation"
    kind[rare], kind[mono] = "rare", "monomorphic"
    aim = rest[rng.random(rest.size) < AIM_SHARE]
    kind[aim] = "ancestry_informative"

    # allele frequencies: ancestral and per region (Balding-Nichols)
    p0 = rng.uniform(0.05, 0.5, size=m)
    p0[causal] = rng.uniform(CAUSAL_MIN_FREQ, 0.5, size=causal.size)
    p0[rare] = rng.uniform(0.001, 0.008, size=rare.size)
    F = np.full(m, FST)
    F[aim] = FST_AIM
    a = p0 * (1 - F) / F
    b = (1 - p0) * (1 - F) / F
    freq = rng.beta(a[:, None], b[:, None], size=(m, len(GEOGRAPHY)))
    freq[rare] = p0[rare, None]
    freq[mono] = 0.0

    # genotypes: copies of allele 1, SNPs x samples
    g = rng.binomial(2, freq[:, geo]).astype(np.int8)
    # excess heterozygotes (a genotyping artefact): a share of the homozygotes called het
    flip = rng.random((hwe_fail.size, n_samples)) < 0.35
    g[hwe_fail] = np.where(flip, 1, g[hwe_fail])

    # status
    beta = np.zeros(m)
    beta[causal] = rng.uniform(*CAUSAL_LOG_OR, size=causal.size) * rng.choice(
        [-1.0, 1.0], causal.size
    )
    lin = beta[causal] @ g[causal].astype(np.float64)
    lin += np.array([GEOGRAPHY_LOG_OR[r] for r in GEOGRAPHY])[geo] + MALE_LOG_OR * male
    lo, hi = -20.0, 20.0  # intercept for the expected case share (bisection, deterministic)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        share = np.mean(1.0 / (1.0 + np.exp(-(mid + lin))))
        lo, hi = (mid, hi) if share < CASE_SHARE else (lo, mid)
    prob = 1.0 / (1.0 + np.exp(-(0.5 * (lo + hi) + lin)))
    case = rng.random(n_samples) < prob

    # missing calls
    miss_rate = np.full(m, MISSING_RATE)
    miss_rate[high_missing] = rng.uniform(*HIGH_MISSING_RATE, size=high_missing.size)
    missing = rng.random((m, n_samples)) < miss_rate[:, None]
    g[missing] = -127

    return {
        "geo": geo,
        "male": male,
        "case": case,
        "chrom": chrom,
        "pos": pos,
        "allele1": allele1,
        "allele2": allele2,
        "kind": kind,
        "p0": p0,
        "freq": freq,
        "beta": beta,
        "miss_rate": miss_rate,
        "genotypes": g,
        "intercept": 0.5 * (lo + hi),
    }


def write(sim: dict, outdir: Path) -> None:
    from bed_reader import to_bed

    outdir.mkdir(parents=True, exist_ok=True)
    n = sim["geo"].size
    iid = [f"S{i + 1:04d}" for i in range(n)]
    snp = [f"snp{c}_{p}" for c, p in zip(sim["chrom"], sim["pos"], strict=True)]
    to_bed(
        outdir / "example.bed",
        np.ascontiguousarray(sim["genotypes"].T),  # samples x SNPs
        properties={
            "fid": iid,
            "iid": iid,
            "father": ["0"] * n,
            "mother": ["0"] * n,
            "sex": np.where(sim["male"], 1, 2),
            "pheno": np.where(sim["case"], "2", "1"),
            "chromosome": sim["chrom"],
            "sid": snp,
            "cm_position": np.zeros(len(snp)),
            "bp_position": sim["pos"],
            "allele_1": sim["allele1"],
            "allele_2": sim["allele2"],
        },
        count_A1=True,
        num_threads=1,
    )
    samples = pd.DataFrame(
        {
            "sample_id": iid,
            "status": np.where(sim["case"], "case", "control"),
            "sex": np.where(sim["male"], "M", "F"),
            "geography": np.array(GEOGRAPHY)[sim["geo"]],
        }
    )
    samples.to_csv(outdir / "samples.tsv", sep="\t", index=False, lineterminator="\n")
    truth = pd.DataFrame(
        {
            "snp_id": snp,
            "chromosome": sim["chrom"],
            "position": sim["pos"],
            "allele1": sim["allele1"],
            "allele2": sim["allele2"],
            "kind": sim["kind"].astype(str),
            "log_odds_ratio": sim["beta"],
            "ancestral_freq": sim["p0"],
            **{f"freq_{r}": sim["freq"][:, k] for k, r in enumerate(GEOGRAPHY)},
            "missing_rate": sim["miss_rate"],
        }
    )
    truth.to_csv(
        outdir / "truth.tsv", sep="\t", index=False, float_format="%.6g", lineterminator="\n"
    )


def _digest(folder: Path) -> dict[str, str]:
    names = ["example.bed", "example.bim", "example.fam", "samples.tsv", "truth.tsv"]
    return {k: hashlib.sha256((folder / k).read_bytes()).hexdigest() for k in names}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outdir", type=Path, default=Path("resources/example_snps"))
    ap.add_argument("--seed", type=int, default=1818)
    ap.add_argument("--n-samples", type=int, default=1200)
    ap.add_argument("--check", action="store_true", help="rerun and compare the bytes")
    args = ap.parse_args(argv)
    sim = simulate(args.seed, args.n_samples)
    write(sim, args.outdir)
    counts = {k: int((sim["kind"] == k).sum()) for k in np.unique(sim["kind"])}
    print(
        f"{args.outdir}: {sim['genotypes'].shape[1]} samples ({int(sim['case'].sum())} cases) x "
        f"{sim['genotypes'].shape[0]} SNPs; {counts}"
    )
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write(simulate(args.seed, args.n_samples), Path(tmp))
            same = _digest(Path(tmp)) == _digest(args.outdir)
        print("rerun gives the same bytes:", same)
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
