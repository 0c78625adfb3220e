"""Per-sample value distributions (densities, quantiles) before and after normalization."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from stacklm.io.store import open_binary_matrix
from stacklm.rstats.basic import bw_nrd0

if TYPE_CHECKING:
    import pandas as pd


# --------------------------------------------------------------------------------------------
# per-sample value distributions (before / after normalization)
# --------------------------------------------------------------------------------------------
class RowReservoir:
    """A uniform random sample of up to ``size`` rows of a matrix streamed in row blocks
    (reservoir sampling, Algorithm R), so per-sample distributions of a matrix too large to hold
    can be drawn from one pass."""

    def __init__(self, n_samples: int, size: int, seed: int = 1):
        self.size = int(size)
        self.rows = np.empty((self.size, n_samples))
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float64)
        m = block.shape[0]
        fill = max(0, min(self.size - self.seen, m))
        if fill:
            self.rows[self.seen : self.seen + fill] = block[:fill]
        rest = np.arange(fill, m)
        if rest.size:
            # row i (0-based overall) replaces slot j ~ U{0..i} when j < size, in order
            overall = self.seen + rest
            slots = self.rng.integers(0, overall + 1)
            hit = slots < self.size
            if hit.any():
                s, r = slots[hit], rest[hit]
                # later rows win when they draw the same slot: keep the last occurrence
                last = np.unique(s[::-1], return_index=True)[1]
                self.rows[s[::-1][last]] = block[r[::-1][last]]
        self.seen += m

    def values(self) -> np.ndarray:
        return self.rows[: min(self.seen, self.size)]


def reservoir_size(n_samples: int, budget: int = 5_000_000) -> int:
    """Rows kept for the density plots: about ``budget`` values, between 500 and 20,000 rows."""
    return int(np.clip(budget // max(n_samples, 1), 500, 20_000))


def sample_densities(
    values: np.ndarray, samples: Sequence[str], grid: np.ndarray | None = None, n_grid: int = 256
) -> pd.DataFrame:
    """Gaussian kernel density (bandwidth ``bw.nrd0``) of each sample's observed values (columns of
    ``values``) on a common grid: a fine histogram (4096 bins over the grid and all values)
    convolved with the kernel, then interpolated to the grid (the binned approximation R's
    ``density`` also uses, with simple instead of linear binning).  Long table:
    ``sample, x, density``."""
    import pandas as pd  # here: a fit job that only sizes its sample does not load pandas

    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if grid is None:
        if finite.size == 0:
            return pd.DataFrame(columns=["sample", "x", "density"])
        lo, hi = np.quantile(finite, [0.0005, 0.9995])
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        grid = np.linspace(lo - pad, hi + pad, n_grid)
    grid = np.asarray(grid, dtype=float)
    out = []
    for j in range(len(samples)):  # one small histogram per sample
        x = values[:, j]
        x = x[np.isfinite(x)]
        if x.size == 0:
            dens = np.zeros(grid.size)
        else:
            lo, hi = min(grid[0], x.min()), max(grid[-1], x.max())
            edges = np.linspace(lo, hi, 4097)
            step = edges[1] - edges[0]
            centres = (edges[:-1] + edges[1:]) / 2.0
            counts, _ = np.histogram(x, bins=edges)
            bw = bw_nrd0(x) if x.size >= 2 else 1.0
            half = int(min(np.ceil(5.0 * bw / step), 2 * counts.size)) if step > 0 else 0
            offsets = np.arange(-half, half + 1) * step
            kernel = np.exp(-0.5 * (offsets / bw) ** 2)
            fine = _fft_convolve(counts.astype(float), kernel)[half : half + counts.size]
            fine = np.maximum(fine, 0.0) / (x.size * bw * math.sqrt(2 * math.pi))
            dens = np.interp(grid, centres, fine)
        out.append(dens)
    names = np.array([str(name) for name in samples], dtype=object)
    if not names.size:
        return pd.DataFrame(columns=["sample", "x", "density"])
    return pd.DataFrame(
        {"sample": np.repeat(names, grid.size), "x": np.tile(grid, names.size),
         "density": np.concatenate(out)}
    )  # fmt: skip


def _fft_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The full convolution of two real 1-D arrays as ``scipy.signal.fftconvolve(a, b)`` computes
    it (real FFTs of the next fast length, product, inverse, cut), with the same scipy.fft calls
    and so the same numbers; without importing scipy.signal (half a second in the normalize job)."""
    import scipy.fft as sp_fft

    if a.size == 1 or b.size == 1:  # scipy multiplies (no transform along a length-1 axis)
        return a * b
    n = a.size + b.size - 1
    size = sp_fft.next_fast_len(n, real=True)
    return sp_fft.irfft(sp_fft.rfft(a, size) * sp_fft.rfft(b, size), size)[:n]


