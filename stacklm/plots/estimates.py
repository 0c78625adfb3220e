"""Plots of estimate structure: trends, correlations, annotation categories."""

from __future__ import annotations

import math

import matplotlib

from stacklm.diagnostics.features import binned_trend, category_summary
from stacklm.plots.common import (
    PADS,
    Pads,
    _figure,
    _legend,
    _message,
    _shared_colorbar,
    _text_width,
    heatmap_pads,
    save_plot,
)
from stacklm.plots.style import ANNOTATION_MAX_VALUES, DENSITY_MIN_FEATURES, NEUTRAL, TREND, _labels

matplotlib.use("Agg")

from collections.abc import Mapping, Sequence

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402


# --------------------------------------------------------------------------------------------
# estimate structure
# --------------------------------------------------------------------------------------------
def _trend_panel(ax, trend: pd.DataFrame, xlabel: str, ylabel: str, title: str) -> None:
    if trend.empty:
        _message(ax, "no finite values")
        return
    ax.fill_between(trend["x_median"], trend["y_q05"], trend["y_q95"], color=TREND, alpha=0.15,
                    lw=0, label="5–95%")  # fmt: skip
    ax.fill_between(trend["x_median"], trend["y_q25"], trend["y_q75"], color=TREND, alpha=0.35,
                    lw=0, label="25–75%")  # fmt: skip
    ax.plot(trend["x_median"], trend["y_median"], color=TREND, lw=1.5, marker="o", ms=2.5,
            label="median")  # fmt: skip
    ax.plot(trend["x_median"], trend["y_mean"], color=NEUTRAL, lw=0.8, ls="--", label="mean")
    ax.axhline(0, color=NEUTRAL, lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


def plot_estimate_trend(table: pd.DataFrame, names: Sequence[str], png, data_path,
                        order: np.ndarray | None = None,
                        trends: Mapping[str, pd.DataFrame] | None = None) -> None:  # fmt: skip
    """Binned summaries of each coefficient's estimates along the average (``order``: the stable
    argsort of the average, ``trends``: the summaries, when the caller has them)."""
    fig, axes = _figure(len(names), ncols=3, width=4.2, height=3.4, pads=PADS)
    avg = table["average"].to_numpy(dtype=float)
    by_average = order if order is not None else np.argsort(avg, kind="stable")  # every panel's
    data = []
    for ax, name in zip(axes, names, strict=True):
        trend = (trends[name].copy() if trends is not None
                 else binned_trend(avg, table[f"estimate_{name}"].to_numpy(dtype=float),
                                   order=by_average))  # fmt: skip
        _trend_panel(ax, trend, f"{_labels().average}, 20 equal-count bins",
                     _labels().estimate(name), name)  # fmt: skip
        trend.insert(0, "coefficient", name)
        data.append(trend)
    _legend(axes[0], loc="upper right")
    fig.suptitle("estimates vs average, binned", fontsize=10)
    save_plot(fig, png, pd.concat(data, ignore_index=True), data_path)


def _heatmap(ax, values: np.ndarray, rows, cols, cmap, vmin, vmax, text=None, fmt="{:.2f}"):
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                   interpolation="nearest")  # fmt: skip
    ax.set_xticks(range(len(cols)), labels=cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=7)
    if text is not None and values.size <= 400:
        norm = mcolors.Normalize(vmin, vmax)
        cm = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        for (i, j), v in np.ndenumerate(text):
            if np.isfinite(v):
                v = (v if v > 0 else 0.0) if fmt == "{:.1f}" else v
                shade = cm(norm(values[i, j])) if np.isfinite(values[i, j]) else (1, 1, 1, 1)
                light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.5
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                        color="black" if light else "white")  # fmt: skip
    return im


def plot_estimate_correlation(
    observed: pd.DataFrame, expected: pd.DataFrame, png, data_path
) -> None:
    names = list(observed.columns)
    pads = heatmap_pads(names, names, title_lines=2)
    fig, axes = _figure(2, ncols=2, width=0.45 * len(names) + pads.left + pads.right,
                        height=0.4 * len(names) + pads.bottom + pads.top, pads=pads,
                        colorbar_space=1.1)  # fmt: skip
    for ax, (title, mat) in zip(
        axes,
        [("observed across features", observed), ("expected from the design alone", expected)],
        strict=True,
    ):
        values = mat.loc[names, names].to_numpy(dtype=float)
        im = _heatmap(ax, values, names, names, "RdBu_r", -1, 1, text=values)
        ax.set_title(f"correlation of estimates:\n{title}", fontsize=9)
    _shared_colorbar(fig, axes, im, "Pearson correlation")
    long = []
    for kind, mat in (("observed", observed), ("design", expected)):
        m = mat.loc[names, names]
        for a in names:
            for b in names:
                long.append((kind, a, b, float(m.loc[a, b])))
    save_plot(fig, png, pd.DataFrame(long, columns=["kind", "row", "column", "correlation"]),
              data_path)  # fmt: skip


