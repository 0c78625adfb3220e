"""Compute time of stacklm (lm_fit + e_bayes + moderated F + BH) against R limma and a numpy lstsq baseline.

Usage: python benchmarks/bench_compute.py [--quick] [--threads 1] [--no-r] [--cases NAME ...]

Every case runs in its own subprocess, so its peak RSS (ru_maxrss) is its own. The data are seeded
and synthetic: G features x n samples with an 8-column design (Intercept, a 3-level factor
``group`` -> groupB, groupC, ``sex`` -> sexM, a 4-level ``batch`` -> batch2..4, and a continuous
``age``); per-feature variances drawn from a scaled inverse chi-square (s0 = 0.5, d0 = 4), group
effects on 5% of the features, batch effects on all of them. The "NA" case sets 2% of the entries
to missing, scattered at random (almost every feature then has its own missingness pattern).

Timed, on the same in-memory matrix:

* stacklm: ``lm_fit`` + ``e_bayes`` + ``moderated_f`` over groupB and groupC (topTable's F) +
  ``p_adjust(BH)``, BLAS threads fixed with threadpoolctl (``--threads``); best of ``--repeats``.
* numpy: ``np.linalg.lstsq(X, Y.T)`` (coefficients only, complete data; NaN rows are not
  meaningful there), same threads.
* R limma (when ``Rscript`` with limma is found): ``lmFit(Y, X); eBayes(fit);
  topTable(fit, coef = c(2, 3), number = Inf)``. The matrix is handed over as raw float64
  (``readBin``) and only the three calls are timed, inside R (``proc.time``). R here uses its
  reference BLAS; limma's fits do not go through BLAS threads.

Each case checks that stacklm's F, F p-values and BH-adjusted p-values equal R's
(max relative difference, values within 1e-12 absolute counted as equal) and reports the largest
difference. stacklm's peak RSS is the subprocess's high-water mark (VmHWM, reset through
/proc/self/clear_refs after the data are made) at the end of the stacklm run, before the numpy
baseline: the interpreter with its imports ("base"), the data matrix itself and stacklm's working
memory and results. R's is the Rscript child's ru_maxrss (its copy of the data included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from stacklm.workflow.steps import peak_rss_mib

DESIGN_NAMES = [
    "Intercept",
    "groupB",
    "groupC",
    "sexM",
    "batch2",
    "batch3",
    "batch4",
    "age",
]
F_COEFS = ["groupB", "groupC"]
SEED = 20240801

# name: (features, samples, fraction missing)
FULL_CASES = {
    "20k x 100": (20_000, 100, 0.0),
    "200k x 100": (200_000, 100, 0.0),
    "1M x 100": (1_000_000, 100, 0.0),
    "100k x 1000": (100_000, 1000, 0.0),
    "200k x 100, 2% NA": (200_000, 100, 0.02),
}
QUICK_CASES = {
    "5k x 100": (5_000, 100, 0.0),
    "20k x 100": (20_000, 100, 0.0),
    "5k x 1000": (5_000, 1000, 0.0),
    "20k x 100, 2% NA": (20_000, 100, 0.02),
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(limma))
a <- commandArgs(TRUE)
G <- as.numeric(a[2]); n <- as.integer(a[3]); reps <- as.integer(a[6])
Y <- matrix(readBin(a[1], "double", G * n), G, n)
X <- matrix(readBin(a[4], "double", n * 8), n, 8)
colnames(X) <- c("Intercept", "groupB", "groupC", "sexM", "batch2", "batch3", "batch4", "age")
best <- c(total = Inf)
for (r in seq_len(reps)) {
  invisible(gc())
  t0 <- proc.time()[["elapsed"]]
  fit <- lmFit(Y, X)
  t1 <- proc.time()[["elapsed"]]
  fit <- eBayes(fit)
  t2 <- proc.time()[["elapsed"]]
  tt <- topTable(fit, coef = c(2, 3), number = Inf)
  t3 <- proc.time()[["elapsed"]]
  if (t3 - t0 < best[["total"]])
    best <- c(total = t3 - t0, lmFit = t1 - t0, eBayes = t2 - t1, topTable = t3 - t2)
}
o <- as.integer(rownames(tt))
out <- matrix(NA_real_, G, 3)
out[o, 1] <- tt$F
out[o, 2] <- tt$P.Value
out[o, 3] <- tt$adj.P.Val
writeBin(as.vector(out), a[5])
cat(sprintf("%.6f", best), sep = "\t")
cat("\n")
"""


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def design(n_samples: int) -> np.ndarray:
    """The seeded n x 8 design: Intercept, groupB, groupC, sexM, batch2, batch3, batch4, age."""
    rng = np.random.default_rng(SEED)
    group = np.arange(n_samples) % 3
    sex = rng.integers(0, 2, n_samples)
    batch = rng.permutation(np.arange(n_samples) % 4)
    age = np.round(rng.uniform(20, 70, n_samples), 1)
    X = np.column_stack(
        [
            np.ones(n_samples),
            group == 1,
            group == 2,
            sex == 1,
            batch == 1,
            batch == 2,
            batch == 3,
            age,
        ]
    ).astype(np.float64)
    assert np.linalg.matrix_rank(X) == X.shape[1]
    return X


