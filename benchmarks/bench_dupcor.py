"""Paired samples at a million features: limma's duplicateCorrelation and the block-correlated fit,
stacklm (library and whole workflow) against R limma in the same run, with every job's memory.

Usage: python benchmarks/bench_dupcor.py [--features 200000 1000000] [--cores 2]
                                         [--workdir /tmp/stacklm-bench/dupcor] [--r-timeout 1500]
                                         [--no-r] [--r-foreground] [--json FILE]

Data (cached in --workdir, generation not timed): a seeded G x 48 matrix of continuous values, 24
donors (blocks) sampled before and after a treatment; donors in three groups A/B/C (8 each) and of
either sex; design ``~ treatment + group + sex`` (Intercept, treatmentafter, groupB, groupC, sexM).
Per feature: baseline N(8, 1), a residual sd s from 0.5 * sqrt(chi2_8 / 8), a donor effect
N(0, rho s^2) shared by the donor's two samples and noise N(0, (1 - rho) s^2) with rho = 0.3 for
every feature; treatment effects on 5% of the features, group effects on 5%.  Values rounded to 6
decimals, gzipped TSV (level 1) and a sample sheet (sample_id, donor, treatment, group, sex).

Timed, one size after the other:

* ``R``: ``Rscript`` with limma 3.63.2 (``R_LIBS=/root/R/limma-3.63.2``): ``fread`` of the file
  first (not timed), then ``duplicateCorrelation(Y, X, block = donor)`` timed alone and
  ``lmFit(Y, X, block = donor, correlation = consensus)`` + ``eBayes`` + ``topTable(coef =
  "treatmentafter", number = Inf)`` timed after it.  R is single-threaded; its ~1 ms per feature makes
  it the long part, so R runs in a background thread from the start (sizes one after the other, unless
  --r-foreground) while the stacklm parts run in the foreground: the two compete for the 2 cores
  (stated in the output).  A run longer than --r-timeout seconds is killed; its time is then
  extrapolated linearly from the largest size R finished, and labelled so.
* ``library``: a child process reads the matrix (not timed), then
  ``stacklm.duplicate_correlation(Y, X, block)`` and ``gls_series`` + ``e_bayes`` + ``top_table``
  (timed); the child's peak RSS (VmHWM) including the matrix.
* ``workflow``: ``snakemake --cores C`` on the gzipped TSV, continuous input, ``chunks: auto``, one
  analysis ``~ treatment + group + sex`` with ``block: donor``, test ``treatmentafter``; targets
  results.parquet and summary.json.  Per job: seconds from the rules' ``benchmark:`` files and the
  peak RSS each step's log reports.

Checked: the consensus correlation and the per-feature atanh correlations of the library and the
workflow against R's (max relative difference; abs. floor 1e-12), and the workflow's moderated t
against R's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_compute  # noqa: E402  (machine description, max_rel_diff)
from bench_workflow import run_snakemake, summarize_steps, write_gzip_tsv  # noqa: E402

DATA_VERSION = 1
SEED = 20170301
N_DONORS = 24
RHO = 0.3
R_LIBS = "/root/R/limma-3.63.2"

R_SCRIPT = r"""
suppressPackageStartupMessages({library(limma); library(data.table)})
a <- commandArgs(TRUE)
dt <- fread(a[1], sep = "\t", header = TRUE)
ids <- dt[[1]]
Y <- as.matrix(dt[, -1])
rownames(Y) <- ids
rm(dt); invisible(gc())
s <- read.delim(a[2], stringsAsFactors = FALSE)
s <- s[match(colnames(Y), s$sample_id), ]
s$treatment <- factor(s$treatment, levels = c("before", "after"))
s$group <- factor(s$group, levels = c("A", "B", "C"))
s$sex <- factor(s$sex, levels = c("F", "M"))
X <- model.matrix(~ treatment + group + sex, data = s)
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
c0 <- cpu()
t0 <- proc.time()[["elapsed"]]
dc <- duplicateCorrelation(Y, X, block = s$donor)
t1 <- proc.time()[["elapsed"]]
c1 <- cpu()
fit <- eBayes(lmFit(Y, X, block = s$donor, correlation = dc$consensus.correlation))
tt <- topTable(fit, coef = "treatmentafter", number = Inf, sort.by = "none")
t2 <- proc.time()[["elapsed"]]
writeBin(as.double(dc$atanh.correlations), paste0(a[3], ".atanh.bin"))
writeBin(as.double(tt$t), paste0(a[3], ".t.bin"))
cat(sprintf("%.17g", c(t1 - t0, t2 - t1, dc$consensus.correlation, c1 - c0, cpu() - c1)),
    sep = "\t")
