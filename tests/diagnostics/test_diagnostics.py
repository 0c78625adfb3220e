"""stacklm.diagnostics against R (tests/data/diagnostics/make_reference.R: prcomp, lm, limma's
plotSA, hist, ppoints/qbeta, quantile, bw.nrd0, cor, cov2cor) and its chunking invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.diagnostics.associations import (
    component_associations,
    covariate_table,
    strongest_associations,
)
from stacklm.diagnostics.crossproducts import (
    MATRICES,
    chunk_cross_products,
    cross_products_path,
    sum_cross_products,
)
from stacklm.diagnostics.distributions import (
    RowReservoir,
    sample_densities,
    sample_quantiles,
)
from stacklm.diagnostics.features import (
    binned_trend,
    design_estimate_correlation,
    estimate_correlation,
    pvalue_histogram,
    qq_data,
    sa_plot_data,
)
from stacklm.diagnostics.pca import cross_product_pcas
from stacklm.diagnostics.summary import markdown_table_html, summary_markdown
from stacklm.io.store import write_binary_matrix
from stacklm.limma.lmfit import lm_fit
from stacklm.rstats.basic import bw_nrd0
from stacklm.workflow.pipeline import fit_chunk

REF = TEST_DATA / "diagnostics"


@pytest.fixture(scope="module")
def data():
    expr = read_table(REF / "expression.tsv", index_col=0)
    design = read_table(REF / "design.tsv", index_col=0)
    samples = read_table(REF / "samples.tsv", index_col=0)
    expr.index = expr.index.astype(str)
    fit = lm_fit(expr, design)
    return expr, design, samples, fit


@pytest.fixture(scope="module")
def pcas(data):
    expr, design, _, fit = data
    Y, X, B = expr.to_numpy(), design.to_numpy(), fit.coefficients
    parts = [
        chunk_cross_products(Y[a:b], X, B[a:b], list(expr.columns))
        for a, b in [(0, 97), (97, 250), (250, len(expr))]
    ]
    return cross_product_pcas(sum_cross_products(parts), n_components=6)


def _align(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Flip our columns to R's signs (PCs are defined up to sign)."""
    signs = np.sign(np.sum(ours * ref, axis=0))
    return ours * signs


@pytest.mark.parametrize("matrix", MATRICES)
def test_pca_matches_prcomp(pcas, data, matrix):
    n = data[0].shape[1]
    sdev = read_table(REF / f"pca_{matrix}_sdev.tsv")
    pca = pcas[matrix]
    # every positive component, as prcomp's sdev (eigenvalues of A'A / (n - 1))
    assert len(pca.eigenvalues) == len(sdev)
    assert_matches(np.sqrt(pca.eigenvalues / (n - 1)), sdev["sdev"], f"{matrix} sdev")
    scores = read_table(REF / f"pca_{matrix}_scores.tsv", index_col=0)
    ours = pca.scores.iloc[:, : scores.shape[1]].to_numpy()
    assert list(pca.scores.index) == list(scores.index)
    assert_matches(_align(ours, scores.to_numpy()), scores.to_numpy(), f"{matrix} scores",
                   atol=1e-10)  # fmt: skip
    assert_matches(pca.variance_fraction.sum(), 1.0, "fractions sum to 1", rtol=1e-10)


@pytest.mark.parametrize("matrix", MATRICES)
def test_component_associations_match_lm(pcas, data, matrix):
    samples = data[2]
    ref = read_table(REF / f"pca_{matrix}_associations.tsv")
    scores = read_table(REF / f"pca_{matrix}_scores.tsv", index_col=0)
    pca_scores = pcas[matrix].scores.iloc[:, : scores.shape[1]]
    aligned = pd.DataFrame(_align(pca_scores.to_numpy(), scores.to_numpy()),
                           index=pca_scores.index, columns=pca_scores.columns)  # fmt: skip
    ours = component_associations(aligned, samples[["group", "x", "batch", "quality"]])
    merged = ref.merge(ours, on=["component", "covariate"], suffixes=("_r", ""))
    assert len(merged) == len(ref)
    assert_matches(merged["r2"], merged["r2_r"], f"{matrix} R^2", atol=1e-10)
    # residuals are orthogonal to the design's covariates: R^2 there is rounding noise (< 1e-10)
    # and its p-value (~1) is not comparable; every other p-value is
    real = merged["r2_r"] > 1e-10
    assert (merged.loc[~real, "r2"] < 1e-10).all()
    assert real[merged.covariate.isin(["batch", "quality"])].all()
    assert_matches(merged.loc[real, "p_value"], merged.loc[real, "p_value_r"], f"{matrix} p",
                   atol=1e-12)  # fmt: skip
    assert (merged.loc[merged.covariate == "quality", "n"] == len(samples) - 1).all()