def plot_estimate_annotation(
    table: pd.DataFrame, names: Sequence[str], features: pd.DataFrame, png, data_path
) -> None:
    """Estimates against each feature annotation column: binned trend for numeric columns,
    per-level median and quartiles for categorical ones with at most 30 levels."""
    labels = _labels()
    ann = features.reindex(table["feature_id"].astype(str).to_numpy())
    columns = []
    for col in ann.columns:
        series = ann[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            # few distinct values (probe length 40..50): per value, not in equal-count bins
            if 1 < series.nunique() <= ANNOTATION_MAX_VALUES:
                columns.append((col, "categorical"))
            elif series.notna().sum() >= 3 and series.nunique() > 1:
                columns.append((col, "numeric"))
        elif 1 < series.nunique() <= 30:
            columns.append((col, "categorical"))
    n_rows = max(1, len(columns))
    # the categorical panels' summaries first: their level names size the space below the panels
    summaries = {
        (col, name): category_summary(
            ann[col].to_numpy(), table[f"estimate_{name}"].to_numpy(dtype=float)
        )
        for col, kind in columns
        if kind == "categorical"
        for name in names
    }
    levels = [lv for t in summaries.values() if t is not None for lv in t["level"]]
    # fixed pads (no constrained layout: half the drawing time of these 3 x 8 panels): the level
    # names turned by 60 degrees, then the axis label
    below = _text_width(levels, 7) * math.sin(math.radians(60)) + 0.4 if levels else 0.0
    pads = Pads(bottom=max(PADS.bottom, below))
    fig, axes = _figure(n_rows * len(names), ncols=min(4, len(names)), width=4.0, height=3.4,
                        pads=pads)  # fmt: skip
    data = []
    if not columns:
        _message(axes[0], "the feature annotation has no numeric column and no column with\n"
                          "2 to 30 levels to compare the estimates with")  # fmt: skip
    for r, (col, kind) in enumerate(columns):
        for c, name in enumerate(names):
            ax = axes[r * len(names) + c]
            est = table[f"estimate_{name}"].to_numpy(dtype=float)
            if kind == "numeric":
                x = ann[col].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(est)
                if ok.sum() < DENSITY_MIN_FEATURES:
                    ax.scatter(x[ok], est[ok], s=2, c="#bbbbbb", linewidths=0, rasterized=True)
                trend = binned_trend(x, est)
                _trend_panel(ax, trend, f"{col} (20 equal-count bins)", labels.estimate(name),
                             f"{name} vs {col}")  # fmt: skip
                rho = pd.Series(x[ok]).corr(pd.Series(est[ok]), method="spearman")
                ax.text(0.02, 0.97, f"Spearman ρ = {rho:.3f}", transform=ax.transAxes,
                        va="top", fontsize=7)  # fmt: skip
                trend.insert(0, "spearman_rho", rho)
            else:
                trend = summaries[col, name]
                pos = np.arange(len(trend))
                ax.vlines(pos, trend["y_q25"], trend["y_q75"], color=TREND, lw=4, alpha=0.6)
                ax.plot(pos, trend["y_median"], "o", color=NEUTRAL, ms=3)
                ax.axhline(0, color=NEUTRAL, lw=0.5)
                ax.set_xticks(pos, labels=trend["level"], rotation=60, ha="right", fontsize=7)
                ax.set_xlim(-0.6, len(pos) - 0.4)
                ax.set_xlabel(col)
                ax.set_ylabel(labels.estimate(name), fontsize=8)
                ax.set_title(f"{name} by {col} (median, quartiles)", fontsize=9)
            trend.insert(0, "coefficient", name)
            trend.insert(0, "annotation", col)
            data.append(trend)
    if columns:
        _legend(axes[0], loc="lower right", fontsize=6)
    fig.suptitle("estimates vs feature annotation", fontsize=10)
    frame = pd.concat(data, ignore_index=True) if data else pd.DataFrame(columns=["annotation"])
    save_plot(fig, png, frame, data_path)
