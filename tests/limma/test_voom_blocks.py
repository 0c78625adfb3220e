"""voom's block-wise, in-place arithmetic (log-CPM, fitted log counts, the trend's approxfun and
the weights) gives the same numbers whatever the block size and whether the weights overwrite the
fitted log counts, equal to the plain expressions (R's approx1 formula on bisected intervals);
R's long double rowMeans by row blocks equals the column-by-column loop."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, read_table

from stacklm.edger import cpm as cpm_module
from stacklm.edger.cpm import log_cpm_voom
from stacklm.limma import voom as voom_module
from stacklm.limma.voom import voom, voom_trend_points, voom_weights
from stacklm.limma.weightedfit import lm_wfit
from stacklm.rstats import sums
from stacklm.rstats.approx import approx1

DATA = TEST_DATA / "counts"


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0).to_numpy(dtype=np.float64)
    design = read_table(DATA / "design.tsv", index_col=0).to_numpy(dtype=np.float64)
    kept = counts[counts.sum(axis=1) > 0]
    return kept, design


def plain_weights(flc, trend):
    x, y = trend.knots_x, trend.knots_y
    i = np.clip(np.searchsorted(x, flc, side="right") - 1, 0, x.size - 2)
    return 1 / approx1(x, y, flc, i, rule=2) ** 4


def test_blocks_and_in_place_weights_change_nothing(data, monkeypatch):
    kept, design = data
    lib = kept.sum(axis=0)
    ref = voom(kept, design)
    points = voom_trend_points(kept, design)
    assert np.array_equal(points.E, np.log2((kept + 0.5) / (lib + 1) * 1e6))
    w_plain = plain_weights(points.fitted_logcount, ref.trend)
    assert np.array_equal(ref.weights, w_plain)
    assert np.array_equal(voom_weights(points.fitted_logcount, ref.trend), w_plain)
    for values in (1, 7, 1000):  # blocks of one row / value, ragged blocks, many rows
        monkeypatch.setattr(voom_module, "VOOM_BLOCK_VALUES", values)
        monkeypatch.setattr(cpm_module, "_BLOCK_VALUES", values)
        monkeypatch.setattr(sums, "_ROW_BLOCK_VALUES", values)
        v = voom(kept, design)
        assert np.array_equal(v.E, ref.E) and np.array_equal(v.weights, ref.weights)
        flc = voom_trend_points(kept, design).fitted_logcount
        assert np.array_equal(flc, points.fitted_logcount)
        copy = flc.copy()
        w = voom_weights(copy, ref.trend, overwrite=True)
        assert np.shares_memory(w, copy) and np.array_equal(w, w_plain)


def test_trend_evaluation_at_knots_outside_and_nan(data):
    kept, design = data
    trend = voom(kept, design).trend
    x, y = trend.knots_x, trend.knots_y
    rng = np.random.default_rng(1)
    mid = x[:-1] + np.diff(x) / 2
    edges = [np.nan, np.inf, -np.inf, x[0], x[-1], np.nextafter(x[-1], 0), np.nextafter(x[0], 99)]
    v = np.concatenate([rng.uniform(x[0] - 2, x[-1] + 2, 5000), x, mid, edges])
    i = np.clip(np.searchsorted(x, v, side="right") - 1, 0, x.size - 2)
    expected = approx1(x, y, v, i, rule=2)
    assert np.array_equal(trend(v), expected, equal_nan=True)
    assert np.array_equal(
        trend(v[: v.size // 4 * 4].reshape(-1, 4)),
        expected[: v.size // 4 * 4].reshape(-1, 4),
        equal_nan=True,
    )
    out = v.copy()
    assert np.array_equal(trend(out, out=out), expected, equal_nan=True)


def test_trend_evaluation_at_bucket_edges(data):
    """Values on and next to the lookup grid's bucket edges (where a rounded bucket number can be
    one off) and next to every knot: the interval approx1's bisection finds."""
    kept, design = data
    trend = voom(kept, design).trend
    x, y = trend.knots_x, trend.knots_y
    buckets = voom_module._BUCKETS_PER_KNOT * x.size
    grid = x[0] + (x[-1] - x[0]) * (np.arange(buckets + 1) / buckets)
    near = [grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf)]
    near += [np.nextafter(x, -np.inf), np.nextafter(x, np.inf), x]
    v = np.concatenate(near)
    i = np.clip(np.searchsorted(x, v, side="right") - 1, 0, x.size - 2)
    assert np.array_equal(trend(v), approx1(x, y, v, i, rule=2), equal_nan=True)
    assert np.array_equal(trend.weights(v), 1 / approx1(x, y, v, i, rule=2) ** 4)


def test_log_cpm_of_a_fortran_matrix(data):
    kept, _ = data
    lib = kept.sum(axis=0) * 1.1
    f = np.asfortranarray(kept)
    assert np.array_equal(log_cpm_voom(f, lib), np.log2((kept + 0.5) / (lib + 1) * 1e6))


def test_row_means_blocks_equal_the_column_loop(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (300, 37)) * 10.0 ** rng.integers(-8, 8, (300, 1))
    x[:, ::5] *= 1e9  # large and small terms: the order of the additions shows
    x[rng.random(x.shape) < 0.1] = np.nan
    x[3] = np.nan

    def loop(values, na_rm):
        acc = np.zeros(values.shape[0], dtype=np.longdouble)
        count = np.zeros(values.shape[0], dtype=np.int64)
        for j in range(values.shape[1]):
            col = values[:, j]
            ok = ~np.isnan(col) if na_rm else np.ones(col.size, dtype=bool)
            acc += np.where(ok, col, 0.0) if na_rm else col
            count += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return (acc / count).astype(np.float64)

    for values in (1, 37 * 4 + 5, 1 << 16):
        monkeypatch.setattr(sums, "_ROW_BLOCK_VALUES", values)
        for na_rm in (False, True):
            assert np.array_equal(sums.row_means(x, na_rm), loop(x, na_rm), equal_nan=True)


def test_chunk_passes_leave_out_what_they_do_not_use(data):
    kept, design = data
    full = voom_trend_points(kept, design)
    trend_pass = voom_trend_points(kept, design, fitted=False)
    weights_pass = voom_trend_points(kept, design, trend_points=False)
    assert trend_pass.fitted_logcount is None and weights_pass.sx is None
    assert weights_pass.sy is None
    for part in (trend_pass, weights_pass):
        assert np.array_equal(part.E, full.E) and np.array_equal(part.kept, full.kept)
        assert part.n_with_reps == full.n_with_reps
    assert np.array_equal(trend_pass.sx, full.sx) and np.array_equal(trend_pass.sy, full.sy)
    assert np.array_equal(weights_pass.fitted_logcount, full.fitted_logcount)


def test_voom_amean_is_the_weighted_fits_amean(data):
    """voom's ``amean`` is rowMeans(E): passing it to lm_wfit changes nothing."""
    kept, design = data
    v = voom(kept, design)
    assert np.array_equal(v.amean, sums.row_means(v.E, na_rm=True))
    plain = lm_wfit(v.E, design, v.weights)
    given = lm_wfit(v.E, design, v.weights, amean=v.amean)
    for name in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        assert np.array_equal(getattr(plain, name), getattr(given, name), equal_nan=True), name
    with pytest.raises(ValueError, match="amean"):
        lm_wfit(v.E, design, v.weights, amean=v.amean[:-1])
