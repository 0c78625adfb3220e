"""Wall time and per-job memory of the whole Snakemake workflow on a gzipped TSV, against the time
to only parse that file with the reader the workflow uses, and against R limma on the same file.

Usage: python benchmarks/bench_workflow.py [--features 100000 1000000] [--samples 100] [--chunks 8]
                                           [--cores 2] [--workdir /tmp/stacklm-bench/workflow]
                                           [--quick] [--no-r] [--no-plots] [--json FILE]

Data (cached in --workdir, generation not timed): a seeded G x n matrix from the model of
``bench_compute.py`` (8-column design: Intercept, groupB, groupC, sexM, batch2..4, age; group
effects on 5% of the features), values rounded to 6 decimals (``7.123456``: 6-8 significant
digits, as instruments export them), written as TSV by pyarrow and gzipped (level 1, to keep the
generation of 10^6 rows at ~30 s; the reader's time hardly depends on the level), and a sample sheet
(sample_id, group, sex, batch, age).  No missing values.

Timed, each in its own process, one after the other:

* ``parse``: ``stacklm.io.read_matrix_blocks`` over the whole file (the reader of the normalize
  step, same block size), every block checked and dropped; best of 2.  Its peak RSS is the child's
  ru_maxrss.
* ``workflow``: ``snakemake --cores C --configfile cfg.yaml`` from an empty working directory with
  ``chunks`` fit jobs and one analysis ``A``: ``~ group + sex + batch + age`` (8 columns), moderated F
  over groupB and groupC.  Run twice, each from scratch: with the targets
  ``results/A/results.parquet results/A/summary.json`` (no plots) and with the default target ``all``
  (plots, sample densities, summary.md/html).  Per-step seconds come from the rules' ``benchmark:``
  files (``logs/**/*.benchmark.tsv``: the job's wall time including interpreter start-up); each
  step's peak RSS from the ``peak memory`` its log reports (the job process's ru_maxrss, exact; the
  benchmark files' max_rss is only sampled once a second).
* ``R limma`` (when Rscript with limma and data.table is found, unless --no-r): ``fread`` of the
  same gzipped TSV, ``lmFit`` + ``eBayes`` + ``topTable(coef = c("groupB", "groupC"),
  number = Inf)`` and ``fwrite`` of the table gzipped; one process (R is single-threaded here;
  data.table's fread may use both cores).

Printed: one table per size (features, parse s, workflow s, workflow/parse, largest fit-job RSS, per
step s) and the growth from the smallest to the largest size (time ratio, fit-job RSS ratio).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
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

import bench_compute  # noqa: E402  (design, data model and machine description shared)

DATA_VERSION = 1  # bump when the generator changes: cached data are re-made
SEED = 20240901

R_SCRIPT = r"""
suppressPackageStartupMessages({library(limma); library(data.table)})
a <- commandArgs(TRUE)
t0 <- proc.time()[["elapsed"]]
dt <- fread(a[1], sep = "\t", header = TRUE)
ids <- dt[[1]]
Y <- as.matrix(dt[, -1])
rownames(Y) <- ids
rm(dt); invisible(gc())
s <- read.delim(a[2], stringsAsFactors = FALSE)
s <- s[match(colnames(Y), s$sample_id), ]
s$group <- factor(s$group, levels = c("A", "B", "C"))
s$sex <- factor(s$sex, levels = c("F", "M"))
s$batch <- factor(s$batch, levels = 1:4)
X <- model.matrix(~ group + sex + batch + age, data = s)
t1 <- proc.time()[["elapsed"]]
fit <- eBayes(lmFit(Y, X))
tt <- topTable(fit, coef = c("groupB", "groupC"), number = Inf, sort.by = "none")
t2 <- proc.time()[["elapsed"]]
fwrite(tt, a[3], sep = "\t", row.names = TRUE)
t3 <- proc.time()[["elapsed"]]
cat(sprintf("%.3f", c(t3 - t0, t1 - t0, t2 - t1, t3 - t2)), sep = "\t")
cat("\n")
"""


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def write_gzip_tsv(path: Path, names, n_features: int, block: int, values_of) -> None:
    """A gzipped (level 1) features x samples TSV with ids ``F0000000...``, written block by block:
    ``values_of(start, stop)`` gives the rows of one block (shortest round-trip numbers by arrow)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(
        delimiter="\t", quoting_style="none", quoting_header="none", include_header=False
    )
    with open(path, "wb") as raw:
        gz = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container, level 1
        raw.write(gz.compress(("\t".join(["feature_id", *names]) + "\n").encode()))
        for start in range(0, n_features, block):
            stop = min(start + block, n_features)
            values = values_of(start, stop)
            cols = {"feature_id": pa.array([f"F{i:07d}" for i in range(start, stop)])}
            cols.update({name: values[:, j] for j, name in enumerate(names)})
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.table(cols), sink, options)
            raw.write(gz.compress(sink.getvalue().to_pybytes()))
        raw.write(gz.flush())