def sample_quantiles(
    values: np.ndarray,
    samples: Sequence[str],
    probs: Sequence[float] = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0),
) -> pd.DataFrame:
    """Quantiles (R's type 7) of each sample's observed values; one row per sample."""
    import pandas as pd

    values = np.asarray(values, dtype=float)
    rows = []
    for j, name in enumerate(samples):
        x = values[:, j]
        x = x[np.isfinite(x)]
        q = np.quantile(x, probs) if x.size else np.full(len(probs), np.nan)
        rows.append([str(name), int(x.size), *q])
    return pd.DataFrame(rows, columns=["sample", "n_values", *[f"q{100 * p:g}" for p in probs]])


def sample_distributions(
    before: np.ndarray,
    after: np.ndarray,
    samples_before: Sequence[str],
    samples_after: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Densities (common grid for both stages) and quantiles of each sample before and after
    normalization; tables carry a ``stage`` column (``input`` / ``normalized``)."""
    import pandas as pd

    both = np.concatenate([np.ravel(before), np.ravel(after)])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = np.quantile(both, [0.0005, 0.9995])
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        grid = np.linspace(lo - pad, hi + pad, 256)
    else:
        grid = np.linspace(0.0, 1.0, 256)
    dens, quant = [], []
    for stage, values, names in (
        ("input", before, samples_before),
        ("normalized", after, samples_after),
    ):
        d = sample_densities(values, names, grid)
        d.insert(0, "stage", stage)
        q = sample_quantiles(values, names)
        q.insert(0, "stage", stage)
        dens.append(d)
        quant.append(q)
    return pd.concat(dens, ignore_index=True), pd.concat(quant, ignore_index=True)


class InputDistributions:
    """Per-sample distributions collected while a matrix streams through, finished against the
    normalized store: the input side (on the analysis scale: after the log2 / M-value transform,
    before between-sample normalization and filters) is a uniform random sample of rows
    (:class:`RowReservoir`, :func:`reservoir_size` rows), the normalized side the same number of
    random rows of the store.  The normalize step feeds it the blocks it reads anyway, so the
    distributions cost no second pass over the input."""

    def __init__(self, samples: Sequence[str], input_scale: str = "expression", seed: int = 1):
        self.samples = [str(s) for s in samples]
        self.input_scale = input_scale
        self.seed = seed
        self.before = RowReservoir(len(self.samples), reservoir_size(len(self.samples)), seed=seed)
        self.lib = np.zeros(len(self.samples))

    def add(self, transformed: np.ndarray, raw: np.ndarray | None = None) -> None:
        """One block of rows: its values on the analysis scale, and for counts the raw counts (the
        column sums give the library sizes of the log-CPM shown)."""
        self.before.add(transformed)
        if self.input_scale == "counts":
            self.lib += np.asarray(transformed if raw is None else raw).sum(axis=0)

    def finish(self, store_path) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Densities and quantiles (:func:`sample_distributions`) of the input rows collected and
        of random rows of the normalized store."""
        store = open_binary_matrix(store_path)
        size = min(reservoir_size(store.n_samples), store.n_features)
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(store.n_features, size, replace=False))
        # positioned reads (BinaryMatrix.take_rows): indexing the memory map would leave the pages
        # read ahead around every sampled row resident
        after = store.take_rows(rows) if size else np.empty((0, 0))
        if self.input_scale == "counts":  # stored as counts: densities of voom's log-CPM
            position = {s: i for i, s in enumerate(self.samples)}
            store_lib = self.lib[[position[s] for s in store.samples]]
            return sample_distributions(
                np.log2((self.before.values() + 0.5) / (self.lib + 1) * 1e6),
                np.log2((after + 0.5) / (store_lib + 1) * 1e6),
                self.samples,
                store.samples,
            )
        return sample_distributions(self.before.values(), after, self.samples, store.samples)
