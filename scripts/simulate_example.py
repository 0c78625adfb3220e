"""Simulate the embedded example: a leukocyte expression study of geography in southern Morocco.

Shaped like Idaghdour et al. (2010): blood of people living in urban Agadir, of Amazigh desert
nomads and of mountain agrarians, one Illumina-like log2 intensity per probe and sample.  The
generative model, the seed and the meaning of every column are in ``resources/example/README.md``.

    python scripts/simulate_example.py [--outdir resources/example] [--seed 20101]
                                       [--n-features 12000] [--n-samples 96] [--check]

Only numpy (and the standard library) is needed to write the files; ``--check`` (which needs scipy)
also prints the false discovery proportion and power of per-feature OLS F-tests of geography
with and without the hidden factors in the design.  The same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np

GEOGRAPHY = ("Agadir", "Desert", "Mountain")
#: share of the samples per geography
GEOGRAPHY_SHARE = (0.33, 0.32, 0.35)
#: probability of each batch (1..4) per geography: Agadir early, Desert mostly late
BATCH_PROBABILITY = {
    "Agadir": (0.40, 0.35, 0.15, 0.10),
    "Desert": (0.05, 0.10, 0.40, 0.45),
    "Mountain": (0.25, 0.25, 0.25, 0.25),
}
#: mean age (years) and its sd per geography
AGE = {"Agadir": (36.0, 11.0), "Desert": (40.0, 13.0), "Mountain": (42.0, 13.0)}
AGE_CENTRE = 40.0
N_MISSING_AGE = 2
#: pattern of the hidden factors' means over geography and their multiple correlation with it
HIDDEN1_MEAN = {"Agadir": -0.30, "Desert": 0.60, "Mountain": -0.30}  # cell-type proportion
HIDDEN2_MEAN = {"Agadir": -0.45, "Desert": 0.15, "Mountain": 0.30}  # sample handling
HIDDEN1_R, HIDDEN2_R = 0.45, 0.35
#: RNA quality (RIN-like) = RNA_BASE + RNA_SLOPE * hidden2 + N(0, RNA_SD^2)
RNA_BASE, RNA_SLOPE, RNA_SD = 8.0, -0.40, 0.60

#: batch offsets delta_k (log2 per unit of a feature's batch_effect_scale), batch 1 = 0
BATCH_OFFSET = np.array([0.0, 0.10, -0.08, 0.15])
#: per-sample probe-composition (GC) sensitivity: GC_BATCH[batch] + GC_HIDDEN2 * hidden2
GC_BATCH = np.array([0.0, 0.5, -0.5, 1.0])
GC_HIDDEN2 = 0.0
#: log2 intensity per unit GC content: on the baseline (OMEGA) and per unit of gc_bias (PHI)
GC_CENTRE, OMEGA, PHI = 0.52, 2.0, 0.3

#: fraction of features with each kind of effect
SHARE_GEOGRAPHY = 0.10
SHARE_SEX = 0.025
SHARE_AGE = 0.08
SHARE_HIDDEN1 = 0.45
SHARE_HIDDEN2 = 0.45
#: hidden-factor loadings (log2 per sd of the factor) among the features they affect:
#: sd_noise * SCALE_HIDDENk * t_4 / sqrt(2) (heavy tailed, unit variance before scaling)
SCALE_HIDDEN1, SCALE_HIDDEN2 = 0.8, 0.45
#: geography effect size |e| = GEO_MIN + Gamma(GEO_SHAPE, GEO_SCALE) (log2 fold vs Agadir)
GEO_MIN, GEO_SHAPE, GEO_SCALE = 0.05, 1.3, 0.20
#: noise sd: sigma0(mu) = NOISE_FLOOR + NOISE_LOW * exp(-(mu - 4.5) / NOISE_DECAY), scaled by
#: sqrt(NOISE_DF / chi2_NOISE_DF) per feature
NOISE_FLOOR, NOISE_LOW, NOISE_DECAY, NOISE_DF = 0.10, 0.55, 1.8, 10
#: missing values: a share of all cells, plus a few sparse features with 55-70% missing
SHARE_MISSING_CELLS = 0.003
SHARE_SPARSE_FEATURES = 0.0025

AUTOSOMES = [str(i) for i in range(1, 23)]
#: rough share of probes per chromosome (1..22, X, Y)
CHROMOSOME_WEIGHT = np.array(
    [10.5, 6.5, 5.5, 4.0, 4.5, 5.3, 4.8, 3.6, 4.0, 3.9, 6.7, 5.3, 1.6, 3.3, 3.1, 4.4, 6.0, 1.4, 7.3,
     2.9, 1.2, 2.3, 4.0, 0.3]
)  # fmt: skip


def _counts(n: int, shares) -> np.ndarray:
    """Integer counts summing to n, as close as possible to ``n * shares``."""
    raw = np.asarray(shares, dtype=float) / np.sum(shares) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std(ddof=1)


def _confounder(rng: np.random.Generator, geography: np.ndarray, means: dict, r: float):
    """A factor with mean 0, sd 1 whose multiple correlation with geography is exactly ``r``:
    ``r`` times the standardised group-mean pattern ``means`` plus ``sqrt(1 - r^2)`` times
    standardised noise orthogonal to geography."""
    groups = np.column_stack([geography == g for g in GEOGRAPHY]).astype(float)
    pattern = _standardise(groups @ np.array([means[g] for g in GEOGRAPHY]))
    noise = rng.standard_normal(geography.size)
    noise = _standardise(noise - groups @ np.linalg.lstsq(groups, noise, rcond=None)[0])
    return r * pattern + np.sqrt(1.0 - r * r) * noise


def simulate_samples(rng: np.random.Generator, n_samples: int) -> dict:
    """Sample sheet columns and the hidden factors (one entry per sample, in sample order)."""
    counts = _counts(n_samples, GEOGRAPHY_SHARE)
    geography = rng.permutation(np.repeat(np.array(GEOGRAPHY), counts))
    sex = np.empty(n_samples, dtype=object)
    age = np.empty(n_samples)
    batch = np.empty(n_samples, dtype=int)
    for g in GEOGRAPHY:
        idx = np.flatnonzero(geography == g)
        n_g = idx.size
        sex[idx] = rng.permutation(np.resize(np.array(["F", "M"]), n_g))
        mean, sd = AGE[g]
        age[idx] = np.clip(np.round(rng.normal(mean, sd, n_g)), 18, 80)
        batch[idx] = rng.choice(4, size=n_g, p=BATCH_PROBABILITY[g]) + 1
    hidden1 = _confounder(rng, geography, HIDDEN1_MEAN, HIDDEN1_R)
    hidden2 = _confounder(rng, geography, HIDDEN2_MEAN, HIDDEN2_R)
    rna_quality = np.clip(
        np.round(RNA_BASE + RNA_SLOPE * hidden2 + rng.normal(0.0, RNA_SD, n_samples), 1), 4.0, 10.0
    )
    reported_age = age.copy()
    reported_age[rng.choice(n_samples, size=N_MISSING_AGE, replace=False)] = np.nan
    gc_bias = GC_BATCH[batch - 1] + GC_HIDDEN2 * hidden2
    width = max(3, len(str(n_samples)))
    return {
        "sample_id": np.array([f"S{i + 1:0{width}d}" for i in range(n_samples)]),
        "geography": geography,
        "sex": sex.astype(str),
        "age": age,
        "reported_age": reported_age,
        "batch": batch,
        "rna_quality": rna_quality,
        "hidden1": hidden1,
        "hidden2": hidden2,
        "gc_bias": gc_bias,
    }


def _pick(rng: np.random.Generator, candidates: np.ndarray, share: float, n_total: int):
    k = min(candidates.size, int(round(share * n_total)))
    return np.sort(rng.choice(candidates, size=k, replace=False))


def simulate_features(rng: np.random.Generator, n_features: int) -> dict:
    """Feature annotation and the per-feature parameters of the generative model."""
    G = n_features
    chromosome = np.array(AUTOSOMES + ["X", "Y"])[
        rng.choice(24, size=G, p=CHROMOSOME_WEIGHT / CHROMOSOME_WEIGHT.sum())
    ]
    gc = np.round(np.clip(rng.normal(GC_CENTRE, 0.07, G), 0.30, 0.75), 3)
    probe_length = np.where(rng.random(G) < 0.9, 50, rng.integers(40, 50, G))
    background = rng.random(G) < 0.35
    mu = np.where(
        background, rng.normal(5.3, 0.45, G), 4.5 + rng.gamma(2.2, 1.7, G)
    )  # background probes near 5, expressed ones up to ~14
    mu = np.clip(mu, 4.3, 13.8) + OMEGA * (gc - GC_CENTRE)
    sigma0 = NOISE_FLOOR + NOISE_LOW * np.exp(-(mu - 4.5) / NOISE_DECAY)
    sd_noise = sigma0 * np.sqrt(NOISE_DF / rng.chisquare(NOISE_DF, G))

    # sex: Y probes expressed in males only, a few XIST-like X probes high in females, small
    # effects on a few hundred other probes
    effect_sex = np.zeros(G)
    on_y = np.flatnonzero(chromosome == "Y")
    strong_y = on_y[rng.random(on_y.size) < 2 / 3]
    mu[strong_y] = rng.normal(5.2, 0.3, strong_y.size)
    effect_sex[strong_y] = rng.uniform(3.0, 6.0, strong_y.size)
    on_x = np.flatnonzero(chromosome == "X")
    xist = np.sort(rng.choice(on_x, size=min(3, on_x.size), replace=False))
    mu[xist] = rng.uniform(10.5, 12.5, xist.size)
    effect_sex[xist] = -rng.uniform(4.0, 6.0, xist.size)
    strong = np.union1d(strong_y, xist)
    sd_noise[strong] = np.minimum(sd_noise[strong], 0.25)
    others = np.setdiff1d(np.flatnonzero(chromosome != "Y"), strong)
    weak = _pick(rng, others, SHARE_SEX, G)
    effect_sex[weak] = rng.choice([-1.0, 1.0], weak.size) * (0.1 + rng.gamma(1.5, 0.12, weak.size))

    # geography: Desert only, Mountain only, or both (rural vs urban)
    effect = np.zeros((G, 2))
    geo = _pick(rng, np.setdiff1d(np.flatnonzero(chromosome != "Y"), strong), SHARE_GEOGRAPHY, G)
    pattern = rng.choice(3, size=geo.size, p=(0.35, 0.35, 0.30))
    size = rng.choice([-1.0, 1.0], geo.size) * (GEO_MIN + rng.gamma(GEO_SHAPE, GEO_SCALE, geo.size))
    ratio = rng.uniform(0.5, 1.2, geo.size)
    effect[geo, 0] = np.where(pattern == 1, 0.0, size)
    effect[geo, 1] = np.select([pattern == 0, pattern == 1], [0.0, size], size * ratio)

    effect_age = np.zeros(G)
    aged = _pick(rng, np.arange(G), SHARE_AGE, G)
    effect_age[aged] = rng.normal(0.0, 0.012, aged.size)

    loading = np.zeros((G, 2))
    scales = [(SHARE_HIDDEN1, SCALE_HIDDEN1), (SHARE_HIDDEN2, SCALE_HIDDEN2)]
    for k, (share, scale) in enumerate(scales):
        hit = _pick(rng, np.arange(G), share, G)
        loading[hit, k] = sd_noise[hit] * scale * rng.standard_t(4, hit.size) / np.sqrt(2.0)

    batch_scale = np.clip(0.3 + 0.7 * (mu - 4.0) / 8.0, 0.1, None) * np.exp(
        rng.normal(0.0, 0.3, G)
    )  # batch shifts grow with intensity
    sparse = _pick(rng, np.setdiff1d(np.arange(G), strong), SHARE_SPARSE_FEATURES, G)
    width = max(5, len(str(G)))
    return {
        "feature_id": np.array([f"PROBE_{i + 1:0{width}d}" for i in range(G)]),
        "chromosome": chromosome,
        "gc_content": gc,
        "probe_length": probe_length,
        "mean": mu,
        "de_geography": (np.abs(effect) > 0).any(axis=1).astype(int),
        "effect_Desert": effect[:, 0],
        "effect_Mountain": effect[:, 1],
        "de_sex": (effect_sex != 0).astype(int),
        "effect_sex": effect_sex,
        "effect_age": effect_age,
        "loading_hidden1": loading[:, 0],
        "loading_hidden2": loading[:, 1],
        "batch_effect_scale": batch_scale,
        "probe_effect": PHI * (gc - GC_CENTRE),
        "sd_noise": sd_noise,
        "sparse": sparse,
    }


def simulate_expression(rng: np.random.Generator, f: dict, s: dict) -> np.ndarray:
    """y_gj (features x samples) with missing values as NaN; see README.md for the equation."""
    G, n = f["mean"].size, s["sample_id"].size
    desert = (s["geography"] == "Desert").astype(float)
    mountain = (s["geography"] == "Mountain").astype(float)
    male = (s["sex"] == "M").astype(float)
    Y = (
        f["mean"][:, None]
        + np.outer(f["effect_Desert"], desert)
        + np.outer(f["effect_Mountain"], mountain)
        + np.outer(f["effect_sex"], male)
        + np.outer(f["effect_age"], s["age"] - AGE_CENTRE)
        + np.outer(f["batch_effect_scale"], BATCH_OFFSET[s["batch"] - 1])
        + np.outer(f["loading_hidden1"], s["hidden1"])
        + np.outer(f["loading_hidden2"], s["hidden2"])
        + np.outer(f["probe_effect"], s["gc_bias"])
        + f["sd_noise"][:, None] * rng.standard_normal((G, n))
    )
    Y[rng.random((G, n)) < SHARE_MISSING_CELLS] = np.nan
    for g in f["sparse"]:
        k = int(round(rng.uniform(0.55, 0.70) * n))
        Y[g, rng.choice(n, size=k, replace=False)] = np.nan
    return Y


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def _cell(value, decimals: int) -> str:
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if np.isnan(value):
        return "NA"
    return f"{value:.{decimals}f}"


def _write_table(path: Path, columns: dict, decimals: dict | None = None) -> None:
    """A TSV with one formatted column per entry (floats with ``decimals[name]`` places, default 6;
    NaN as NA) and Unix newlines."""
    decimals = decimals or {}
    names = list(columns)
    cells = [[_cell(v, decimals.get(name, 6)) for v in columns[name]] for name in names]
    lines = ["\t".join(names)] + ["\t".join(row) for row in zip(*cells, strict=True)]
    path.write_bytes(("\n".join(lines) + "\n").encode())


def write_expression(path: Path, feature_id: np.ndarray, sample_id: np.ndarray, Y: np.ndarray):
    """features x samples, 4 decimals, NA for missing, gzip without a time stamp or file name."""
    text = np.char.mod("%.4f", Y)
    text[np.isnan(Y)] = "NA"
    buffer = io.StringIO()
    buffer.write("\t".join(["feature_id", *sample_id]) + "\n")
    for fid, row in zip(feature_id, text, strict=True):
        buffer.write(fid + "\t" + "\t".join(row) + "\n")
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(buffer.getvalue().encode())


def simulate(outdir, seed: int = 20101, n_features: int = 12000, n_samples: int = 96) -> dict:
    """Simulate and write the example into ``outdir``; returns the simulated pieces."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = simulate_samples(rng, n_samples)
    f = simulate_features(rng, n_features)
    Y = simulate_expression(rng, f, s)

    write_expression(outdir / "expression.tsv.gz", f["feature_id"], s["sample_id"], Y)
    _write_table(
        outdir / "samples.tsv",
        {
            "sample_id": s["sample_id"],
            "geography": s["geography"],
            "sex": s["sex"],
            "age": s["reported_age"],
            "batch": s["batch"],
            "tissue": np.full(n_samples, "blood"),
            "rna_quality": s["rna_quality"],
        },
        {"age": 0, "rna_quality": 1},
    )
    _write_table(
        outdir / "features.tsv",
        {
            "feature_id": f["feature_id"],
            "gc_content": f["gc_content"],
            "probe_length": f["probe_length"],
            "chromosome": f["chromosome"],
        },
        {"gc_content": 3},
    )
    truth_columns = [
        "feature_id", "mean", "de_geography", "effect_Desert", "effect_Mountain", "de_sex",
        "effect_sex", "loading_hidden1", "loading_hidden2", "batch_effect_scale", "effect_age",
        "probe_effect", "sd_noise",
    ]  # fmt: skip
    _write_table(outdir / "truth.tsv", {c: f[c] for c in truth_columns})
    _write_table(
        outdir / "truth_samples.tsv",
        {c: s[c] for c in ["sample_id", "hidden1", "hidden2", "gc_bias", "age"]},
        {"age": 0},
    )
    return {"samples": s, "features": f, "Y": Y}


