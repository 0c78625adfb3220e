"""RNA-seq counts at scale: edgeR + limma-voom (filterByExpr, TMM, voom, weighted lmFit, eBayes, F)
by the stacklm workflow and library against R edgeR + limma in the same run, with every job's memory.

Usage: python benchmarks/bench_counts.py [--sizes 60000x500 200000x100] [--cores 2]
                                         [--chunks auto] [--format tsv|parquet]
                                         [--workdir /tmp/stacklm-bench/counts] [--no-r] [--json FILE]

Data (cached in --workdir, generation not timed): seeded negative-binomial counts, G genes (or
transcripts) x n samples.  Samples: group A/B/C in turn, sex drawn per sample (p = 0.5); design
``~ group + sex`` (Intercept, groupB, groupC, sexM).  Per gene: a log-normal share of the library
(sd 2.4 on the log scale, so that many genes are too low for filterByExpr), library sizes
log-normal around 2e7 reads (sd 0.3), group effects (|log2 fold| 0.5-1.5) on 5% of the genes and a
sex effect on 2%; NB dispersion 0.02 + 0.5 / sqrt(mean) (gamma-Poisson draws).  Written as a
gzipped TSV of integers (level 1) that both sides read, and with ``--format parquet`` also as
Parquet for the workflow; sample sheet (sample_id, group, sex).

Timed, one size after the other, each part alone:

* ``workflow``: ``snakemake --cores C`` from an empty directory on the generated config
  (``input_scale: counts``, ``normalize.method: TMM``, one analysis ``~ group + sex`` with
  ``filter_by_expr: true`` and ``weights: voom``, F over groupB and groupC; targets results.tsv.gz
  and summary.json).  Per job: seconds from the rules' ``benchmark:`` files and the peak RSS each
  step's log reports.
* ``library``: a child process reads the counts (not timed), then ``filter_by_expr``,
  ``calc_norm_factors`` (TMM on the kept genes' column sums), ``voom``, ``lm_wfit``, ``e_bayes`` and
  ``top_table(coef = [groupB, groupC])`` (the moderated F and BH), timed; its peak RSS (VmHWM).
* ``R``: ``Rscript`` with edgeR 3.40.2 and limma 3.63.2 (``R_LIBS=/root/R/limma-3.63.2``), one
  thread: ``fread`` of the TSV first (not timed), then ``DGEList``, ``filterByExpr``,
  ``y[keep, , keep.lib.sizes = FALSE]``, ``calcNormFactors``, ``voom``, ``lmFit``, ``eBayes`` and
  ``topTable(coef = c("groupB", "groupC"), number = Inf)``, timed step by step.

Checked: the same genes kept, and the library's and the workflow's F, p and BH against R's (max
relative difference, abs. floor 1e-12).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_compute  # noqa: E402  (machine description, max_rel_diff)
from bench_dupcor import R_LIBS, print_steps, r_versions, time_library  # noqa: E402
from bench_workflow import run_snakemake, summarize_steps  # noqa: E402

DATA_VERSION = 1
SEED = 20160421
COEFS = ["(Intercept)", "groupB", "groupC", "sexM"]
F_COEFS = ["groupB", "groupC"]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(edgeR); library(limma); library(data.table)})
a <- commandArgs(TRUE)
dt <- fread(a[1], sep = "\t", header = TRUE)
ids <- dt[[1]]
counts <- as.matrix(dt[, -1])
rownames(counts) <- ids
rm(dt); invisible(gc())
s <- read.delim(a[2], stringsAsFactors = FALSE)
s <- s[match(colnames(counts), s$sample_id), ]
s$group <- factor(s$group, levels = c("A", "B", "C"))
s$sex <- factor(s$sex, levels = c("F", "M"))
design <- model.matrix(~ group + sex, data = s)
tm <- function() proc.time()[["elapsed"]]
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t <- numeric(0)
c0 <- cpu()
t0 <- tm()
y <- DGEList(counts)
keep <- filterByExpr(y, design)
y <- y[keep, , keep.lib.sizes = FALSE]
t["filterByExpr"] <- tm() - t0; t0 <- tm()
y <- calcNormFactors(y)
t["calcNormFactors"] <- tm() - t0; t0 <- tm()
v <- voom(y, design)
t["voom"] <- tm() - t0; t0 <- tm()
fit <- lmFit(v, design)
t["lmFit"] <- tm() - t0; t0 <- tm()
fit <- eBayes(fit)
t["eBayes"] <- tm() - t0; t0 <- tm()
tt <- topTable(fit, coef = c("groupB", "groupC"), number = Inf, sort.by = "none")
t["topTable"] <- tm() - t0
t["cpu"] <- cpu() - c0
writeBin(as.double(keep), paste0(a[3], ".keep.bin"))
writeBin(as.double(c(tt$F, tt$P.Value, tt$adj.P.Val)), paste0(a[3], ".F.bin"))
cat(paste(names(t), collapse = "\t"), "\n", sep = "")
cat(sprintf("%.3f", t), sep = "\t")
cat("\n")
"""


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def sample_sheet(n: int):
    rng = np.random.default_rng(SEED)
    sex = rng.choice(["F", "M"], size=n)
    return [{"sample_id": f"S{j + 1:04d}", "group": "ABC"[j % 3], "sex": sex[j]} for j in range(n)]