def test_residuals_carry_the_unmodelled_batch(pcas, data):
    samples = data[2]
    assoc = component_associations(pcas["residuals"].scores, samples[["batch", "quality"]])
    best = strongest_associations(assoc)
    assert best.iloc[0]["covariate"] in {"batch", "quality"}
    assert best.iloc[0]["p_value"] < 1e-4


def test_cross_products_do_not_depend_on_chunks(data):
    expr, design, _, fit = data
    Y, X, B = expr.to_numpy(), design.to_numpy(), fit.coefficients
    whole = chunk_cross_products(Y, X, B, list(expr.columns))
    split = sum_cross_products(
        [
            chunk_cross_products(Y[a:b], X, B[a:b], list(expr.columns))
            for a, b in [(0, 1), (1, 200), (200, len(Y))]
        ]  # fmt: skip
    )
    assert split.n_features == whole.n_features == len(Y)
    for name in MATRICES:
        assert_matches(split.matrices[name], whole.matrices[name], name, atol=1e-9)
        assert_matches(split.sums_of_squares[name], np.trace(whole.matrices[name]), name)


def test_fit_chunk_writes_the_cross_products(data, tmp_path):
    expr, design, _, fit = data
    store = tmp_path / "store"
    write_binary_matrix(store, expr.index.to_numpy(), list(expr.columns), expr.to_numpy())
    paths = []
    for chunk in range(3):
        out = tmp_path / f"chunk_{chunk}.npz"
        fit_chunk(store, design, chunk, 3, out)
        paths.append(cross_products_path(out))
        assert paths[-1].name == f"chunk_{chunk}.crossprod.npz" and paths[-1].exists()
    total = sum_cross_products(paths)
    direct = chunk_cross_products(
        expr.to_numpy(), design.to_numpy(), fit.coefficients, list(expr.columns)
    )
    assert total.samples == list(expr.columns) and total.kind == "gram"
    for name in MATRICES:
        assert_matches(total.matrices[name], direct.matrices[name], name, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "int8"])
def test_cross_products_use_every_kth_feature_whatever_the_chunks(tmp_path, monkeypatch, dtype):
    """Above CROSS_PRODUCT_ROWS features the cross-products are those of rows 0, k, 2k, ... of the
    store (k = ceil(n_features / CROSS_PRODUCT_ROWS)): the same for any number of chunks and row
    blocks, sums of squares over those rows.  int8 stores (allele counts) as their float values."""
    import stacklm.diagnostics.crossproducts as cpmod
    import stacklm.workflow.pipeline as pipeline

    rng = np.random.default_rng(12)
    G, n = 503, 14
    samples = [f"s{i}" for i in range(n)]
    if dtype == "int8":
        values = rng.integers(0, 3, (G, n)).astype(float)
    else:
        values = rng.normal(8, 1, (G, n))
    values[rng.random((G, n)) < 0.05] = np.nan
    write_binary_matrix(tmp_path / "store", [f"g{i}" for i in range(G)], samples, values, dtype)
    design = pd.DataFrame(
        {"Intercept": 1.0, "group": [0, 1] * 7, "x": rng.normal(0, 1, n)},
        index=pd.Index(samples, name="sample_id"),
    )
    monkeypatch.setattr(cpmod, "CROSS_PRODUCT_ROWS", 40)
    assert cpmod.cross_product_stride(G) == 13  # ceil(503 / 40): rows 0, 13, ..., 494
    totals = []
    for chunks, block in [(1, 1 << 30), (3, 9 * n), (7, 5 * n)]:
        monkeypatch.setattr(pipeline, "FIT_BLOCK_VALUES", block)
        paths = []
        for chunk in range(chunks):
            out = tmp_path / f"c{chunks}_{chunk}.npz"
            fit_chunk(tmp_path / "store", design, chunk, chunks, out)
            paths.append(cross_products_path(out))
        totals.append(sum_cross_products(paths))
    rows = np.arange(0, G, 13)
    fit = lm_fit(values[rows], design)
    direct = chunk_cross_products(values[rows], design.to_numpy(), fit.coefficients, samples)
    for total in totals:
        assert total.n_features == rows.size == 39 and total.stride == 13
        for name in MATRICES:
            assert_matches(total.matrices[name], direct.matrices[name], name, atol=1e-9)
            assert_matches(total.sums_of_squares[name], np.trace(direct.matrices[name]), name)
    pca = cross_product_pcas(totals[1])["input"]
    assert pca.stride == 13 and pca.rows_label == " (every 13th feature: 39)"
    # the block helper picks rows by global index; int8 rows are taken as they are
    block = np.where(np.isnan(values), -127, values).astype(np.int8) if dtype == "int8" else values
    B = lm_fit(block, design).coefficients
    X = design.to_numpy()
    part = cpmod.block_cross_products(block[100:300], X, B[100:300], samples, range(100, 300), G)
    want = chunk_cross_products(values[rows[(rows >= 100) & (rows < 300)]], X,
                                B[rows[(rows >= 100) & (rows < 300)]], samples)  # fmt: skip
    assert part.n_features == want.n_features == 16 and part.stride == 13  # 104, 117, ..., 299
    for name in MATRICES:
        assert_matches(part.matrices[name], want.matrices[name], name, atol=1e-9)


