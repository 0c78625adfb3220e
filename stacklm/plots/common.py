"""Figure helpers shared by the plots."""

from __future__ import annotations

import matplotlib

from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.io.outputs import atomic_path, write_arrow_tsv, write_tsv
from stacklm.plots.style import (
    DENSITY_GRID,
    DENSITY_MIN_FEATURES,
    DPI,
    HIGHLIGHT_MAX_POINTS,
    NEUTRAL,
    SIGNIFICANT,
    _labels,
)

matplotlib.use("Agg")

import math
from dataclasses import dataclass, replace

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.textpath import text_to_path  # noqa: E402


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pads:
    """Space around each panel of a fixed-layout figure, in inches: for the tick labels and the
    axis label (``left``, ``bottom``), the panel title (``top``) and a colorbar (``right``)."""

    left: float = 0.75
    right: float = 0.2
    bottom: float = 0.55
    top: float = 0.3


#: the panels of most figures: a one-line title, tick labels and an axis label on each side
PADS = Pads()
#: panels with a colorbar at their right (tick labels and its label)
COLORBAR_PADS = Pads(right=0.95)
#: height of the figure title (the suptitle, with the analysis name) above the panels, in inches:
#: its first line, then each further line
SUPTITLE_SPACE = (0.4, 0.2)


def _figure(n_panels: int = 1, ncols: int = 3, width: float = 4.2, height: float = 3.6,
            pads: Pads | None = None, suptitle_lines: int = 1,
            colorbar_space: float = 0.0):  # fmt: skip
    """A figure of ``n_panels`` axes in rows of ``ncols``, each in a cell of ``width`` x
    ``height`` inches.

    With ``pads`` the axes are placed by hand: each at those insets of its cell, below the space
    of a figure title of ``suptitle_lines`` lines (:data:`SUPTITLE_SPACE`), and ``colorbar_space``
    inches at the right of the figure for one colorbar of all panels (:func:`_shared_colorbar`).  Without, matplotlib's constrained layout places them,
    which costs a second draw of the whole figure when it is saved (the tick labels measured for
    the layout, then drawn): half of the drawing time of a figure with many panels, so the plots of
    an analysis use fixed pads where their labels have a known size."""
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, math.ceil(n_panels / ncols))
    if pads is None:
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        return fig, list(axes[:n_panels])
    first, more = SUPTITLE_SPACE
    top = first + more * (suptitle_lines - 1) if suptitle_lines > 0 else 0.0
    fig_w, fig_h = width * ncols + colorbar_space, height * nrows + top
    fig = Figure(figsize=(fig_w, fig_h))
    axes = []
    # titles at the top of the axes (axes.titley set): matplotlib would otherwise measure the tick
    # labels of each panel once more to move its title above top ticks, which these panels lack
    with matplotlib.rc_context({"axes.titley": 1.0}):
        for k in range(n_panels):
            r, c = divmod(k, ncols)
            x0 = c * width + pads.left
            y0 = fig_h - top - (r + 1) * height + pads.bottom
            w = max(width - pads.left - pads.right, 0.1)
            h = max(height - pads.bottom - pads.top, 0.1)
            axes.append(fig.add_axes((x0 / fig_w, y0 / fig_h, w / fig_w, h / fig_h)))
    return fig, axes


def _shared_colorbar(fig: Figure, axes, mappable, label: str):
    """One colorbar for all ``axes``, in the ``colorbar_space`` at the right of a fixed-layout
    figure, 80% of the height of the panels."""
    boxes = [ax.get_position() for ax in axes]
    low, high = min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    height = 0.8 * (high - low)
    x0 = max(b.x1 for b in boxes) + 0.2 / fig.get_figwidth()
    cax = fig.add_axes((x0, low + (high - low - height) / 2, 0.18 / fig.get_figwidth(), height))
    return fig.colorbar(mappable, cax=cax, label=label)


def _text_width(texts, fontsize: float) -> float:
    """Width in inches of the widest of ``texts`` at ``fontsize`` points (the font's own metrics,
    without drawing): the pads of panels whose tick labels are names."""
    prop = FontProperties(size=fontsize)
    widths = [text_to_path.get_text_width_height_descent(str(t), prop, ismath=False)[0]
              for t in texts]  # fmt: skip
    return max(widths, default=0.0) / 72.0


