"""stacklm.plots without the workflow: labels and units, covariates as the association heatmaps
see them, and per-feature plots of a large table (binned images, small PNGs, fixed layouts)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from stacklm.analysis import analysis_design
from stacklm.diagnostics.associations import (
    component_associations,
    covariate_table,
)
from stacklm.diagnostics.features import category_summary
from stacklm.diagnostics.summary import summary_markdown
from stacklm.io.outputs import write_tsv
from stacklm.plots import common
from stacklm.plots.common import _figure, _scatter, density_grid
from stacklm.plots.statistics import (
    DATA_ROWS_PER_COEFFICIENT,
    data_rows,
    plot_md,
    plot_sa,
    plot_volcano,
)
from stacklm.plots.style import (
    DENSITY_GRID,
    DENSITY_MIN_FEATURES,
    HIGHLIGHT_MAX_POINTS,
    Labels,
    analysis_labels,
    labelled,
    scale_labels,
)
from stacklm.spec import AnalysisSpec


def test_labels_name_the_scale_and_the_unit_of_slopes():
    assert scale_labels({"input_scale": "beta"}) == ("M-value", "M-value difference")
    assert scale_labels({"normalize": {"log2": True, "offset": 1}})[1] == "log2 fold change"
    assert scale_labels({"input_scale": "expression"}) == ("log2 expression", "log2 fold change")
    summary = {
        "config": {"normalize": {"log2": True, "offset": 0.5}},
        "design_columns": ["Intercept", "groupB", "age", "groupB:age"],
        "fdr_method": "BY",
    }
    spec = AnalysisSpec.from_settings("demo", {"formula": "~ group * age", "test": "groupB"})
    sheet = pd.DataFrame(
        {"group": ["A", "B"] * 3, "age": [30, 40, 35, 45, 50, 52]}, index=list("abcdef")
    )
    _, info = analysis_design(sheet, list(sheet.index), spec)
    labels = analysis_labels("demo", summary, info, sheet)
    assert labels.estimate("groupB") == "groupB (log2 fold change)"
    assert labels.estimate("age") == "age (log2 fold change per unit of age)"
    assert labels.estimate("groupB:age").endswith("per unit of age)")
    assert labels.average == "average log2(value + 0.5) (Amean)"
    assert labels.fdr_method == "BY"


def test_numeric_codes_are_factors_unless_the_design_uses_them_as_numbers():
    sheet = pd.DataFrame(
        {
            "batch": [1, 2, 3, 4] * 5,
            "age": np.arange(20) + 30,
            "dose": [0, 1] * 10,
            "quality": np.linspace(6, 9, 20),
        },
        index=[f"S{i}" for i in range(20)],
    )
    cov = covariate_table(sheet, list(sheet.index), numeric=["dose"])
    assert cov["batch"].tolist()[:4] == ["1", "2", "3", "4"]  # a code: categorical
    assert pd.api.types.is_numeric_dtype(cov["age"])  # many values
    assert pd.api.types.is_numeric_dtype(cov["dose"])  # the design's numeric covariate
    assert pd.api.types.is_numeric_dtype(cov["quality"])  # not whole numbers
    assoc = component_associations(
        pd.DataFrame({"PC1": sheet["batch"].map({1: 0.0, 2: 1.0, 3: -1.0, 4: 0.5})}), cov
    )
    batch = assoc[assoc.covariate == "batch"].iloc[0]
    assert batch["kind"] == "categorical" and batch["r2"] > 0.999  # not a linear trend in 1..4
    assert (assoc["neg_log10_p"] >= 0).all() and not np.signbit(assoc["neg_log10_p"]).any()
    spec = AnalysisSpec.from_settings(
        "demo", {"formula": "~ group + age", "levels": {"group": ["a", "b"]}, "test": "age"}
    )
    groups = pd.DataFrame({"group": ["a", "b", "a"], "age": [30, 40, 50]}, index=["x", "y", "z"])
    assert analysis_design(groups, ["x", "y", "z"], spec)[1].numeric_covariates == ("age",)


def test_levels_in_natural_order_and_unexplained_components_in_the_summary():
    chrom = np.array(["10", "2", "X", "1", "Y", "22"] * 3)
    table = category_summary(chrom, np.arange(chrom.size, dtype=float))
    assert table["level"].tolist() == ["1", "2", "10", "22", "X", "Y"]
    lengths = category_summary(np.array([50.0, 45.0, 40.0] * 2), np.ones(6))
    assert lengths["level"].tolist() == ["40", "45", "50"]
    md = summary_markdown(
        "demo",
        {"versions": {}},
        {},
        [
            ("residuals", "PC1", 0.17, None, np.nan, np.nan),
            ("residuals", "PC2", 0.08, "rq", 0.3, 1e-7),
        ],
    )
    assert "| residuals | PC1 | 17.0% | none (all p > 0.05) | – | – |" in md
    assert "| residuals | PC2 | 8.0% | `rq` | 0.300 | 1e-07 |" in md


def _big_table(g: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    avg = rng.uniform(2, 15, g)
    est = rng.normal(0, 0.3, g)
    est[: g // 10] += rng.normal(0, 2, g // 10)  # 10% signal: more significant than points drawn
    from scipy import stats

    p = 2 * stats.norm.sf(np.abs(est / 0.3))
    return pd.DataFrame(
        {
            "feature_id": [f"f{i}" for i in range(g)],
            "average": avg,
            "sigma": 0.3 * np.sqrt(rng.chisquare(8, g) / 8),
            "df_residual": 8.0,
            "s2_prior": 0.09,
            "df_prior": 4.0,
            "estimate_x": est,
            "p_x": p,
            "fdr_x": np.minimum(1.0, p * 20),
        }
    )


def test_many_features_are_binned_images_and_small_pngs(tmp_path):
    g = 300_000
    table = _big_table(g)
    assert (table["fdr_x"] <= 0.05).sum() > HIGHLIGHT_MAX_POINTS
    start = time.time()
    with labelled(Labels(analysis="big", value="log2 value", difference="log2 FC")):
        plot_volcano(table, ["x"], 0.05, tmp_path / "v.png", tmp_path / "v.tsv.gz")
        plot_md(table, ["x"], 0.05, tmp_path / "md.png", tmp_path / "md.tsv.gz")
        plot_sa(table, False, False, tmp_path / "sa.png", tmp_path / "sa.tsv.gz")
    assert time.time() - start < 120
    for name in ("v", "md", "sa"):
        png = tmp_path / f"{name}.png"
        assert png.stat().st_size < 1_000_000, f"{png.name}: {png.stat().st_size} bytes"
        with Image.open(png) as img:
            assert round(img.info["dpi"][0]) == 150
            pixels = np.asarray(img.convert("RGB"), dtype=float)
        assert (pixels < 235).any(axis=2).mean() > 0.02, f"{png.name} looks blank"
    # 300,000 features: the data tables hold every significant feature and a seeded sample of the
    # others, DATA_ROWS_PER_COEFFICIENT rows per coefficient (the PNG draws all of them)
    md = pd.read_csv(tmp_path / "md.tsv.gz", sep="\t")
    volcano = pd.read_csv(tmp_path / "v.tsv.gz", sep="\t")
    n_sig = int((table["fdr_x"] <= 0.05).sum())
    assert len(md) == len(volcano) == DATA_ROWS_PER_COEFFICIENT < g
    assert md["significant"].sum() == volcano["significant"].sum() == n_sig
    assert md["feature_id"].tolist() == volcano["feature_id"].tolist()  # the same rows, input order
    position = table.reset_index().set_index("feature_id").loc[md["feature_id"], "index"]
    assert np.all(np.diff(position.to_numpy()) > 0)
    assert np.array_equal(md["estimate"], table["estimate_x"].to_numpy()[position.to_numpy()])
    # the SA table: the same sample (no variance outliers without robust eBayes), in input order
    sa = pd.read_csv(tmp_path / "sa.tsv.gz", sep="\t")
    assert len(sa) == DATA_ROWS_PER_COEFFICIENT and not sa["outlier"].any()
    at = table.reset_index().set_index("feature_id").loc[sa["feature_id"], "index"].to_numpy()
    assert np.all(np.diff(at) > 0)
    assert np.array_equal(sa["sqrt_sigma"], np.sqrt(table["sigma"].to_numpy()[at]))


def test_data_rows_keep_the_most_significant_when_they_exceed_the_cap():
    p = np.linspace(1e-9, 1.0, 50)[::-1].copy()
    sig = p < 0.5
    rows = data_rows(p, sig, cap=10)  # 25 significant > 10: the 10 smallest p, in input order
    assert rows.tolist() == list(range(40, 50))
    assert data_rows(p, sig, cap=50).tolist() == list(range(50))
    few = data_rows(p, p < 0.05, cap=10)  # 3 significant + a seeded sample of 7 others
    assert len(few) == 10 and set(np.flatnonzero(p < 0.05)) <= set(few)
    assert few.tolist() == data_rows(p, p < 0.05, cap=10).tolist()


def test_density_grid_counts_every_point_once():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=10_000), rng.uniform(0, 5, 10_000)
    extent = (float(x.min()), float(x.max()), 0.0, 5.0)
    counts = density_grid(x, y, extent, shape=(40, 30))
    assert counts.shape == (30, 40) and counts.sum() == x.size
    # the maximum lands in the last bin, a point outside the extent in the nearest edge bin
    edge = density_grid([x.max(), 99.0, -99.0], [5.0, 2.5, -1.0], extent, shape=(40, 30))
    assert edge[29, 39] == 1 and edge[15, 39] == 1 and edge[0, 0] == 1
    # grouped: the two grids add up to the ungrouped one
    group = rng.uniform(size=x.size) < 0.3
    both = density_grid(x, y, extent, shape=(40, 30), group=group)
    assert both[1].sum() == group.sum() and np.array_equal(both[0] + both[1], counts)
    # a constant coordinate puts every point in the first bin of that axis
    flat = density_grid(np.ones(5), np.arange(5.0), (1.0, 1.0, 0.0, 4.0), shape=(3, 5))
    assert flat[:, 0].sum() == 5 and flat[:, 1:].sum() == 0


def test_scatter_draws_binned_counts_and_at_most_the_capped_points():
    rng = np.random.default_rng(5)
    g = 3 * DENSITY_MIN_FEATURES
    x, y = rng.normal(size=g), rng.normal(size=g)
    x[:7] = np.nan  # not drawn, not counted
    few = np.zeros(g, dtype=bool)
    few[: HIGHLIGHT_MAX_POINTS // 2] = True
    fig, (ax,) = _figure(1, pads=common.COLORBAR_PADS)
    counts = _scatter(ax, x, y, few, "significant")
    finite = np.isfinite(x)
    assert counts.shape == DENSITY_GRID[::-1]
    assert ax.images[0].get_array().sum() == counts.sum() == int((finite & ~few).sum())
    (points,) = ax.collections  # the highlighted features as points, no more
    assert len(points.get_offsets()) == int((finite & few).sum()) <= HIGHLIGHT_MAX_POINTS
    many = rng.uniform(size=g) < 0.5
    assert many.sum() > HIGHLIGHT_MAX_POINTS
    fig, (ax,) = _figure(1, pads=common.COLORBAR_PADS)
    _scatter(ax, x, y, many, "significant")
    grey, red = ax.images  # above the cap the highlighted features are a second image
    assert grey.get_array().sum() == int((finite & ~many).sum())
    assert red.get_array().sum() == int((finite & many).sum())
    assert all(len(c.get_offsets()) == 0 for c in ax.collections)  # only the legend's entry
    fig, (ax,) = _figure(1)  # few features: points
    assert _scatter(ax, x[:500], y[:500]) is None and not ax.images


def _saved_figures(monkeypatch, module: str) -> list:
    """The figures ``module``'s plot functions save (collected, and saved as before)."""
    figures = []
    original = common.save_plot

    def keep(fig, *args):
        figures.append(fig)
        original(fig, *args)

    monkeypatch.setattr(f"{module}.save_plot", keep)
    return figures


