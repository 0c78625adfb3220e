"""Diagnostics of structure in the input, the fitted values, the residuals and the estimates.

Everything here is numbers (numpy / pandas in, numpy / pandas out); :mod:`stacklm.plots` draws them.

Sample-space PCA without holding a whole matrix
    Each fit chunk adds its rows' n x n cross-products ``A'A`` of the row-centred input, the
    row-centred fitted values and the residuals (features are rows, so ``A`` is g x n and ``A'A``
    sums over features); missing entries count as 0 after centring over the observed ones.  The
    chunk sums add up to the cross-product of the whole matrix, whose eigenvectors scaled by the
    square roots of the eigenvalues are the sample scores of ``prcomp(t(A))`` (R centres the
    columns of ``t(A)``, i.e. the rows of ``A``, the same centring).  With more than
    :data:`EXACT_GRAM_MAX_SAMPLES` samples a chunk keeps the n x l sketch ``A'(A Omega)`` for one
    fixed Gaussian ``Omega`` instead, and the PCA is the Nystrom approximation of Tropp et al.
    (2017, "Fixed-rank approximation of a positive-semidefinite matrix from streaming data"),
    exact when the rank is at most l.

Association of components with sample covariates
    :func:`component_associations` reuses :func:`stacklm.sva.sv_associations` (R's
    ``summary(lm(pc ~ covariate))$r.squared`` and the ANOVA F p-value).

SA plot
    :func:`sa_plot_data` mirrors limma's ``plotSA`` (3.54.1): x = Amean, y = sqrt(sigma), the prior
    line sqrt(sqrt(s2.prior)), robust outliers at BH FDR <= 0.5 of the two-sided F test of
    sigma^2 / s2.prior on (df.residual, max(df.prior)) degrees of freedom.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

#: up to this many samples the chunks keep the exact n x n cross-products; above, a sketch
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


# --------------------------------------------------------------------------------------------
# PCA from a cross-product or a sketch
# --------------------------------------------------------------------------------------------
@dataclass
class SamplePCA:
    """Sample-space PCA: ``scores`` (n x k, prcomp's ``x`` up to sign), ``eigenvalues`` (all
    positive ones of A'A, descending; prcomp's ``sdev^2 * (n - 1)``), ``variance_fraction`` of each
    component in the total sum of squares ``trace(A'A)``."""

    scores: pd.DataFrame
    eigenvalues: np.ndarray
    variance_fraction: np.ndarray
    total_sum_of_squares: float
    approximate: bool = False

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


def _orient(vectors: np.ndarray) -> np.ndarray:
    """Signs fixed so each column's entry of largest magnitude is positive (deterministic)."""
    if vectors.size == 0:
        return vectors
    idx = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[idx, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


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
    scores = _orient(vectors[:, :k]) * np.sqrt(values[:k])
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
    fractions relative to the exact total sums of squares, also for sketches)."""
    out = {}
    for name in MATRICES:
        M = cp.matrices[name]
        if cp.kind == "gram":
            out[name] = gram_pca(M, cp.samples, n_components)
        else:
            omega = sketch_matrix(len(cp.samples), cp.sketch_size, cp.sketch_seed)
            total = cp.sums_of_squares[name]
            out[name] = sketch_pca(M, omega, cp.samples, total, n_components)
    return out


# --------------------------------------------------------------------------------------------
# associations with sample covariates
# --------------------------------------------------------------------------------------------
#: a numeric sheet column of whole numbers with at most this many distinct values (batch 1-4,
#: plate, lane) is a code, associated as a factor unless the design uses it as a number
CODE_MAX_LEVELS = 10


def covariate_table(
    sheet: pd.DataFrame,
    samples: Sequence[str],
    levels: Mapping[str, Sequence] | None = None,
    extra: pd.DataFrame | None = None,
    numeric: Sequence[str] = (),
) -> pd.DataFrame:
    """The sample covariates to associate with components: every sample sheet column for
    ``samples`` (in that order), plus ``extra`` columns (e.g. the surrogate variables).

    Categorical (text): columns named in the analysis' ``levels``, and numeric columns that look
    like codes (whole numbers, 2 to :data:`CODE_MAX_LEVELS` distinct values, e.g. a batch numbered
    1-4 that is not in the design: a linear trend in the batch number is not a batch effect) unless
    listed in ``numeric`` (variables the design uses as numeric covariates)."""
    table = sheet.loc[[str(s) for s in samples]].copy()
    factors = [name for name in levels or {} if name in table.columns]
    for name in table.columns:
        col = table[name]
        if name in factors or name in set(numeric) or not _looks_like_code(col):
            continue
        factors.append(name)
    for name in factors:
        col = table[name]
        table[name] = col.where(col.isna(), col.map(_level_text)).astype(object)
    if extra is not None and extra.shape[1]:
        table = table.join(extra.loc[table.index])
    table.index = table.index.astype(str)
    return table


def numeric_covariates(analysis: Mapping) -> list[str]:
    """The formula variables of an analysis not listed in its ``levels``: numeric sheet columns
    among them are numeric covariates of the design (text columns are factors anyway)."""
    from .design import parse_formula

    levels = analysis.get("levels") or {}
    return [v for v in parse_formula(analysis["formula"]).variables if v not in levels]


def _looks_like_code(col: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = col.dropna().to_numpy(dtype=float)
    distinct = np.unique(values)
    return (
        2 <= distinct.size <= CODE_MAX_LEVELS
        and bool(np.all(np.isfinite(distinct) & (distinct == np.round(distinct))))
        and distinct.size < values.size
    )


def _level_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def component_associations(scores: pd.DataFrame, covariates: pd.DataFrame) -> pd.DataFrame:
    """R^2 and p-value of ``lm(component ~ covariate)`` for every component and covariate (ANOVA for
    categorical covariates), plus ``neg_log10_p``; long table with columns
    ``component, covariate, kind, r2, p_value, n, neg_log10_p``."""
    from .sva import sv_associations

    columns = ["component", "covariate", "kind", "r2", "p_value", "n", "neg_log10_p"]
    if scores.shape[1] == 0 or covariates.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    table = sv_associations(scores.loc[covariates.index].to_numpy(), covariates)
    names = list(scores.columns)
    table["sv"] = table["sv"].map(lambda s: names[int(s[2:]) - 1])
    table = table.rename(columns={"sv": "component"})
    with np.errstate(divide="ignore"):  # 0.0 - x: p = 1 gives 0, not -0
        table["neg_log10_p"] = neg_log10_p(table["p_value"].to_numpy(dtype=float))
    return table[columns]


def strongest_associations(associations: pd.DataFrame, max_p: float = 0.05) -> pd.DataFrame:
    """For each component, its covariate with the smallest p-value (if below ``max_p``)."""
    table = associations.dropna(subset=["p_value"])
    if table.empty:
        return table
    best = table.loc[table.groupby("component", sort=False)["p_value"].idxmin()]
    return best[best["p_value"] <= max_p]


# --------------------------------------------------------------------------------------------
# per-feature summaries
# --------------------------------------------------------------------------------------------
def sa_plot_data(
    average: np.ndarray,
    sigma: np.ndarray,
    df_residual: np.ndarray,
    s2_prior,
    df_prior,
    robust: bool | None = None,
) -> pd.DataFrame:
    """The points and lines of limma's ``plotSA``: x = Amean, y = sqrt(sigma), ``prior_line`` =
    sqrt(sqrt(s2.prior)) (per feature under ``trend``), ``outlier`` (robust eBayes only: BH-adjusted
    two-sided F test of sigma^2 / s2.prior on df.residual and max(df.prior) df, FDR <= 0.5).

    limma colours outliers when ``df.prior`` is a vector (robust); here ``robust`` says so, or,
    when None, a ``df_prior`` column that is not constant."""
    from .multiple_testing import p_adjust

    x = np.asarray(average, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    d = np.asarray(df_residual, dtype=float)
    s2p = np.broadcast_to(np.asarray(s2_prior, dtype=float), x.shape)
    d0 = np.broadcast_to(np.asarray(df_prior, dtype=float), x.shape)
    outlier = np.zeros(x.shape, dtype=bool)
    fdr = np.full(x.shape, np.nan)
    finite_d0 = d0[np.isfinite(d0)]
    if robust is None:
        robust = bool(finite_d0.size) and not np.all(finite_d0 == finite_d0[0])
    if robust and finite_d0.size:
        df2 = np.nanmax(d0)
        ratio = sig**2 / s2p
        with np.errstate(invalid="ignore"):
            pdn = special.fdtr(d, df2, ratio) if np.isfinite(df2) else stats.chi2.cdf(ratio * d, d)
            pup = special.fdtrc(d, df2, ratio) if np.isfinite(df2) else stats.chi2.sf(ratio * d, d)
        fdr = p_adjust(2 * np.minimum(pdn, pup), "BH")
        outlier = np.asarray(fdr <= 0.5) & np.isfinite(fdr)
    return pd.DataFrame(
        {
            "average": x,
            "sqrt_sigma": np.sqrt(sig),
            "prior_line": np.sqrt(np.sqrt(s2p)),
            "outlier_fdr": fdr,
            "outlier": outlier,
        }
    )


def binned_trend(x: np.ndarray, y: np.ndarray, n_bins: int = 20) -> pd.DataFrame:
    """Summaries of ``y`` in ``n_bins`` equal-count bins of ``x`` (features with both finite): bin
    limits, median x, count, mean, median, quartiles, 5% and 95% quantiles of y (R's type 7)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    columns = [
        "bin", "x_low", "x_high", "x_median", "n",
        "y_mean", "y_median", "y_q25", "y_q75", "y_q05", "y_q95",
    ]  # fmt: skip
    if x.size == 0:
        return pd.DataFrame(columns=columns)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n_bins = max(1, min(n_bins, x.size))
    rows = []
    for b, idx in enumerate(np.array_split(np.arange(x.size), n_bins)):
        yb = y[idx]
        q = np.quantile(yb, [0.25, 0.75, 0.05, 0.95])
        rows.append(
            (b + 1, x[idx[0]], x[idx[-1]], float(np.median(x[idx])), idx.size,
             float(yb.mean()), float(np.median(yb)), *map(float, q))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def category_summary(
    categories: Sequence, y: np.ndarray, max_levels: int = 30
) -> pd.DataFrame | None:
    """Summaries of ``y`` per level of a categorical annotation (None with more than ``max_levels``
    levels, e.g. gene names)."""
    cats = pd.Series(np.asarray(categories, dtype=object))
    y = np.asarray(y, dtype=float)
    ok = cats.notna().to_numpy() & np.isfinite(y)
    if cats[ok].nunique() > max_levels or not ok.any():
        return None
    frame = pd.DataFrame({"level": cats[ok].map(_level_text).to_numpy(), "y": y[ok]})
    grouped = frame.groupby("level", sort=False)["y"]
    table = pd.DataFrame(
        {
            "n": grouped.size(),
            "y_mean": grouped.mean(),
            "y_median": grouped.median(),
            "y_q25": grouped.quantile(0.25),
            "y_q75": grouped.quantile(0.75),
        }
    )
    return table.loc[sorted(table.index, key=natural_key)].reset_index()


def natural_key(text: str) -> tuple:
    """Sort key ordering numbers numerically inside text: 1, 2, 10, X, Y (not 1, 10, 2)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.findall(r"\d+|\D+", str(text))
    )


def estimate_correlation(estimates: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation across features between the columns of ``estimates`` (features x
    coefficients), on the features where all are finite."""
    values = estimates.to_numpy(dtype=float)
    complete = np.isfinite(values).all(axis=1)
    if complete.sum() < 3:
        return pd.DataFrame(np.nan, index=estimates.columns, columns=estimates.columns)
    return pd.DataFrame(
        np.corrcoef(values[complete], rowvar=False),
        index=estimates.columns,
        columns=estimates.columns,
    )


def design_estimate_correlation(
    design: pd.DataFrame, reported: Sequence[str], contrasts: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The correlation of the reported estimates implied by the design alone (no true effects,
    equal variances): ``cov2cor(C' (X'X)^-1 C)`` for the reported columns ``C`` (design columns and
    contrasts).  Observed correlations across features beyond this are shared structure."""
    from .design import make_contrasts

    names = list(design.columns)
    X = design.to_numpy(dtype=float)
    unscaled = np.linalg.inv(X.T @ X)
    C = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    if contrasts:
        C = pd.concat([C, make_contrasts(contrasts, names)], axis=1)
    C = C[list(reported)].to_numpy(dtype=float)
    cov = C.T @ unscaled @ C
    sd = np.sqrt(np.diag(cov))
    return pd.DataFrame(cov / np.outer(sd, sd), index=list(reported), columns=list(reported))


def pvalue_histogram(p: np.ndarray, n_bins: int = 20) -> pd.DataFrame:
    """Counts and density of p-values in ``n_bins`` equal bins of [0, 1] (right-closed but the
    first bin includes 0, as R's ``hist``); the uniform null has density 1, so pi0 * 1 is the
    null level."""
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # R's hist.default nudges the breaks by 1e-7 of the bin width ("fuzz") before binning
    diddle = 1e-7 * (1.0 / n_bins)
    fuzzed = edges + diddle
    fuzzed[0] = edges[0] - diddle
    idx = np.clip(np.searchsorted(fuzzed, p, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    width = 1.0 / n_bins
    density = counts / (p.size * width) if p.size else np.zeros(n_bins)
    return pd.DataFrame(
        {"bin_low": edges[:-1], "bin_high": edges[1:], "count": counts, "density": density}
    )


def qq_data(p: np.ndarray, max_points: int = 4000, level: float = 0.95) -> pd.DataFrame:
    """Expected vs observed -log10 p (expected at R's ``ppoints``: (i - 1/2) / m for m > 10) with a
    pointwise ``level`` band from the Beta(i, m - i + 1) order-statistic distribution.

    To keep the plot light with a million features the points are thinned: all of the smallest
    ``max_points / 2`` p-values are kept, the rest only where they move at least 1/``max_points``
    of the axis range from the previous kept point (the drawn curve is unchanged).
    """
    p = np.sort(np.asarray(p, dtype=float)[np.isfinite(np.asarray(p, dtype=float))])
    m = p.size
    columns = ["rank", "expected", "observed", "band_low", "band_high"]
    if m == 0:
        return pd.DataFrame(columns=columns)
    i = np.arange(1, m + 1, dtype=float)
    a = 3.0 / 8.0 if m <= 10 else 0.5
    expected = -np.log10((i - a) / (m + 1 - 2 * a))
    with np.errstate(divide="ignore"):
        observed = neg_log10_p(p)
    finite_obs = observed[np.isfinite(observed)]
    top = max(expected[0], finite_obs.max() if finite_obs.size else expected[0])
    step = top / max_points
    keep = np.zeros(m, dtype=bool)
    keep[: max_points // 2] = True
    keep[-1] = True
    grid_x = np.floor(expected / step)
    grid_y = np.floor(np.where(np.isfinite(observed), observed, top) / step)
    cell = grid_x * (max_points + 2) + grid_y
    first = np.ones(m, dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    keep |= first
    idx = np.flatnonzero(keep)
    alpha = (1.0 - level) / 2.0
    band_low = -np.log10(special.betaincinv(i[idx], m - i[idx] + 1, 1.0 - alpha))
    band_high = -np.log10(special.betaincinv(i[idx], m - i[idx] + 1, alpha))
    return pd.DataFrame(
        {
            "rank": idx + 1,
            "expected": expected[idx],
            "observed": observed[idx],
            "band_low": band_low,
            "band_high": band_high,
        }
    )


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


def _bw_nrd0(x: np.ndarray) -> float:
    """R's ``bw.nrd0``."""
    if x.size < 2:
        return 1.0
    hi = np.std(x, ddof=1)
    q75, q25 = np.quantile(x, [0.75, 0.25])
    lo = min(hi, (q75 - q25) / 1.34)
    if not lo > 0:
        lo = hi or abs(x[0]) or 1.0
    return 0.9 * lo * x.size ** (-0.2)


def sample_densities(
    values: np.ndarray, samples: Sequence[str], grid: np.ndarray | None = None, n_grid: int = 256
) -> pd.DataFrame:
    """Gaussian kernel density (bandwidth ``bw.nrd0``) of each sample's observed values (columns of
    ``values``) on a common grid: a fine histogram (4096 bins over the grid and all values)
    convolved with the kernel, then interpolated to the grid (the binned approximation R's
    ``density`` also uses, with simple instead of linear binning).  Long table:
    ``sample, x, density``."""
    from scipy.signal import fftconvolve

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
    for j, name in enumerate(samples):  # one small histogram per sample
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
            bw = _bw_nrd0(x)
            half = int(min(np.ceil(5.0 * bw / step), 2 * counts.size)) if step > 0 else 0
            offsets = np.arange(-half, half + 1) * step
            kernel = np.exp(-0.5 * (offsets / bw) ** 2)
            fine = fftconvolve(counts.astype(float), kernel, mode="full")[half : half + counts.size]
            fine = np.maximum(fine, 0.0) / (x.size * bw * math.sqrt(2 * math.pi))
            dens = np.interp(grid, centres, fine)
        out.append(pd.DataFrame({"sample": str(name), "x": grid, "density": dens}))
    return pd.concat(out, ignore_index=True)


def sample_quantiles(
    values: np.ndarray,
    samples: Sequence[str],
    probs: Sequence[float] = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0),
) -> pd.DataFrame:
    """Quantiles (R's type 7) of each sample's observed values; one row per sample."""
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


def stream_sample_distributions(
    matrix_path,
    store_path,
    matrix_format: str | None = None,
    input_scale: str = "expression",
    beta_epsilon: float = 1e-6,
    normalize: Mapping | None = None,
    seed: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample densities and quantiles of the input (one streaming pass, on the analysis scale:
    after the log2 / M-value transform, before between-sample normalization and filters) and of the
    normalized store (as fitted), each from a uniform random sample of rows
    (:class:`RowReservoir`, :func:`reservoir_size` rows)."""
    from .io import open_binary_matrix, read_matrix_blocks, read_matrix_header
    from .pipeline import transform_values

    _, samples = read_matrix_header(matrix_path, matrix_format)
    before = RowReservoir(len(samples), reservoir_size(len(samples)), seed=seed)
    for block in read_matrix_blocks(matrix_path, matrix_format):
        before.add(transform_values(block.values, input_scale, beta_epsilon, dict(normalize or {})))
    store = open_binary_matrix(store_path)
    size = min(reservoir_size(store.n_samples), store.n_features)
    rows = np.sort(np.random.default_rng(seed).choice(store.n_features, size, replace=False))
    after = np.asarray(store.values[rows], dtype=np.float64) if size else np.empty((0, 0))
    return sample_distributions(before.values(), after, samples, store.samples)


# --------------------------------------------------------------------------------------------
# the reviewer's summary
# --------------------------------------------------------------------------------------------
def format_number(value, digits: int = 4) -> str:
    """How summary.md writes a number: integers with thousands separators, floats with ``digits``
    significant digits, infinities as ``Inf`` (also JSON's ``"Infinity"``), missing as ``NA``."""
    if isinstance(value, str) and value in ("Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "NA"
        if np.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return f"{value:.{digits}g}"
    return str(value)


def summary_markdown(
    analysis: str,
    summary: Mapping,
    significant: Mapping[str, int],
    structure: Sequence[tuple[str, str, float, str, float, float]] = (),
) -> str:
    """The numbers a reviewer reads first, as Markdown.

    ``significant``: name -> count of features with FDR <= alpha (the test first, then each
    reported coefficient / contrast).  ``structure``: rows (matrix, component, variance fraction,
    covariate, R^2, p) of the strongest covariate association of the top components; covariate
    None for a component no sample covariate explains (p > 0.05 for all: hidden structure).
    """
    s = dict(summary)
    norm = s.get("normalization") or {}
    dropped = list(s.get("dropped_samples") or [])
    test = s.get("test") or []
    alpha = s.get("alpha")
    lines = [
        f"# stacklm analysis `{analysis}`",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| features fitted | {format_number(s.get('n_features'))} |",
    ]
    if norm:
        lines.append(
            f"| features in the input / removed by filters | {format_number(norm.get('n_input_features'))}"
            f" / {format_number(sum((norm.get('removed_by_filter') or {}).values()))} |"
        )
    lines += [
        f"| samples | {format_number(s.get('n_samples'))} |",
        f"| dropped samples (missing formula variables) | {len(dropped)}"
        + (
            f": {', '.join(map(str, dropped[:20]))}" + (" …" if len(dropped) > 20 else "")
            if dropped
            else ""
        )
        + " |",
        f"| design columns | {', '.join(f'`{c}`' for c in s.get('design_columns') or [])} |",
        f"| test | {', '.join(f'`{t}`' for t in test)} (moderated {s.get('test_statistic', '')}"
        f", df1 = {format_number(s.get('test_df1'))}) |",
        f"| prior variance s2.prior{' (median, trend)' if s.get('s2_prior_per_feature') else ''}"
        f" | {format_number(s.get('s2_prior'))} |",
        f"| prior df df.prior{' (median, robust)' if s.get('df_prior_per_feature') else ''}"
        f" | {format_number(s.get('df_prior'))} |",
        f"| pi0 (qvalue) | {format_number(s.get('pi0'))} |",
        f"| genomic inflation λGC | {format_number(s.get('lambda_gc'))} |",
        f"| surrogate variables | {format_number(s.get('n_surrogate_variables'))} |",
        "",
        f"## Significant features ({s.get('fdr_method', 'BH')} FDR ≤ {format_number(alpha)})",
        "",
        "| test / coefficient | features |",
        "|---|---|",
    ]
    for name, count in significant.items():
        lines.append(f"| `{name}` | {format_number(int(count))} |")
    if structure:
        lines += [
            "",
            "## Strongest covariate association of the top principal components",
            "",
            "| matrix | component | variance | covariate | R² | p |",
            "|---|---|---|---|---|---|",
        ]
        for matrix, comp, frac, cov, r2, p in structure:
            if cov is None:
                lines.append(
                    f"| {matrix} | {comp} | {100 * frac:.1f}% | none (all p > 0.05) | – | – |"
                )
            else:
                lines.append(
                    f"| {matrix} | {comp} | {100 * frac:.1f}% | `{cov}` | {r2:.3f} | {p:.2g} |"
                )
    versions = s.get("versions") or {}
    if versions:
        lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items())]
    return "\n".join(lines) + "\n"


def markdown_table_html(markdown: str, title: str) -> str:
    """A minimal self-contained HTML rendering of :func:`summary_markdown` (headings, tables,
    paragraphs; inline code), for the Snakemake report."""
    import html

    def inline(text: str) -> str:
        parts = html.escape(text).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    body, rows = [], []

    def flush():
        if rows:
            head, *rest = rows
            body.append("<table>")
            body.append("<tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>")
            for r in rest:
                body.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>")
            body.append("</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", ":"} and c for c in cells):
                continue
            rows.append(cells)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush()
    style = (
        "body{font-family:sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "th{background:#f0f0f0}code{background:#f6f6f6;padding:0 2px}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