def heatmap_pads(rows, columns, title_lines: int = 1, rotation: float = 60.0) -> Pads:
    """Pads of a heatmap panel: its row names at the left, its column names below (7 pt, turned
    by ``rotation`` degrees as :func:`stacklm.plots.estimates._heatmap` draws them), a title of
    ``title_lines`` lines above."""
    below = _text_width(columns, 7) * math.sin(math.radians(rotation))
    return Pads(left=_text_width(rows, 7) + 0.25, right=0.2, bottom=below + 0.25,
                top=0.12 + 0.17 * title_lines)  # fmt: skip


def _title_pads(title: str, base: Pads = PADS) -> Pads:
    """``base`` with room above the panel for a title of as many lines as ``title`` has (9 pt)."""
    return replace(base, top=base.top + 0.17 * title.count("\n"))


def _colorbar(ax, mappable, label: str, fontsize: float = 8):
    """A colorbar just right of ``ax`` (in its cell's right pad, :data:`COLORBAR_PADS`), not taking
    width from it."""
    cax = ax.inset_axes((1.02, 0.0, 0.045, 1.0))
    cb = ax.figure.colorbar(mappable, cax=cax)
    cb.set_label(label, fontsize=fontsize)
    cb.ax.tick_params(labelsize=7)
    if isinstance(mappable.norm, mcolors.LogNorm):  # counts: 1, 10, 100, 1,000 in plain text
        cb.ax.yaxis.set_major_locator(mticker.LogLocator(base=10))
        cb.ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    cb.minorticks_off()  # a log scale's minor ticks: dozens of tick objects to lay out per bar
    return cb


#: zlib level of the PNGs (Pillow's default is 6): level 1 encodes ~4x faster and the figures,
#: mostly flat colour, grow by a fifth
PNG_COMPRESS_LEVEL = 1


def save_plot(fig: Figure, png_path, data, data_path) -> None:
    """Write the figure (PNG, 150 dpi; titled with the analysis inside :func:`labelled`) and its
    data table (a DataFrame, or an Arrow table already typed as
    :func:`stacklm.io.outputs.arrow_table` types one), both atomically."""
    analysis = _labels().analysis
    if analysis:
        existing = fig.get_suptitle()
        fig.suptitle(f"{analysis}: {existing}" if existing else f"analysis {analysis}",
                     fontsize=10, fontweight="bold")  # fmt: skip
    title = getattr(fig, "_suptitle", None)
    if title is not None and fig.get_layout_engine() is None:  # fixed pads: 0.08 in from the top
        title.set_y(1.0 - 0.08 / fig.get_figheight())
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    if isinstance(data, pa.Table):
        write_arrow_tsv(data, data_path)
        return
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


def density_grid(x, y, extent, shape=DENSITY_GRID, group=None) -> np.ndarray:
    """Counts of the points (x, y) in an equal-width grid of ``shape`` = (x bins, y bins) over
    ``extent`` = (x low, x high, y low, y high): ``counts[i, j]`` is y bin i, x bin j (the layout
    of ``imshow(origin="lower")``); a point on an upper edge is in the last bin, points outside
    are in the nearest edge bin.  With ``group`` (booleans, one per point) two grids, of the
    points without and with it (``counts[0]``, ``counts[1]``).  One pass of arithmetic and a
    bincount: the cost of drawing the image does not depend on the number of points."""
    nx, ny = int(shape[0]), int(shape[1])
    x0, x1, y0, y1 = (float(v) for v in extent)

    def index(v, lo, hi, n):
        v = np.asarray(v, dtype=float) - lo
        v *= n / (hi - lo) if hi > lo else 0.0
        np.clip(v, 0, n - 1, out=v)
        return v.astype(np.intp)

    cells = index(y, y0, y1, ny)
    cells *= nx
    cells += index(x, x0, x1, nx)
    if group is None:
        return np.bincount(cells, minlength=nx * ny).reshape(ny, nx)
    cells += np.asarray(group, dtype=np.intp) * (nx * ny)
    return np.bincount(cells, minlength=2 * nx * ny).reshape(2, ny, nx)