def _assert_fixed_layout_fits(fig) -> list:
    """One draw when saved (no layout engine), every panel (ticks, labels, title) inside the
    figure, apart from the others and below the figure title; returns the panels' boxes."""
    assert fig.get_layout_engine() is None
    renderer = FigureCanvasAgg(fig).get_renderer()
    page = fig.bbox.padded(1)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    boxes = [ax.get_tightbbox(renderer) for ax in panels]  # ticks, labels, title, colorbar
    for box in boxes:
        assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    title = fig._suptitle.get_window_extent(renderer)
    assert all(title.y0 > box.y1 for box in boxes)
    return boxes


def test_fixed_layouts_keep_panels_apart_and_inside_the_figure(tmp_path, monkeypatch):
    table = _big_table(30_000)
    table["estimate_a_long_contrast_name"] = table["estimate_x"] * 2
    table["p_a_long_contrast_name"] = table["p_x"]
    table["fdr_a_long_contrast_name"] = table["fdr_x"]
    names = ["x", "a_long_contrast_name"] * 2
    figures = _saved_figures(monkeypatch, "stacklm.plots.statistics")
    with labelled(Labels(analysis="layout", value="log2 value", difference="log2 FC")):
        plot_volcano(table, names, 0.05, tmp_path / "v.png", tmp_path / "v.tsv.gz")
        plot_md(table, names, 0.05, tmp_path / "md.png", tmp_path / "md.tsv.gz")
        plot_sa(table, False, False, tmp_path / "sa.png", tmp_path / "sa.tsv.gz")
    assert len(figures) == 3
    for fig in figures:
        _assert_fixed_layout_fits(fig)


