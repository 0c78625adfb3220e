"""Diagnostic plots of one analysis (matplotlib, Agg, PNG at 150 dpi).

Every plot writes its PNG and, beside it, the data drawn as a table with the same stem (``.tsv``;
``.tsv.gz`` for per-feature data).  Per-feature scatter plots switch from points to hexagonal
binning (log counts) above :data:`HEXBIN_MIN_FEATURES` features, so a million features neither
hide their density nor take minutes to draw; highlighted features (significant, outliers) are
drawn on top as points.  The numbers come from :mod:`stacklm.diagnostics`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from . import diagnostics as dg  # noqa: E402
from .design import parse_formula  # noqa: E402
from .outputs import atomic_path, write_text, write_tsv  # noqa: E402

DPI = 150

#: above this many features scatter plots use hexagonal binning
HEXBIN_MIN_FEATURES = 20_000
#: highlighted (significant) features are drawn as points up to this many, above as red hexagons
HIGHLIGHT_MAX_POINTS = 20_000

SIGNIFICANT = "#d62728"
NEUTRAL = "#4d4d4d"
TREND = "#ff7f0e"
PRIOR = "#1f77b4"

MATRIX_LABELS = {
    "input": "input (normalized values)",
    "fitted": "fitted values",
    "residuals": "residuals",
}

#: every plot of an analysis: file stem -> suffix of its data table
PLOTS = {
    "pvalue_histogram": ".tsv",
    "qq": ".tsv",
    "volcano": ".tsv.gz",
    "md": ".tsv.gz",
    "sa": ".tsv.gz",
    "estimate_trend": ".tsv",
    "estimate_correlation": ".tsv",
    "pca_scree": ".tsv",
    "pca_associations": ".tsv",
    "pca_input": ".tsv",
    "pca_fitted": ".tsv",
    "pca_residuals": ".tsv",
    "sv_associations": ".tsv",
    "sample_density": ".tsv",
}
#: drawn only when a feature annotation table is configured
ANNOTATION_PLOTS = {"estimate_annotation": ".tsv"}
#: a numeric annotation column with at most this many distinct values is summarised per value
ANNOTATION_MAX_VALUES = 12


@dataclass(frozen=True)
class Labels:
    """What the plots call things: the analysis (a figure title prefix), the scale of the values
    and of the estimates (from ``input_scale`` and ``normalize.log2``), the design columns that are
    slopes of a numeric covariate (``per_unit``: column -> covariate) and the FDR method."""

    analysis: str = ""
    value: str = "value"
    difference: str = "difference"
    per_unit: Mapping[str, str] = field(default_factory=dict)
    fdr_method: str = "BH"

    def estimate(self, name: str) -> str:
        """Axis label of the estimates of a coefficient or contrast, with their unit."""
        if name in self.per_unit:
            return f"{name} ({self.difference} per unit of {self.per_unit[name]})"
        return f"{name} ({self.difference})"

    @property
    def average(self) -> str:
        return f"average {self.value} (Amean)"


_LABELS: contextvars.ContextVar[Labels | None] = contextvars.ContextVar(
    "stacklm_plot_labels", default=None
)


def _labels() -> Labels:
    return _LABELS.get() or Labels()


@contextlib.contextmanager
def labelled(labels: Labels):
    """Draw the plots inside the block with ``labels`` (analysis name, units)."""
    token = _LABELS.set(labels)
    try:
        yield labels
    finally:
        _LABELS.reset(token)


def scale_labels(config: Mapping) -> tuple[str, str]:
    """(values, differences) as the plots name them, from the run's config: ``input_scale`` and
    ``normalize.log2`` say whether the values are log2, M-values, dosages or as given."""
    kind = config.get("input_scale", "expression")
    norm = config.get("normalize") or {}
    if kind == "beta":
        return "M-value", "M-value difference"
    if kind == "dosage":
        return "dosage", "dosage difference"
    if norm.get("log2"):
        offset = float(norm.get("offset", 1))
        return f"log2(value + {offset:g})", "log2 fold change"
    return "value", "value difference"


def analysis_labels(name: str, summary: Mapping, analysis: Mapping,
                    sheet: pd.DataFrame | None = None) -> Labels:  # fmt: skip
    """:class:`Labels` of one analysis from its summary.json (the run's config, FDR method), its
    settings and the sample sheet (which formula variables are numeric covariates)."""
    value, difference = scale_labels(summary.get("config") or {})
    numeric = set(dg.numeric_covariates(analysis)) if analysis.get("formula") else set()
    if sheet is not None:
        numeric = {v for v in numeric if v in sheet.columns and not _categorical(sheet[v])}
    per_unit = {}
    for column in summary.get("design_columns") or []:
        slopes = [part for part in str(column).split(":") if part in numeric]
        if slopes:
            per_unit[str(column)] = " × ".join(slopes)
    return Labels(name, value, difference, per_unit, str(summary.get("fdr_method") or "BH"))


def plot_files(stem: str, annotation: bool = False) -> list[str]:
    """File names (PNG and data) of every plot, for the workflow's outputs."""
    plots = dict(PLOTS, **(ANNOTATION_PLOTS if annotation else {}))
    return [f"{name}{ext}" for name, suffix in plots.items() for ext in (".png", suffix)]


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
    return dg.neg_log10_p(p)


# --------------------------------------------------------------------------------------------
# test statistics
# --------------------------------------------------------------------------------------------
def plot_pvalue_histogram(p, pi0: float | None, test_label: str, png, data_path) -> None:
    hist = dg.pvalue_histogram(p)
    fig, (ax,) = _figure(1, width=5.2, height=3.9)
    width = hist["bin_high"] - hist["bin_low"]
    ax.bar(hist["bin_low"], hist["density"], width=width, align="edge", color="#9ecae1",
           edgecolor="white", linewidth=0.5, label=f"{int(hist['count'].sum()):,} features")  # fmt: skip
    ax.axhline(1.0, color=NEUTRAL, lw=0.8, ls=":", label="uniform: all null (density 1)")
    if pi0 is not None and np.isfinite(pi0):
        ax.axhline(pi0, color=SIGNIFICANT, lw=1.2, label=f"π0 = {pi0:.3f} (qvalue): null level")
    ax.set_xlim(0, 1)
    ax.set_xlabel("p-value (20 bins of width 0.05)")
    ax.set_ylabel("density")
    ax.set_title(_wrap(f"p-values of {test_label}", 55), fontsize=9)
    _legend(ax, fontsize=8, loc="upper right")
    hist["pi0"] = pi0 if pi0 is not None else np.nan
    save_plot(fig, png, hist, data_path)


def plot_qq(p, lambda_gc: float | None, test_label: str, png, data_path) -> None:
    """QQ plot of -log10 p: all features (left) and the bulk (right, the y axis cut at the null
    band's top), where inflation of the null features shows."""
    qq = dg.qq_data(p)
    fig, axes = _figure(2, ncols=2, width=4.4, height=4.3)
    gc = f"λGC = {lambda_gc:.3f}" if lambda_gc is not None and np.isfinite(lambda_gc) else ""
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
    fig.suptitle(_wrap(f"QQ plot of {test_label}" + (f" ({gc})" if gc else ""), 90), fontsize=10)
    qq["lambda_gc"] = lambda_gc if lambda_gc is not None else np.nan
    save_plot(fig, png, qq, data_path)


def plot_volcano(table: pd.DataFrame, names: Sequence[str], alpha: float, png, data_path) -> None:
    labels = _labels()
    fig, axes = _figure(len(names), ncols=3, width=4.4, height=3.8)
    data = []
    for ax, name in zip(axes, names, strict=True):
        est = table[f"estimate_{name}"].to_numpy(dtype=float)
        p = table[f"p_{name}"].to_numpy(dtype=float)
        fdr = table[f"fdr_{name}"].to_numpy(dtype=float)
        y = _neg_log10(p)
        sig = np.nan_to_num(fdr, nan=1.0) <= alpha
        _scatter(ax, est, y, sig, f"{labels.fdr_method} FDR ≤ {alpha:g}")
        if sig.any():
            cut = float(np.nanmax(p[sig]))
            ax.axhline(float(dg.neg_log10_p(cut)), color=SIGNIFICANT, lw=0.7, ls="--",
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
        data.append(pd.DataFrame({
            "feature_id": table["feature_id"].to_numpy(), "coefficient": name,
            "estimate": est, "neg_log10_p": y, "fdr": fdr, "significant": sig,
        }))  # fmt: skip
    fig.suptitle("volcano plots: estimate vs moderated t p-value", fontsize=10)
    save_plot(fig, png, pd.concat(data, ignore_index=True), data_path)


def plot_md(table: pd.DataFrame, names: Sequence[str], alpha: float, png, data_path) -> None:
    """limma's plotMD: estimate vs average, significant features coloured, binned median trend."""
    labels = _labels()
    fig, axes = _figure(len(names), ncols=3, width=4.4, height=3.8)
    avg = table["average"].to_numpy(dtype=float)
    data = []
    for ax, name in zip(axes, names, strict=True):
        est = table[f"estimate_{name}"].to_numpy(dtype=float)
        fdr = table[f"fdr_{name}"].to_numpy(dtype=float)
        sig = np.nan_to_num(fdr, nan=1.0) <= alpha
        _scatter(ax, avg, est, sig, f"{labels.fdr_method} FDR ≤ {alpha:g}")
        trend = dg.binned_trend(avg, est)
        ax.axhline(0, color=NEUTRAL, lw=0.5)
        _trend_line(ax, trend["x_median"], trend["y_median"], color=TREND, lw=1.6,
                    label="median (20 bins of average)")  # fmt: skip
        ax.set_xlabel(labels.average, fontsize=9)
        ax.set_ylabel(labels.estimate(name), fontsize=9)
        ax.set_title(name, fontsize=9)
        _legend(ax, loc="upper right")
        data.append(pd.DataFrame({
            "feature_id": table["feature_id"].to_numpy(), "coefficient": name,
            "average": avg, "estimate": est, "fdr": fdr, "significant": sig,
        }))  # fmt: skip
    fig.suptitle("MD plots: estimate vs average", fontsize=10)
    save_plot(fig, png, pd.concat(data, ignore_index=True), data_path)


def plot_sa(table: pd.DataFrame, trend: bool, robust: bool, png, data_path) -> None:
    """limma's plotSA: sqrt(sigma) vs Amean with the prior line sqrt(sqrt(s2.prior)) (its trend on
    Amean under ``trend``), robust eBayes' variance outliers in red; plus the median of the points
    in 20 equal-count bins of Amean, to judge whether the prior follows them."""
    labels = _labels()
    sa = dg.sa_plot_data(
        table["average"], table["sigma"], table["df_residual"], table["s2_prior"],
        table["df_prior"], robust=robust,
    )  # fmt: skip
    fig, (ax,) = _figure(1, width=5.6, height=4.4)
    _scatter(ax, sa["average"], sa["sqrt_sigma"], sa["outlier"] if robust else None,
             "variance outliers (robust eBayes, FDR ≤ 0.5)")  # fmt: skip
    points = dg.binned_trend(sa["average"].to_numpy(), sa["sqrt_sigma"].to_numpy())
    _trend_line(ax, points["x_median"], points["y_median"], color=TREND, lw=1.2, ls="--",
                label="median of the points (20 bins)")  # fmt: skip
    line = sa.dropna(subset=["average", "prior_line"]).sort_values("average")
    s2 = np.asarray(table["s2_prior"], dtype=float)
    d0 = np.asarray(table["df_prior"], dtype=float)
    if trend:
        label = "prior trend sqrt(sqrt(s2.prior))"
    else:
        label = f"prior sqrt(sqrt(s2.prior)), s2.prior = {np.nanmedian(s2):.3g}"
    _trend_line(ax, line["average"], line["prior_line"], color=PRIOR, lw=1.6, label=label)
    _legend(ax, loc="upper right")
    ax.set_xlabel(labels.average)
    ax.set_ylabel("sqrt(sigma): sqrt of residual SD")
    prior = f"eBayes prior {'trend' if trend else 'constant'}{', robust' if robust else ''}"
    df_text = f"df.prior = {np.nanmedian(d0):.3g}" + (" (median)" if robust else "")
    ax.set_title(f"SA plot (limma plotSA)\n{prior}; {df_text}", fontsize=9)
    sa.insert(0, "feature_id", table["feature_id"].to_numpy())
    save_plot(fig, png, sa, data_path)


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


def plot_estimate_trend(table: pd.DataFrame, names: Sequence[str], png, data_path) -> None:
    fig, axes = _figure(len(names), ncols=3, width=4.2, height=3.4)
    avg = table["average"].to_numpy(dtype=float)
    data = []
    for ax, name in zip(axes, names, strict=True):
        trend = dg.binned_trend(avg, table[f"estimate_{name}"].to_numpy(dtype=float))
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
    fig, axes = _figure(2, ncols=2, width=0.45 * len(names) + 3.2, height=0.4 * len(names) + 2.2)
    for ax, (title, mat) in zip(
        axes,
        [("observed across features", observed), ("expected from the design alone", expected)],
        strict=True,
    ):
        values = mat.loc[names, names].to_numpy(dtype=float)
        im = _heatmap(ax, values, names, names, "RdBu_r", -1, 1, text=values)
        ax.set_title(f"correlation of estimates:\n{title}", fontsize=9)
    fig.colorbar(im, ax=axes, label="Pearson correlation", shrink=0.8)
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
    fig, axes = _figure(n_rows * len(names), ncols=min(4, len(names)), width=4.0, height=3.4)
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
                if ok.sum() < HEXBIN_MIN_FEATURES:
                    ax.scatter(x[ok], est[ok], s=2, c="#bbbbbb", linewidths=0, rasterized=True)
                trend = dg.binned_trend(x, est)
                _trend_panel(ax, trend, f"{col} (20 equal-count bins)", labels.estimate(name),
                             f"{name} vs {col}")  # fmt: skip
                rho = pd.Series(x[ok]).corr(pd.Series(est[ok]), method="spearman")
                ax.text(0.02, 0.97, f"Spearman ρ = {rho:.3f}", transform=ax.transAxes,
                        va="top", fontsize=7)  # fmt: skip
                trend = trend.rename(columns={"x_low": "x_low", "x_median": "x_median"})
                trend.insert(0, "spearman_rho", rho)
            else:
                trend = dg.category_summary(ann[col].to_numpy(), est)
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


# --------------------------------------------------------------------------------------------
# sample structure: PCA of input, fitted values, residuals; surrogate variables
# --------------------------------------------------------------------------------------------
def plot_pca_scree(pcas: Mapping[str, dg.SamplePCA], png, data_path, n_show: int = 20) -> None:
    fig, axes = _figure(len(pcas), ncols=3, width=4.2, height=3.4)
    data = []
    for ax, (name, pca) in zip(axes, pcas.items(), strict=True):
        table = pca.variance_table()
        shown = table.head(n_show)
        ax.bar(np.arange(1, len(shown) + 1), 100 * shown["variance_fraction"], color="#6baed6")
        ax.plot(np.arange(1, len(shown) + 1), 100 * shown["cumulative_fraction"], color=NEUTRAL,
                marker="o", ms=2.5, lw=0.8, label="cumulative")  # fmt: skip
        if len(table):
            ax.axhline(100 / len(table), color=SIGNIFICANT, lw=0.8, ls=":",
                       label=f"equal share (1/{len(table)})")  # fmt: skip
        ax.set_ylim(0, 100)
        ax.set_xlabel(f"principal component (first {len(shown)} of {len(table)})")
        ax.set_ylabel("% of total sum of squares")
        approx = " (Nyström approximation)" if pca.approximate else ""
        ax.set_title(f"{MATRIX_LABELS[name]}{approx}", fontsize=9)
        _legend(ax, loc="lower right", bbox_to_anchor=(1.0, 0.06), markerscale=1)
        table.insert(0, "matrix", name)
        data.append(table)
    fig.suptitle("sample principal components: share of the total sum of squares", fontsize=10)
    save_plot(fig, png, pd.concat(data, ignore_index=True), data_path)


def _categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def plot_pca_scores(
    pca: dg.SamplePCA, covariates: pd.DataFrame, matrix: str, png, data_path
) -> None:
    """PC1 vs PC2 of one matrix, one panel per covariate (colour)."""
    scores = pca.scores
    shown = [c for c in covariates.columns  # constant columns (one tissue) say nothing
             if covariates[c].nunique() > 1
             and (not _categorical(covariates[c]) or covariates[c].nunique() <= 20)]  # fmt: skip
    fig, axes = _figure(max(1, len(shown)), ncols=3, width=4.4, height=3.8)
    frac = pca.variance_fraction
    data = scores.join(covariates)
    if scores.shape[1] == 0:
        _message(axes[0], f"no variation in the {MATRIX_LABELS[matrix]}")
        save_plot(fig, png, data.reset_index(), data_path)
        return
    x = scores.iloc[:, 0].to_numpy()
    y = scores.iloc[:, 1].to_numpy() if scores.shape[1] > 1 else np.zeros(len(x))
    if not shown:
        axes[0].scatter(x, y, s=14, c=NEUTRAL)
    for ax, col in zip(axes, shown, strict=False):
        series = covariates[col].loc[scores.index]
        missing = series.isna().to_numpy()
        if missing.any():
            ax.scatter(x[missing], y[missing], s=14, c="#cccccc", label="missing")
        if _categorical(series):
            levels = sorted(series.dropna().astype(str).unique(), key=dg.natural_key)
            cmap = matplotlib.colormaps["tab10" if len(levels) <= 10 else "tab20"]
            for k, level in enumerate(levels):
                sel = (series.astype(str) == level).to_numpy() & ~missing
                ax.scatter(x[sel], y[sel], s=14, color=cmap(k % cmap.N), label=str(level),
                           edgecolors="white", linewidths=0.3)  # fmt: skip
            ax.legend(fontsize=6, frameon=True, framealpha=0.8, edgecolor="none", title=col,
                      title_fontsize=7, loc="best")  # fmt: skip
        else:
            sc = ax.scatter(x[~missing], y[~missing], s=14,
                            c=series[~missing].to_numpy(dtype=float), cmap="viridis",
                            edgecolors="white", linewidths=0.3)  # fmt: skip
            ax.figure.colorbar(sc, ax=ax, label=col, pad=0.01)
        ax.set_title(f"coloured by {col}", fontsize=9)
    for ax in axes:
        ax.set_xlabel(f"PC1 ({100 * frac[0]:.1f}%)")
        ax.set_ylabel(f"PC2 ({100 * frac[1]:.1f}%)" if scores.shape[1] > 1 else "(one component)")
    fig.suptitle(f"PCA of the {MATRIX_LABELS[matrix]}"
                 + (" (Nyström approximation)" if pca.approximate else ""), fontsize=10)  # fmt: skip
    save_plot(fig, png, data.reset_index(), data_path)


#: R^2 colours; grey cells: no association by construction (design covariates vs residuals)
_R2_CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")


def _association_panel(ax, assoc: pd.DataFrame, components: Sequence[str], column_labels,
                       covariates: Sequence[str], title: str, in_design=(),
                       orthogonal: bool = False):  # fmt: skip
    """R^2 heatmap with -log10 p as text; ``orthogonal``: the matrix is orthogonal to the design
    (residuals), so the ``in_design`` rows are 0 by construction and drawn grey, without text."""
    r2 = assoc.pivot(index="covariate", columns="component", values="r2")
    lp = assoc.pivot(index="covariate", columns="component", values="neg_log10_p")
    r2 = r2.reindex(index=covariates, columns=components)
    lp = lp.reindex(index=covariates, columns=components)
    design = set(in_design)
    if orthogonal:
        masked = [c for c in covariates if c in design]
        r2.loc[masked] = np.nan
        lp.loc[masked] = np.nan
        rows = [f"{c} (in design: 0)" if c in design else c for c in covariates]
    else:
        rows = [f"{c} (in design)" if c in design else c for c in covariates]
    im = _heatmap(ax, r2.to_numpy(dtype=float), rows, column_labels, _R2_CMAP, 0, 1,
                  text=lp.to_numpy(dtype=float), fmt="{:.1f}")  # fmt: skip
    ax.set_title(title, fontsize=9)
    return im


def _informative_covariates(tables: Sequence[pd.DataFrame]) -> list[str]:
    seen: list[str] = []
    for t in tables:
        for cov, group in t.groupby("covariate", sort=False):
            if group["r2"].notna().any() and cov not in seen:
                seen.append(cov)
    return seen


def plot_pca_associations(
    pcas: Mapping[str, dg.SamplePCA],
    associations: Mapping[str, pd.DataFrame],
    png,
    data_path,
    in_design: Sequence[str] = (),
) -> None:
    """Heatmaps of R^2 (colour) and -log10 p (text) between each matrix's top components and every
    sample covariate (``in_design`` ones are labelled: the residuals are orthogonal to them)."""
    covs = _informative_covariates(list(associations.values()))
    n_pc = max((p.scores.shape[1] for p in pcas.values()), default=1)
    fig, axes = _figure(len(pcas), ncols=1, width=0.5 * n_pc + 3.0,
                        height=0.3 * max(len(covs), 1) + 1.8)  # fmt: skip
    im = None
    for ax, (name, pca) in zip(axes, pcas.items(), strict=True):
        comps = list(pca.scores.columns)
        if not comps or not covs:
            _message(ax, "no components" if not comps else "no usable covariates")
            continue
        labels = [
            f"{c} ({100 * f:.0f}%)" for c, f in zip(comps, pca.variance_fraction, strict=False)
        ]
        title = f"{MATRIX_LABELS[name]}: top PCs (% of sum of squares)"
        im = _association_panel(ax, associations[name], comps, labels, covs, title, in_design,
                                orthogonal=name == "residuals")  # fmt: skip
    if im is not None:
        fig.colorbar(im, ax=axes, label="R² of PC ~ covariate (text: −log10 p)", shrink=0.8)
    fig.suptitle("sample PCs vs sample covariates", fontsize=10)
    data = pd.concat(
        [t.assign(matrix=name)[["matrix", *t.columns]] for name, t in associations.items()],
        ignore_index=True,
    )
    save_plot(fig, png, data, data_path)


def plot_sv_associations(sv_assoc: pd.DataFrame, png, data_path) -> None:
    fig, (ax,) = _figure(1, width=6.0, height=4.0)
    table = sv_assoc.copy()
    if table.empty:
        _message(ax, "this analysis has no surrogate variables\n(surrogate_variables: 0, or "
                     "num.sv estimated 0)")  # fmt: skip
        fig.set_size_inches(5, 2.5)
    else:
        with np.errstate(divide="ignore"):  # 0.0 - x: p = 1 gives 0, not -0
            table["neg_log10_p"] = dg.neg_log10_p(table["p_value"].to_numpy(dtype=float))
        table = table.rename(columns={"sv": "component"})
        comps = list(dict.fromkeys(table["component"]))
        covs = _informative_covariates([table])
        fig.set_size_inches(0.45 * len(comps) + 3.2, 0.32 * max(len(covs), 1) + 2.0)
        if covs:
            im = _association_panel(ax, table, comps, comps, covs,
                                    "surrogate variables vs sample covariates")  # fmt: skip
            fig.colorbar(im, ax=ax, label="R² of SV ~ covariate\n(text: −log10 p)", shrink=0.8)
        else:
            _message(ax, "no usable covariates")
        table = table.rename(columns={"component": "sv"})
    save_plot(fig, png, table, data_path)


def plot_sample_density(densities: pd.DataFrame, samples: Sequence[str], png, data_path) -> None:
    """Density of each sample's values before (input, on the analysis scale) and after
    normalization and filtering (as fitted)."""
    samples = [str(s) for s in samples]
    dens = densities[densities["sample"].astype(str).isin(samples)]
    stages = [("input", "input (analysis scale, before normalization)"),
              ("normalized", "normalized and filtered (as fitted)")]  # fmt: skip
    fig, axes = _figure(2, ncols=2, width=4.8, height=3.6)
    alpha = float(np.clip(8.0 / max(len(samples), 1), 0.08, 0.8))
    top = float(dens["density"].max()) if len(dens) else 1.0
    for ax, (stage, title) in zip(axes, stages, strict=True):
        part = dens[dens["stage"] == stage]
        if part.empty:
            _message(ax, "no values")
            continue
        wide = part.pivot(index="x", columns="sample", values="density")
        ax.plot(wide.index, wide.to_numpy(), color=PRIOR, lw=0.8, alpha=alpha)
        ax.plot(wide.index, wide.median(axis=1), color=NEUTRAL, lw=1.2, ls="--",
                label="pointwise median")  # fmt: skip
        ax.set_ylim(0, top * 1.05)
        ax.set_xlabel(_labels().value)
        ax.set_ylabel("density")
        ax.set_title(f"{title}\n{wide.shape[1]} samples, one line each", fontsize=9)
        _legend(ax, loc="upper right")
    fig.suptitle("sample densities before and after normalization", fontsize=10)
    save_plot(fig, png, dens.reset_index(drop=True), data_path)


# --------------------------------------------------------------------------------------------
# one analysis, all plots
# --------------------------------------------------------------------------------------------
def _read_tsv(path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", **kw)


def analysis_plots(
    outdir,
    results: pd.DataFrame,
    summary: Mapping,
    design: pd.DataFrame,
    sheet: pd.DataFrame,
    analysis: Mapping,
    cross_products: dg.CrossProducts,
    surrogate_variables: pd.DataFrame,
    sv_associations: pd.DataFrame,
    densities: pd.DataFrame,
    features: pd.DataFrame | None = None,
    n_components: int = 10,
    analysis_name: str = "",
) -> list[tuple]:
    """Draw every plot of an analysis into ``outdir`` (see :data:`PLOTS`).

    ``results``: the results table; ``summary``: summary.json; ``design``: design as fitted
    (indexed by sample id); ``sheet``: the sample sheet (indexed by sample id); ``analysis``: the
    analysis settings; ``cross_products``: the summed chunk cross-products; ``densities``: the
    per-sample densities (:func:`stacklm.diagnostics.sample_distributions`); ``features``: the
    feature annotation (indexed by feature id) or None; ``analysis_name`` titles the figures.

    Returns the strongest covariate association of the top 3 components of each matrix (rows for
    :func:`stacklm.diagnostics.summary_markdown`; covariate None where none has p <= 0.05).
    """
    labels = analysis_labels(analysis_name, summary, analysis, sheet)
    with labelled(labels):
        return _analysis_plots(outdir, results, summary, design, sheet, analysis, cross_products,
                               surrogate_variables, sv_associations, densities, features,
                               n_components)  # fmt: skip


def _analysis_plots(outdir, results, summary, design, sheet, analysis, cross_products,
                    surrogate_variables, sv_associations, densities, features,
                    n_components):  # fmt: skip
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)

    def path(stem, suffix=None):
        return (
            out / f"{stem}.png",
            out / f"{stem}{suffix or PLOTS.get(stem) or ANNOTATION_PLOTS[stem]}",
        )

    alpha = float(summary.get("alpha", 0.05))
    test = list(summary.get("test") or [])
    stat = summary.get("test_statistic", "t" if len(test) == 1 else "F")
    test_label = f"the moderated {stat} test of {', '.join(test)}" if test else "the test"
    sv_names = [str(c) for c in surrogate_variables.columns]
    names = [n for n in reported_names(results) if n not in sv_names]
    all_names = reported_names(results)

    p = results["p_value"].to_numpy(dtype=float)
    plot_pvalue_histogram(p, summary.get("pi0"), test_label, *path("pvalue_histogram"))
    plot_qq(p, summary.get("lambda_gc"), test_label, *path("qq"))
    plot_volcano(results, names, alpha, *path("volcano"))
    plot_md(results, names, alpha, *path("md"))
    moderation = analysis.get("moderation") or {}
    plot_sa(results, bool(moderation.get("trend")), bool(moderation.get("robust")), *path("sa"))
    plot_estimate_trend(results, names, *path("estimate_trend"))

    estimates = results[[f"estimate_{n}" for n in all_names]].set_axis(all_names, axis=1)
    observed = dg.estimate_correlation(estimates)
    expected = dg.design_estimate_correlation(design, all_names, analysis.get("contrasts") or {})
    plot_estimate_correlation(observed, expected, *path("estimate_correlation"))
    if features is not None:
        plot_estimate_annotation(results, names, features, *path("estimate_annotation"))

    samples = [str(s) for s in design.index]
    covariates = dg.covariate_table(sheet, samples, analysis.get("levels") or {},
                                    surrogate_variables if surrogate_variables.shape[1] else None,
                                    numeric=dg.numeric_covariates(analysis))  # fmt: skip
    pcas = dg.cross_product_pcas(cross_products, n_components)
    associations = {
        name: dg.component_associations(pca.scores, covariates) for name, pca in pcas.items()
    }
    plot_pca_scree(pcas, *path("pca_scree"))
    in_design = parse_formula(analysis["formula"]).variables + sv_names
    plot_pca_associations(pcas, associations, *path("pca_associations"), in_design=in_design)
    for name, pca in pcas.items():
        plot_pca_scores(pca, covariates, name, *path(f"pca_{name}"))
    plot_sv_associations(sv_associations, *path("sv_associations"))
    plot_sample_density(densities, samples, *path("sample_density"))

    structure = []
    for name, pca in pcas.items():
        best = dg.strongest_associations(associations[name])
        for comp in list(pca.scores.columns)[:3]:
            row = best[best["component"] == comp]
            k = int(comp[2:]) - 1
            if len(row):
                r = row.iloc[0]
                structure.append((name, comp, float(pca.variance_fraction[k]), r["covariate"],
                                  float(r["r2"]), float(r["p_value"])))  # fmt: skip
            else:  # structure no sample covariate explains (a hidden confounder?)
                structure.append((name, comp, float(pca.variance_fraction[k]), None, np.nan,
                                  np.nan))  # fmt: skip
    return structure


def significant_counts(
    results: pd.DataFrame, alpha: float, exclude: Sequence[str] = ()
) -> dict[str, int]:
    """Features with FDR <= alpha (q-value <= alpha): the analysis test, then each reported
    coefficient/contrast but those in ``exclude`` (the surrogate variables)."""
    out = {"test (fdr)": int(np.sum(results["fdr"].to_numpy(dtype=float) <= alpha))}
    out["test (qvalue)"] = int(np.sum(results["qvalue"].to_numpy(dtype=float) <= alpha))
    for name in reported_names(results):
        if name in set(exclude):
            continue
        out[name] = int(np.sum(results[f"fdr_{name}"].to_numpy(dtype=float) <= alpha))
    return out


def run_plots(
    outdir,
    results_path,
    summary_path,
    design_path,
    sheet: pd.DataFrame,
    analysis: Mapping,
    cross_product_paths: Sequence,
    sv_path,
    sv_associations_path,
    densities_path,
    features_path=None,
    summary_md_path=None,
    summary_html_path=None,
    analysis_name: str = "",
) -> None:
    """The workflow's plot step from files: read the analysis outputs, draw every plot, write
    summary.md (and its HTML rendering for the report)."""
    from .pipeline import read_design

    results = _read_tsv(results_path, dtype={"feature_id": str})
    summary = json.loads(Path(summary_path).read_text())
    design = read_design(design_path)
    sv = read_design(sv_path)
    sv_assoc = _read_tsv(sv_associations_path)
    densities = _read_tsv(densities_path, dtype={"sample": str})
    features = None
    if features_path:
        sep = "," if str(features_path).lower().endswith((".csv", ".csv.gz")) else "\t"
        features = pd.read_csv(features_path, sep=sep, index_col=0)
        features.index = features.index.astype(str)
    cross = dg.sum_cross_products(list(cross_product_paths))
    structure = analysis_plots(
        outdir,
        results,
        summary,
        design,
        sheet,
        analysis,
        cross,
        sv,
        sv_assoc,
        densities,
        features,
        analysis_name=analysis_name,
    )
    if summary_md_path:
        text = dg.summary_markdown(
            analysis_name,
            summary,
            significant_counts(results, float(summary.get("alpha", 0.05)), list(sv.columns)),
            structure,
        )
        write_text(text, summary_md_path)
        if summary_html_path:
            write_text(dg.markdown_table_html(text, f"stacklm {analysis_name}"), summary_html_path)
