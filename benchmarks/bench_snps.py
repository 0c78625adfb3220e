"""SNP genotypes at GWAS scale: the stacklm workflow against ``plink2 --glm`` on the same simulated
PLINK fileset, in the same run, with every job's time and peak memory.

Usage: python benchmarks/bench_snps.py [--snps 1000000] [--samples 5000] [--cores 2] [--chunks 8]
                                       [--workdir /tmp/stacklm-bench/snps] [--quick] [--no-plots]
                                       [--json FILE]

Data (cached in --workdir, generation not timed; ~1.25 GB for the default size): a seeded PLINK 1
fileset of ``snps`` SNPs x ``samples`` people written SNP chunk by SNP chunk (2 bits per call, as
PLINK's .bed), 22 chromosomes, allele-1 frequencies U(0.02, 0.5), Hardy-Weinberg genotypes, 0.5%
of calls missing at random; a sample sheet with sex and 4 ancestry covariates pc1..pc4 (N(0, 1))
and a quantitative trait ``y`` = 20 causal SNPs (0.1 per copy of allele 1) + 0.3 sex + 0.2 pc1..4
+ N(0, 1); plink2's --pheno / --covar files with the same columns.

Timed, one after the other, each from scratch:

* ``plink2``: ``plink2 --bfile B --pheno pheno.txt --covar covar.txt --glm hide-covar omit-ref
  --geno 0.1 --hwe 1e-6 --maf 0.01 --threads C`` (linear regression of y on each SNP's allele-1
  count, sex and pc1..4: the same test as the workflow's); wall time and the process's peak RSS
  (``wait4``'s ru_maxrss).
* ``stacklm``: ``snakemake --cores C`` with ``matrix: B.bed``, the same filters, ``chunks`` fit
  jobs and one analysis ``~ y + sex + pc1 + pc2 + pc3 + pc4``, test ``y`` (ordinary t, the
  default for genotypes): targets results.parquet, summary.json and the Manhattan plot; then
  (unless --no-plots) again with the default target ``all`` (every diagnostic plot).  Per job:
  seconds from the rules' ``benchmark:`` files and the exact peak RSS each step's log reports.

Checked: the same SNPs pass QC in both, and the workflow's t equals plink2's T_STAT to the digits
plink2 prints (both count allele 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_compute  # noqa: E402  (machine description)
from bench_workflow import collect_steps  # noqa: E402  (per-job seconds and peak RSS)

N_CAUSAL = 20
MISSING = 0.005
FILTERS = {"max_missing": 0.1, "min_hwe_p": 1e-6, "min_maf": 0.01}
PLINK_FILTERS = ["--geno", "0.1", "--hwe", "1e-6", "--maf", "0.01"]
#: 2-bit .bed code of 0, 1, 2 copies of allele 1 (column 5) and of a missing call
_CODE = np.array([0b11, 0b10, 0b00], dtype=np.uint8)
_MISSING_CODE = 0b01


def pack_bed(counts: np.ndarray, missing: np.ndarray) -> bytes:
    """SNP-major .bed bytes of a block (SNPs x samples of allele-1 counts; ``missing`` mask)."""
    m, n = counts.shape
    codes = _CODE[counts]
    codes[missing] = _MISSING_CODE
    pad = (-n) % 4
    if pad:
        codes = np.concatenate([codes, np.zeros((m, pad), dtype=np.uint8)], axis=1)
    q = codes.reshape(m, -1, 4)
    return (q[..., 0] | (q[..., 1] << 2) | (q[..., 2] << 4) | (q[..., 3] << 6)).tobytes()


def make_data(directory: Path, n_snps: int, n_samples: int, seed: int = 18) -> Path:
    """Write the fileset, sample sheet and plink2 files once (cached by size and seed)."""
    prefix = directory / f"bench_{n_snps}x{n_samples}"
    done = prefix.with_suffix(".done")
    if done.exists():
        return prefix
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    iid = np.array([f"I{i:06d}" for i in range(1, n_samples + 1)])
    male = rng.random(n_samples) < 0.5
    pcs = rng.standard_normal((n_samples, 4))
    freq = rng.uniform(0.02, 0.5, n_snps)
    causal = np.sort(rng.choice(n_snps, N_CAUSAL, replace=False))
    y = 0.3 * male + pcs @ np.full(4, 0.2) + rng.standard_normal(n_samples)
    chrom = np.sort(rng.integers(1, 23, n_snps))
    pos = np.empty(n_snps, dtype=np.int64)
    for c in range(1, 23):  # loop over chromosomes
        at = chrom == c
        pos[at] = np.sort(rng.choice(250_000_000, at.sum(), replace=False)) + 1
    alleles = np.array(list("ACGT"))
    a1 = rng.integers(0, 4, n_snps)
    a2 = (a1 + rng.integers(1, 4, n_snps)) % 4
    step = max(1, 50_000_000 // n_samples)
    with open(prefix.with_suffix(".bed"), "wb") as bed:
        bed.write(b"\x6c\x1b\x01")
        for s0 in range(0, n_snps, step):
            s1 = min(s0 + step, n_snps)
            q = freq[s0:s1, None]
            u = rng.random((s1 - s0, n_samples), dtype=np.float32)
            g = (u < q * q).astype(np.uint8) + (u < q * q + 2 * q * (1 - q))  # copies of allele 1
            missing = rng.random(g.shape, dtype=np.float32) < MISSING
            for j in causal[(causal >= s0) & (causal < s1)]:  # the true genotype, called or not
                y += 0.1 * g[j - s0]
            bed.write(pack_bed(g, missing))
    pd.DataFrame(
        {
            0: chrom,
            1: [f"rs{j}" for j in range(n_snps)],
            2: 0,
            3: pos,
            4: alleles[a1],
            5: alleles[a2],
        }  # fmt: skip
    ).to_csv(prefix.with_suffix(".bim"), sep="\t", header=False, index=False)
    fam = pd.DataFrame({0: iid, 1: iid, 2: 0, 3: 0, 4: np.where(male, 1, 2), 5: -9})
    fam.to_csv(prefix.with_suffix(".fam"), sep=" ", header=False, index=False)
    sheet = pd.DataFrame({"sample_id": iid, "y": y, "sex": np.where(male, "M", "F")})
    for k in range(4):
        sheet[f"pc{k + 1}"] = pcs[:, k]
    sheet.to_csv(directory / "samples.tsv", sep="\t", index=False, float_format="%.17g")
    plink = pd.DataFrame({"FID": iid, "IID": iid})
    plink.assign(y=y).to_csv(directory / "pheno.txt", sep="\t", index=False, float_format="%.17g")
    covar = plink.assign(sexM=male.astype(int), **{f"pc{k + 1}": pcs[:, k] for k in range(4)})
    covar.to_csv(directory / "covar.txt", sep="\t", index=False, float_format="%.17g")
    pd.Series([f"rs{j}" for j in causal]).to_csv(
        directory / "causal.txt", index=False, header=False
    )
    done.write_text("ok\n")
    return prefix


def run_plink2(prefix: Path, directory: Path, cores: int) -> dict:
    out = directory / "plink2"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    cmd = ["plink2", "--bfile", str(prefix), "--pheno", str(directory / "pheno.txt"),
           "--pheno-name", "y", "--covar", str(directory / "covar.txt"), "--glm", "hide-covar",
           "omit-ref", *PLINK_FILTERS, "--threads", str(cores), "--out", str(out / "glm")]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"plink2 failed:\n{err[-3000:]}")
    return {"s": wall, "rss_mib": usage.ru_maxrss / 1024, "table": out / "glm.y.glm.linear"}


def run_workflow(prefix: Path, directory: Path, name: str, cores: int, chunks: int, targets):
    import yaml

    work = directory / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    config = {
        "matrix": str(prefix.with_suffix(".bed")),
        "samples": str(directory / "samples.tsv"),
        "filter": FILTERS,
        "chunks": chunks,
        "analyses": {"A": {"formula": "~ y + sex + pc1 + pc2 + pc3 + pc4", "test": "y"}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(REPO / "Snakefile"),
           "--directory", str(work), "--cores", str(cores), "--quiet", "rules",
           "--configfile", str(work / "config.yaml")]  # fmt: skip
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{res.stderr[-5000:]}")
    return {"s": wall, "targets": list(targets) or ["all"], "steps": collect_steps(work),
            "work": work}  # fmt: skip


def compare(work: Path, plink_table: Path) -> dict:
    res = pd.read_parquet(work / "results/A/results.parquet",
                          columns=["feature_id", "statistic", "beta_snp", "se_snp", "n"])  # fmt: skip
    glm = pd.read_csv(plink_table, sep="\t", dtype={"ID": str}, usecols=["ID", "OBS_CT", "BETA",
                                                                        "SE", "T_STAT"])  # fmt: skip
    same = set(res["feature_id"]) == set(glm["ID"])
    glm = glm.set_index("ID").loc[res["feature_id"]]

    def printed(x):  # plink2 prints 6 significant digits
        return np.array([float(f"{v:.6g}") for v in np.asarray(x)])

    sample = np.linspace(0, len(res) - 1, min(len(res), 200_000)).astype(int)
    out = {"same_snps": same, "n_snps": int(len(res))}
    for ours, theirs in (("statistic", "T_STAT"), ("beta_snp", "BETA"), ("se_snp", "SE")):
        a = printed(res[ours].to_numpy()[sample])
        b = glm[theirs].to_numpy()[sample]
        out[f"{ours}_digits_equal"] = float(np.mean(a == b))
        out[f"{ours}_max_rel"] = float(np.max(np.abs(res[ours].to_numpy()[sample] - b) / np.abs(b)))
    out["n_equal"] = bool(np.array_equal(res["n"].to_numpy(), glm["OBS_CT"].to_numpy()))
    return out


def print_run(label: str, run: dict) -> None:
    print(f"\n{label}: {run['s']:.1f} s wall ({', '.join(run['targets'])})")
    print(f"{'job':<34} {'s':>8} {'peak RSS MiB':>13}")
    for job, v in sorted(run["steps"].items(), key=lambda kv: kv[0]):
        rss = v.get("rss_mib", v.get("sampled_rss_mib", float("nan")))
        print(f"{job:<34} {v.get('s', float('nan')):>8.1f} {rss:>13.0f}")
    fits = [v for k, v in run["steps"].items() if "fit_chunk" in k]
    if fits:
        print(f"{'fit_chunk total / max job':<34} {sum(v['s'] for v in fits):>8.1f} "
              f"{max(v.get('rss_mib', 0) for v in fits):>13.0f}")  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snps", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=5_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/stacklm-bench/snps"))
    ap.add_argument("--quick", action="store_true", help="100,000 SNPs x 1,000 samples")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.snps, args.samples = 100_000, 1_000
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"# run: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, code at commit {commit}")
    for line in bench_compute.machine():
        print(f"# {line}")
    print(
        f"# plink2: {subprocess.run(['plink2', '--version'], capture_output=True, text=True).stdout.strip()}"
    )
    t0 = time.perf_counter()
    prefix = make_data(args.workdir, args.snps, args.samples)
    bed_gb = prefix.with_suffix(".bed").stat().st_size / 1e9
    print(f"# data: {args.snps:,} SNPs x {args.samples:,} samples, .bed {bed_gb:.2f} GB "
          f"(generated or cached in {time.perf_counter() - t0:.0f} s); cores {args.cores}, "
          f"chunks {args.chunks}")  # fmt: skip

    print(f"# load average before plink2: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    plink = run_plink2(prefix, args.workdir, args.cores)
    print(f"\nplink2 --glm: {plink['s']:.1f} s wall, peak RSS {plink['rss_mib']:.0f} MiB")
    print(f"# load average before stacklm: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = run_workflow(prefix, args.workdir, "stacklm_results", args.cores, args.chunks,
                           ["results/A/results.parquet", "results/A/summary.json",
                            "results/A/plots/manhattan.png"])  # fmt: skip
    print_run("stacklm workflow, results + Manhattan plot", results)
    check = compare(results["work"], plink["table"])
    store = results["work"] / "results/normalized/matrix/values.i8"
    print(f"\nint8 store {store.stat().st_size / 1e9:.2f} GB; results vs plink2: {check}")
    png = results["work"] / "results/A/plots/manhattan.png"
    print(f"Manhattan PNG {png.stat().st_size / 1e6:.3f} MB")
    full = None
    if not args.no_plots:
        full = run_workflow(prefix, args.workdir, "stacklm_all", args.cores, args.chunks, [])
        print_run("stacklm workflow, all targets (every plot)", full)
    print(f"\nratio stacklm (results + Manhattan) / plink2: {results['s'] / plink['s']:.2f}x")
    if full:
        print(f"ratio stacklm (all) / plink2: {full['s'] / plink['s']:.2f}x")
    if args.json:
        for run in (results, full):
            if run:
                run.pop("work", None)
        plink.pop("table")
        args.json.write_text(json.dumps({"plink2": plink, "results": results, "all": full,
                                         "check": check}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
