"""Plots of the counts and weights steps: library sizes and normalization factors, voom's
mean-variance trend, sample weights, and the per-feature block correlations of
duplicateCorrelation with their consensus."""

from __future__ import annotations

import matplotlib

from stacklm.plots.common import _figure, _legend, _message, _scatter, _trend_line, save_plot
from stacklm.plots.style import NEUTRAL, PRIOR, SIGNIFICANT, TREND

matplotlib.use("Agg")

from collections.abc import Sequence

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_library_sizes(libraries: pd.DataFrame, png, data_path) -> None:
    """Per sample: the library size (column sum of the features filterByExpr keeps), the effective
    library size (times calcNormFactors' factor) and the factor itself."""
    table = libraries.reset_index() if "sample_id" not in libraries.columns else libraries.copy()
    samples = table["sample_id"].astype(str).to_numpy()
    x = np.arange(len(samples))
    fig, (ax, bx) = _figure(2, ncols=1, width=max(6.0, 0.22 * len(samples) + 2.5), height=3.0)
    million = 1e6
    ax.bar(x - 0.2, table["lib_size"] / million, width=0.4, color="#9ecae1",
           label="library size (kept features)")  # fmt: skip
    ax.bar(x + 0.2, table["effective_lib_size"] / million, width=0.4, color=PRIOR,
           label="effective (x norm. factor)")  # fmt: skip
    ax.set_ylabel("million reads")
    ax.set_title("library sizes (edgeR, keep.lib.sizes = FALSE)", fontsize=9)
    _legend(ax, loc="lower right")
    bx.scatter(x, table["norm_factors"], s=14, c=NEUTRAL)
    bx.axhline(1.0, color=SIGNIFICANT, lw=0.8, ls=":")
    bx.set_ylabel("normalization factor")
    for a in (ax, bx):
        a.set_xticks(x)
        a.set_xticklabels(samples, rotation=90, fontsize=6 if len(samples) > 30 else 7)
        a.set_xlim(-0.7, len(samples) - 0.3)
    if len(samples) > 120:  # labels unreadable: leave the axis unlabelled
        for a in (ax, bx):
            a.set_xticks([])
    save_plot(fig, png, table, data_path)


def plot_voom_trend(sx, sy, trend, png, data_path) -> None:
    """voom's mean-variance trend (limma's ``plot = TRUE``): sqrt(residual standard deviation)
    against the average log2 count of each feature, and the lowess trend whose interpolation gives
    the weights (``trend``: :class:`stacklm.limma.voom.VoomTrend`)."""
    sx = np.asarray(sx, dtype=float)
    sy = np.asarray(sy, dtype=float)
    fig, (ax,) = _figure(1, width=5.6, height=4.2)
    if sx.size == 0 or trend is None:
        _message(ax, "no trend points")
        table = pd.DataFrame({"log2_count_size": sx, "sqrt_sd": sy})
    else:
        fitted = trend(sx)
        _scatter(ax, sx, sy)
        if trend.line_x.size:
            _trend_line(ax, trend.line_x, trend.line_y, color=SIGNIFICANT, lw=1.5,
                        label=f"lowess trend (span {trend.span:g})")  # fmt: skip
        elif trend.constant_one:
            ax.set_title("no replication: weights set to 1", fontsize=9)
        ax.set_xlabel("log2( count size + 0.5 )")
        ax.set_ylabel("Sqrt( standard deviation )")
        if trend.line_x.size:
            ax.set_title(f"voom: mean-variance trend ({sx.size:,} features)", fontsize=9)
        _legend(ax, loc="upper right")
        table = pd.DataFrame({"log2_count_size": sx, "sqrt_sd": sy, "trend": fitted})
    save_plot(fig, png, table, data_path)


def plot_sample_weights(
    samples: Sequence[str], weights, source: str | None, png, data_path
) -> None:
    """Sample weights (limma's arrayWeights / voomWithQualityWeights barplot, or the prior weights
    of the sample sheet), with the line at 1 (equal weight)."""
    samples = [str(s) for s in samples]
    w = np.asarray(weights, dtype=float)
    fig, (ax,) = _figure(1, width=max(6.0, 0.22 * len(samples) + 2.5), height=3.4)
    x = np.arange(len(samples))
    ax.bar(x, w, color=np.where(w < 1, TREND, PRIOR), width=0.8)
    ax.axhline(1.0, color=SIGNIFICANT, lw=0.9, ls="--")
    ax.set_ylabel("sample weight")
    ax.set_title(f"sample weights ({source or 'none'})", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels(samples, rotation=90, fontsize=6 if len(samples) > 30 else 7)
    if len(samples) > 120:
        ax.set_xticks([])
    save_plot(fig, png, pd.DataFrame({"sample_id": samples, "weight": w}), data_path)


def plot_block_correlation(
    atanh, consensus, feature_ids, n_not_converged, estimated: bool, png, data_path
) -> None:
    """Histogram of the per-feature intra-block correlations of duplicateCorrelation (tanh of its
    atanh.correlations, clamped as limma clamps them) with the consensus (trimmed mean of the atanh
    values, 15% each end); a note when the correlation was given instead of estimated."""
    fig, (ax,) = _figure(1, width=5.6, height=3.9)
    if atanh is None or not estimated:
        _message(ax, f"correlation {consensus:g} given in the configuration: not estimated")
        ax.set_axis_off()
        fig.set_size_inches(5.6, 2.0)
        table = pd.DataFrame({"feature_id": [], "atanh_correlation": [], "correlation": []})
    else:
        a = np.asarray(atanh, dtype=float)
        r = np.tanh(a)
        ok = np.isfinite(r)
        ax.hist(r[ok], bins=60, color="#9ecae1", edgecolor="white", linewidth=0.4,
                label=f"{int(ok.sum()):,} features")  # fmt: skip
        ax.axvline(consensus, color=SIGNIFICANT, lw=1.5,
                   label=f"consensus {consensus:.4f}")  # fmt: skip
        ax.axvline(0.0, color=NEUTRAL, lw=0.7, ls=":")
        ax.set_xlabel("intra-block correlation (REML, per feature)")
        ax.set_ylabel("features")
        note = f"; REML not converged: {n_not_converged:,}" if n_not_converged else ""
        na = int((~ok).sum())
        note += f"; NA: {na:,}" if na else ""
        ax.set_title(f"duplicateCorrelation{note}", fontsize=9)
        _legend(ax, loc="upper left")
        ids = (
            np.asarray(feature_ids).astype(str)
            if feature_ids is not None and len(feature_ids) == a.size
            else np.arange(a.size).astype(str)
        )
        table = pd.DataFrame({"feature_id": ids, "atanh_correlation": a, "correlation": r})
    save_plot(fig, png, table, data_path)