def _centred_input_and_fitted(Y, X, coefficients):
    """The centred input and fitted values as the cross-products define them: each row centred
    by its mean over the observed samples, missing entries 0, non-estimable coefficients 0."""
    obs = ~np.isnan(Y)

    def centred(A):
        A = np.where(obs, A, 0.0)
        return np.where(obs, A - (A.sum(axis=1) / np.maximum(obs.sum(axis=1), 1))[:, None], 0.0)

    return centred(Y), centred(np.nan_to_num(coefficients) @ X.T)


def test_sketch_without_the_fitted_matrix_equals_the_explicit_sketch():
    """The sketches A'(A Omega) of the centred input, fitted values and residuals (and their sums
    of squares) formed without the fitted matrix (crossproducts._sketch_block) equal the explicit
    products, with missing values, a row without values and a non-estimable coefficient."""
    from stacklm.diagnostics.crossproducts import sketch_matrix

    rng = np.random.default_rng(8)
    g, n = 400, 90
    X = np.column_stack([np.ones(n), rng.standard_normal(n), rng.random(n) < 0.5,
                         rng.uniform(20, 70, n)])  # fmt: skip
    Y = rng.normal(0, 1, (g, 4)) @ X.T * 0.3 + rng.normal(5, 1, (g, n))
    Y[rng.random(Y.shape) < 0.03] = np.nan
    Y[3] = np.nan
    Y[5, ::2] = np.nan
    fit = lm_fit(Y, X)
    fit.coefficients[7, 2] = np.nan  # as for a coefficient not estimable on a row's samples
    cp = chunk_cross_products(Y, X, fit.coefficients, [f"s{i}" for i in range(n)],
                              exact_max_samples=10, sketch_size=20)  # fmt: skip
    assert cp.kind == "sketch"
    omega = sketch_matrix(n, 20)
    Yc, Fc = _centred_input_and_fitted(Y, X, fit.coefficients)
    for name, A in (("input", Yc), ("fitted", Fc), ("residuals", Yc - Fc)):
        assert_matches(cp.matrices[name], A.T @ (A @ omega), name, rtol=1e-11, atol=1e-9)
        assert_matches(cp.sums_of_squares[name], float((A * A).sum()), name, rtol=1e-11)


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("effects", [0.3, 3000.0])
def test_exact_cross_products_equal_the_explicit_products(missing, effects):
    """The n x n cross-products of the centred input, fitted values and residuals (and their sums
    of squares) equal the explicit products: complete row blocks form the fitted one as
    Xt (B'B) Xt' (the design's columns centred) and the residuals' as the difference of the
    input's, the fitted values' and the mixed products (or, where the residuals hold under 0.1%
    of the sum of squares, effects 3000: 6e-10 of it, from the residual matrix), blocks with
    missing values from the fitted matrix; a non-estimable coefficient counts as 0."""
    rng = np.random.default_rng(9)
    g, n = 700, 40
    X = np.column_stack([np.ones(n), rng.standard_normal(n), rng.random(n) < 0.5,
                         rng.uniform(20, 70, n)])  # fmt: skip
    Y = rng.normal(0, 1, (g, 4)) @ X.T * effects + rng.normal(5, 1, (g, n))
    if missing:
        Y[rng.random(Y.shape) < 0.01] = np.nan
    fit = lm_fit(Y, X)
    fit.coefficients[7, 2] = np.nan
    cp = chunk_cross_products(Y, X, fit.coefficients, [f"s{i}" for i in range(n)])
    assert cp.kind == "gram"
    Yc, Fc = _centred_input_and_fitted(Y, X, fit.coefficients)
    for name, A in (("input", Yc), ("fitted", Fc), ("residuals", Yc - Fc)):
        assert_matches(cp.matrices[name], A.T @ A, name, rtol=1e-12, atol=1e-9)
        assert_matches(cp.sums_of_squares[name], float((A * A).sum()), name, rtol=1e-12)