def make_data(directory: Path, n_features: int, n_samples: int) -> tuple[Path, Path]:
    """The gzipped matrix and the sample sheet, made once per (size, DATA_VERSION)."""

    directory.mkdir(parents=True, exist_ok=True)
    matrix = directory / "matrix.tsv.gz"
    samples = directory / "samples.tsv"
    stamp = directory / "made.json"
    spec = {"version": DATA_VERSION, "features": n_features, "samples": n_samples, "seed": SEED}
    if stamp.exists() and json.loads(stamp.read_text()) == spec and matrix.exists():
        return matrix, samples
    X = bench_compute.design(n_samples)
    names = [f"S{j + 1:04d}" for j in range(n_samples)]
    group = np.select([X[:, 1] == 1, X[:, 2] == 1], ["B", "C"], "A")
    batch = 1 + X[:, 4] + 2 * X[:, 5] + 3 * X[:, 6]
    with open(samples, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["sample_id", "group", "sex", "batch", "age"])
        for j in range(n_samples):
            sex = "M" if X[j, 3] == 1 else "F"
            w.writerow([names[j], group[j], sex, int(batch[j]), f"{X[j, 7]:.1f}"])
    t0 = time.perf_counter()

    def blocks(start, stop):
        values = bench_compute.synthetic(stop - start, X, 0.0, seed=SEED + start)
        return np.round(values, 6, out=values)

    tmp = matrix.with_suffix(".tmp")
    write_gzip_tsv(tmp, names, n_features, 50_000, blocks)
    tmp.rename(matrix)
    stamp.write_text(json.dumps(spec))
    print(
        f"# generated {matrix} ({matrix.stat().st_size / 2**20:.0f} MiB) in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return matrix, samples


# ------------------------------------------------------------------------------------------
# timed parts
# ------------------------------------------------------------------------------------------
def parse_child(path: str) -> dict:
    from stacklm.io.matrix import read_matrix_blocks

    t0 = time.perf_counter()
    rows = 0
    for block in read_matrix_blocks(path):
        rows += len(block.feature_ids)
    return {
        "s": time.perf_counter() - t0,
        "rows": rows,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def time_parse(matrix: Path, repeats: int = 2) -> dict:
    best = None
    for _ in range(repeats):
        res = subprocess.run(
            [sys.executable, __file__, "--parse-child", str(matrix)],
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(res.stdout.strip().splitlines()[-1])
        if best is None or out["s"] < best["s"]:
            best = out
    return best


def workflow_config(matrix: Path, samples: Path, chunks: int) -> dict:
    return {
        "matrix": str(matrix),
        "samples": str(samples),
        "sample_id": "sample_id",
        "features": None,
        "chunks": chunks,
        "analyses": {
            "A": {
                "formula": "~ group + sex + batch + age",
                "levels": {"group": ["A", "B", "C"], "batch": [1, 2, 3, 4]},
                "test": ["groupB", "groupC"],
            }
        },
    }


PEAK = re.compile(r"peak memory ([0-9.]+) MiB")


def step_name(path: Path, logs: Path) -> str:
    rel = path.relative_to(logs).as_posix()
    rel = rel.removesuffix(".benchmark.tsv").removesuffix(".log")
    return rel.split("/", 1)[1] if rel.startswith("A/") else rel


def collect_steps(workdir: Path) -> dict:
    """Per job: wall s (benchmark file), sampled max_rss and the exact peak RSS from the log."""
    logs = workdir / "logs"
    jobs: dict[str, dict] = {}
    for bench in sorted(logs.rglob("*.benchmark.tsv")):
        with open(bench) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        jobs.setdefault(step_name(bench, logs), {})["s"] = float(row["s"])
        if row.get("max_rss") not in (None, "", "NA", "-"):
            jobs[step_name(bench, logs)]["sampled_rss_mib"] = float(row["max_rss"])
        if row.get("max_pss") not in (None, "", "NA", "-"):
            # the job's process tree (forked plot workers included), shared pages counted once
            jobs[step_name(bench, logs)]["tree_pss_mib"] = float(row["max_pss"])
    for log in sorted(logs.rglob("*.log")):
        found = PEAK.findall(log.read_text(errors="replace"))
        if found:
            jobs.setdefault(step_name(log, logs), {})["rss_mib"] = float(found[-1])
    return jobs


def run_snakemake(config: dict, workdir: Path, cores: int, targets) -> dict:
    """``snakemake --cores C`` of ``targets`` with ``config`` from an empty ``workdir``: wall
    seconds, per-job seconds and peak RSS (:func:`collect_steps`) and per-rule CPU seconds."""
    import yaml

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    # targets first: --configfile and --quiet take several values
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--cores", str(cores), "--quiet", "rules"]
    cmd += ["--configfile", str(cfg)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{res.stderr[-5000:]}")
    return {"s": wall, "steps": collect_steps(workdir), "cpu": job_cpu(workdir)}


def job_cpu(workdir: Path) -> dict:
    """Per rule: the CPU seconds of its jobs (the benchmark files' cpu_time column, summed)."""
    out: dict[str, float] = {}
    for bench in sorted((workdir / "logs").rglob("*.benchmark.tsv")):
        with open(bench) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        name = bench.name.removesuffix(".benchmark.tsv")
        rule = re.sub(r"_\d+$", "", name)
        if row.get("cpu_time") not in (None, "", "NA", "-"):
            out[rule] = out.get(rule, 0.0) + float(row["cpu_time"])
    return out


def time_workflow(
    matrix: Path, samples: Path, workdir: Path, chunks: int, cores: int, targets
) -> dict:
    out = run_snakemake(workflow_config(matrix, samples, chunks), workdir, cores, targets)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {**out, "targets": list(targets) or ["all"],
            "children_cpu_s": children.ru_utime + children.ru_stime}  # fmt: skip


def time_r(matrix: Path, samples: Path, workdir: Path) -> dict | None:
    script = workdir / "limma_workflow.R"
    script.write_text(R_SCRIPT)
    out = workdir / "r_toptable.tsv.gz"
    t0 = time.perf_counter()
    res = subprocess.run(
        ["Rscript", str(script), str(matrix), str(samples), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        print(f"# R limma failed:\n{res.stderr[-3000:]}", file=sys.stderr)
        return None
    total, read_s, fit_s, write_s = map(float, res.stdout.strip().splitlines()[-1].split("\t"))
    return {"s": wall, "inside_s": total, "read_s": read_s, "limma_s": fit_s, "write_s": write_s}


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    res = subprocess.run(
        [
            "Rscript",
            "-e",
            "quit(status = !(requireNamespace('limma', quietly = TRUE) && "
            "requireNamespace('data.table', quietly = TRUE)))",
        ],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
STEP_ORDER = [
    "normalize",
    "base_design",
    "surrogate_variables",
    "design",
    "fit_chunk",
    "moderate",
    "sample_distributions",
    "plots",
]


def summarize_steps(steps: dict) -> dict:
    """Per rule: total s over its jobs, max s, max exact RSS."""
    out: dict[str, dict] = {}
    for name, info in steps.items():
        rule = re.sub(r"_\d+$", "", name)
        agg = out.setdefault(
            rule, {"jobs": 0, "s": 0.0, "max_s": 0.0, "rss_mib": None, "tree_pss_mib": None}
        )
        agg["jobs"] += 1
        agg["s"] += info.get("s", 0.0)
        agg["max_s"] = max(agg["max_s"], info.get("s", 0.0))
        for key in ("rss_mib", "tree_pss_mib"):
            if key in info:
                agg[key] = max(agg[key] or 0.0, info[key])
    return out


def print_size(row: dict) -> None:
    g, n = row["features"], row["samples"]
    parse = row["parse"]["s"]
    print(f"\n## {g:,} x {n} ({row['matrix_mib']:.0f} MiB gzipped TSV), {row['chunks']} chunks")
    print(f"parse only (stacklm.io block reader): {parse:.2f} s, peak RSS "
          f"{row['parse']['rss_mib']:.0f} MiB")  # fmt: skip
    for key, label in (("workflow", "results only"), ("workflow_all", "with plots (all)")):
        wf = row.get(key)
        if wf:
            print(f"workflow, {label:<17}: {wf['s']:.2f} s = {wf['s'] / parse:.2f} x parse")
    if row.get("r"):
        r = row["r"]
        print(
            f"R limma (fread + lmFit + eBayes + topTable + fwrite): {r['s']:.2f} s (read "
            f"{r['read_s']:.2f}, limma {r['limma_s']:.2f}, write {r['write_s']:.2f}) = "
            f"{r['s'] / row['workflow']['s']:.1f} x the workflow (results only)"
        )
    wf = row.get("workflow_all") or row["workflow"]
    steps = summarize_steps(wf["steps"])
    print(f"{'step':<22} {'jobs':>4} {'sum s':>8} {'max s':>8} {'peak RSS MiB':>13}")
    for rule in STEP_ORDER + sorted(set(steps) - set(STEP_ORDER)):
        if rule in steps:
            s = steps[rule]
            rss = "-" if s["rss_mib"] is None else f"{s['rss_mib']:.0f}"
            print(f"{rule:<22} {s['jobs']:>4} {s['s']:>8.2f} {s['max_s']:>8.2f} {rss:>13}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/stacklm-bench/workflow")
    parser.add_argument("--quick", action="store_true", help="10k and 50k features")
    parser.add_argument("--no-r", action="store_true", help="skip R limma")
    parser.add_argument("--no-plots", action="store_true", help="skip the run with plots")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--parse-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_child:
        print(json.dumps(parse_child(args.parse_child)))
        return 0
    sizes = [10_000, 50_000] if args.quick else args.features
    base = Path(args.workdir)
    use_r = not args.no_r and r_available()

    print("# bench_workflow: whole Snakemake workflow vs parsing the input only (and R limma)")
    for line in bench_compute.machine():
        print("# " + line)
    print(f"# snakemake --cores {args.cores}; chunks {args.chunks}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    rows = []
    for g in sizes:
        data = base / f"data_{g}x{args.samples}"
        matrix, samples = make_data(data, g, args.samples)
        row = {
            "features": g,
            "samples": args.samples,
            "chunks": args.chunks,
            "matrix_mib": matrix.stat().st_size / 2**20,
        }
        row["parse"] = time_parse(matrix)
        print(f"# {g}: parse {row['parse']['s']:.2f} s", flush=True)
        row["workflow"] = time_workflow(
            matrix,
            samples,
            base / f"run_{g}_results",
            args.chunks,
            args.cores,
            ["results/A/results.parquet", "results/A/summary.json"],
        )
        print(f"# {g}: workflow (results) {row['workflow']['s']:.2f} s", flush=True)
        if not args.no_plots:
            row["workflow_all"] = time_workflow(
                matrix, samples, base / f"run_{g}_all", args.chunks, args.cores, []
            )
            print(f"# {g}: workflow (all) {row['workflow_all']['s']:.2f} s", flush=True)
        if use_r:
            row["r"] = time_r(matrix, samples, data)
            if row["r"]:
                print(f"# {g}: R limma {row['r']['s']:.2f} s", flush=True)
        rows.append(row)

    print("\n# Summary (workflow = results only; fit RSS = largest peak RSS of the fit jobs)")
    header = (
        f"{'features':>10} {'parse s':>8} {'workflow s':>10} {'ratio':>6} {'with plots s':>12} "
        f"{'R limma s':>9} {'R/workflow':>10} {'max fit-job RSS MiB':>19} {'max job RSS MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        wf = row["workflow"]
        steps = summarize_steps(wf["steps"])
        fit_rss = steps.get("fit_chunk", {}).get("rss_mib")
        all_rss = max((s["rss_mib"] or 0) for s in steps.values())
        plots = row.get("workflow_all", {}).get("s")
        r = (row.get("r") or {}).get("s")
        print(
            f"{row['features']:>10,} {row['parse']['s']:>8.2f} {wf['s']:>10.2f} "
            f"{wf['s'] / row['parse']['s']:>6.2f} {bench_compute.fmt(plots):>12} "
            f"{bench_compute.fmt(r):>9} {bench_compute.fmt(r and r / wf['s'], '.1f'):>10} "
            f"{bench_compute.fmt(fit_rss, '.0f'):>19} {all_rss:>15.0f}"
        )
    for row in rows:
        print_size(row)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        fa = summarize_steps(a["workflow"]["steps"]).get("fit_chunk", {}).get("rss_mib")
        fb = summarize_steps(b["workflow"]["steps"]).get("fit_chunk", {}).get("rss_mib")
        print(
            f"\n# growth {a['features']:,} -> {b['features']:,} features "
            f"({b['features'] / a['features']:.0f}x): workflow time "
            f"{b['workflow']['s'] / a['workflow']['s']:.2f}x, parse "
            f"{b['parse']['s'] / a['parse']['s']:.2f}x"
            + (
                f", with plots {b['workflow_all']['s'] / a['workflow_all']['s']:.2f}x"
                if a.get("workflow_all") and b.get("workflow_all")
                else ""
            )
            + (f", fit-job peak RSS {fb / fa:.2f}x ({fa:.0f} -> {fb:.0f} MiB)" if fa and fb else "")
        )
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
