"""Simulate the embedded RNA-seq counts example: a paired blood transcriptome study of a treatment
in southern Morocco, shaped like the geography example (resources/example).

Donors living in urban Agadir, in the desert and in the mountains give blood before and after a
treatment; RNA-seq read counts per gene (negative binomial, trended dispersion, donor effects shared
by a donor's two samples).  The generative model, the seed and every column are described in
``resources/example_counts/README.md``.

    python scripts/simulate_counts.py [--outdir resources/example_counts] [--seed 20161]
                                      [--n-genes 6000] [--n-donors 24]

Only numpy (and the standard library) is needed; the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np

REGIONS = ("Agadir", "Desert", "Mountain")
#: share of the genes with each kind of effect
SHARE_TREATMENT = 0.08
SHARE_REGION = 0.10
SHARE_SEX = 0.03
#: |log2 fold| = MIN + Gamma(SHAPE, SCALE)
TREATMENT_MIN, TREATMENT_SHAPE, TREATMENT_SCALE = 0.3, 1.5, 0.35
REGION_MIN, REGION_SHAPE, REGION_SCALE = 0.3, 1.5, 0.35
SEX_MIN, SEX_SHAPE, SEX_SCALE = 0.5, 2.0, 0.5
#: donor effect (log scale) per gene: N(0, DONOR_SD^2), shared by the donor's two samples
DONOR_SD = 0.35
#: dispersion (NB, var = mu + phi mu^2): phi = PHI_ASYMPTOTE + PHI_LOW / sqrt(mean count),
#: times a log-normal per-gene scatter of sd PHI_SCATTER
PHI_ASYMPTOTE, PHI_LOW, PHI_SCATTER = 0.03, 0.8, 0.35
#: library sizes: log-normal around LIB_MEDIAN reads, sd LIB_SD (log scale)
LIB_MEDIAN, LIB_SD = 5e6, 0.35
#: a few low-quality samples: extra log-normal noise of this sd on every gene
N_POOR_SAMPLES, POOR_SD = 3, 0.35
#: composition: 20 of the 200 most abundant genes up 3x in a quarter of the samples (TMM's case)
N_COMPOSITION_GENES, COMPOSITION_POOL, COMPOSITION_FOLD = 20, 200, 3.0


def simulate(n_genes: int, n_donors: int, seed: int):
    rng = np.random.default_rng(seed)
    # donors: a third per region, sex per donor, age per donor
    region = np.array([REGIONS[i % 3] for i in range(n_donors)])
    sex = rng.choice(["F", "M"], size=n_donors)
    age = np.round(rng.normal(40, 12, size=n_donors)).clip(18, 75).astype(int)
    donors = [f"D{i + 1:02d}" for i in range(n_donors)]
    samples = []
    for d in range(n_donors):
        for t in ("before", "after"):
            samples.append(
                {
                    "sample_id": None,  # S001_D01_before, ... below
                    "donor": donors[d],
                    "treatment": t,
                    "region": region[d],
                    "sex": sex[d],
                    "age": int(age[d]),
                }
            )
    for k, s in enumerate(samples):  # ids in order S001, S002, ...
        s["sample_id"] = f"S{k + 1:03d}_{s['donor']}_{s['treatment']}"
    n = len(samples)
    donor_index = np.repeat(np.arange(n_donors), 2)
    after = np.array([s["treatment"] == "after" for s in samples], dtype=float)
    desert = np.array([s["region"] == "Desert" for s in samples], dtype=float)
    mountain = np.array([s["region"] == "Mountain" for s in samples], dtype=float)
    male = np.array([s["sex"] == "M" for s in samples], dtype=float)

    # baseline abundances: log-normal shares (many low genes that filterByExpr removes)
    log_share = rng.normal(0.0, 2.4, size=n_genes)
    share = np.exp(log_share)
    share /= share.sum()

    def effects(p, lo, shape, scale):
        de = rng.random(n_genes) < p
        size = lo + rng.gamma(shape, scale, size=n_genes)
        sign = rng.choice([-1.0, 1.0], size=n_genes)
        return de, np.where(de, sign * size, 0.0)

    de_trt, eff_trt = effects(SHARE_TREATMENT, TREATMENT_MIN, TREATMENT_SHAPE, TREATMENT_SCALE)
    de_reg = rng.random(n_genes) < SHARE_REGION
    eff_desert = np.where(
        de_reg,
        rng.choice([-1.0, 1.0], n_genes)
        * (REGION_MIN + rng.gamma(REGION_SHAPE, REGION_SCALE, n_genes)),
        0.0,
    )
    # a DE gene differs in at least one region; the other region's effect is smaller or zero
    eff_mountain = np.where(de_reg, eff_desert * rng.uniform(-0.5, 1.0, n_genes), 0.0)
    de_sex, eff_sex = effects(SHARE_SEX, SEX_MIN, SEX_SHAPE, SEX_SCALE)
    donor_effect = rng.normal(0.0, DONOR_SD, size=(n_genes, n_donors))

    log2_mean = (
        eff_trt[:, None] * after
        + eff_desert[:, None] * desert
        + eff_mountain[:, None] * mountain
        + eff_sex[:, None] * male
    )
    log_mu = np.log(share)[:, None] + np.log(2.0) * log2_mean + donor_effect[:, donor_index]
    poor = rng.choice(n, size=N_POOR_SAMPLES, replace=False)
    log_mu[:, poor] += rng.normal(0.0, POOR_SD, size=(n_genes, N_POOR_SAMPLES))
    top = rng.choice(np.argsort(-share)[:COMPOSITION_POOL], N_COMPOSITION_GENES, replace=False)
    shifted = rng.choice(n, size=n // 4, replace=False)
    log_mu[np.ix_(top, shifted)] += np.log(COMPOSITION_FOLD)
    lib = np.exp(np.log(LIB_MEDIAN) + rng.normal(0.0, LIB_SD, size=n))
    mu = np.exp(log_mu)
    mu = mu / mu.sum(axis=0) * lib  # expected counts: each library sums to its size
    mean_count = mu.mean(axis=1)
    phi = (PHI_ASYMPTOTE + PHI_LOW / np.sqrt(mean_count + 0.5)) * np.exp(
        rng.normal(0.0, PHI_SCATTER, size=n_genes)
    )
    # negative binomial as gamma-Poisson: lambda ~ Gamma(1/phi, mu phi)
    lam = rng.gamma(1.0 / phi[:, None], mu * phi[:, None])
    counts = rng.poisson(lam)
    genes = [f"GENE{g + 1:05d}" for g in range(n_genes)]
    truth = {
        "feature_id": genes,
        "baseline_share": share,
        "dispersion": phi,
        "de_treatment": de_trt.astype(int),
        "effect_treatment": eff_trt,
        "de_region": de_reg.astype(int),
        "effect_Desert": eff_desert,
        "effect_Mountain": eff_mountain,
        "de_sex": de_sex.astype(int),
        "effect_sex": eff_sex,
    }
    poor_ids = {samples[i]["sample_id"] for i in poor}
    shifted_ids = {samples[i]["sample_id"] for i in shifted}
    for s, L in zip(samples, lib, strict=True):
        s["expected_library_size"] = L
        s["low_quality"] = int(s["sample_id"] in poor_ids)
        s["composition_shift"] = int(s["sample_id"] in shifted_ids)
    return genes, samples, counts, truth


def _table(columns: dict) -> str:
    names = list(columns)
    rows = zip(*(columns[k] for k in names), strict=True)

    def fmt(v):
        if isinstance(v, float | np.floating):
            return f"{float(v):.6g}"
        return str(v)

    return "\t".join(names) + "\n" + "".join("\t".join(map(fmt, r)) + "\n" for r in rows)


def write(outdir: Path, genes, samples, counts, truth) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    buf.write("feature_id\t" + "\t".join(s["sample_id"] for s in samples) + "\n")
    for g, row in zip(genes, counts, strict=True):
        buf.write(g + "\t" + "\t".join(map(str, row.tolist())) + "\n")
    with open(outdir / "counts.tsv.gz", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(buf.getvalue().encode())
    sheet_cols = ["sample_id", "donor", "treatment", "region", "sex", "age"]
    (outdir / "samples.tsv").write_text(_table({k: [s[k] for s in samples] for k in sheet_cols}))
    truth_cols = ["sample_id", "expected_library_size", "low_quality", "composition_shift"]
    (outdir / "truth_samples.tsv").write_text(
        _table({k: [s[k] for s in samples] for k in truth_cols})
    )
    (outdir / "truth.tsv").write_text(_table(truth))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--outdir",
        default=str(Path(__file__).resolve().parents[1] / "resources" / "example_counts"),
    )
    ap.add_argument("--seed", type=int, default=20161)
    ap.add_argument("--n-genes", type=int, default=6000)
    ap.add_argument("--n-donors", type=int, default=24)
    args = ap.parse_args(argv)
    genes, samples, counts, truth = simulate(args.n_genes, args.n_donors, args.seed)
    write(Path(args.outdir), genes, samples, counts, truth)
    print(f"{len(genes)} genes x {len(samples)} samples written to {args.outdir}")


if __name__ == "__main__":
    main()