def test_residual_cross_product_identity_is_not_used_where_it_loses_digits(monkeypatch):
    """Where the design explains all but 6e-10 of the sum of squares, the difference of the input's
    and the fitted values' cross-products would lose ~9 digits: the residuals are formed then
    (RESIDUAL_IDENTITY_MIN_SHARE); with the identity forced, the loss shows."""
    import stacklm.diagnostics.crossproducts as cpmod

    rng = np.random.default_rng(9)
    g, n = 700, 40
    X = np.column_stack([np.ones(n), rng.standard_normal(n), rng.uniform(20, 70, n)])
    Y = rng.normal(0, 1, (g, 3)) @ X.T * 3000.0 + rng.normal(5, 1, (g, n))
    fit = lm_fit(Y, X)
    Yc, Fc = _centred_input_and_fitted(Y, X, fit.coefficients)
    explicit = (Yc - Fc).T @ (Yc - Fc)
    samples = [f"s{i}" for i in range(n)]
    scale = np.abs(explicit).max()  # (the residuals themselves carry ~1e-11 of Y's 1.5e5)
    kept = chunk_cross_products(Y, X, fit.coefficients, samples).matrices["residuals"]
    assert np.abs(kept - explicit).max() <= 1e-10 * scale
    monkeypatch.setattr(cpmod, "RESIDUAL_IDENTITY_MIN_SHARE", 0.0)
    forced = chunk_cross_products(Y, X, fit.coefficients, samples).matrices["residuals"]
    assert np.abs(forced - explicit).max() > 1e-8 * scale


def test_sketch_is_exact_for_low_rank_and_close_for_spiked():
    rng = np.random.default_rng(3)
    g, n, samples = 3000, 60, [f"s{i}" for i in range(60)]
    X = np.ones((n, 1))
    low = rng.normal(size=(g, 4)) @ (rng.normal(size=(4, n)) * np.array([[5.0], [3], [2], [1]]))
    B = low.mean(axis=1, keepdims=True)
    exact = cross_product_pcas(chunk_cross_products(low, X, B, samples))
    sketch = cross_product_pcas(
        chunk_cross_products(low, X, B, samples, exact_max_samples=10, sketch_size=12)
    )
    assert sketch["input"].approximate and not exact["input"].approximate
    k = len(exact["input"].eigenvalues)
    assert k == 4
    assert_matches(sketch["input"].eigenvalues[:k], exact["input"].eigenvalues, "rank 4",
                   rtol=1e-8)  # fmt: skip
    assert_matches(np.abs(sketch["input"].scores.to_numpy()), np.abs(exact["input"].scores),
                   "rank-4 scores", rtol=1e-6, atol=1e-6)  # fmt: skip
    # two strong components on top of noise: the sketch finds them within a few percent
    spiked = rng.normal(size=(g, n))
    spiked += np.outer(rng.normal(size=g) * 3, rng.normal(size=n))
    spiked += np.outer(rng.normal(size=g) * 2, rng.normal(size=n))
    B = spiked.mean(axis=1, keepdims=True)
    e = cross_product_pcas(chunk_cross_products(spiked, X, B, samples))["input"]
    s = cross_product_pcas(
        chunk_cross_products(spiked, X, B, samples, exact_max_samples=10, sketch_size=30)
    )["input"]
    assert np.allclose(s.eigenvalues[:2], e.eigenvalues[:2], rtol=0.05)
    assert np.allclose(s.variance_fraction[:2], e.variance_fraction[:2], rtol=0.05)
    for j in range(2):
        assert abs(np.corrcoef(s.scores.iloc[:, j], e.scores.iloc[:, j])[0, 1]) > 0.99