def design_of(rows) -> np.ndarray:
    X = np.ones((len(rows), 4))
    X[:, 1] = [r["group"] == "B" for r in rows]
    X[:, 2] = [r["group"] == "C" for r in rows]
    X[:, 3] = [r["sex"] == "M" for r in rows]
    return X


def simulate(g: int, rows, rng, log_share, total_share) -> np.ndarray:
    X = design_of(rows)
    n = len(rows)
    lib = np.exp(rng.normal(np.log(2e7), 0.3, n))
    lfc = np.zeros((g, 4))
    hit = rng.random(g) < 0.05
    lfc[hit, 1:3] = rng.choice([-1, 1], (hit.sum(), 2)) * rng.uniform(0.5, 1.5, (hit.sum(), 2))
    hit = rng.random(g) < 0.02
    lfc[hit, 3] = rng.choice([-1, 1], hit.sum()) * rng.uniform(0.5, 1.5, hit.sum())
    share = np.exp(log_share) / total_share
    mu = share[:, None] * lib[None, :] * np.exp2(lfc @ X.T)
    phi = 0.02 + 0.5 / np.sqrt(np.maximum(mu.mean(axis=1), 1e-3))
    shape = 1.0 / phi
    return rng.poisson(rng.gamma(shape[:, None], mu * phi[:, None])).astype(np.int64)


