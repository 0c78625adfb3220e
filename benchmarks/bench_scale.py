"""The whole workflow from Parquet at scale, against R limma's compute alone, with every job's time
and peak memory (issue 19's sizes).

Usage: python benchmarks/bench_scale.py [--sizes 100000x100 1000000x100 850000x400 1000000x1000]
                                        [--cores 2] [--workdir /tmp/stacklm-bench/scale]
                                        [--no-r] [--no-plots] [--r-max-gb 16] [--json FILE]
                                        [--repeats 1]

Data (cached in --workdir, generation not timed): the seeded G x n matrix of ``bench_compute.py``
(8-column design: Intercept, groupB, groupC, sexM, batch2..4, age; group effects on 5% of the
features; no missing values) as Parquet (feature_id + one float64 column per sample, row groups of
65,536 rows, zstd), the sample sheet, and for R the same values as raw column-major float64.

Timed, each in its own process, one after the other, per size:

* ``R limma``: ``readBin`` of the raw matrix (not timed), then ``fit <- eBayes(lmFit(Y, X))`` and
  ``topTable(fit, coef = 2:3, number = Inf)`` (the F over groupB and groupC), timed inside R; R's
  peak RSS is the Rscript process's ru_maxrss (``wait4``).  Skipped when the matrix would need more
  than --r-max-gb (R holds ~6 copies of it: 1,000,000 x 1,000 needs ~50 GB).
* ``workflow, results``: ``snakemake --cores C`` from an empty directory with ``chunks: auto`` and one
  analysis ``A`` (``~ group + sex + batch + age``, test groupB and groupC: moderated F), targets
  ``results/A/results.parquet results/A/summary.json``.
* ``workflow, all``: the same with the default target (every plot, summary.md/html; results.tsv.gz
  when ``results_tsv: auto`` asks for it).

Per job: seconds from the rules' ``benchmark:`` files (wall, including interpreter start-up), the
exact peak RSS each step's log reports (the job process itself), and the benchmark file's sampled
peak PSS of the job's whole process tree (the plots job's forked drawing workers included; shared
pages counted once, as a cgroup charges them).
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_compute  # noqa: E402  (design, data model and machine description)
from bench_workflow import run_snakemake, summarize_steps, workflow_config  # noqa: E402

DATA_VERSION = 1
SEED = 20241901
ROW_GROUP = 65536

R_SCRIPT = r"""
suppressPackageStartupMessages(library(limma))
a <- commandArgs(TRUE)
g <- as.integer(a[2]); n <- as.integer(a[3])
Y <- matrix(readBin(a[1], "double", g * n), g, n)
s <- read.delim(a[4], stringsAsFactors = FALSE)
s$group <- factor(s$group, levels = c("A", "B", "C"))
s$sex <- factor(s$sex, levels = c("F", "M"))
s$batch <- factor(s$batch, levels = 1:4)
X <- model.matrix(~ group + sex + batch + age, data = s)
invisible(gc())
t0 <- proc.time()[["elapsed"]]
fit <- eBayes(lmFit(Y, X))
tt <- topTable(fit, coef = 2:3, number = Inf)
t1 <- proc.time()[["elapsed"]]
cat(sprintf("%.3f", t1 - t0), nrow(tt), sep = "\t")
cat("\n")
"""


def parse_size(text: str) -> tuple[int, int]:
    g, n = text.lower().split("x")
    return int(g), int(n)


def make_data(directory: Path, g: int, n: int, with_raw: bool) -> tuple[Path, Path, Path | None]:
    """Parquet matrix, sample sheet and (for R) the raw column-major matrix, made once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    matrix, samples, raw = directory / "matrix.parquet", directory / "samples.tsv", None
    stamp = directory / "made.json"
    spec = {"version": DATA_VERSION, "features": g, "samples": n, "seed": SEED}
    made = stamp.exists() and json.loads(stamp.read_text()) == spec and matrix.exists()
    X = bench_compute.design(n)
    names = [f"S{j + 1:04d}" for j in range(n)]
    if not made:
        t0 = time.perf_counter()
        group = np.select([X[:, 1] == 1, X[:, 2] == 1], ["B", "C"], "A")
        batch = (1 + X[:, 4] + 2 * X[:, 5] + 3 * X[:, 6]).astype(int)
        lines = ["sample_id\tgroup\tsex\tbatch\tage"]
        lines += [
            f"{names[j]}\t{group[j]}\t{'M' if X[j, 3] else 'F'}\t{batch[j]}\t{X[j, 7]:.1f}"
            for j in range(n)
        ]
        samples.write_text("\n".join(lines) + "\n")
        schema = pa.schema([("feature_id", pa.string())] + [(s, pa.float64()) for s in names])
        tmp = matrix.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for start in range(0, g, ROW_GROUP):
                stop = min(start + ROW_GROUP, g)
                Y = bench_compute.synthetic(stop - start, X, 0.0, seed=SEED + start)
                cols = [pa.array([f"F{i:07d}" for i in range(start, stop)])]
                cols += [pa.array(Y[:, j]) for j in range(n)]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
        tmp.rename(matrix)
        (directory / "matrix.raw").unlink(missing_ok=True)
        stamp.write_text(json.dumps(spec))
        print(f"# generated {matrix} ({matrix.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    if with_raw:
        raw = directory / "matrix.raw"
        if not raw.exists():
            import pyarrow.parquet as pq

            tmp = raw.with_suffix(".tmp")
            pf = pq.ParquetFile(matrix)
            with open(tmp, "wb") as fh:  # column-major: one sample column after another
                for name in names:
                    col = pf.read(columns=[name]).column(0).to_numpy()
                    col.astype(np.float64).tofile(fh)
            tmp.rename(raw)
    return matrix, samples, raw


def time_r(raw: Path, samples: Path, g: int, n: int, workdir: Path) -> dict | None:
    script = workdir / "limma_compute.R"
    script.write_text(R_SCRIPT)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["Rscript", str(script), str(raw), str(g), str(n), str(samples)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        print(f"# R limma failed:\n{err[-3000:]}", file=sys.stderr)
        return None
    compute, rows = out.strip().splitlines()[-1].split("\t")
    return {
        "compute_s": float(compute),
        "process_s": wall,
        "rows": int(rows),
        "rss_mib": usage.ru_maxrss / 1024,
    }


def time_workflow(matrix: Path, samples: Path, workdir: Path, cores: int, targets) -> dict:
    out = run_snakemake(workflow_config(matrix, samples, "auto"), workdir, cores, targets)
    return {**out, "targets": list(targets) or ["all"]}


def print_row(row: dict) -> None:
    g, n = row["features"], row["samples"]
    print(f"\n## {g:,} x {n} (Parquet {row['matrix_mib']:.0f} MiB)")
    r = row.get("r")
    if r:
        print(f"R limma compute (eBayes(lmFit) + topTable(coef = 2:3, number = Inf)): "
              f"{r['compute_s']:.2f} s{_runs(r)}; Rscript peak RSS {r['rss_mib']:.0f} MiB")  # fmt: skip
    else:
        print(f"R limma: {row.get('r_note', 'not run')}")
    for key, label in (("results", "results only"), ("all", "all targets")):
        wf = row.get(key)
        if not wf:
            continue
        ratio = f" = {wf['s'] / r['compute_s']:.2f} x R's compute" if r else ""
        peak = max(
            max(s.get("rss_mib") or 0, s.get("tree_pss_mib") or 0) for s in wf["steps"].values()
        )
        print(f"workflow, {label}: {wf['s']:.1f} s{_runs(wf)}{ratio}; largest job peak {peak:.0f} MiB "
              "(the larger of its own RSS and its tree's PSS)")  # fmt: skip
        steps = summarize_steps(wf["steps"])
        print(f"  {'step':<22} {'jobs':>4} {'sum s':>8} {'max s':>8} {'peak RSS MiB':>13} "
              f"{'tree PSS MiB':>13}")  # fmt: skip
        for rule in sorted(steps, key=lambda k: -steps[k]["s"]):
            s = steps[rule]
            rss = "-" if s["rss_mib"] is None else f"{s['rss_mib']:.0f}"
            pss = "-" if s.get("tree_pss_mib") is None else f"{s['tree_pss_mib']:.0f}"
            print(f"  {rule:<22} {s['jobs']:>4} {s['s']:>8.2f} {s['max_s']:>8.2f} {rss:>13} "
                  f"{pss:>13}")  # fmt: skip


def _runs(run: dict) -> str:
    """' (median of runs a, b, c)' when the size was run more than once."""
    found = run.get("runs") or []
    if len(found) < 2:
        return ""
    return f" (median of {', '.join(f'{x:.2f}' for x in found)})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["100000x100", "1000000x100", "850000x400", "1000000x1000"]
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/stacklm-bench/scale")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--r-max-gb", type=float, default=16.0)
    parser.add_argument("--json")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each (R and workflow interleaved): medians"
    )
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    print("# bench_scale: whole workflow from Parquet (chunks: auto) vs R limma's compute alone")
    for line in bench_compute.machine():
        print(line)
    print(f"# snakemake --cores {args.cores}; load average before: {os.getloadavg()}", flush=True)
    rows = []
    for text in args.sizes:
        g, n = parse_size(text)
        r_gb = 6 * g * n * 8 / 1e9
        want_r = not args.no_r and shutil.which("Rscript") and r_gb <= args.r_max_gb
        data = work / f"data_{g}x{n}"
        matrix, samples, raw = make_data(data, g, n, bool(want_r))
        row = {"features": g, "samples": n, "matrix_mib": matrix.stat().st_size / 2**20}
        if not want_r:
            row["r_note"] = (
                "not run (--no-r)"
                if args.no_r
                else f"not run (would need ~{r_gb:.0f} GB > --r-max-gb)"
            )
        runs: dict[str, list] = {"r": [], "results": [], "all": []}
        for _ in range(args.repeats):  # R and the two workflow runs interleaved
            if want_r:
                runs["r"].append(time_r(raw, samples, g, n, data))
                print(f"# {text}: R compute {runs['r'][-1]['compute_s']:.2f} s", flush=True)
            runs["results"].append(time_workflow(
                matrix, samples, work / f"run_{text}", args.cores,
                ["results/A/results.parquet", "results/A/summary.json"],
            ))  # fmt: skip
            print(f"# {text}: workflow results {runs['results'][-1]['s']:.1f} s", flush=True)
            if not args.no_plots:
                runs["all"].append(
                    time_workflow(matrix, samples, work / f"run_{text}", args.cores, [])
                )
                print(f"# {text}: workflow all {runs['all'][-1]['s']:.1f} s", flush=True)
        for key, found in runs.items():  # the median run of each (its steps are shown)
            if found:
                wall = "compute_s" if key == "r" else "s"
                found = sorted(found, key=lambda run, wall=wall: run[wall])
                row[key] = dict(found[(len(found) - 1) // 2], runs=[x[wall] for x in found])
        rows.append(row)
    print(f"\n# load average after: {os.getloadavg()}")
    for row in rows:
        print_row(row)
    if len(rows) > 1:
        a, b = rows[0], rows[1]
        if a["samples"] == b["samples"] and "results" in a and "results" in b:
            ta, tb = a["results"]["s"], b["results"]["s"]
            pa_ = max((s.get("rss_mib") or 0) for s in a["results"]["steps"].values())
            pb_ = max((s.get("rss_mib") or 0) for s in b["results"]["steps"].values())
            print(f"\n# growth {a['features']:,} -> {b['features']:,} features: time "
                  f"{tb / ta:.2f}x, largest job RSS {pb_ / pa_:.2f}x ({pa_:.0f} -> {pb_:.0f} MiB)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