# ----------------------------------------------------------------------------------------------
# sanity check: OLS per feature, F-test of geography, BH at 0.05, against the truth
# ----------------------------------------------------------------------------------------------
def masked_ols(Y: np.ndarray, X: np.ndarray):
    """Per-feature OLS of the rows of Y (NaN = missing) on X, vectorised over features:
    coefficients (G x p), the inverse Gram matrices (G x p x p), residual variance and df."""
    observed = ~np.isnan(Y)
    Y0 = np.where(observed, Y, 0.0)
    W = observed.astype(float)
    gram = np.einsum("gn,np,nq->gpq", W, X, X)
    inverse = np.linalg.inv(gram)
    beta = np.einsum("gpq,gq->gp", inverse, Y0 @ X)
    resid = (Y0 - beta @ X.T) * W
    df = observed.sum(axis=1) - X.shape[1]
    s2 = (resid**2).sum(axis=1) / df
    return beta, inverse, s2, df


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's p.adjust(method = "BH"))."""
    n = p.size
    order = np.argsort(p)[::-1]
    adjusted = np.minimum.accumulate(p[order] * n / np.arange(n, 0, -1))
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def design_matrix(sheet: dict, hidden: bool) -> tuple[np.ndarray, list[str]]:
    """~ geography + sex + batch + age (+ hidden1 + hidden2) on the samples with a known age."""
    n = sheet["geography"].size
    columns = {"Intercept": np.ones(n)}
    for level in GEOGRAPHY[1:]:
        columns[f"geography{level}"] = (sheet["geography"] == level).astype(float)
    columns["sexM"] = (sheet["sex"] == "M").astype(float)
    for b in (2, 3, 4):
        columns[f"batch{b}"] = (sheet["batch"] == b).astype(float)
    columns["age"] = sheet["age"].astype(float)
    if hidden:
        columns["hidden1"] = sheet["hidden1"]
        columns["hidden2"] = sheet["hidden2"]
    return np.column_stack(list(columns.values())), list(columns)