def make_data(directory: Path, g: int, n: int, parquet: bool) -> tuple[Path, Path, Path | None]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    matrix, samples, stamp = (
        directory / "counts.tsv.gz",
        directory / "samples.tsv",
        directory / "made.json",
    )
    pq_path = directory / "counts.parquet"
    spec = {"version": DATA_VERSION, "features": g, "samples": n, "seed": SEED}
    if stamp.exists() and json.loads(stamp.read_text()) == spec and matrix.exists():
        if parquet and not pq_path.exists():
            pq.write_table(pacsv.read_csv(matrix, parse_options=pacsv.ParseOptions(delimiter="\t")),
                           pq_path)  # fmt: skip
        return matrix, samples, pq_path if parquet else None
    rows = sample_sheet(n)
    with open(samples, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    names = [r["sample_id"] for r in rows]
    options = pacsv.WriteOptions(
        delimiter="\t", quoting_style="none", quoting_header="none", include_header=False
    )
    rng = np.random.default_rng(SEED + g)
    log_share = rng.normal(0.0, 2.4, g)
    total = np.exp(log_share).sum()
    block = max(1, 4_000_000 // n)
    writer = None
    t0 = time.perf_counter()
    tmp = matrix.with_suffix(".tmp")
    with open(tmp, "wb") as raw:
        gz = zlib.compressobj(1, zlib.DEFLATED, 31)
        raw.write(gz.compress(("\t".join(["feature_id", *names]) + "\n").encode()))
        for start in range(0, g, block):
            stop = min(start + block, g)
            values = simulate(stop - start, rows, rng, log_share[start:stop], total)
            cols = {"feature_id": pa.array([f"G{i:07d}" for i in range(start, stop)])}
            cols.update({name: values[:, j] for j, name in enumerate(names)})
            table = pa.table(cols)
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            raw.write(gz.compress(sink.getvalue().to_pybytes()))
            if parquet:
                writer = writer or pq.ParquetWriter(pq_path, table.schema)
                writer.write_table(table)
        raw.write(gz.flush())
    if writer is not None:
        writer.close()
    tmp.rename(matrix)
    stamp.write_text(json.dumps(spec))
    print(f"# generated {matrix} ({matrix.stat().st_size / 2**20:.0f} MiB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return matrix, samples, pq_path if parquet else None


# ------------------------------------------------------------------------------------------
# timed parts
# ------------------------------------------------------------------------------------------
def library_child(matrix: str, samples: str, out: str) -> dict:
    import pandas as pd
    import pyarrow.csv as pacsv

    from stacklm import calc_norm_factors, e_bayes, filter_by_expr, lm_wfit, top_table, voom
    from stacklm.workflow.steps import peak_rss_mib

    table = pacsv.read_csv(matrix, parse_options=pacsv.ParseOptions(delimiter="\t"))
    ids = np.asarray(table.column(0).to_pylist())
    counts = np.column_stack(
        [table.column(j).to_numpy().astype(np.float64) for j in range(1, table.num_columns)]
    )
    names = table.column_names[1:]
    del table
    sheet = pd.read_csv(samples, sep="\t").set_index("sample_id").loc[names]
    X = design_of(sheet.reset_index().to_dict("records"))
    rss_data = peak_rss_mib()
    bench_compute.reset_peak_rss()
    c0 = time.process_time()
    t0 = time.perf_counter()
    keep = filter_by_expr(counts, X)
    kept = counts[keep]
    lib = kept.sum(axis=0)
    t1 = time.perf_counter()
    nf = calc_norm_factors(kept, lib_size=lib, method="TMM")
    t2 = time.perf_counter()
    v = voom(kept, X, lib_size=lib, norm_factors=nf, save_plot=False)
    t3 = time.perf_counter()
    fit = lm_wfit(v.E, X, v.weights, coef_names=COEFS, feature_ids=ids[keep], amean=v.amean)
    t4 = time.perf_counter()
    eb = e_bayes(fit)
    t5 = time.perf_counter()
    tt = top_table(eb, coef=F_COEFS, number=None, sort_by="none")
    t6 = time.perf_counter()
    cpu = time.process_time() - c0
    t = {
        "filter_by_expr": t1 - t0,
        "calc_norm_factors": t2 - t1,
        "voom": t3 - t2,
        "lm_wfit": t4 - t3,
        "e_bayes": t5 - t4,
        "top_table": t6 - t5,
    }
    keep.astype(float).tofile(out + ".keep.bin")
    np.concatenate([tt["F"], tt["P.Value"], tt["adj.P.Val"]]).astype(float).tofile(out + ".F.bin")
    return {
        "s": t6 - t0,
        "cpu_s": cpu,
        "steps": t,
        "n_kept": int(keep.sum()),
        "rss_data_mib": rss_data,
        "rss_mib": peak_rss_mib(),
    }


def workflow_config(matrix: Path, samples: Path, chunks) -> dict:
    return {
        "matrix": str(matrix),
        "samples": str(samples),
        "sample_id": "sample_id",
        "input_scale": "counts",
        "normalize": {"method": "TMM"},
        "chunks": chunks,
        "analyses": {
            "A": {
                "formula": "~ group + sex",
                "levels": {"group": ["A", "B", "C"]},
                "filter_by_expr": True,
                "weights": "voom",
                "test": F_COEFS,
            }
        },
    }


def time_r(matrix: Path, samples: Path, out: Path) -> dict | None:
    script = out.parent / "voom.R"
    script.write_text(R_SCRIPT)
    env = dict(os.environ, R_LIBS=R_LIBS, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    res = subprocess.run(
        ["Rscript", str(script), str(matrix), str(samples), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        print(f"# R failed:\n{res.stderr[-3000:]}", file=sys.stderr)
        return None
    names, values = res.stdout.strip().splitlines()[-2:]
    steps = dict(zip(names.split("\t"), map(float, values.split("\t")), strict=True))
    cpu = steps.pop("cpu")
    return {
        "wall_s": time.perf_counter() - t0,
        "s": sum(steps.values()),
        "cpu_s": cpu,
        "steps": steps,
    }


def workflow_values(workdir: Path, n_kept: int) -> np.ndarray:
    import pandas as pd

    res = pd.read_csv(workdir / "results/A/results.tsv.gz", sep="\t").sort_values("feature_id")
    if len(res) != n_kept:
        raise RuntimeError(f"workflow reports {len(res)} features, R keeps {n_kept}")
    return np.concatenate([res["statistic"], res["p_value"], res["fdr"]]).astype(float)


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["60000x500", "200000x100"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--chunks", default="auto")
    parser.add_argument("--format", choices=["tsv", "parquet"], default="tsv")
    parser.add_argument("--workdir", default="/tmp/stacklm-bench/counts")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--library-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library_child:
        print(json.dumps(library_child(*args.library_child)))
        return 0
    chunks = args.chunks if args.chunks == "auto" else int(args.chunks)
    base = Path(args.workdir)
    print("# bench_counts: edgeR + limma-voom, stacklm workflow and library vs R")
    for line in bench_compute.machine():
        print("# " + line)
    print("# " + r_versions())
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"# commit {commit}; snakemake --cores {args.cores}; chunks {chunks}; workflow input "
          f"{args.format}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    rows = []
    for size in args.sizes:
        g, n = map(int, size.lower().split("x"))
        d = base / f"data_{g}x{n}"
        matrix, samples, pq_path = make_data(d, g, n, args.format == "parquet")
        row = {"features": g, "samples": n, "matrix_mib": matrix.stat().st_size / 2**20}
        wd = base / f"run_{g}x{n}"
        wf_input = pq_path or matrix
        row["workflow"] = run_snakemake(
            workflow_config(wf_input, samples, chunks),
            wd,
            args.cores,
            ["results/A/results.tsv.gz", "results/A/summary.json"],
        )
        row["workflow"]["n_chunks"] = summarize_steps(row["workflow"]["steps"])["fit_chunk"]["jobs"]
        print(f"# {g}x{n}: workflow {row['workflow']['s']:.1f} s "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
        row["library"] = time_library(matrix, samples, d / "lib_out", script=__file__)
        print(f"# {g}x{n}: library {row['library']['s']:.2f} s "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
        wf_values = workflow_values(wd, row["library"]["n_kept"])
        wf_values.tofile(str(d / "wf_out") + ".F.bin")
        if not args.no_r:
            row["r"] = time_r(matrix, samples, d / "r_out")
            if row["r"]:
                print(f"# {g}x{n}: R {row['r']['s']:.1f} s "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
                r_keep = np.fromfile(str(d / "r_out") + ".keep.bin")
                lib_keep = np.fromfile(str(d / "lib_out") + ".keep.bin")
                r_F = np.fromfile(str(d / "r_out") + ".F.bin").reshape(3, -1)
                lib_F = np.fromfile(str(d / "lib_out") + ".F.bin").reshape(3, -1)
                wf_F = wf_values.reshape(3, -1)
                row["diff"] = {
                    "keep_identical": bool(np.array_equal(r_keep, lib_keep)),
                    "n_kept_r": int(r_keep.sum()),
                    **{
                        f"{src}_{name}": bench_compute.max_rel_diff(a[k], r_F[k])
                        for src, a in (("lib", lib_F), ("wf", wf_F))
                        for k, name in enumerate(["F", "p", "BH"])
                    },
                }
        rows.append(row)

    print("\n# Summary (seconds; R = edgeR 3.40.2 + limma 3.63.2 on one thread, compute only; "
          "ratios R / stacklm)")  # fmt: skip
    header = (
        f"{'genes x samples':>16} {'kept':>7} {'R s':>7} {'library s':>9} {'R/lib':>6} "
        f"{'R CPU s':>7} {'lib CPU s':>9} {'R/lib CPU':>9} "
        f"{'workflow s':>10} {'R/wf':>6} {'wf CPU s':>8} {'chunks':>6} {'lib RSS MiB':>11} "
        f"{'fit-job RSS MiB':>15} {'max job RSS MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        lib, wf, r = row["library"], row["workflow"], row.get("r")
        steps = summarize_steps(wf["steps"])
        max_rss = max((s["rss_mib"] or 0) for s in steps.values())
        fit_rss = steps.get("fit_chunk", {}).get("rss_mib")
        rs = r and r["s"]
        print(
            f"{row['features']:>9,} x {row['samples']:<4} {lib['n_kept']:>7,} "
            f"{bench_compute.fmt(rs, '.1f'):>7} {lib['s']:>9.2f} "
            f"{bench_compute.fmt(rs and rs / lib['s'], '.1f'):>6} "
            f"{bench_compute.fmt(r and r['cpu_s'], '.1f'):>7} {lib['cpu_s']:>9.2f} "
            f"{bench_compute.fmt(r and r['cpu_s'] / lib['cpu_s'], '.1f'):>9} {wf['s']:>10.1f} "
            f"{bench_compute.fmt(rs and rs / wf['s'], '.1f'):>6} "
            f"{sum(wf.get('cpu', {}).values()):>8.1f} {wf['n_chunks']:>6} "
            f"{lib['rss_mib']:>11.0f} {bench_compute.fmt(fit_rss, '.0f'):>15} {max_rss:>15.0f}"
        )
    for row in rows:
        lib = row["library"]
        print(f"\n## {row['features']:,} x {row['samples']} ({row['matrix_mib']:.0f} MiB gzipped "
              f"TSV); filterByExpr keeps {lib['n_kept']:,}")  # fmt: skip
        print("library: " + ", ".join(f"{k} {v:.2f}" for k, v in lib["steps"].items())
              + f" = {lib['s']:.2f} s (CPU {lib['cpu_s']:.2f} s); peak RSS {lib['rss_mib']:.0f} MiB (counts read: "
              f"{lib['rss_data_mib']:.0f} MiB)")  # fmt: skip
        if row.get("r"):
            r = row["r"]
            print("R: " + ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items())
                  + f" = {r['s']:.2f} s (CPU {r['cpu_s']:.2f} s; Rscript wall incl. fread "
                  f"{r['wall_s']:.1f} s)")  # fmt: skip
        if row.get("diff"):
            d = row["diff"]
            print(f"vs R: keep flags identical: {d['keep_identical']}; max relative difference "
                  f"library F {d['lib_F']:.1e}, p {d['lib_p']:.1e}, BH {d['lib_BH']:.1e}; "
                  f"workflow F {d['wf_F']:.1e}, p {d['wf_p']:.1e}, BH {d['wf_BH']:.1e}")  # fmt: skip
        wf = row["workflow"]
        print(f"workflow: {wf['s']:.1f} s, {wf['n_chunks']} fit chunks")
        print_steps(wf)
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
