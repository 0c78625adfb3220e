"""Time and peak memory of stacklm.sva.sva() on synthetic data (features x 100 samples, K = 2).

Usage: python benchmarks/bench_sva.py [--sizes 100000 1000000] [--samples 100] [--n-sv 2]

Each size runs in its own subprocess so that its peak RSS (ru_maxrss) is its own. The data are
seeded: a two-group design (mod = ~group, mod0 = ~1), group effects on 10% of the features, two
latent factors on 30% of the features, unit-variance noise. Reported: seconds to generate the
data, seconds of sva() (B = 5 iterations, n_sv fixed so num_sv is not run), peak RSS of the
process, and the size of the data matrix itself.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def synthetic(n_features: int, n_samples: int, seed: int = 20240611, block: int = 65536):
    """Seeded synthetic G x n matrix, filled block by block (no full-size temporaries)."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0.0, 1.0], [n_samples // 2, n_samples - n_samples // 2])
    mod = np.column_stack([np.ones(n_samples), group])
    mod0 = mod[:, :1]
    latent = rng.standard_normal((n_samples, 2))
    Y = np.empty((n_features, n_samples))
    for start in range(0, n_features, block):
        rows = slice(start, min(start + block, n_features))
        g = rows.stop - rows.start
        part = rng.standard_normal((g, n_samples))
        part += 8.0
        affected = rng.random(g) < 0.10
        part[affected] += rng.normal(0, 1.5, size=(int(affected.sum()), 1)) * group[None, :]
        loaded = rng.random(g) < 0.30
        part[loaded] += rng.normal(0, 0.8, size=(int(loaded.sum()), 2)) @ latent.T
        Y[rows] = part
    return Y, mod, mod0


def run_one(n_features: int, n_samples: int, n_sv: int) -> dict:
    from stacklm.sva.irwsva import sva

    t0 = time.perf_counter()
    Y, mod, mod0 = synthetic(n_features, n_samples)
    t_gen = time.perf_counter() - t0
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = sva(Y, mod, mod0, n_sv=n_sv)
    t_sva = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "features": n_features,
        "samples": n_samples,
        "n_sv": result.n_sv,
        "generate_s": t_gen,
        "sva_s": t_sva,
        "peak_rss_mb": peak,
        "peak_rss_after_generation_mb": rss_data,
        "data_mb": Y.nbytes / 2**20,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--n-sv", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.samples, args.n_sv)))
        return 0
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--samples", str(args.samples)]
        cmd += ["--n-sv", str(args.n_sv)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    header = (
        f"{'features':>10} {'samples':>7} {'K':>3} {'data MB':>8} {'RSS before MB':>13} "
        f"{'sva() s':>8} {'peak RSS MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['features']:>10} {r['samples']:>7} {r['n_sv']:>3} {r['data_mb']:>8.0f} "
            f"{r['peak_rss_after_generation_mb']:>13.0f} {r['sva_s']:>8.2f} {r['peak_rss_mb']:>12.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
