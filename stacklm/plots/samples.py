"""Plots of sample structure: PCA scree, scores, associations, SVs, densities."""

from __future__ import annotations

import matplotlib

from stacklm.design.factors import is_factor
from stacklm.diagnostics.crossproducts import neg_log10_p
from stacklm.diagnostics.features import natural_key
from stacklm.diagnostics.pca import SamplePCA
from stacklm.plots.common import (
    COLORBAR_PADS,
    PADS,
    Pads,
    _colorbar,
    _figure,
    _legend,
    _message,
    _shared_colorbar,
    heatmap_pads,
    save_plot,
)
from stacklm.plots.estimates import _heatmap
from stacklm.plots.style import MATRIX_LABELS, NEUTRAL, PRIOR, SIGNIFICANT, _labels

matplotlib.use("Agg")

from collections.abc import Mapping, Sequence

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


# --------------------------------------------------------------------------------------------
# sample structure: PCA of input, fitted values, residuals; surrogate variables
# --------------------------------------------------------------------------------------------
def plot_pca_scree(pcas: Mapping[str, SamplePCA], png, data_path, n_show: int = 20) -> None:
    fig, axes = _figure(len(pcas), ncols=3, width=4.2, height=3.4, pads=PADS)
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
        ax.set_title(f"{MATRIX_LABELS[name]}{approx}{pca.rows_label}", fontsize=9)
        _legend(ax, loc="lower right", bbox_to_anchor=(1.0, 0.06), markerscale=1)
        table.insert(0, "matrix", name)
        data.append(table)
    fig.suptitle("sample principal components: share of the total sum of squares", fontsize=10)
    save_plot(fig, png, pd.concat(data, ignore_index=True), data_path)


def plot_pca_scores(pca: SamplePCA, covariates: pd.DataFrame, matrix: str, png, data_path) -> None:
    """PC1 vs PC2 of one matrix, one panel per covariate (colour)."""
    scores = pca.scores
    shown = [c for c in covariates.columns  # constant columns (one tissue) say nothing
             if covariates[c].nunique() > 1
             and (not is_factor(covariates[c]) or covariates[c].nunique() <= 20)]  # fmt: skip
    numeric = any(not is_factor(covariates[c]) for c in shown)  # with colorbars
    fig, axes = _figure(max(1, len(shown)), ncols=3, width=4.4, height=3.8,
                        pads=COLORBAR_PADS if numeric else PADS)  # fmt: skip
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
        if is_factor(series):
            levels = sorted(series.dropna().astype(str).unique(), key=natural_key)
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
            _colorbar(ax, sc, col, fontsize=9)
        ax.set_title(f"coloured by {col}", fontsize=9)
    for ax in axes:
        ax.set_xlabel(f"PC1 ({100 * frac[0]:.1f}%)")
        ax.set_ylabel(f"PC2 ({100 * frac[1]:.1f}%)" if scores.shape[1] > 1 else "(one component)")
    fig.suptitle(f"PCA of the {MATRIX_LABELS[matrix]}"
                 + (" (Nyström approximation)" if pca.approximate else "") + pca.rows_label,
                 fontsize=10)  # fmt: skip
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
    pcas: Mapping[str, SamplePCA],
    associations: Mapping[str, pd.DataFrame],
    png,
    data_path,
    in_design: Sequence[str] = (),
) -> None:
    """Heatmaps of R^2 (colour) and -log10 p (text) between each matrix's top components and every
    sample covariate (``in_design`` ones are labelled: the residuals are orthogonal to them)."""
    covs = _informative_covariates(list(associations.values()))
    n_pc = max((p.scores.shape[1] for p in pcas.values()), default=1)
    design = set(in_design)
    row_names = [f"{c} (in design: 0)" if c in design else c for c in covs]
    pads = heatmap_pads(row_names or ["no usable covariates"], ["PC10 (100%)"])
    fig, axes = _figure(len(pcas), ncols=1, width=0.5 * n_pc + 0.6 + pads.left + pads.right,
                        height=0.3 * max(len(covs), 1) + pads.bottom + pads.top, pads=pads,
                        colorbar_space=1.0)  # fmt: skip
    im = None
    for ax, (name, pca) in zip(axes, pcas.items(), strict=True):
        comps = list(pca.scores.columns)
        if not comps or not covs:
            _message(ax, "no components" if not comps else "no usable covariates")
            continue
        labels = [
            f"{c} ({100 * f:.0f}%)" for c, f in zip(comps, pca.variance_fraction, strict=False)
        ]
        title = f"{MATRIX_LABELS[name]}: top PCs (% of sum of squares){pca.rows_label}"
        im = _association_panel(ax, associations[name], comps, labels, covs, title, in_design,
                                orthogonal=name == "residuals")  # fmt: skip
    if im is not None:
        _shared_colorbar(fig, axes, im, "R² of PC ~ covariate (text: −log10 p)")
    fig.suptitle("sample PCs vs sample covariates", fontsize=10)
    data = pd.concat(
        [t.assign(matrix=name)[["matrix", *t.columns]] for name, t in associations.items()],
        ignore_index=True,
    )
    save_plot(fig, png, data, data_path)


def _no_sv_message(requested) -> str:
    if requested == "auto":
        why = ("sva's num.sv estimated 0 surrogate variables for this design\n"
               "(surrogate_variables: auto): no hidden factor was added to it.")  # fmt: skip
    elif requested in (None, 0, "0"):
        why = ("the config asks for none (surrogate_variables: 0).\nSet surrogate_variables: "
               "auto (sva's num.sv) or a number to estimate\nhidden factors; this plot then "
               "shows how each relates to the sample covariates.")  # fmt: skip
    else:
        why = f"surrogate_variables: {requested} gave none."
    return f"No surrogate variables in this analysis:\n{why}"


def plot_sv_associations(sv_assoc: pd.DataFrame, png, data_path, requested=None) -> None:
    """Association of each surrogate variable with the sample covariates; without SVs, a note
    saying why (``requested``: the analysis' ``surrogate_variables`` setting)."""
    fig, (ax,) = _figure(1, width=6.0, height=4.0)
    table = sv_assoc.copy()
    if table.empty:
        _message(ax, _no_sv_message(requested))
        ax.set_axis_off()  # a note, not an empty frame
        fig.suptitle("surrogate variables vs sample covariates")
        fig.set_size_inches(6, 2.2)
    else:
        with np.errstate(divide="ignore"):  # 0.0 - x: p = 1 gives 0, not -0
            table["neg_log10_p"] = neg_log10_p(table["p_value"].to_numpy(dtype=float))
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
    fig, axes = _figure(2, ncols=2, width=4.8, height=3.6, pads=Pads(top=0.5))
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