def test_sa_plot_data_matches_plotsa_robust_and_trend():
    ref = read_table(REF / "plotsa_robust.tsv")
    sa = sa_plot_data(ref["average"], ref["sigma"], ref["df_residual"], ref["s2_prior"],
                         ref["df_prior"], robust=True)  # fmt: skip
    assert_matches(sa["sqrt_sigma"], ref["sqrt_sigma"], "sqrt sigma")
    assert_matches(sa["prior_line"], ref["prior_line"], "prior line")
    assert_matches(sa["outlier_fdr"], ref["outlier_fdr"], "outlier FDR")
    # plotSA colours FDR <= 0.5; an NA FDR (feature without residual df) stays uncoloured
    expected = ref["outlier"].map({True: True, False: False, "TRUE": True, "FALSE": False})
    expected = expected.fillna(False).astype(bool).tolist()
    assert sa["outlier"].tolist() == expected and sa["outlier"].sum() == 7
    # detected without the flag: df.prior per feature
    auto = sa_plot_data(ref["average"], ref["sigma"], ref["df_residual"], ref["s2_prior"],
                           ref["df_prior"])  # fmt: skip
    assert auto["outlier"].tolist() == expected
    trend = read_table(REF / "plotsa_trend.tsv")
    sa = sa_plot_data(trend["average"], trend["sigma"], trend["df_residual"],
                         trend["s2_prior"], trend["df_prior"])  # fmt: skip
    assert_matches(sa["prior_line"], trend["prior_line"], "trend prior line")
    assert not sa["outlier"].any() and sa["outlier_fdr"].isna().all()


def test_binned_trend_matches_r(data):
    _, _, _, fit = data
    ref = read_table(REF / "binned_trend_groupB.tsv")
    j = fit.coef_names.index("groupB")
    ours = binned_trend(fit.amean, fit.coefficients[:, j], n_bins=20)
    assert list(ours.columns) == list(ref.columns)
    assert ours["n"].tolist() == ref["n"].tolist()
    for col in ref.columns[1:]:
        assert_matches(ours[col], ref[col], col, atol=1e-10)
    # the caller's stable order of the whole x (one sort for several y) gives the same bins, also
    # with missing x and y and ties in x
    x = np.round(fit.amean, 1)
    x[::17] = np.nan
    y = fit.coefficients[:, j].copy()
    y[5::23] = np.nan
    shared = binned_trend(x, y, order=np.argsort(x, kind="stable"))
    pd.testing.assert_frame_equal(shared, binned_trend(x, y))
    assert shared["n"].sum() == int((np.isfinite(x) & np.isfinite(y)).sum())


def test_pvalue_histogram_and_qq_match_r():
    ref_qq = read_table(REF / "qq.tsv")
    p = ref_qq["p"].to_numpy()
    hist = pvalue_histogram(p)
    ref_hist = read_table(REF / "pvalue_histogram.tsv")
    assert hist["count"].tolist() == ref_hist["count"].tolist()
    assert_matches(hist["density"], ref_hist["density"], "density")
    qq = qq_data(p, max_points=10**6)  # no thinning
    assert len(qq) == len(p)
    assert_matches(qq["expected"], ref_qq["expected"], "ppoints")
    assert_matches(qq["observed"], -np.log10(ref_qq["p"]), "observed")
    assert_matches(qq["band_low"], ref_qq["band_low"], "band low", rtol=1e-9)
    assert_matches(qq["band_high"], ref_qq["band_high"], "band high", rtol=1e-9)
    thin = qq_data(np.concatenate([p, np.random.default_rng(1).random(200_000)]),
                      max_points=400)  # fmt: skip
    assert 200 < len(thin) < 3000 and thin["rank"].is_monotonic_increasing


def test_estimate_correlations_match_r(data):
    _, design, _, fit = data
    est = pd.DataFrame(fit.coefficients, columns=fit.coef_names)
    est["BvsC"] = est["groupB"] - est["groupC"]
    names = ["groupB", "groupC", "x", "BvsC"]
    ref = read_table(REF / "estimate_correlation.tsv", index_col=0)
    assert_matches(estimate_correlation(est[names]).to_numpy(), ref.to_numpy(), "cor",
                   rtol=1e-8)  # fmt: skip
    ref = read_table(REF / "design_correlation.tsv", index_col=0)
    ours = design_estimate_correlation(design, names, {"BvsC": "groupB - groupC"})
    assert_matches(ours.to_numpy(), ref.to_numpy(), "cov2cor", atol=1e-14)