def _padded(lo: float, hi: float) -> tuple[float, float]:
    """A range with 2% margins (a constant gives a unit-wide range around it)."""
    if not hi > lo:
        return lo - 0.5, hi + 0.5
    pad = 0.02 * (hi - lo)
    return lo - pad, hi + pad


def _density_image(ax, counts: np.ndarray, extent, cmap, vmax: float):
    """Binned counts as an image: log colour scale from 1 to ``vmax``, empty bins transparent."""
    return ax.imshow(np.ma.masked_equal(counts, 0), origin="lower", extent=extent, aspect="auto",
                     cmap=cmap, norm=mcolors.LogNorm(vmin=1, vmax=max(vmax, 2)),
                     interpolation="nearest")  # fmt: skip


def _scatter(ax, x, y, highlight=None, label_highlight="", density_min=DENSITY_MIN_FEATURES):
    """Points (fewer than ``density_min`` features) or, for many, a grey image of the features
    per bin of a :data:`DENSITY_GRID` grid (log colour scale, with a colorbar); highlighted
    features on top: as red points, or as a red image of their own bins when there are more than
    :data:`HIGHLIGHT_MAX_POINTS`.  The caller draws the legend.  Returns the grey image's counts
    (None when points are drawn)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    hl = np.zeros(x.shape, dtype=bool) if highlight is None else np.asarray(highlight, dtype=bool)
    base = ok & ~hl
    sel = ok & hl
    n_sel = int(sel.sum())
    dense = int(ok.sum()) >= density_min
    counts = None
    if dense:
        xs, ys = x[ok], y[ok]
        extent = (*_padded(float(xs.min()), float(xs.max())),
                  *_padded(float(ys.min()), float(ys.max())))  # fmt: skip
        counts, red = density_grid(xs, ys, extent, group=hl[ok])  # the others, the highlighted
        if n_sel <= HIGHLIGHT_MAX_POINTS:  # drawn as points below
            red = None
        vmax = float(max(counts.max(), red.max() if red is not None else 0))
        if counts.any():
            image = _density_image(ax, counts, extent, _GREYS, vmax)
            _colorbar(ax, image, "features per bin")
        if red is not None:
            _density_image(ax, red, extent, _REDS, vmax)
            ax.scatter([], [], marker="s", s=12, c=SIGNIFICANT,
                       label=f"{label_highlight} ({n_sel:,})")  # legend entry  # fmt: skip
    else:
        ax.scatter(x[base], y[base], s=4, c=NEUTRAL, alpha=0.5, linewidths=0, rasterized=True)
    if n_sel and not (dense and n_sel > HIGHLIGHT_MAX_POINTS):
        ax.scatter(x[sel], y[sel], s=6, c=SIGNIFICANT, alpha=0.8, linewidths=0, rasterized=True,
                   label=f"{label_highlight} ({n_sel:,})")  # fmt: skip
    return counts


#: grey bins of many features (light grey = 1 feature, black = many): a lone feature stays visible
_GREYS = mcolors.LinearSegmentedColormap.from_list("stacklm_greys", ["#c4c4c4", "#000000"])
#: red bins of many highlighted features (light red = 1 feature, dark = many)
_REDS = mcolors.LinearSegmentedColormap.from_list("stacklm_reds", ["#f4a6a6", "#67000d"])


def _legend(ax, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(**dict(dict(fontsize=7, frameon=True, framealpha=0.85, edgecolor="none",
                              markerscale=2), **kw))  # fmt: skip


def _trend_line(ax, x, y, **kw):
    """A line with a white outline, visible on top of dense points or binned images."""
    return ax.plot(x, y, path_effects=[patheffects.withStroke(linewidth=3.2, foreground="white")],
                   **kw)  # fmt: skip


def reported_names(table: pd.DataFrame) -> list[str]:
    """Reported coefficients and contrasts: the ``estimate_<name>`` columns, in order."""
    return [c[len("estimate_") :] for c in table.columns if c.startswith("estimate_")]


def _neg_log10(p) -> np.ndarray:
    return neg_log10_p(p)