def geography_test(Y: np.ndarray, sheet: dict, hidden: bool, max_missing: float = 0.5):
    """BH-adjusted p-values of the F-test of geography (NaN for features dropped by the
    missing-value filter), and the estimates (G x 2)."""
    from scipy.stats import f as f_dist

    keep_samples = ~np.isnan(sheet["age"].astype(float))
    X, _ = design_matrix({k: v[keep_samples] for k, v in sheet.items()}, hidden)
    Ys = Y[:, keep_samples]
    kept = np.isnan(Y).mean(axis=1) <= max_missing
    beta, inverse, s2, df = masked_ols(Ys[kept], X)
    b = beta[:, 1:3]
    V = inverse[:, 1:3, 1:3]
    F = np.einsum("gp,gpq,gq->g", b, np.linalg.inv(V), b) / 2 / s2
    fdr = np.full(Y.shape[0], np.nan)
    fdr[kept] = bh(f_dist.sf(F, 2, df))
    estimates = np.full((Y.shape[0], 2), np.nan)
    estimates[kept] = b
    return fdr, estimates


def check(result: dict) -> dict:
    """FDP and power of OLS + BH 0.05 with and without the true hidden factors."""
    s, f, Y = result["samples"], result["features"], result["Y"]
    sheet = {
        "geography": s["geography"], "sex": s["sex"], "batch": s["batch"],
        "age": s["reported_age"], "hidden1": s["hidden1"], "hidden2": s["hidden2"],
    }  # fmt: skip
    truth = f["de_geography"].astype(bool)
    figures = {}
    for hidden in (False, True):
        fdr, _ = geography_test(Y, sheet, hidden)
        called = fdr <= 0.05
        n_called = int(called.sum())
        figures["with_hidden" if hidden else "without_hidden"] = {
            "called": n_called,
            "fdp": float((called & ~truth).sum() / max(n_called, 1)),
            "power": float((called & truth).sum() / truth.sum()),
        }
    return figures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", default="resources/example")
    parser.add_argument("--seed", type=int, default=20101)
    parser.add_argument("--n-features", type=int, default=12000)
    parser.add_argument("--n-samples", type=int, default=96)
    parser.add_argument("--check", action="store_true", help="print FDP and power of OLS + BH")
    args = parser.parse_args(argv)
    result = simulate(args.outdir, args.seed, args.n_features, args.n_samples)
    if args.check:
        for name, fig in check(result).items():
            print(
                f"{name}: {fig['called']} called at BH 0.05, FDP {fig['fdp']:.3f}, "
                f"power {fig['power']:.3f}"
            )


if __name__ == "__main__":
    main()