def test_the_annotation_figure_sizes_its_fixed_layout_from_the_level_names(tmp_path, monkeypatch):
    from stacklm.plots.estimates import plot_estimate_annotation

    g = 6_000
    table = _big_table(g)
    table["estimate_y"] = -table["estimate_x"]
    rng = np.random.default_rng(3)
    levels = [f"a_rather_long_region_name_{k}" for k in range(12)]  # turned tick labels
    features = pd.DataFrame(
        {
            "gc_content": rng.uniform(0.3, 0.7, g),
            "region": rng.choice(levels, g),
            "probe_length": rng.integers(40, 46, g),  # few values: per value
        },
        index=table["feature_id"],
    )
    figures = _saved_figures(monkeypatch, "stacklm.plots.estimates")
    with labelled(Labels(analysis="layout", value="log2 value", difference="log2 FC")):
        plot_estimate_annotation(
            table, ["x", "y"], features, tmp_path / "a.png", tmp_path / "a.tsv"
        )
    (fig,) = figures
    assert len(_assert_fixed_layout_fits(fig)) == 6  # 3 annotations x 2 coefficients
    data = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert set(data["annotation"]) == {"gc_content", "region", "probe_length"}
    assert set(data.loc[data["annotation"] == "region", "level"]) == set(levels)


def test_data_tables_are_written_as_the_dataframe_writer_writes_them(tmp_path):
    table = _big_table(2_000)
    table.loc[3, "estimate_x"] = np.nan
    table.loc[5, "fdr_x"] = np.nan
    with labelled(Labels(analysis="bytes")):
        plot_volcano(table, ["x"], 0.05, tmp_path / "v.png", tmp_path / "v.tsv.gz")
    y = -np.log10(table["p_x"].to_numpy())
    expected = pd.DataFrame({
        "feature_id": table["feature_id"].astype(object), "coefficient": "x",
        "estimate": table["estimate_x"], "neg_log10_p": y, "fdr": table["fdr_x"],
        "significant": np.nan_to_num(table["fdr_x"].to_numpy(), nan=1.0) <= 0.05,
    })  # fmt: skip
    write_tsv(expected, tmp_path / "expected.tsv.gz")
    import gzip

    written = gzip.decompress((tmp_path / "v.tsv.gz").read_bytes())
    assert written == gzip.decompress((tmp_path / "expected.tsv.gz").read_bytes())
    assert b"\tNA\t" in written