def test_sample_quantiles_and_density(data):
    expr = data[0]
    ref = read_table(REF / "sample_quantiles.tsv")
    q = sample_quantiles(expr.to_numpy(), list(expr.columns))
    assert q["n_values"].tolist() == ref["n_values"].tolist()
    assert_matches(q.iloc[:, 2:].to_numpy(), ref.iloc[:, 2:-1].to_numpy(), "quantiles")
    for j, name in enumerate(expr.columns):
        x = expr[name].dropna().to_numpy()
        assert_matches(bw_nrd0(x), ref.loc[j, "bw_nrd0"], f"bw.nrd0 {name}")
    # the binned kernel density is the exact Gaussian KDE to well under 1% of its peak
    dens = sample_densities(expr.to_numpy(), list(expr.columns))
    for name in expr.columns[:4]:
        x = expr[name].dropna().to_numpy()
        part = dens[dens["sample"] == name]
        bw = bw_nrd0(x)
        z = (part["x"].to_numpy()[:, None] - x[None, :]) / bw
        exact = np.exp(-0.5 * z * z).sum(axis=1) / (x.size * bw * np.sqrt(2 * np.pi))
        assert np.max(np.abs(part["density"] - exact)) < 2e-3 * exact.max()


def test_row_reservoir_is_a_uniform_row_sample():
    rng = np.random.default_rng(0)
    rows = np.arange(20_000, dtype=float)[:, None] * np.ones((1, 3))
    small = RowReservoir(3, 50_000)
    for a in range(0, 20_000, 3001):
        small.add(rows[a : a + 3001])
    assert np.array_equal(small.values(), rows)  # everything fits: kept in order
    means = []
    for seed in range(20):
        r = RowReservoir(3, 500, seed=seed)
        a = 0
        while a < 20_000:  # blocks of random sizes
            step = int(rng.integers(100, 4000))
            r.add(rows[a : a + step])
            a += step
        kept = r.values()[:, 0]
        assert kept.size == 500 and np.unique(kept).size == 500
        means.append(kept.mean())
    # mean index of a uniform 500-row sample of 0..19999: 9999.5 with sd ~ 258 per draw
    assert abs(np.mean(means) - 9999.5) < 3 * 5773 / np.sqrt(500 * 20)


def test_covariate_table_and_summary(data):
    expr, design, samples, _ = data
    sheet = samples.assign(plate=[1, 2] * 8)
    cov = covariate_table(sheet, list(design.index), {"plate": [1, 2]})
    assert cov["plate"].tolist()[:2] == ["1", "2"]  # a level-listed numeric column is a factor
    assert pd.api.types.is_numeric_dtype(cov["x"])
    summary = {
        "n_features": 400, "n_samples": 16, "dropped_samples": ["S17"], "design_columns":
        list(design.columns), "s2_prior": 0.25, "df_prior": 4.2, "pi0": 0.8, "lambda_gc": 1.05,
        "n_surrogate_variables": 0, "alpha": 0.05, "fdr_method": "BH", "test": ["groupB"],
        "test_statistic": "t", "test_df1": 1, "versions": {"stacklm": "0.1.0"},
    }  # fmt: skip
    md = summary_markdown("demo", summary, {"test (fdr)": 12, "groupB": 12},
                             [("residuals", "PC1", 0.31, "batch", 0.8, 1e-6)])  # fmt: skip
    for text in ("| features fitted | 400 |", "| samples | 16 |", "S17", "0.8", "1.05",
                 "| `groupB` | 12 |", "`batch`", "stacklm 0.1.0", "λGC"):  # fmt: skip
        assert text in md, text
    html = markdown_table_html(md, "demo")
    assert html.count("<table>") == 3 and "<code>groupB</code>" in html


def test_density_convolution_is_scipy_fftconvolve():
    """The densities' kernel convolution (no scipy.signal import in the normalize job) gives
    scipy.signal.fftconvolve's numbers bit for bit, also for a one-value kernel."""
    from scipy.signal import fftconvolve

    from stacklm.diagnostics.distributions import _fft_convolve

    rng = np.random.default_rng(0)
    for n, k in [(4096, 801), (4096, 3), (4096, 9000), (10, 1), (1, 10), (4096, 2)]:
        a = rng.poisson(5, n).astype(float)
        b = np.exp(-0.5 * np.linspace(-5, 5, k) ** 2)
        np.testing.assert_array_equal(_fft_convolve(a, b), fftconvolve(a, b, mode="full"))
