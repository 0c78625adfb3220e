"""Figure helpers shared by the plots."""

from __future__ import annotations

import matplotlib

from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.io.outputs import atomic_path, write_tsv
from stacklm.plots.style import (
    DPI,
    HEXBIN_MIN_FEATURES,
    HIGHLIGHT_MAX_POINTS,
    NEUTRAL,
    SIGNIFICANT,
    _labels,
)

matplotlib.use("Agg")

import math

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _figure(n_panels: int = 1, ncols: int = 3, width: float = 4.2, height: float = 3.6):
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, math.ceil(n_panels / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def save_plot(fig: Figure, png_path, data: pd.DataFrame, data_path) -> None:
    """Write the figure (PNG, 150 dpi; titled with the analysis inside :func:`labelled`) and its
    data table, both atomically."""
    analysis = _labels().analysis
    if analysis:
        existing = fig.get_suptitle()
        fig.suptitle(f"{analysis}: {existing}" if existing else f"analysis {analysis}",
                     fontsize=10, fontweight="bold")  # fmt: skip
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    data = data.copy()
    for name in data.columns:  # text columns: missing as NA (write_tsv expects strings there)
        col = data[name]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            col = col.astype(object)
            data[name] = col.where(col.notna(), "NA").astype(str)
    write_tsv(data, data_path)


def _wrap(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _scatter(ax, x, y, highlight=None, label_highlight="", hexbin_min=HEXBIN_MIN_FEATURES):
    """Points (few features) or log-count grey hexagons (many), highlighted features on top: as
    red points, or as red hexagons when there are more than :data:`HIGHLIGHT_MAX_POINTS`.  The
    caller draws the legend."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    hl = np.zeros(x.shape, dtype=bool) if highlight is None else np.asarray(highlight, dtype=bool)
    base = ok & ~hl
    sel = ok & hl
    hexbin = ok.sum() >= hexbin_min
    if hexbin:
        extent = (x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max())
        kw = dict(gridsize=(110, 60), extent=extent, bins="log", mincnt=1, linewidths=0.0)
        if base.any():
            hb = ax.hexbin(x[base], y[base], cmap="Greys", **kw)
            cb = ax.figure.colorbar(hb, ax=ax, pad=0.01)
            cb.set_label("features per hexagon", fontsize=8)
            cb.ax.tick_params(labelsize=7)
    else:
        ax.scatter(x[base], y[base], s=4, c=NEUTRAL, alpha=0.5, linewidths=0, rasterized=True)
    if sel.any():
        label = f"{label_highlight} ({int(sel.sum()):,})"
        if hexbin and sel.sum() > HIGHLIGHT_MAX_POINTS:
            ax.hexbin(x[sel], y[sel], cmap=_REDS, **kw)
            ax.scatter([], [], marker="h", s=12, c=SIGNIFICANT, label=label)  # legend entry
        else:
            ax.scatter(x[sel], y[sel], s=6, c=SIGNIFICANT, alpha=0.8, linewidths=0,
                       rasterized=True, label=label)  # fmt: skip


#: red hexagons for many highlighted features (light red = 1 feature, dark = many)
_REDS = mcolors.LinearSegmentedColormap.from_list("stacklm_reds", ["#f4a6a6", "#67000d"])


def _legend(ax, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(**dict(dict(fontsize=7, frameon=True, framealpha=0.85, edgecolor="none",
                              markerscale=2), **kw))  # fmt: skip


def _trend_line(ax, x, y, **kw):
    """A line with a white outline, visible on top of dense points or hexagons."""
    return ax.plot(x, y, path_effects=[patheffects.withStroke(linewidth=3.2, foreground="white")],
                   **kw)  # fmt: skip


def reported_names(table: pd.DataFrame) -> list[str]:
    """Reported coefficients and contrasts: the ``estimate_<name>`` columns, in order."""
    return [c[len("estimate_") :] for c in table.columns if c.startswith("estimate_")]


def _neg_log10(p) -> np.ndarray:
    return neg_log10_p(p)
