"""Sample cross-products of the input, fitted values and residuals, accumulated chunk by chunk.

They are the PCA diagnostics' input (:mod:`stacklm.diagnostics.pca`).  Computed from a fixed,
deterministic subset of the rows: every k-th feature of the whole matrix by its global index
(rows 0, k, 2k, ... of the store), ``k = ceil(n_features / CROSS_PRODUCT_ROWS)``, so at most
:data:`CROSS_PRODUCT_ROWS` (100,000) features enter, whatever the matrix size, and the same ones
whatever the number of chunks (:func:`cross_product_stride`, :func:`block_cross_products`).  A
matrix of up to 100,000 features (any expression array, RNA-seq) uses all of them; 10^6 SNPs use
every 10th.  100,000 features estimate the leading sample components (population structure, batch)
with a sampling error far below what the plots resolve, and bound the fit jobs' cost of the
sketch (two products of ``rows x samples x 100`` per matrix) at 10^6-10^7 features.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stacklm.io.blocks import rows_per_block
from stacklm.io.formats import INT8_MISSING

#: at most this many features (rows) enter the cross-products: every k-th by global index
CROSS_PRODUCT_ROWS = 100_000

EXACT_GRAM_MAX_SAMPLES = 1000

#: number of columns of the Nystrom sketch used above EXACT_GRAM_MAX_SAMPLES samples
SKETCH_SIZE = 100

#: seed of the sketch's Gaussian test matrix (the same in every chunk)
SKETCH_SEED = 20240607

#: a complete block's residual cross-product is formed as the difference of the input's and the
#: fitted values' (no residual matrix) when the residuals hold at least this share of the input's
#: sum of squares: it then agrees with the explicit product to ~1e-11 relative (the difference
#: loses about log10 of the inverse share in digits)
RESIDUAL_IDENTITY_MIN_SHARE = 1e-3

#: the three matrices whose sample structure is examined, in the order they are shown
MATRICES = ("input", "fitted", "residuals")

#: values (rows x samples) processed at once when accumulating cross-products: 64 MB a float64
#: copy (bounds the temporary copies whatever the number of samples; the sketch's products are
#: ~25% faster than with 16 MB blocks)
BLOCK_VALUES = 1 << 23


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


@functools.lru_cache(maxsize=4)
def _sketch_matrix(n_samples: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((n_samples, min(size, n_samples)))
    omega.flags.writeable = False
    return omega


def sketch_matrix(n_samples: int, size: int = SKETCH_SIZE, seed: int = SKETCH_SEED) -> np.ndarray:
    """The fixed Gaussian test matrix ``Omega`` (n x l) of the Nystrom sketch (read-only; made
    once per process)."""
    return _sketch_matrix(int(n_samples), int(size), int(seed))


def cross_product_stride(n_features: int, target: int | None = None) -> int:
    """k of the rows that enter the cross-products (every k-th feature of a matrix of
    ``n_features`` rows, by global index): ``ceil(n_features / target)``, at least 1 (``target``
    default: :data:`CROSS_PRODUCT_ROWS`)."""
    target = CROSS_PRODUCT_ROWS if target is None else target
    return max(1, -(-int(n_features) // int(target)))


def cross_product_rows(rows: np.ndarray | range, stride: int) -> np.ndarray:
    """Positions in ``rows`` (global row indices of a block) of the rows that enter the
    cross-products: those whose global index is a multiple of ``stride``."""
    if isinstance(rows, range) and rows.step == 1:
        first = -(-rows.start // stride) * stride
        return np.arange(first, rows.stop, stride) - rows.start
    return np.flatnonzero(np.asarray(rows) % stride == 0)


@dataclass
class CrossProducts:
    """Sums over features of the sample cross-products of the centred input, fitted values and
    residuals: n x n matrices (``kind == "gram"``) or n x l sketches ``A'(A Omega)``
    (``kind == "sketch"``).

    The sums run over the features that entered (``n_features`` of them: every ``stride``-th
    feature of the matrix by global index, see :func:`cross_product_stride`); ``sums_of_squares``
    are the exact ``trace(A'A)`` over those same features, so variance fractions computed from a
    sketch and its total refer to one set of rows."""

    samples: list[str]
    n_features: int
    kind: str
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    sums_of_squares: dict[str, float] = field(default_factory=dict)  # trace(A'A), exact
    sketch_size: int = 0
    sketch_seed: int = SKETCH_SEED
    stride: int = 1

    def __add__(self, other: CrossProducts) -> CrossProducts:
        if (
            list(other.samples) != list(self.samples)
            or other.kind != self.kind
            or other.sketch_size != self.sketch_size
            or other.sketch_seed != self.sketch_seed
            or other.stride != self.stride
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
            stride=self.stride,
        )


def chunk_cross_products(
    Y: np.ndarray,
    design: np.ndarray,
    coefficients: np.ndarray,
    samples: Sequence[str],
    exact_max_samples: int = EXACT_GRAM_MAX_SAMPLES,
    sketch_size: int = SKETCH_SIZE,
    stride: int = 1,
) -> CrossProducts:
    """Cross-products of the rows ``Y`` (g x n, float with NaN missing, or int8 allele counts with
    :data:`~stacklm.io.formats.INT8_MISSING` missing), the design (n x p) and the fit's
    coefficients (g x p, NaN for non-estimable ones, which then contribute nothing, as in the
    reduced model limma fits).  Every row given enters; ``stride`` only records which rows of the
    matrix the caller chose (see :func:`block_cross_products`, which chooses them).

    fitted = coefficients @ design' (over the estimable coefficients), residuals = Y - fitted; each
    matrix is centred by its row mean over the observed entries and missing entries count as 0.
    Rows are processed in blocks of about :data:`BLOCK_VALUES` values (at least 64 rows) so at most
    three block-sized copies exist.  Sketches are formed without the fitted values as a matrix
    (:func:`_sketch_block`: three products of the block with ``Omega``-sized matrices, not six).
    """
    Y = np.asarray(Y)
    if Y.dtype != np.int8:
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

    def add(name: str, A: np.ndarray) -> None:  # the exact path (the sketch: _sketch_block)
        total[name] += float(np.einsum("ij,ij->", A, A))
        out[name] += A.T @ A  # numpy uses syrk for A.T @ A

    def centre(A: np.ndarray, missing, count) -> np.ndarray:
        """A (a private copy) centred in place by its rows' means over the observed entries,
        missing entries 0."""
        if missing is not None:
            np.copyto(A, 0.0, where=missing)
        means = A.sum(axis=1) / count
        A -= means[:, None]
        if missing is not None:
            np.copyto(A, 0.0, where=missing)
        return A

    Xt = X - X.mean(axis=0)  # the design's columns centred on all samples
    XtX = Xt.T @ Xt
    step = rows_per_block(n, BLOCK_VALUES, minimum=64)
    for start in range(0, g, step):
        stop = min(start + step, g)
        block = Y[start:stop]
        missing = block == INT8_MISSING if block.dtype == np.int8 else np.isnan(block)
        count = np.full(stop - start, float(n))
        if missing.any():
            count = np.maximum(n - missing.sum(axis=1), 1).astype(np.float64)
        else:
            missing = None
        centred = centre(block.astype(np.float64), missing, count)  # a copy
        if sketched:
            b = B[start:stop]
            if missing is not None and (no_call := missing.all(axis=1)).any():
                b = np.where(no_call[:, None], 0.0, b)  # no call: fitted values 0, as centred
            sums = _sketch_block(centred, missing, count, b, X, omega, out)
            for name, value in zip(MATRICES, sums, strict=True):
                total[name] += value
            continue
        b = B[start:stop]
        if missing is None:
            # every sample observed: the centred fitted values are Fc = b Xt' (Xt: the design
            # with its columns centred), so their cross-product is Xt (b'b) Xt' and the
            # residuals' (Yc - Fc)'(Yc - Fc) = Yc'Yc - M Xt' - Xt M' + Xt (b'b) Xt' with
            # M = Yc'b: one n x n product over the rows instead of two, the residuals not
            # formed; the sums of squares likewise (|Fc|^2 = <b'b, Xt'Xt>, <Yc, Fc> = <M, Xt>)
            yy_gram = centred.T @ centred  # numpy uses syrk for A.T @ A
            yy = float(np.einsum("ij,ij->", centred, centred))
            gram = b.T @ b
            fitted_gram = Xt @ gram @ Xt.T
            ff = float(np.einsum("ij,ij->", gram, XtX))
            M = centred.T @ b
            rr = yy - 2.0 * float(np.einsum("ij,ij->", M, Xt)) + ff
            out["input"] += yy_gram
            out["fitted"] += fitted_gram
            total["input"] += yy
            total["fitted"] += ff
            # the difference loses about log10(yy / rr) digits: where the residuals are under
            # RESIDUAL_IDENTITY_MIN_SHARE of the input's sum of squares, they are formed below
            if rr >= RESIDUAL_IDENTITY_MIN_SHARE * yy:
                mixed = M @ Xt.T
                out["residuals"] += yy_gram - mixed - mixed.T + fitted_gram
                total["residuals"] += rr
                continue
            fitted = b @ Xt.T
        else:
            add("input", centred)
            fitted = centre(b @ X.T, missing, count)
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
        stride=int(stride),
    )


def _sketch_block(Yc, missing, count, B, X, omega, out) -> tuple[float, float, float]:
    """Add one block's sketches ``A'(A Omega)`` of the centred input, fitted values and residuals
    to ``out`` and return the three sums of squares, without forming the fitted values.

    With the design's columns centred on all samples, Xt = X - 1 xbar', a row's centred fitted
    values on its observed samples are ``Ft_i - mu_i`` with ``Ft_i = Xt b_i`` (its mean over all
    samples is 0) and ``mu_i`` their mean over the observed samples, ``-(sum over the missing
    samples of Ft_ik) / n_i``; so the centred fitted matrix is ``Fc = B Xt' - mu 1' - E`` with
    ``E`` the (sparse) values of ``Ft - mu 1'`` at the missing entries, and ``Fc Omega``,
    ``Fc' Z`` cost O(rows x p x l + missing x l).  The residuals' sketch is
    ``Rc'(Rc Omega) = Yc'(D) - Fc'(D)`` with ``D = Yc Omega - Fc Omega``; the input's and that
    product are one BLAS product ``Yc'[Yc Omega, D]``.  Sums of squares: ``|Fc_i|^2 = b_i' Xt'Xt
    b_i - sum over missing of Ft_ik^2 - n_i mu_i^2``, ``|Rc|^2 = |Yc|^2 - 2 <Yc, Fc> + |Fc|^2`` with
    ``<Yc_i, Fc_i> = (Yc_i Xt) b_i`` (Yc_i is 0 where missing and sums to 0)."""
    m, n = Yc.shape
    width = omega.shape[1]
    Xt = X - X.mean(axis=0)
    if missing is not None:
        r, c = np.nonzero(missing)
        f = np.einsum("kj,kj->k", Xt[c], B[r])
        mu = -np.bincount(r, weights=f, minlength=m) / count
        from scipy.sparse import csr_matrix  # here: 0.08 s of every importer's start

        E = csr_matrix((f - mu[r], (r, c)), shape=(m, n))
        miss_sq = np.bincount(r, weights=f * f, minlength=m)
    else:
        mu, E, miss_sq = np.zeros(m), None, np.zeros(m)

    def fc_times(Z):  # Fc' Z, (n x l)
        out_ = Xt @ (B.T @ Z) - (mu @ Z)[None, :]
        return out_ if E is None else out_ - E.T @ Z

    F_omega = B @ (Xt.T @ omega) - mu[:, None] * omega.sum(axis=0)[None, :]
    if E is not None:
        F_omega -= E @ omega
    P = Yc @ omega
    D = P - F_omega
    S = Yc.T @ np.hstack([P, D])
    out["input"] += S[:, :width]
    out["fitted"] += fc_times(F_omega)
    out["residuals"] += S[:, width:] - fc_times(D)
    yy = float(np.einsum("ij,ij->", Yc, Yc))
    ff = float(np.einsum("ij,jk,ik->", B, Xt.T @ Xt, B) - miss_sq.sum() - (count * mu * mu).sum())
    yf = float(np.einsum("ij,ij->", Yc @ Xt, B))
    return yy, ff, yy - 2.0 * yf + ff


def block_cross_products(
    Y: np.ndarray,
    design: np.ndarray,
    coefficients: np.ndarray,
    samples: Sequence[str],
    rows: np.ndarray | range,
    n_features: int,
) -> CrossProducts:
    """:func:`chunk_cross_products` of the rows of a block that enter the PCA diagnostics: those
    whose global index (``rows``: the block's row indices in the whole matrix of ``n_features``
    rows) is a multiple of :func:`cross_product_stride` (``n_features``).  ``Y`` may be float (NaN
    missing) or int8 (:data:`~stacklm.io.formats.INT8_MISSING` missing).  The result does not depend on how the matrix is cut into chunks and blocks."""
    stride = cross_product_stride(n_features)
    sel = cross_product_rows(rows, stride)
    Ys = Y if sel.size == len(Y) else np.asarray(Y)[sel]
    coef = np.asarray(coefficients)
    coef = coef if sel.size == len(coef) else coef[sel]
    return chunk_cross_products(Ys, design, coef, samples, stride=stride)


def save_cross_products(cp: CrossProducts, fh) -> None:
    """Write cross-products as ``.npz`` (to a path or an open binary file)."""
    np.savez(
        fh,
        samples=np.array(cp.samples, dtype=str),
        n_features=np.int64(cp.n_features),
        kind=np.array(cp.kind),
        sketch_size=np.int64(cp.sketch_size),
        sketch_seed=np.int64(cp.sketch_seed),
        stride=np.int64(cp.stride),
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
            stride=int(z["stride"]) if "stride" in z.files else 1,
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
