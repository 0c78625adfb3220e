"""Per-feature summaries behind the plots: SA, trends, correlations, p-value histogram, QQ."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

from stacklm.design.contrasts import make_contrasts
from stacklm.diagnostics.associations import _level_text
from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.multiple_testing.padjust import p_adjust


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
            # chdtr/chdtrc: what scipy.stats.chi2's cdf and sf call (scipy.stats, not imported
            # here, costs a third of a second of the plot job's start)
            pdn = special.fdtr(d, df2, ratio) if np.isfinite(df2) else special.chdtr(d, ratio * d)
            pup = special.fdtrc(d, df2, ratio) if np.isfinite(df2) else special.chdtrc(d, ratio * d)
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


def binned_trend(
    x: np.ndarray, y: np.ndarray, n_bins: int = 20, order: np.ndarray | None = None
) -> pd.DataFrame:
    """Summaries of ``y`` in ``n_bins`` equal-count bins of ``x`` (features with both finite): bin
    limits, median x, count, mean, median, quartiles, 5% and 95% quantiles of y (R's type 7).

    ``order``: ``np.argsort(x, kind="stable")`` of the whole ``x`` when the caller has it (several
    ``y`` on one ``x``); filtered to the finite pairs it is the stable order of those, so the bins
    are the same."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if order is None:
        x, y = x[ok], y[ok]
        order = np.argsort(x, kind="stable")
    else:
        order = np.asarray(order)
        order = order[ok[order]]
    columns = [
        "bin", "x_low", "x_high", "x_median", "n",
        "y_mean", "y_median", "y_q25", "y_q75", "y_q05", "y_q95",
    ]  # fmt: skip
    if order.size == 0:
        return pd.DataFrame(columns=columns)
    x, y = x[order], y[order]
    n_bins = max(1, min(n_bins, x.size))
    rows = []
    # bins of consecutive sorted x (the first m % n_bins one longer, as np.array_split): the median
    # of a sorted slice is its middle value(s), the y summaries one partition per bin
    sizes = np.full(n_bins, x.size // n_bins)
    sizes[: x.size % n_bins] += 1
    ends = np.cumsum(sizes)
    for b, (lo, hi) in enumerate(zip(ends - sizes, ends, strict=True)):
        xb, yb = x[lo:hi], y[lo:hi]
        mid = (xb.size - 1) // 2
        x_median = float(xb[mid]) if xb.size % 2 else float(np.mean(xb[mid : mid + 2]))
        q = np.quantile(yb, [0.5, 0.25, 0.75, 0.05, 0.95])
        rows.append((b + 1, xb[0], xb[-1], x_median, xb.size, float(yb.mean()), *map(float, q)))
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
    columns = [estimates[c].to_numpy(dtype=float) for c in estimates.columns]
    complete = np.logical_and.reduce([np.isfinite(v) for v in columns])
    n_complete = int(complete.sum())
    if n_complete < 3:
        return pd.DataFrame(np.nan, index=estimates.columns, columns=estimates.columns)
    if n_complete < complete.size:
        columns = [v[complete] for v in columns]
    # np.corrcoef's arithmetic (centred columns, cross-products, divided by the SDs) on the
    # columns as they are, without stacking the table into one features x coefficients copy
    centred = [v - v.mean() for v in columns]
    k = len(centred)
    cov = np.empty((k, k))
    for i in range(k):  # a loop over coefficient pairs, each a dot product over the features
        for j in range(i, k):
            cov[i, j] = cov[j, i] = centred[i] @ centred[j]
    sd = np.sqrt(np.diag(cov))
    corr = np.clip(cov / sd[:, None] / sd[None, :], -1.0, 1.0)
    return pd.DataFrame(corr, index=estimates.columns, columns=estimates.columns)


def design_estimate_correlation(
    design: pd.DataFrame, reported: Sequence[str], contrasts: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The correlation of the reported estimates implied by the design alone (no true effects,
    equal variances): ``cov2cor(C' (X'X)^-1 C)`` for the reported columns ``C`` (design columns and
    contrasts).  Observed correlations across features beyond this are shared structure."""

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
