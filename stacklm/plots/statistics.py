"""Plots of test statistics: p-value histogram, QQ, volcano, MD, SA."""

from __future__ import annotations

import matplotlib

from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.diagnostics.features import binned_trend, pvalue_histogram, qq_data, sa_plot_data
from stacklm.plots.common import (
    COLORBAR_PADS,
    PADS,
    Pads,
    _figure,
    _legend,
    _message,
    _neg_log10,
    _scatter,
    _title_pads,
    _trend_line,
    _wrap,
    save_plot,
)
from stacklm.plots.style import NEUTRAL, PRIOR, SIGNIFICANT, TREND, _labels

matplotlib.use("Agg")

from collections.abc import Mapping, Sequence

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402


# --------------------------------------------------------------------------------------------
# test statistics
# --------------------------------------------------------------------------------------------
def plot_pvalue_histogram(p, pi0: float | None, test_label: str, png, data_path) -> None:
    hist = pvalue_histogram(p)
    title = _wrap(f"p-values of {test_label}", 55)
    fig, (ax,) = _figure(1, width=5.2, height=3.9, pads=_title_pads(title))
    width = hist["bin_high"] - hist["bin_low"]
    ax.bar(hist["bin_low"], hist["density"], width=width, align="edge", color="#9ecae1",
           edgecolor="white", linewidth=0.5, label=f"{int(hist['count'].sum()):,} features")  # fmt: skip
    ax.axhline(1.0, color=NEUTRAL, lw=0.8, ls=":", label="uniform: all null (density 1)")
    if pi0 is not None and np.isfinite(pi0):
        ax.axhline(pi0, color=SIGNIFICANT, lw=1.2, label=f"π0 = {pi0:.3f} (qvalue): null level")
    ax.set_xlim(0, 1)
    ax.set_xlabel("p-value (20 bins of width 0.05)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    _legend(ax, fontsize=8, loc="upper right")
    hist["pi0"] = pi0 if pi0 is not None else np.nan
    save_plot(fig, png, hist, data_path)


def plot_qq(p, lambda_gc: float | None, test_label: str, png, data_path) -> None:
    """QQ plot of -log10 p: all features (left) and the bulk (right, the y axis cut at the null
    band's top), where inflation of the null features shows."""
    qq = qq_data(p)
    gc = f"λGC = {lambda_gc:.3f}" if lambda_gc is not None and np.isfinite(lambda_gc) else ""
    title = _wrap(f"QQ plot of {test_label}" + (f" ({gc})" if gc else ""), 90)
    fig, axes = _figure(2, ncols=2, width=4.4, height=4.3, pads=PADS,
                        suptitle_lines=title.count("\n") + 1)  # fmt: skip
    if qq.empty:
        for ax in axes:
            _message(ax, "no p-values")
    else:
        finite = np.isfinite(qq["observed"]).to_numpy()
        xmax = float(qq["expected"].max())
        top = max(xmax, float(qq.loc[finite, "observed"].max()) if finite.any() else xmax)
        zoom = 1.15 * max(xmax, float(qq["band_high"].max()))
        for ax, bulk in zip(axes, (False, True), strict=True):
            ax.fill_between(qq["expected"], qq["band_low"], qq["band_high"], color="#d0d0d0",
                            lw=0, label="95% band under the null")  # fmt: skip
            ax.plot([0, xmax], [0, xmax], color=NEUTRAL, lw=0.8, label="y = x")
            ax.scatter(qq.loc[finite, "expected"], qq.loc[finite, "observed"], s=5, c=PRIOR,
                       linewidths=0, rasterized=True, label="features")  # fmt: skip
            ax.set_xlim(0, xmax * 1.03)
            ax.set_xlabel("expected −log10 p (uniform null)")
            ax.set_ylabel("observed −log10 p")
            if bulk:
                ax.set_ylim(0, zoom)
                above = int((qq.loc[finite, "observed"] > zoom).sum() + (~finite).sum())
                ax.set_title(f"bulk of the features (y axis cut at {zoom:.1f})", fontsize=9)
                if above:
                    ax.text(0.03, 0.97, f"{above:,} plotted points above the cut", va="top",
                            transform=ax.transAxes, fontsize=7)  # fmt: skip
            else:
                ax.set_ylim(0, top * 1.06)
                if (~finite).any():
                    ax.scatter(qq.loc[~finite, "expected"], np.full((~finite).sum(), top * 1.03),
                               marker="^", s=12, c=SIGNIFICANT, label="p = 0 (off scale)")  # fmt: skip
                ax.set_title("all features", fontsize=9)
                ax.text(0.04, 0.96, gc, transform=ax.transAxes, va="top", fontsize=11,
                        fontweight="bold")  # fmt: skip
                _legend(ax, loc="upper left", bbox_to_anchor=(0.0, 0.88), markerscale=1.5)
    fig.suptitle(title, fontsize=10)
    qq["lambda_gc"] = lambda_gc if lambda_gc is not None else np.nan
    save_plot(fig, png, qq, data_path)


#: rows per coefficient in the volcano and MD data tables (and rows of the SA table): above it they
#: hold every significant feature (the smallest p-values first, if there are more) or variance
#: outlier, and a seeded random sample of the rest; the plots draw every feature, and
#: results.parquet holds them all
DATA_ROWS_PER_COEFFICIENT = 25_000

#: seed of that sample (the same features for every coefficient and both plots)
DATA_SAMPLE_SEED = 20241201


def data_rows(p: np.ndarray, significant: np.ndarray, cap: int = DATA_ROWS_PER_COEFFICIENT):
    """Row indices (in input order) of a per-feature data table of at most ``cap`` rows: all rows
    when there are at most ``cap``; else every significant row (the ``cap`` smallest p-values when
    more are significant) and a seeded uniform sample of the other rows to fill ``cap``."""
    g = p.size
    if g <= cap:
        return np.arange(g)
    sig = np.flatnonzero(significant)
    if sig.size >= cap:
        order = np.argsort(np.nan_to_num(p[sig], nan=np.inf), kind="stable")
        return np.sort(sig[order[:cap]])
    rest = np.flatnonzero(~significant)
    pick = np.random.default_rng(DATA_SAMPLE_SEED).choice(rest.size, cap - sig.size, replace=False)
    return np.sort(np.concatenate([sig, rest[pick]]))


def coefficient_rows(table: pd.DataFrame, names: Sequence[str], alpha: float) -> dict:
    """:func:`data_rows` of each coefficient (FDR <= ``alpha`` significant), shared by the volcano
    and MD data tables (the same features for both)."""
    out = {}
    for name in names:
        fdr = table[f"fdr_{name}"].to_numpy(dtype=float)
        out[name] = data_rows(table[f"p_{name}"].to_numpy(dtype=float), _significant(fdr, alpha))
    return out


def _significant(fdr: np.ndarray, alpha: float) -> np.ndarray:
    return np.nan_to_num(fdr, nan=1.0) <= alpha


def _floats(values) -> pa.Array:
    """A float column of a data table as :func:`stacklm.io.outputs.arrow_table` types it (NaN as
    a missing value)."""
    return pa.array(np.asarray(values, dtype=np.float64), from_pandas=True)


def _text(value: str, n: int) -> pa.Array:
    return pa.nulls(n, pa.string()).fill_null(value)


def feature_ids(table: pd.DataFrame) -> pa.Array:
    """The ``feature_id`` column as an Arrow string array: no copy of the Arrow-backed strings a
    results table is read with, so that the data tables take their rows without converting a
    million ids to Python strings (missing as null: written ``NA``)."""
    arrow = pa.array(table["feature_id"].astype(str).array)
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


def plot_volcano(table: pd.DataFrame, names: Sequence[str], alpha: float, png, data_path,
                 rows: Mapping[str, np.ndarray] | None = None) -> None:  # fmt: skip
    """Estimate vs -log10 p of each coefficient; ``rows``: :func:`coefficient_rows` when the
    caller has them."""
    labels = _labels()
    fig, axes = _figure(len(names), ncols=3, width=4.4, height=3.8, pads=COLORBAR_PADS)
    rows = rows if rows is not None else coefficient_rows(table, names, alpha)
    ids = feature_ids(table)
    data = []
    for ax, name in zip(axes, names, strict=True):
        est = table[f"estimate_{name}"].to_numpy(dtype=float)
        p = table[f"p_{name}"].to_numpy(dtype=float)
        fdr = table[f"fdr_{name}"].to_numpy(dtype=float)
        y = _neg_log10(p)
        sig = _significant(fdr, alpha)
        _scatter(ax, est, y, sig, f"{labels.fdr_method} FDR ≤ {alpha:g}")
        if sig.any():
            cut = float(np.nanmax(p[sig]))
            ax.axhline(float(neg_log10_p(cut)), color=SIGNIFICANT, lw=0.7, ls="--",
                       label=f"FDR = {alpha:g} (p = {cut:.2g})")  # fmt: skip
        finite = np.abs(est[np.isfinite(est)])
        if finite.size:  # symmetric about 0: up and down effects compare at a glance
            half = 1.05 * float(finite.max()) or 1.0
            ax.set_xlim(-half, half)
        ax.axvline(0, color=NEUTRAL, lw=0.5)
        ax.set_xlabel(labels.estimate(name), fontsize=9)
        ax.set_ylabel("−log10 p (moderated t)")
        ax.set_title(name, fontsize=9)
        _legend(ax, loc="upper left")
        r = rows[name]
        data.append(pa.table({
            "feature_id": ids.take(r), "coefficient": _text(name, r.size),
            "estimate": _floats(est[r]), "neg_log10_p": _floats(y[r]), "fdr": _floats(fdr[r]),
            "significant": pa.array(sig[r]),
        }))  # fmt: skip
    fig.suptitle("volcano plots: estimate vs moderated t p-value", fontsize=10)
    save_plot(fig, png, pa.concat_tables(data), data_path)


def plot_md(table: pd.DataFrame, names: Sequence[str], alpha: float, png, data_path,
            rows: Mapping[str, np.ndarray] | None = None, order: np.ndarray | None = None,
            trends: Mapping[str, pd.DataFrame] | None = None) -> None:  # fmt: skip
    """limma's plotMD: estimate vs average, significant features coloured, binned median trend.
    ``rows``: :func:`coefficient_rows`, ``order``: the stable argsort of the average, ``trends``:
    each coefficient's ``binned_trend`` on the average, when the caller has them."""
    labels = _labels()
    fig, axes = _figure(len(names), ncols=3, width=4.4, height=3.8, pads=COLORBAR_PADS)
    avg = table["average"].to_numpy(dtype=float)
    by_average = order if order is not None else np.argsort(avg, kind="stable")
    rows = rows if rows is not None else coefficient_rows(table, names, alpha)
    ids = feature_ids(table)
    data = []
    for ax, name in zip(axes, names, strict=True):
        est = table[f"estimate_{name}"].to_numpy(dtype=float)
        fdr = table[f"fdr_{name}"].to_numpy(dtype=float)
        sig = _significant(fdr, alpha)
        _scatter(ax, avg, est, sig, f"{labels.fdr_method} FDR ≤ {alpha:g}")
        trend = trends[name] if trends is not None else binned_trend(avg, est, order=by_average)
        ax.axhline(0, color=NEUTRAL, lw=0.5)
        _trend_line(ax, trend["x_median"], trend["y_median"], color=TREND, lw=1.6,
                    label="median (20 bins of average)")  # fmt: skip
        ax.set_xlabel(labels.average, fontsize=9)
        ax.set_ylabel(labels.estimate(name), fontsize=9)
        ax.set_title(name, fontsize=9)
        _legend(ax, loc="upper right")
        r = rows[name]
        data.append(pa.table({
            "feature_id": ids.take(r), "coefficient": _text(name, r.size),
            "average": _floats(avg[r]), "estimate": _floats(est[r]), "fdr": _floats(fdr[r]),
            "significant": pa.array(sig[r]),
        }))  # fmt: skip
    fig.suptitle("MD plots: estimate vs average", fontsize=10)
    save_plot(fig, png, pa.concat_tables(data), data_path)


#: points of the SA plot's prior trend line (evenly spaced in the order of the average): the line
#: is a smooth function of the average, a million vertices would draw the same curve
PRIOR_LINE_POINTS = 2000


def plot_sa(table: pd.DataFrame, trend: bool, robust: bool, png, data_path,
            order: np.ndarray | None = None) -> None:  # fmt: skip
    """limma's plotSA: sqrt(sigma) vs Amean with the prior line sqrt(sqrt(s2.prior)) (its trend on
    Amean under ``trend``), robust eBayes' variance outliers in red; plus the median of the points
    in 20 equal-count bins of Amean, to judge whether the prior follows them.  ``order``: the
    stable argsort of the average when the caller has it."""
    labels = _labels()
    sa = sa_plot_data(
        table["average"], table["sigma"], table["df_residual"], table["s2_prior"],
        table["df_prior"], robust=robust,
    )  # fmt: skip
    fig, (ax,) = _figure(1, width=5.6, height=4.4, pads=Pads(right=0.95, top=0.5))
    average = sa["average"].to_numpy()
    sqrt_sigma = sa["sqrt_sigma"].to_numpy()
    outlier = sa["outlier"].to_numpy(dtype=bool)
    _scatter(ax, average, sqrt_sigma, outlier if robust else None,
             "variance outliers (robust eBayes, FDR ≤ 0.5)")  # fmt: skip
    by_average = order if order is not None else np.argsort(average, kind="stable")
    points = binned_trend(average, sqrt_sigma, order=by_average)
    _trend_line(ax, points["x_median"], points["y_median"], color=TREND, lw=1.2, ls="--",
                label="median of the points (20 bins)")  # fmt: skip
    prior_line = sa["prior_line"].to_numpy()
    along = by_average[np.isfinite(average[by_average]) & ~np.isnan(prior_line[by_average])]
    if along.size > PRIOR_LINE_POINTS:
        along = along[np.unique(np.linspace(0, along.size - 1, PRIOR_LINE_POINTS).astype(np.intp))]
    s2 = np.asarray(table["s2_prior"], dtype=float)
    d0 = np.asarray(table["df_prior"], dtype=float)
    if trend:
        label = "prior trend sqrt(sqrt(s2.prior))"
    else:
        label = f"prior sqrt(sqrt(s2.prior)), s2.prior = {np.nanmedian(s2):.3g}"
    _trend_line(ax, average[along], prior_line[along], color=PRIOR, lw=1.6, label=label)
    _legend(ax, loc="upper right")
    ax.set_xlabel(labels.average)
    ax.set_ylabel("sqrt(sigma): sqrt of residual SD")
    prior = f"eBayes prior {'trend' if trend else 'constant'}{', robust' if robust else ''}"
    df_text = f"df.prior = {np.nanmedian(d0):.3g}" + (" (median)" if robust else "")
    ax.set_title(f"SA plot (limma plotSA)\n{prior}; {df_text}", fontsize=9)
    # the data table: every variance outlier and a seeded sample of the rest, as the volcano's
    r = data_rows(sa["outlier_fdr"].to_numpy(dtype=float), outlier)
    data = {"feature_id": feature_ids(table).take(r)}
    for name in ("average", "sqrt_sigma", "prior_line", "outlier_fdr"):
        data[name] = _floats(sa[name].to_numpy()[r])
    data["outlier"] = pa.array(outlier[r])
    save_plot(fig, png, pa.table(data), data_path)