def synthetic(
    n_features: int, X: np.ndarray, na_fraction: float, block_values: int = 1 << 21, seed=SEED + 1
):
    """Seeded G x n matrix, filled block by block (no full-size temporaries)."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    block = max(1, block_values // n)
    Y = np.empty((n_features, n))
    for start in range(0, n_features, block):
        stop = min(start + block, n_features)
        g = stop - start
        sigma = 0.5 * np.sqrt(4.0 / rng.chisquare(4.0, g))
        B = np.zeros((g, X.shape[1]))
        B[:, 0] = rng.normal(8.0, 1.0, g)
        hit = rng.random(g) < 0.05
        B[hit, 1:3] = rng.normal(0.0, 0.8, (int(hit.sum()), 2))
        B[:, 3] = rng.normal(0.0, 0.1, g)
        B[:, 4:7] = rng.normal(0.0, 0.3, (g, 3))
        B[:, 7] = rng.normal(0.0, 0.005, g)
        part = rng.standard_normal((g, n))
        part *= sigma[:, None]
        part += B @ X.T
        if na_fraction > 0:
            part[rng.random((g, n)) < na_fraction] = np.nan
        Y[start:stop] = part
    return Y


def write_column_major(path: Path, Y: np.ndarray, block: int = 8) -> None:
    """Raw float64 in R's (column-major) order, written a few columns at a time."""
    with open(path, "wb") as fh:
        for j in range(0, Y.shape[1], block):
            np.ascontiguousarray(Y[:, j : j + block].T).tofile(fh)


# ------------------------------------------------------------------------------------------
# one case (in its own process)
# ------------------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Start a new peak-RSS measurement (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def stacklm_compute(Y: np.ndarray, X: np.ndarray):
    from stacklm.limma.ebayes import e_bayes
    from stacklm.limma.ftest import moderated_f
    from stacklm.limma.lmfit import lm_fit
    from stacklm.multiple_testing.padjust import p_adjust

    t0 = time.perf_counter()
    fit = lm_fit(Y, X, coef_names=DESIGN_NAMES)
    t1 = time.perf_counter()
    eb = e_bayes(fit)
    t2 = time.perf_counter()
    F, p = moderated_f(eb, F_COEFS)
    t3 = time.perf_counter()
    fdr = p_adjust(p, "BH")
    t4 = time.perf_counter()
    times = {"total": t4 - t0, "lm_fit": t1 - t0, "e_bayes": t2 - t1, "F": t3 - t2, "BH": t4 - t3}
    return times, np.column_stack([F, p, fdr])