cat("\n")
"""


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def sample_sheet():
    rng = np.random.default_rng(SEED)
    sex = rng.choice(["F", "M"], size=N_DONORS)
    rows = []
    for d in range(N_DONORS):
        for t in ("before", "after"):
            rows.append(
                {
                    "sample_id": f"S{len(rows) + 1:03d}_D{d + 1:02d}_{t}",
                    "donor": f"D{d + 1:02d}",
                    "treatment": t,
                    "group": "ABC"[d % 3],
                    "sex": sex[d],
                }
            )
    return rows


def design_of(rows) -> np.ndarray:
    X = np.ones((len(rows), 5))
    X[:, 1] = [r["treatment"] == "after" for r in rows]
    X[:, 2] = [r["group"] == "B" for r in rows]
    X[:, 3] = [r["group"] == "C" for r in rows]
    X[:, 4] = [r["sex"] == "M" for r in rows]
    return X


def simulate(n: int, rows, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = design_of(rows)
    donor = np.repeat(np.arange(N_DONORS), 2)
    beta = np.zeros((n, 5))
    beta[:, 0] = rng.normal(8.0, 1.0, n)
    hit = rng.random(n) < 0.05
    beta[hit, 1] = rng.choice([-1, 1], hit.sum()) * rng.uniform(0.3, 1.0, hit.sum())
    hit = rng.random(n) < 0.05
    beta[hit, 2:4] = rng.normal(0, 0.5, (hit.sum(), 2))
    s = 0.5 * np.sqrt(rng.chisquare(8, n) / 8)
    u = rng.standard_normal((n, N_DONORS))[:, donor] * (np.sqrt(RHO) * s)[:, None]
    e = rng.standard_normal((n, len(rows))) * (np.sqrt(1 - RHO) * s)[:, None]
    return beta @ X.T + u + e


def make_data(directory: Path, n_features: int) -> tuple[Path, Path]:

    directory.mkdir(parents=True, exist_ok=True)
    matrix, samples, stamp = (
        directory / "matrix.tsv.gz",
        directory / "samples.tsv",
        directory / "made.json",
    )
    spec = {"version": DATA_VERSION, "features": n_features, "seed": SEED}
    if stamp.exists() and json.loads(stamp.read_text()) == spec and matrix.exists():
        return matrix, samples
    rows = sample_sheet()
    with open(samples, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    names = [r["sample_id"] for r in rows]
    t0 = time.perf_counter()
    tmp = matrix.with_suffix(".tmp")
    write_gzip_tsv(
        tmp,
        names,
        n_features,
        100_000,
        lambda start, stop: np.round(simulate(stop - start, rows, SEED + start), 6),
    )
    tmp.rename(matrix)
    stamp.write_text(json.dumps(spec))
    print(f"# generated {matrix} ({matrix.stat().st_size / 2**20:.0f} MiB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return matrix, samples


def read_matrix(matrix: Path):
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(matrix, parse_options=pacsv.ParseOptions(delimiter="\t"))
    ids = table.column(0).to_pylist()
    Y = np.column_stack([table.column(j).to_numpy() for j in range(1, table.num_columns)])
    return ids, Y, table.column_names[1:]


# ------------------------------------------------------------------------------------------
# timed parts
# ------------------------------------------------------------------------------------------
def library_child(matrix: str, samples: str, out: str) -> dict:
    import pandas as pd

    from stacklm import duplicate_correlation, e_bayes, gls_series, top_table
    from stacklm.workflow.steps import peak_rss_mib

    ids, Y, names = read_matrix(Path(matrix))
    sheet = pd.read_csv(samples, sep="\t").set_index("sample_id").loc[names]
    X = design_of(sheet.reset_index().to_dict("records"))
    rss_data = peak_rss_mib()
    bench_compute.reset_peak_rss()
    c0 = time.process_time()
    t0 = time.perf_counter()
    dc = duplicate_correlation(Y, X, block=sheet["donor"].to_numpy())
    t1 = time.perf_counter()
    coef_names = ["(Intercept)", "treatmentafter", "groupB", "groupC", "sexM"]
    fit = gls_series(Y, X, block=sheet["donor"].to_numpy(), correlation=dc.consensus,
                     coef_names=coef_names, feature_ids=ids)  # fmt: skip
    tt = top_table(e_bayes(fit), coef="treatmentafter", number=None, sort_by="none")
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    np.asarray(dc.atanh_correlations, dtype=float).tofile(out + ".atanh.bin")
    np.asarray(tt["t"], dtype=float).tofile(out + ".t.bin")
    return {
        "dupcor_s": t1 - t0,
        "fit_s": t2 - t1,
        "s": t2 - t0,
        "cpu_s": cpu,
        "consensus": dc.consensus,
        "n_not_converged": dc.n_not_converged,
        "rss_data_mib": rss_data,
        "rss_mib": peak_rss_mib(),
    }


def time_library(matrix: Path, samples: Path, out: Path, script: str = __file__) -> dict:
    """The library one-shot in a fresh process (``script --library-child``): its own peak RSS."""
    res = subprocess.run(
        [sys.executable, script, "--library-child", str(matrix), str(samples), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"library child failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def workflow_config(matrix: Path, samples: Path) -> dict:
    return {
        "matrix": str(matrix),
        "samples": str(samples),
        "sample_id": "sample_id",
        "chunks": "auto",
        "analyses": {
            "A": {
                "formula": "~ treatment + group + sex",
                "levels": {"treatment": ["before", "after"], "group": ["A", "B", "C"]},
                "block": "donor",
                "test": "treatmentafter",
            }
        },
    }


def r_versions() -> str:
    res = subprocess.run(
        ["Rscript", "-e", 'for (p in c("limma", "edgeR", "statmod")) cat(p, '
         'as.character(packageVersion(p)), "")'],
        capture_output=True, text=True, env=dict(os.environ, R_LIBS=R_LIBS), check=False,
    )  # fmt: skip
    return f"R with R_LIBS={R_LIBS}: {res.stdout.strip()}"


class RRunner(threading.Thread):
    """R's sizes one after the other (in the background unless run() is called directly)."""

    def __init__(self, sizes, timeout):
        super().__init__(daemon=True)
        self.sizes, self.timeout, self.results, self.proc = sizes, timeout, {}, None

    def stop(self):
        """Kill the running Rscript (a timeout, or the foreground failed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def run(self):
        for g, matrix, samples, out in self.sizes:
            script = out.parent / "dupcor.R"
            script.write_text(R_SCRIPT)
            env = dict(os.environ, R_LIBS=R_LIBS, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                ["Rscript", str(script), str(matrix), str(samples), str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            try:
                stdout, stderr = self.proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                self.results[g] = {"timeout": self.timeout}
                print(f"# {g}: R killed after {self.timeout} s", flush=True)
                continue
            res = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, stdout, stderr)
            if res.returncode != 0:
                self.results[g] = {"error": res.stderr[-2000:]}
                print(f"# {g}: R failed: {res.stderr[-2000:]}", flush=True)
                continue
            dc_s, fit_s, consensus, dc_cpu, fit_cpu = map(
                float, res.stdout.strip().splitlines()[-1].split("\t")
            )
            self.results[g] = {
                "wall_s": time.perf_counter() - t0,
                "dupcor_s": dc_s,
                "fit_s": fit_s,
                "s": dc_s + fit_s,
                "dupcor_cpu_s": dc_cpu,
                "cpu_s": dc_cpu + fit_cpu,
                "consensus": consensus,
            }
            print(f"# {g}: R duplicateCorrelation {dc_s:.1f} s, lmFit(block) + eBayes + "
                  f"topTable {fit_s:.1f} s", flush=True)  # fmt: skip


def compare(out_a: Path, out_b: Path, what: str) -> float:
    a = np.fromfile(f"{out_a}.{what}.bin")
    b = np.fromfile(f"{out_b}.{what}.bin")
    return bench_compute.max_rel_diff(a, b)


def workflow_values(workdir: Path):
    import pandas as pd

    res = pd.read_parquet(workdir / "results/A/results.parquet")
    summary = json.loads((workdir / "results/A/summary.json").read_text())
    return res, summary


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
def print_steps(wf: dict) -> None:
    """Per rule: jobs, wall seconds (sum, max), CPU seconds (sum; benchmark files), peak RSS."""
    steps = summarize_steps(wf["steps"])
    cpu = wf.get("cpu", {})
    print(f"{'step':<24} {'jobs':>4} {'sum s':>8} {'max s':>8} {'CPU s':>8} {'peak RSS MiB':>13}")
    for rule, s in steps.items():
        rss = "-" if s["rss_mib"] is None else f"{s['rss_mib']:.0f}"
        c = bench_compute.fmt(cpu.get(rule))
        print(f"{rule:<24} {s['jobs']:>4} {s['s']:>8.2f} {s['max_s']:>8.2f} {c:>8} {rss:>13}")
    if cpu:
        print(f"{'all jobs':<24} {'':>4} {'':>8} {'':>8} {sum(cpu.values()):>8.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/stacklm-bench/dupcor")
    parser.add_argument("--r-timeout", type=float, default=1500)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--r-foreground", action="store_true", help="R after stacklm, alone")
    parser.add_argument("--json")
    parser.add_argument("--library-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library_child:
        print(json.dumps(library_child(*args.library_child)))
        return 0
    base = Path(args.workdir)
    print("# bench_dupcor: duplicateCorrelation + block fit, stacklm vs R limma 3.63.2")
    for line in bench_compute.machine():
        print("# " + line)
    print("# " + r_versions())
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"# commit {commit}; snakemake --cores {args.cores}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    data = {}
    for g in args.features:
        d = base / f"data_{g}x48"
        data[g] = (*make_data(d, g), d)
    runner = None
    if not args.no_r:
        sizes = [(g, m, s, d / "r_out") for g, (m, s, d) in data.items()]
        runner = RRunner(sizes, args.r_timeout)
        if not args.r_foreground:
            print("# R runs in a background thread meanwhile (competing for the cores)", flush=True)
            runner.start()
    try:
        rows = stacklm_parts(data, args)
    except BaseException:
        if runner is not None:
            runner.stop()
        raise
    finish(rows, runner, data, args)
    return 0


def stacklm_parts(data, args) -> list:
    base = Path(args.workdir)
    rows = []
    for g, (matrix, samples, d) in data.items():
        row = {"features": g, "matrix_mib": matrix.stat().st_size / 2**20}
        row["library"] = time_library(matrix, samples, d / "lib_out")
        lib = row["library"]
        print(f"# {g}: library duplicate_correlation {lib['dupcor_s']:.2f} s, gls_series + "
              f"e_bayes + top_table {lib['fit_s']:.2f} s, peak RSS {lib['rss_mib']:.0f} MiB",
              flush=True)  # fmt: skip
        wd = base / f"run_{g}"
        cfg = workflow_config(matrix, samples)
        row["workflow"] = run_snakemake(
            cfg, wd, args.cores, ["results/A/results.parquet", "results/A/summary.json"]
        )
        res, summary = workflow_values(wd)
        row["workflow"]["consensus"] = summary["block"]["consensus_correlation"]
        row["workflow"]["n_chunks"] = summarize_steps(row["workflow"]["steps"])["fit_chunk"]["jobs"]
        res.sort_values("feature_id")["t_treatmentafter"].to_numpy(dtype=float).tofile(
            str(d / "wf_out") + ".t.bin"
        )
        print(f"# {g}: workflow {row['workflow']['s']:.1f} s", flush=True)
        rows.append(row)
    return rows


def finish(rows, runner, data, args) -> None:
    if runner is not None:
        if args.r_foreground:
            runner.run()
        else:
            runner.join()
        for row in rows:
            g = row["features"]
            d = data[g][2]
            row["r"] = runner.results.get(g)
            if row["r"] and "s" in row["r"]:
                r_out = d / "r_out"
                row["diff"] = {
                    "consensus_lib": abs(row["library"]["consensus"] - row["r"]["consensus"])
                    / abs(row["r"]["consensus"]),
                    "consensus_wf": abs(row["workflow"]["consensus"] - row["r"]["consensus"])
                    / abs(row["r"]["consensus"]),
                    "atanh_lib": compare(d / "lib_out", r_out, "atanh"),
                    "t_lib": compare(d / "lib_out", r_out, "t"),
                    "t_wf": compare(d / "wf_out", r_out, "t"),
                }
        done = [r for r in rows if r.get("r") and "s" in r["r"]]
        for row in rows:
            if row.get("r") and "s" not in row["r"] and done:
                ref = max(done, key=lambda r: r["features"])
                k = row["features"] / ref["features"]
                row["r_extrapolated"] = {
                    "from": ref["features"],
                    "dupcor_s": ref["r"]["dupcor_s"] * k,
                    "s": ref["r"]["s"] * k,
                    "dupcor_cpu_s": ref["r"].get("dupcor_cpu_s", float("nan")) * k,
                    "cpu_s": ref["r"].get("cpu_s", float("nan")) * k,
                }

    print("\n# Summary (seconds; R = limma 3.63.2, one thread; ratios R / stacklm)")
    header = (
        f"{'features x 48':>14} {'R dupCor s':>10} {'R +fit s':>9} {'lib dupcor s':>12} "
        f"{'lib +fit s':>10} {'R/lib':>6} {'workflow s':>10} {'R/wf':>6} {'wf CPU s':>8} {'chunks':>6} "
        f"{'R CPU s':>8} {'lib CPU s':>9} {'R/lib CPU':>9} {'lib RSS MiB':>11} "
        f"{'max job RSS MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        lib, wf = row["library"], row["workflow"]
        r = row.get("r") if row.get("r") and "s" in row["r"] else None
        mark = ""
        if r is None and row.get("r_extrapolated"):
            r, mark = row["r_extrapolated"], "*"
        steps = summarize_steps(wf["steps"])
        max_rss = max((s["rss_mib"] or 0) for s in steps.values())
        r_dc = f"{r['dupcor_s']:.1f}{mark}" if r else "-"
        r_all = f"{r['s']:.1f}{mark}" if r else "-"
        r_cpu = f"{r['cpu_s']:.1f}{mark}" if r and "cpu_s" in r else "-"
        print(
            f"{row['features']:>14,} {r_dc:>10} {r_all:>9} {lib['dupcor_s']:>12.2f} "
            f"{lib['s']:>10.2f} {bench_compute.fmt(r and r['s'] / lib['s'], '.1f'):>6} "
            f"{wf['s']:>10.1f} {bench_compute.fmt(r and r['s'] / wf['s'], '.1f'):>6} "
            f"{sum(wf.get('cpu', {}).values()):>8.1f} {wf['n_chunks']:>6} {r_cpu:>8} "
            f"{lib['cpu_s']:>9.2f} "
            f"{bench_compute.fmt(r and r.get('cpu_s') and r['cpu_s'] / lib['cpu_s'], '.1f'):>9} "
            f"{lib['rss_mib']:>11.0f} {max_rss:>15.0f}"
        )
    if any(row.get("r_extrapolated") and not (row.get("r") or {}).get("s") for row in rows):
        print("* EXTRAPOLATED, not measured: R did not finish within --r-timeout; linear in the "
              "features from the largest size R finished")  # fmt: skip
    for row in rows:
        g = row["features"]
        print(f"\n## {g:,} x 48 ({row['matrix_mib']:.0f} MiB gzipped TSV)")
        lib = row["library"]
        print(f"library: duplicate_correlation {lib['dupcor_s']:.2f} s (consensus "
              f"{lib['consensus']:.6f}, {lib['n_not_converged']} not converged), gls_series + "
              f"e_bayes + top_table {lib['fit_s']:.2f} s (CPU {lib['cpu_s']:.2f} s); peak RSS {lib['rss_mib']:.0f} MiB "
              f"(matrix read: {lib['rss_data_mib']:.0f} MiB)")  # fmt: skip
        if row.get("r"):
            if "s" in row["r"]:
                r = row["r"]
                print(f"R: duplicateCorrelation {r['dupcor_s']:.1f} s (consensus "
                      f"{r['consensus']:.6f}), lmFit(block) + eBayes + topTable {r['fit_s']:.1f} s "
                      f"(CPU {r.get('dupcor_cpu_s', float('nan')):.1f} + "
                      f"{r.get('cpu_s', float('nan')) - r.get('dupcor_cpu_s', float('nan')):.1f} s)")  # fmt: skip
            else:
                print(f"R: not measured ({row['r']})")
        if row.get("diff"):
            d = row["diff"]
            print(f"vs R (max relative difference): consensus library {d['consensus_lib']:.1e}, "
                  f"workflow {d['consensus_wf']:.1e}; atanh correlations (library) "
                  f"{d['atanh_lib']:.1e}; t library {d['t_lib']:.1e}, workflow {d['t_wf']:.1e}")  # fmt: skip
        print(
            f"workflow: {row['workflow']['s']:.1f} s, {row['workflow']['n_chunks']} chunks (auto)"
        )
        print_steps(row["workflow"])
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
