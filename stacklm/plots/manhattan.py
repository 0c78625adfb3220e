"""Manhattan plot of a genotype analysis: -log10 p of every SNP along the genome.

Chromosomes are laid end to end in their natural order (1, 2, ..., 22, X, Y, XY, MT, then other
codes alphabetically; a ``chr`` prefix is ignored), in alternating colours, with the genome-wide
significance line at p = 5e-8 and a suggestive line at 1e-5; the best SNP of each genome-wide
significant locus (one per ``LOCUS_BP`` window, best first, at most ``n_labels``) is labelled with
its id, or the best few SNPs, marked as not genome-wide, when none reaches the line.

Size at 10^6 SNPs and more: a point smaller than a pixel cannot be told from its neighbours, so
below -log10 p = ``KEEP_ABOVE`` (p > 1e-3, the null bulk) one SNP per cell of a grid of 2 x 2
pixels is drawn (a point is 3.5 pixels wide: the others cover the same pixels); every SNP above is
drawn.  The points
are rasterized: the PNG stays well under 1 MB however many SNPs there are.  The data table holds
the drawn points.
"""

from __future__ import annotations

import re

import matplotlib

from stacklm.plots.common import _figure, _legend, _message, _neg_log10, save_plot
from stacklm.plots.style import NEUTRAL, SIGNIFICANT

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GENOME_WIDE = 5e-8
SUGGESTIVE = 1e-5
#: below this -log10 p (p > 1e-3) the points are thinned to one per pixel-sized grid cell
KEEP_ABOVE = 3.0
#: cells of the thinning grid across the plot area (~1650 px at 150 dpi: 2 px per cell; a point
#: is ~3.5 px wide) and per unit of the y axis' height (~480 px)
THIN_GRID = (900, 240)
#: two labelled SNPs are one locus when closer than this on a chromosome
LOCUS_BP = 1_000_000
COLOURS = ("#1f4e79", "#7fa7cf")

_SPECIAL = {"X": 23, "Y": 24, "XY": 25, "MT": 26, "M": 26}


def chromosome_key(code) -> tuple:
    """Sort key of a chromosome code in natural order: 1..22 (numbers numerically), X, Y, XY, MT
    (PLINK's 23..26), then other codes (contigs) alphabetically; a ``chr`` prefix is ignored."""
    name = re.sub(r"^chr", "", str(code), flags=re.IGNORECASE)
    if name.isdigit():
        return (0, int(name), "")
    if name.upper() in _SPECIAL:
        return (0, _SPECIAL[name.upper()], "")
    return (1, 0, name)


def chromosome_label(code) -> str:
    name = re.sub(r"^chr", "", str(code), flags=re.IGNORECASE)
    return {"23": "X", "24": "Y", "25": "XY", "26": "MT"}.get(name, name)


def genome_coordinates(chromosome, position) -> tuple[np.ndarray, pd.DataFrame]:
    """x of each SNP with the chromosomes end to end (natural order, a 1% gap between them), and
    per chromosome (in order) its ``offset``, ``start``, ``end`` and ``middle`` on that axis."""
    chrom = pd.Series(np.asarray(chromosome).astype(str))
    pos = np.asarray(position, dtype=np.float64)
    codes, inverse = np.unique(chrom.to_numpy(), return_inverse=True)
    order = sorted(range(codes.size), key=lambda i: chromosome_key(codes[i]))
    lo = np.full(codes.size, np.inf)
    hi = np.full(codes.size, -np.inf)
    np.minimum.at(lo, inverse, pos)
    np.maximum.at(hi, inverse, pos)
    span = np.maximum(hi - lo, 1.0)
    gap = 0.01 * span.sum()
    offsets = np.empty(codes.size)
    at = 0.0
    for i in order:  # loop over chromosomes
        offsets[i] = at - lo[i]
        at += span[i] + gap
    x = pos + offsets[inverse]
    table = pd.DataFrame(
        {
            "chromosome": codes[order],
            "offset": offsets[order],
            "start": lo[order] + offsets[order],
            "end": hi[order] + offsets[order],
        }
    )
    table["middle"] = (table["start"] + table["end"]) / 2
    table["rank"] = np.arange(len(order))
    return x, table


