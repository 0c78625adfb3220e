"""Time and peak memory of reading a large gzipped TSV matrix: stacklm.io's block reader against
pandas.read_csv (default C parser), in the same run on the same file.

Usage: python benchmarks/bench_read.py [--features 200000] [--samples 100] [--na 0.01]
                                                       [--block-rows 100000] [--keep DIR | --matrix FILE]

A seeded matrix (normal values around 8 with sd 2, a fraction --na of cells missing, written "NA")
is written with 17 significant digits ("%.17g") and gzip level 6 to a temporary directory.  Each
reader then runs in its own subprocess, so the peak RSS (ru_maxrss) it reports is its own:

* ``stacklm blocks``  - ``read_matrix_blocks`` streamed (each block checked, then dropped)
* ``stacklm matrix``  - ``read_matrix`` (the whole G x n float64 matrix in memory)
* ``pandas default``  - ``pandas.read_csv(path, sep="\\t", index_col=0)``
* ``pandas round_trip`` - the same with ``float_precision="round_trip"`` (exact parsing)

Afterwards one more subprocess counts how many values each pandas parser reads differently from
the exact value (stacklm reads them bit-exactly; the test suite checks that).  The baseline RSS of
an interpreter that has imported numpy, pandas and pyarrow is reported too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_matrix(path: Path, n_features: int, n_samples: int, na: float, seed: int = 20240611):
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt", compresslevel=6, newline="\n") as fh:
        fh.write("\t".join(["feature_id"] + [f"S{j:03d}" for j in range(n_samples)]) + "\n")
        block = 10_000
        for start in range(0, n_features, block):
            g = min(block, n_features - start)
            values = rng.normal(8.0, 2.0, size=(g, n_samples))
            missing = rng.random((g, n_samples)) < na
            lines = []
            for k in range(g):
                cells = [
                    "NA" if m else f"{v:.17g}"
                    for v, m in zip(values[k].tolist(), missing[k].tolist(), strict=True)
                ]
                lines.append(f"F{start + k:07d}\t" + "\t".join(cells))
            fh.write("\n".join(lines) + "\n")


def child(method: str, path: str, block_rows: int) -> dict:
    import pandas as pd
    import pyarrow  # noqa: F401  (same imports for every method: comparable baselines)

    from stacklm.io.matrix import read_matrix, read_matrix_blocks

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if method == "baseline":
        shape = (0, 0)
    elif method == "stacklm blocks":
        rows, n = 0, 0
        for block in read_matrix_blocks(path, block_rows=block_rows):
            rows += block.values.shape[0]
            n = block.values.shape[1]
        shape = (rows, n)
    elif method == "stacklm matrix":
        _, _, values = read_matrix(path)
        shape = values.shape
    elif method == "pandas default":
        shape = pd.read_csv(path, sep="\t", index_col=0).shape
    elif method == "pandas round_trip":
        shape = pd.read_csv(path, sep="\t", index_col=0, float_precision="round_trip").shape
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "method": method,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "import_rss_mb": base,
        "shape": list(shape),
    }


def exactness(path: str) -> dict:
    import pandas as pd

    from stacklm.io.matrix import read_matrix

    _, _, exact = read_matrix(path)
    out = {}
    for name, kw in [
        ("pandas default", {}),
        ("pandas round_trip", {"float_precision": "round_trip"}),
    ]:
        got = pd.read_csv(path, sep="\t", index_col=0, **kw).to_numpy()
        ok = ~np.isnan(exact)
        assert np.array_equal(ok, ~np.isnan(got))
        differ = int((got[ok] != exact[ok]).sum())
        ulps = np.abs(got[ok].view(np.int64) - exact[ok].view(np.int64))
        out[name] = {"values": int(ok.sum()), "differ": differ, "max_ulps": int(ulps.max())}
    return out


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        mem = f", {psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        physical, mem = "?", ""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import pandas as pd
    import pyarrow as pa

    return (
        f"{model}; {os.cpu_count()} logical CPUs ({physical} physical), {usable} usable{mem}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pyarrow {pa.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=200_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--na", type=float, default=0.01)
    ap.add_argument("--block-rows", type=int, default=100_000)
    ap.add_argument("--keep", help="write the matrix into this directory and keep it")
    ap.add_argument("--matrix", help="use this existing gzipped TSV instead of writing one")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--exactness", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.block_rows)))
        return
    if args.exactness:
        print(json.dumps(exactness(args.exactness)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"matrix_{args.features}x{args.samples}.tsv.gz"
        t0 = time.perf_counter()
        if args.matrix:
            path = Path(args.matrix)
        else:
            write_matrix(path, args.features, args.samples, args.na)
        t_write = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        print(f"machine: {machine()}")
        print(
            f"matrix: {args.features} x {args.samples}, {args.na:.0%} NA, %.17g values, gzip -6: "
            f"{size_mb:.0f} MiB compressed (written in {t_write:.0f} s); "
            f"float64 matrix = {args.features * args.samples * 8 / 2**20:.0f} MiB"
        )
        rows = []
        for method in [
            "baseline",
            "stacklm blocks",
            "stacklm matrix",
            "pandas default",
            "pandas round_trip",
        ]:
            cmd = [sys.executable, __file__, "--child", method, str(path)]
            cmd += ["--block-rows", str(args.block_rows)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        exact = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--exactness", str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    print()
    print(f"{'reader':<20} {'seconds':>8} {'peak RSS MiB':>13} {'shape':>14}")
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(f"{r['method']:<20} {r['seconds']:8.2f} {r['peak_rss_mb']:13.0f} {shape:>14}")
    print(
        f"(block reader: block_rows = {args.block_rows}; RSS includes the interpreter with numpy, "
        f"pandas, pyarrow imported: {rows[0]['peak_rss_mb']:.0f} MiB)"
    )
    for name, e in exact.items():
        print(
            f"{name}: {e['differ']} of {e['values']} values differ from the exact double "
            f"(max {e['max_ulps']} ulp); stacklm.io: 0"
        )


if __name__ == "__main__":
    main()