def max_rel_diff(a: np.ndarray, b: np.ndarray, atol: float = 1e-12) -> float:
    """As tests/conftest.py: largest |a - b| / |b|, differences <= atol count as 0; NaN must match."""
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    ok = ~np.isnan(b)
    diff = np.abs(a[ok] - b[ok])
    rel = np.where(diff <= atol, 0.0, diff / np.maximum(np.abs(b[ok]), np.finfo(float).tiny))
    return float(rel.max()) if rel.size else 0.0


def run_case(
    n_features, n_samples, na_fraction, threads, repeats, lstsq_repeats, r_repeats, use_r
) -> dict:
    from threadpoolctl import threadpool_info, threadpool_limits

    import stacklm.limma.ebayes  # noqa: F401  (imports counted in the baseline, not in the data)
    import stacklm.limma.lmfit  # noqa: F401
    import stacklm.multiple_testing.padjust  # noqa: F401

    baseline = peak_rss_mib()
    X = design(n_samples)
    t0 = time.perf_counter()
    Y = synthetic(n_features, X, na_fraction)
    out = {
        "features": n_features,
        "samples": n_samples,
        "na_fraction": na_fraction,
        "na_rows": int(np.isnan(Y).any(axis=1).sum()) if na_fraction else 0,
        "generate_s": time.perf_counter() - t0,
        "data_mb": Y.nbytes / 2**20,
        "baseline_rss_mb": baseline,
        "rss_after_data_mb": peak_rss_mib(),
        "threads": threads,
    }
    out["peak_reset"] = reset_peak_rss()
    with threadpool_limits(limits=threads, user_api="blas"):
        out["blas"] = sorted(
            {
                f"{i['internal_api']} {i.get('version')} x{i['num_threads']}"
                for i in threadpool_info()
            }
        )
        best = None
        for _ in range(repeats):
            times, ours = stacklm_compute(Y, X)
            if best is None or times["total"] < best["total"]:
                best = times
        out["stacklm"] = best
        out["stacklm_peak_rss_mb"] = peak_rss_mib()
        lstsq = []
        Yc = np.nan_to_num(Y) if na_fraction else Y
        for _ in range(lstsq_repeats):
            t0 = time.perf_counter()
            coef, *_ = np.linalg.lstsq(X, Yc.T, rcond=None)
            lstsq.append(time.perf_counter() - t0)
            del coef
        out["numpy_lstsq_s"] = min(lstsq)
        del Yc
    if use_r:
        with tempfile.TemporaryDirectory(prefix="bench_compute_") as tmp:
            tmp = Path(tmp)
            write_column_major(tmp / "Y.bin", Y)
            X.T.copy().tofile(tmp / "X.bin")
            (tmp / "limma.R").write_text(R_SCRIPT)
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            args = [str(tmp / f) for f in ("Y.bin",)] + [str(n_features), str(n_samples)]
            args += [str(tmp / "X.bin"), str(tmp / "r_out.bin"), str(r_repeats)]
            res = subprocess.run(
                ["Rscript", str(tmp / "limma.R"), *args],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if res.returncode != 0:
                raise RuntimeError(f"Rscript failed:\n{res.stderr}")
            total, fit_s, eb_s, tt_s = map(float, res.stdout.strip().splitlines()[-1].split("\t"))
            out["r"] = {"total": total, "lmFit": fit_s, "eBayes": eb_s, "topTable": tt_s}
            out["r_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            theirs = np.fromfile(tmp / "r_out.bin").reshape(3, n_features).T
        out["max_rel_diff"] = {
            name: max_rel_diff(ours[:, j], theirs[:, j])
            for j, name in enumerate(["F", "P.Value", "adj.P.Val"])
        }
    return out


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------
def _version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> list[str]:
    import numpy
    import pandas
    import scipy

    model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    from stacklm import __version__ as stacklm_version

    lines = [
        f"CPU: {model}, {os.cpu_count()} logical cores; RAM {mem_kb / 2**20:.1f} GiB; "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
        f"pandas {pandas.__version__}, stacklm {stacklm_version}",
    ]
    from threadpoolctl import threadpool_info

    lines.append(
        "numpy/scipy BLAS: "
        + "; ".join(
            sorted(
                {
                    f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
                    f"{i['num_threads']} threads by default)"
                    for i in threadpool_info()
                    if i.get("user_api") == "blas"
                }
            )
        )
    )
    r = _version(
        [
            "Rscript",
            "-e",
            'cat(R.version.string, "limma", as.character(packageVersion("limma")), '
            'sep = " "); cat(" BLAS:", extSoftVersion()[["BLAS"]], "\\n")',
        ]
    )
    lines.append(r if r else "R: not found")
    return lines


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    res = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('limma', quietly = TRUE))"],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a few seconds)")
    parser.add_argument("--cases", nargs="+", help="run only these case names")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for stacklm/numpy")
    parser.add_argument("--repeats", type=int, default=None, help="best of N (default 3, full: 2)")
    parser.add_argument("--no-r", action="store_true", help="skip R limma")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        spec = json.loads(args.one)
        print(json.dumps(run_case(**spec)))
        return 0

    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases}
    use_r = not args.no_r and r_available()
    repeats = args.repeats or (3 if args.quick else 2)
    print("# bench_compute: stacklm (lm_fit + e_bayes + moderated F + BH) vs R limma and numpy")
    for line in machine():
        print("# " + line)
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"# BLAS threads for stacklm and numpy: {args.threads}; stacklm: best of {repeats}; "
        f"numpy and R: best of {repeats}, one run from 5e7 values (R: also with NA)"
    )
    print(flush=True)
    rows = []
    for name, (g, n, na) in cases.items():
        big = g * n >= 50_000_000
        spec = {
            "n_features": g,
            "n_samples": n,
            "na_fraction": na,
            "threads": args.threads,
            "repeats": repeats,
            "lstsq_repeats": 1 if big else repeats,
            "r_repeats": 1 if (big or na) else repeats,
            "use_r": use_r,
        }
        load = os.getloadavg()[0]
        res = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        row = json.loads(res.stdout.strip().splitlines()[-1])
        row["case"] = name
        row["load_before"] = load
        rows.append(row)
        s = row["stacklm"]
        r = row.get("r")
        print(
            f"# {name}: stacklm {s['total']:.3f}s (lm_fit {s['lm_fit']:.3f}, e_bayes "
            f"{s['e_bayes']:.3f}, F {s['F']:.3f}, BH {s['BH']:.3f})"
            + (
                f"; R {r['total']:.2f}s (lmFit {r['lmFit']:.2f}, eBayes {r['eBayes']:.2f}, "
                f"topTable {r['topTable']:.2f})"
                if r
                else ""
            )
            + f"; load before {load:.2f}",
            flush=True,
        )

    print()
    header = (
        f"{'case':<18} {'stacklm s':>9} {'numpy lstsq s':>13} {'R limma s':>9} "
        f"{'R/stacklm':>9} {'stacklm peak RSS MB (data, base)':>32} {'R RSS MB':>8} "
        f"{'threads':>7} {'max rel diff p (F, BH)':>27}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.get("r")
        s = row["stacklm"]["total"]
        d = row.get("max_rel_diff")
        diff = f"{d['P.Value']:.1e} ({d['F']:.1e}, {d['adj.P.Val']:.1e})" if d else "-"
        rss = (
            f"{row['stacklm_peak_rss_mb']:.0f} ({row['data_mb']:.0f}, {row['baseline_rss_mb']:.0f})"
        )
        print(
            f"{row['case']:<18} {s:>9.3f} {row['numpy_lstsq_s']:>13.3f} "
            f"{fmt(r and r['total']):>9} {fmt(r and r['total'] / s, '.1f'):>9} "
            f"{rss:>32} {fmt(row.get('r_peak_rss_mb'), '.0f'):>8} {row['threads']:>7} {diff:>27}"
        )
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    bad = [
        r["case"] for r in rows if r.get("max_rel_diff") and max(r["max_rel_diff"].values()) > 1e-8
    ]
    if bad:
        print(f"# DISAGREEMENT with R above 1e-8 in: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