def thin_points(x, y, keep_above: float = KEEP_ABOVE, grid=THIN_GRID) -> np.ndarray:
    """Indices of the points to draw: all with ``y >= keep_above``, and below it the first point of
    each occupied cell of a ``grid`` (x cells, y cells) over the x range and [0, keep_above)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    high = np.flatnonzero(ok & (y >= keep_above))
    low = np.flatnonzero(ok & (y < keep_above))
    if low.size:
        lo, hi = float(x[ok].min()), float(x[ok].max())
        width = hi - lo if hi > lo else 1.0
        cx = np.minimum((x[low] - lo) / width * grid[0], grid[0] - 1).astype(np.int64)
        cy = np.clip(y[low] / keep_above * grid[1], 0, grid[1] - 1).astype(np.int64)
        _, first = np.unique(cx * grid[1] + cy, return_index=True)
        low = low[first]
    return np.sort(np.concatenate([low, high]))


def top_loci(chromosome, position, p, threshold: float, n_max: int, locus_bp: int = LOCUS_BP):
    """Indices of the best SNP of each locus with ``p <= threshold``, best first, at most
    ``n_max``: SNPs in p order, each kept unless a kept SNP lies within ``locus_bp`` on its
    chromosome (a loop over the few candidates, not over the SNPs)."""
    p = np.asarray(p, dtype=float)
    hits = np.flatnonzero(np.isfinite(p) & (p <= threshold))
    hits = hits[np.argsort(p[hits], kind="stable")][: 50 * max(n_max, 1)]
    chrom = np.asarray(chromosome).astype(str)
    pos = np.asarray(position, dtype=np.float64)
    chosen: list[int] = []
    for i in hits:
        if all(chrom[j] != chrom[i] or abs(pos[j] - pos[i]) >= locus_bp for j in chosen):
            chosen.append(int(i))
            if len(chosen) >= n_max:
                break
    return np.array(chosen, dtype=np.int64)


def plot_manhattan(
    results: pd.DataFrame,
    png,
    data_path,
    title: str = "",
    genome_wide: float = GENOME_WIDE,
    suggestive: float = SUGGESTIVE,
    n_labels: int = 10,
) -> pd.DataFrame:
    """Draw the Manhattan plot of ``results`` (columns ``feature_id, chromosome, position,
    p_value``) to ``png`` and write the drawn points to ``data_path`` (``feature_id, chromosome,
    position, x, neg_log10_p, label``).  Returns that table."""
    fig, (ax,) = _figure(1, width=12.0, height=4.6)
    p = results["p_value"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    columns = ["feature_id", "chromosome", "position", "x", "neg_log10_p", "label"]
    if not ok.any():
        _message(ax, "no p-values")
        save_plot(fig, png, pd.DataFrame(columns=columns), data_path)
        return pd.DataFrame(columns=columns)
    res = results.loc[ok].reset_index(drop=True)
    p = p[ok]
    y = _neg_log10(p)
    ymax = max(float(np.max(y)), -np.log10(genome_wide)) * 1.08
    x, chroms = genome_coordinates(res["chromosome"], res["position"])
    grid = (THIN_GRID[0], max(10, int(np.ceil(THIN_GRID[1] * KEEP_ABOVE / ymax))))
    drawn = thin_points(x, y, KEEP_ABOVE, grid)
    rank = (
        pd.Series(chroms["rank"].to_numpy(), index=chroms["chromosome"])
        .loc[res["chromosome"].astype(str).to_numpy()[drawn]]
        .to_numpy()
    )
    colour = np.asarray(COLOURS)[rank % 2]
    ax.scatter(x[drawn], y[drawn], s=3, c=colour, linewidths=0, rasterized=True)
    ax.axhline(-np.log10(genome_wide), color=SIGNIFICANT, lw=0.9, ls="--",
               label=f"genome-wide p = {genome_wide:g}")  # fmt: skip
    ax.axhline(-np.log10(suggestive), color=NEUTRAL, lw=0.7, ls=":",
               label=f"suggestive p = {suggestive:g}")  # fmt: skip
    significant = top_loci(res["chromosome"], res["position"], p, genome_wide, n_labels)
    labelled = significant
    note = ""
    if significant.size == 0:
        labelled = top_loci(res["chromosome"], res["position"], p, 1.0, min(3, n_labels))
        note = " (none genome-wide: the best SNPs are labelled)"
    for k, i in enumerate(labelled):
        ax.annotate(str(res["feature_id"].iloc[i]), (x[i], y[i]), xytext=(4, 4 + 7 * (k % 3)),
                    textcoords="offset points", fontsize=7, color="black",
                    arrowprops=dict(arrowstyle="-", lw=0.4, color=NEUTRAL))  # fmt: skip
    ax.scatter(x[labelled], y[labelled], s=14, facecolors="none", edgecolors=SIGNIFICANT,
               linewidths=0.8, label=f"labelled: best SNP per locus{note}")  # fmt: skip
    ticks = chroms
    if len(chroms) > 30:  # many contigs: label every k-th
        ticks = chroms.iloc[:: int(np.ceil(len(chroms) / 30))]
    ax.set_xticks(ticks["middle"].to_numpy())
    ax.set_xticklabels([chromosome_label(c) for c in ticks["chromosome"]], fontsize=7)
    ax.set_xlim(float(chroms["start"].min()) - 1, float(chroms["end"].max()) + 1)
    ax.set_ylim(0, ymax)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("−log10 p")
    n_gw = int(np.sum(p <= genome_wide))
    ax.set_title(f"{title}: {p.size:,} SNPs, {n_gw:,} with p ≤ {genome_wide:g}"
                 f" ({significant.size} loci)", fontsize=9)  # fmt: skip
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    fig.suptitle("Manhattan plot")
    label = np.zeros(drawn.size, dtype=bool)
    label[np.isin(drawn, labelled)] = True
    extra = np.setdiff1d(labelled, drawn)  # labelled points are always drawn (y >= 3) but be sure
    idx = np.concatenate([drawn, extra])
    label = np.concatenate([label, np.ones(extra.size, dtype=bool)])
    data = pd.DataFrame(
        {
            "feature_id": res["feature_id"].astype(str).to_numpy()[idx],
            "chromosome": res["chromosome"].astype(str).to_numpy()[idx],
            "position": res["position"].to_numpy()[idx],
            "x": x[idx],
            "neg_log10_p": y[idx],
            "label": label,
        }
    )
    save_plot(fig, png, data, data_path)
    return data
