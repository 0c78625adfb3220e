"""Sample cross-products of the input, fitted values and residuals, accumulated chunk by chunk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXACT_GRAM_MAX_SAMPLES = 1000

#: number of columns of the Nystrom sketch used above EXACT_GRAM_MAX_SAMPLES samples
SKETCH_SIZE = 100

#: seed of the sketch's Gaussian test matrix (the same in every chunk)
SKETCH_SEED = 20240607

#: the three matrices whose sample structure is examined, in the order they are shown
MATRICES = ("input", "fitted", "residuals")

#: rows processed at once when accumulating cross-products (bounds the temporary copies)
ROW_BLOCK = 16384


# --------------------------------------------------------------------------------------------
# cross-products accumulated chunk by chunk
# --------------------------------------------------------------------------------------------

#: the smallest positive double: p-values that underflow to 0 are drawn at -log10 of it (323.3)
SMALLEST_P = float(np.nextafter(0.0, 1.0))


def neg_log10_p(p) -> np.ndarray:
    """-log10 p, finite for p = 0 (an underflowed p-value, reported as 0 in the tables, as R does):
    drawn at -log10 of the smallest positive double, 323.3. NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore"):
        return 0.0 - np.log10(np.maximum(p, SMALLEST_P))


def _centre_rows(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Subtract each row's mean over its observed entries; missing entries become 0."""
    count = observed.sum(axis=1)
    filled = np.where(observed, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(count > 0, filled.sum(axis=1) / np.maximum(count, 1), 0.0)
    return np.where(observed, filled - means[:, None], 0.0)


def cross_products_path(fit_path) -> Path:
    """Where :func:`fit_chunk` writes a chunk's sample cross-products: beside the chunk fit,
    ``chunk_K.npz`` -> ``chunk_K.crossprod.npz``."""
    fit_path = Path(fit_path)
    return fit_path.with_name(fit_path.name.removesuffix(".npz") + ".crossprod.npz")


def sketch_matrix(n_samples: int, size: int = SKETCH_SIZE, seed: int = SKETCH_SEED) -> np.ndarray:
    """The fixed Gaussian test matrix ``Omega`` (n x l) of the Nystrom sketch."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_samples, min(size, n_samples)))


@dataclass
class CrossProducts:
    """Sums over features of the sample cross-products of the centred input, fitted values and
    residuals: n x n matrices (``kind == "gram"``) or n x l sketches ``A'(A Omega)``
    (``kind == "sketch"``)."""

    samples: list[str]
    n_features: int
    kind: str
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    sums_of_squares: dict[str, float] = field(default_factory=dict)  # trace(A'A), exact
    sketch_size: int = 0
    sketch_seed: int = SKETCH_SEED

    def __add__(self, other: CrossProducts) -> CrossProducts:
        if (
            list(other.samples) != list(self.samples)
            or other.kind != self.kind
            or other.sketch_size != self.sketch_size
            or other.sketch_seed != self.sketch_seed
        ):
            raise ValueError("cross-products of different samples or kinds cannot be added")
        return CrossProducts(
            samples=list(self.samples),
            n_features=self.n_features + other.n_features,
            kind=self.kind,
            matrices={k: self.matrices[k] + other.matrices[k] for k in self.matrices},
            sums_of_squares={
                k: self.sums_of_squares[k] + other.sums_of_squares[k] for k in self.matrices
            },
            sketch_size=self.sketch_size,
            sketch_seed=self.sketch_seed,
        )


def chunk_cross_products(
    Y: np.ndarray,
    design: np.ndarray,
    coefficients: np.ndarray,
    samples: Sequence[str],
    exact_max_samples: int = EXACT_GRAM_MAX_SAMPLES,
    sketch_size: int = SKETCH_SIZE,
) -> CrossProducts:
    """Cross-products of one chunk's rows: ``Y`` (g x n, NaN missing), the design (n x p) and the
    fit's coefficients (g x p, NaN for non-estimable ones, which then contribute nothing, as in the
    reduced model limma fits).

    fitted = coefficients @ design' (over the estimable coefficients), residuals = Y - fitted; each
    matrix is centred by its row mean over the observed entries and missing entries count as 0.
    Rows are processed in blocks of :data:`ROW_BLOCK` so at most three block-sized copies exist.
    """
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(design, dtype=np.float64)
    B = np.nan_to_num(np.asarray(coefficients, dtype=np.float64), nan=0.0)
    g, n = Y.shape
    if X.shape[0] != n or B.shape != (g, X.shape[1]):
        raise ValueError(f"shapes do not match: Y {Y.shape}, design {X.shape}, coef {B.shape}")
    sketched = n > exact_max_samples
    omega = sketch_matrix(n, sketch_size) if sketched else None
    width = omega.shape[1] if sketched else n
    out = {k: np.zeros((n, width)) for k in MATRICES}
    total = dict.fromkeys(MATRICES, 0.0)

    def add(name: str, A: np.ndarray) -> None:
        total[name] += float(np.einsum("ij,ij->", A, A))
        if sketched:
            out[name] += A.T @ (A @ omega)
        else:
            out[name] += A.T @ A  # numpy uses syrk for A.T @ A

    for start in range(0, g, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, g)
        block = Y[start:stop]
        observed = ~np.isnan(block)
        centred = _centre_rows(block, observed)
        add("input", centred)
        fitted = _centre_rows(B[start:stop] @ X.T, observed)
        add("fitted", fitted)
        centred -= fitted  # (Y - fitted) centred = centred Y - centred fitted
        add("residuals", centred)
    return CrossProducts(
        samples=[str(s) for s in samples],
        n_features=int(g),
        kind="sketch" if sketched else "gram",
        matrices=out,
        sums_of_squares=total,
        sketch_size=int(width) if sketched else 0,
    )


def save_cross_products(cp: CrossProducts, fh) -> None:
    """Write cross-products as ``.npz`` (to a path or an open binary file)."""
    np.savez(
        fh,
        samples=np.array(cp.samples, dtype=str),
        n_features=np.int64(cp.n_features),
        kind=np.array(cp.kind),
        sketch_size=np.int64(cp.sketch_size),
        sketch_seed=np.int64(cp.sketch_seed),
        sums_of_squares=np.array([cp.sums_of_squares[k] for k in MATRICES]),
        **{k: cp.matrices[k] for k in MATRICES},
    )


def load_cross_products(path) -> CrossProducts:
    with np.load(path, allow_pickle=False) as z:
        return CrossProducts(
            samples=[str(s) for s in z["samples"]],
            n_features=int(z["n_features"]),
            kind=str(z["kind"]),
            matrices={k: np.array(z[k]) for k in MATRICES},
            sums_of_squares=dict(zip(MATRICES, map(float, z["sums_of_squares"]), strict=True)),
            sketch_size=int(z["sketch_size"]),
            sketch_seed=int(z["sketch_seed"]),
        )


def sum_cross_products(paths_or_objects: Sequence) -> CrossProducts:
    """Sum chunk cross-products (paths of ``.npz`` files or :class:`CrossProducts`)."""
    total = None
    for item in paths_or_objects:
        cp = item if isinstance(item, CrossProducts) else load_cross_products(item)
        total = cp if total is None else total + cp
    if total is None:
        raise ValueError("no cross-products to sum")
    return total
