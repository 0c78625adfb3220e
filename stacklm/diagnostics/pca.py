"""Sample PCA from exact cross-products or a Nystrom sketch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stacklm.diagnostics.crossproducts import MATRICES, CrossProducts, sketch_matrix
from stacklm.sva.linalg import orient_columns


# --------------------------------------------------------------------------------------------
# PCA from a cross-product or a sketch
# --------------------------------------------------------------------------------------------
@dataclass
class SamplePCA:
    """Sample-space PCA: ``scores`` (n x k, prcomp's ``x`` up to sign), ``eigenvalues`` (all
    positive ones of A'A, descending; prcomp's ``sdev^2 * (n - 1)``), ``variance_fraction`` of each
    component in the total sum of squares ``trace(A'A)``.  ``n_features`` and ``stride``: the rows
    of A (every ``stride``-th feature of the matrix, see
    :func:`stacklm.diagnostics.crossproducts.cross_product_stride`; None: not recorded)."""

    scores: pd.DataFrame
    eigenvalues: np.ndarray
    variance_fraction: np.ndarray
    total_sum_of_squares: float
    approximate: bool = False
    n_features: int | None = None
    stride: int = 1

    @property
    def rows_label(self) -> str:
        """How the features were chosen, for plot titles: '' when all of them entered, else e.g.
        ' (every 10th feature: 100,000)'."""
        if self.stride <= 1:
            return ""
        k = self.stride
        suffix = "th" if k % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
        count = f": {self.n_features:,}" if self.n_features is not None else ""
        return f" (every {k}{suffix} feature{count})"

    def variance_table(self) -> pd.DataFrame:
        k = len(self.eigenvalues)
        return pd.DataFrame(
            {
                "component": [f"PC{i + 1}" for i in range(k)],
                "eigenvalue": self.eigenvalues,
                "variance_fraction": self.variance_fraction,
                "cumulative_fraction": np.cumsum(self.variance_fraction),
            }
        )


def gram_pca(
    gram: np.ndarray, samples: Sequence[str], n_components: int = 10, rtol: float = 1e-10
) -> SamplePCA:
    """PCA of the samples from the n x n cross-product ``A'A`` of a row-centred matrix ``A``.

    Components whose eigenvalue is below ``rtol`` times the largest are dropped (the fitted values
    have rank at most p - 1 after centring, the residuals n - p).
    """
    gram = np.asarray(gram, dtype=np.float64)
    gram = (gram + gram.T) / 2.0
    total = float(np.trace(gram))
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    return _sample_pca(values[order], vectors[:, order], samples, total, n_components, rtol)


def _sample_pca(values, vectors, samples, total, n_components, rtol, approximate=False):
    """Components (eigenvalues in decreasing order, unit eigenvectors as columns) above ``rtol``
    times the largest, the first ``n_components`` as scores."""
    top = values[0] if values.size else 0.0
    keep = values > rtol * top if top > 0 else np.zeros(values.size, dtype=bool)
    values, vectors = values[keep], vectors[:, keep]
    k = min(n_components, values.size)
    scores = orient_columns(vectors[:, :k]) * np.sqrt(values[:k])
    total = float(total)
    return SamplePCA(
        scores=pd.DataFrame(
            scores,
            index=pd.Index(list(samples), name="sample_id"),
            columns=[f"PC{i + 1}" for i in range(k)],
        ),  # fmt: skip
        eigenvalues=values,
        variance_fraction=values / total if total > 0 else np.full(values.size, np.nan),
        total_sum_of_squares=total,
        approximate=approximate,
    )


def sketch_pca(
    sketch: np.ndarray,
    omega: np.ndarray,
    samples: Sequence[str],
    total_sum_of_squares: float,
    n_components: int = 10,
    rtol: float = 1e-10,
) -> SamplePCA:
    """PCA from the Nystrom sketch ``S = (A'A) Omega`` (Tropp et al. 2017, Algorithm 3 with a
    stabilising shift): eigenvalues and scores of the rank-l approximation of ``A'A``."""
    S = np.asarray(sketch, dtype=np.float64)
    nu = np.sqrt(S.shape[0]) * np.finfo(float).eps * np.linalg.norm(S, 2)
    if nu == 0:
        empty = pd.DataFrame(index=pd.Index(list(samples), name="sample_id"))
        return SamplePCA(empty, np.zeros(0), np.zeros(0), total_sum_of_squares, approximate=True)
    Sn = S + nu * omega
    core = omega.T @ Sn
    core = (core + core.T) / 2.0
    chol = np.linalg.cholesky(core)
    Bm = np.linalg.solve(chol, Sn.T).T  # Sn @ inv(chol)'
    U, sing, _ = np.linalg.svd(Bm, full_matrices=False)
    values = np.maximum(sing**2 - nu, 0.0)
    return _sample_pca(
        values, U, samples, total_sum_of_squares, n_components, rtol, approximate=True
    )


def cross_product_pcas(cp: CrossProducts, n_components: int = 10) -> dict[str, SamplePCA]:
    """PCA of the input, fitted values and residuals from summed cross-products (variance
    fractions relative to the exact total sums of squares of the same rows, also for sketches)."""
    out = {}
    for name in MATRICES:
        M = cp.matrices[name]
        if cp.kind == "gram":
            pca = gram_pca(M, cp.samples, n_components)
        else:
            omega = sketch_matrix(len(cp.samples), cp.sketch_size, cp.sketch_seed)
            total = cp.sums_of_squares[name]
            pca = sketch_pca(M, omega, cp.samples, total, n_components)
        pca.n_features, pca.stride = int(cp.n_features), int(cp.stride)
        out[name] = pca
    return out
