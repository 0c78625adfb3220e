"""eBayes / squeezeVar as limma 3.63.2 (fitFDistUnequalDF1 when residual df differ) and, with
``legacy=True``, as limma <= 3.60 (3.54.1), on bladderbatch with missing values.

References: tests/data/limma_current (limma 3.63.2, made by make_reference.R there) and, for the
legacy path, tests/data/limma_na (limma 3.54.1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, read_json, read_table

from stacklm.limma.contrasts import contrasts_fit
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.fitfdistunequaldf1 import fit_f_dist_unequal_df1
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.loessfit import choose_lowess_span
from stacklm.limma.squeezevar import squeeze_var
from stacklm.limma.weightedlowess import weighted_loess_fit, weighted_lowess
from stacklm.rstats.gamma import lgamma
from stacklm.statmod.logmdigamma import logmdigamma

DATA = TEST_DATA / "limma_current"
NA_354 = TEST_DATA / "limma_na"
VARIANTS = {
    "default": dict(trend=False, robust=False),
    "trend": dict(trend=True, robust=False),
    "robust": dict(trend=False, robust=True),
    "trend_robust": dict(trend=True, robust=True),
}


@pytest.fixture(scope="module")
def data():
    expr = read_table(DATA / "expression.tsv.gz", index_col=0)
    design = read_table(DATA / "design.tsv", index_col=0)
    return expr, design


@pytest.fixture(scope="module")
def fit(data):
    return lm_fit(*data)


def _columns(eb) -> dict[str, np.ndarray]:
    g = eb.sigma.shape
    out = {
        "s2.prior": np.broadcast_to(eb.s2_prior, g),
        "df.prior": np.broadcast_to(eb.df_prior, g),
        "s2.post": eb.s2_post,
        "df.total": eb.df_total,
        "F": eb.F,
        "F.p.value": eb.F_p_value,
    }
    for j, c in enumerate(eb.coef_names):
        out[f"t.{c}"] = eb.t[:, j]
        out[f"p.value.{c}"] = eb.p_value[:, j]
        out[f"lods.{c}"] = eb.lods[:, j]
    return out


# R's optimize stops at a tolerance of 1.2e-4 on its parabolic iterates, so the prior df it returns
# moves by ~1e-11 (relative) when a single evaluation of the likelihood differs from R's in its last
# bit, as it may with numpy's SIMD log1p/exp; measured here: df.prior <= 2e-11, every other column
# <= 1e-10 relative.  The lods (B-statistics) cross zero and inherit that as an absolute error
# (<= 1.4e-10 measured): they are compared with an absolute floor of 1e-9 instead of 1e-12.
LODS_ATOL = 1e-9


def _compare(eb, ref: pd.DataFrame, rows=slice(None)) -> int:
    ours = _columns(eb)
    assert list(np.asarray(eb.feature_ids)[rows]) == list(ref["feature_id"])
    compared = 0
    for col in ref.columns[1:]:
        atol = LODS_ATOL if col.startswith("lods.") else 1e-12
        assert_matches(np.asarray(ours[col])[rows], ref[col].to_numpy(), col, atol=atol)
        compared += 1
    return compared


def _compare_scalars(eb, meta):
    for key, name in (("s2.prior", "s2_prior"), ("df.prior", "df_prior")):
        if meta[key] is not None:
            assert np.ndim(getattr(eb, name)) == 0, key
            assert_matches(float(getattr(eb, name)), meta[key], key)
        else:
            assert np.ndim(getattr(eb, name)) == 1, key
    assert eb.coef_names == meta["coefficients"]
    expected = np.array([meta["var.prior"][c] for c in eb.coef_names])
    assert_matches(eb.var_prior, expected, "var.prior")


def test_residual_df_differ(data, fit):
    # the case limma >= 3.62 treats with fitFDistUnequalDF1, including the features observed in
    # only 3 and 7 samples (two estimable coefficients there: df 1 and 5)
    n_obs = data[0].notna().sum(axis=1).to_numpy()
    assert list(fit.df_residual[n_obs <= 7]) == [1, 5]
    assert len(np.unique(fit.df_residual)) == 8


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_current_ebayes_matches_limma_3_63_2(fit, variant, quiet):
    ref = read_table(DATA / f"ebayes_{variant}.tsv.gz")
    meta = read_json(DATA / f"ebayes_{variant}.json")
    eb = e_bayes(fit, **VARIANTS[variant])  # legacy=None: the current estimator, df differ
    assert _compare(eb, ref) == ref.shape[1] - 1 >= 14
    _compare_scalars(eb, meta)
    # legacy=False forces the same estimator
    eb_false = e_bayes(fit, **VARIANTS[variant], legacy=False)
    assert np.array_equal(eb_false.t, eb.t, equal_nan=True)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fit_f_dist_unequal_df1_matches_r(fit, variant, quiet):
    ref = read_table(DATA / f"ebayes_{variant}.tsv.gz")
    meta = read_json(DATA / f"ebayes_{variant}.json")["fitFDistUnequalDF1"]
    trend, robust = VARIANTS[variant]["trend"], VARIANTS[variant]["robust"]
    out = fit_f_dist_unequal_df1(
        fit.sigma**2, fit.df_residual, covariate=fit.amean if trend else None, robust=robust
    )
    assert_matches(out.df2, meta["df2"], "df2")
    if meta["scale"] is not None:
        assert np.ndim(out.scale) == 0
        assert_matches(out.scale, meta["scale"], "scale")
    assert_matches(np.broadcast_to(out.scale, fit.sigma.shape), ref["s2.prior"].to_numpy(), "scale")
    assert (out.df2_shrunk is not None) == meta["has.df2.shrunk"]
    if meta["has.df2.shrunk"]:
        assert_matches(out.df2_outlier, meta["df2.outlier"], "df2.outlier")
        assert_matches(out.df2_shrunk, ref["df.prior"].to_numpy(), "df2.shrunk")
        assert out.df2_shrunk.min() < out.df2  # some features are right outliers


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_legacy_true_matches_limma_legacy(fit, variant, quiet):
    ref = read_table(DATA / f"ebayes_{variant}_legacy.tsv.gz")
    meta = read_json(DATA / f"ebayes_{variant}_legacy.json")
    eb = e_bayes(fit, **VARIANTS[variant], legacy=True)
    assert _compare(eb, ref) == ref.shape[1] - 1
    _compare_scalars(eb, meta)
    current = e_bayes(fit, **VARIANTS[variant])
    assert np.max(np.abs(current.t - eb.t)[np.isfinite(eb.t)]) > 1e-6  # the estimators differ


@pytest.mark.parametrize("mode", ["default", "trend", "robust"])
def test_legacy_true_is_limma_3_54_1(mode, quiet):
    """legacy=True on tests/data/limma_na gives limma 3.54.1's numbers (its references)."""
    expr = read_table(NA_354 / "expression_na.tsv.gz", index_col=0)
    design = read_table(NA_354 / "design.tsv", index_col=0)
    ref = read_table(NA_354 / f"na_ebayes_{mode}.tsv.gz")
    if mode == "trend":
        expr = expr.iloc[1:]  # R's trend stops on the all-NA row; the reference drops it
    eb = e_bayes(lm_fit(expr, design), trend=mode == "trend", robust=mode == "robust", legacy=True)
    ours = _columns(eb)
    compared = 0
    for col in ref.columns:
        name = {"F.all": "F", "F.all.p.value": "F.p.value"}.get(col, col)
        if name in ours and col not in ("F", "F.p.value"):
            assert_matches(ours[name], ref[col].to_numpy(), col)
            compared += 1
    assert compared >= 3 * 7 + 4


def test_equal_df_keeps_todays_estimator(data, quiet):
    """Without missing values (equal df) legacy=None is the moment estimator, bit for bit."""
    expr, design = data
    complete = expr[expr.notna().all(axis=1)]
    f = lm_fit(complete, design)
    assert np.unique(f.df_residual).size == 1
    for kw in VARIANTS.values():
        a, b = e_bayes(f, **kw), e_bayes(f, **kw, legacy=True)
        for name in ("t", "p_value", "lods", "s2_post", "df_prior", "F"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


@pytest.mark.parametrize("trend", [False, True])
def test_legacy_false_on_equal_df_matches_limma(data, trend, quiet):
    """legacy=FALSE with equal df: fitFDistUnequalDF1 with equal weights (trend via lowess)."""
    expr, design = data
    stem = "complete_trend_nolegacy" if trend else "complete_nolegacy"
    ref = read_table(DATA / f"{stem}.tsv.gz")
    meta = read_json(DATA / f"{stem}.json")
    f = lm_fit(expr.loc[meta["features"]], design)
    eb = e_bayes(f, trend=trend, legacy=False)
    _compare(eb, ref)
    _compare_scalars(eb, meta)


def test_contrasts_with_missing_values_match_limma(fit, quiet):
    ref = read_table(DATA / "contrasts_na.tsv.gz")
    meta = read_json(DATA / "contrasts_na.json")
    contrasts = {
        "CancerVsNormal": "cancerCancer - cancerNormal",
        "B5vsB4": "batch5 - batch4",
        "Mixed": "(cancerCancer + cancerNormal) / 2 - 0.5 * batch2",
    }
    eb = e_bayes(contrasts_fit(fit, contrasts))
    assert _compare(eb, ref) == 3 * 3 + 4
    _compare_scalars(eb, meta)


@pytest.fixture(scope="module")
def special(data):
    expr, design = data
    rows = read_table(DATA / "special_rows.tsv", index_col=0)
    rows.columns = expr.columns
    return pd.concat([expr.iloc[:300], rows]), design


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_all_missing_and_zero_df_features(special, variant, quiet):
    y, design = special
    f = lm_fit(y, design)
    assert f.df_residual[300] == 0 and f.df_residual[301] == 0 and f.sigma[302] < 1e-12
    ref = read_table(DATA / f"special_{variant}.tsv.gz")
    meta = read_json(DATA / f"special_{variant}.json")
    eb = e_bayes(f, **VARIANTS[variant])
    if VARIANTS[variant]["trend"]:
        # R stops on the all-missing row's NaN Amean; its reference is made without that row.
        # stacklm sets the row aside: NaN prior and statistics, the other rows as R's.
        keep = np.arange(len(y)) != 300
        _compare(eb, ref, rows=keep)
        assert np.isnan(np.asarray(eb.s2_prior)[300]) and np.isnan(eb.t[300]).all()
        without = e_bayes(lm_fit(y.iloc[keep], design), **VARIANTS[variant])
        assert np.array_equal(without.t, eb.t[keep], equal_nan=True)
    else:
        _compare(eb, ref)
        _compare_scalars(eb, meta)
    # the df-0 feature gets the prior as its posterior variance
    assert_matches(eb.s2_post[301], np.broadcast_to(eb.s2_prior, f.sigma.shape)[301], "s2.post")


def test_squeeze_var_small_and_degenerate_inputs(quiet):
    # limma 3.63.2: fewer than three variances are returned unsqueezed, whatever legacy is None/False
    sq = squeeze_var(np.array([0.5, 2.0]), np.array([3.0, 5.0]))
    assert np.array_equal(sq.var_post, [0.5, 2.0]) and sq.df_prior == 0
    # legacy=True keeps limma 3.54.1's rule (only one variance is returned as it is)
    sq = squeeze_var(np.array([0.5, 2.0]), np.array([3.0, 5.0]), legacy=True)
    assert sq.df_prior != 0
    # fewer than two informative variances: no prior
    with pytest.raises(ValueError, match="Could not estimate prior df"):
        squeeze_var(np.array([0.5, np.nan, 0.0, 1.0]), np.array([3.0, 0.0, 4.0, 0.0]))
    out = fit_f_dist_unequal_df1(np.array([0.5, 0.0, 1.0]), np.array([3.0, 4.0, 0.0]))
    assert np.isnan(out.scale) and np.isnan(out.df2)


def test_fit_f_dist_unequal_df1_scalar_df_and_weights(fit, quiet):
    x = fit.sigma**2
    ok = fit.df_residual == 50
    a = fit_f_dist_unequal_df1(x[ok], 50.0)
    b = fit_f_dist_unequal_df1(x[ok], np.full(ok.sum(), 50.0))
    assert a.df2 == b.df2 and a.scale == b.scale
    # zero prior weights act as missing values
    w = np.ones(ok.sum())
    w[:10] = 0
    c = fit_f_dist_unequal_df1(x[ok], 50.0, prior_weights=w)
    xm = x[ok].copy()
    xm[:10] = np.nan
    d = fit_f_dist_unequal_df1(xm, 50.0)
    assert c.df2 == d.df2 and c.scale == d.scale
    with pytest.raises(ValueError):
        fit_f_dist_unequal_df1(x[ok], 50.0, prior_weights=-w)


def test_special_functions_match_r():
    ref = read_table(DATA / "special_functions.tsv")
    x = ref["x"].to_numpy()
    assert_matches(logmdigamma(x), ref["logmdigamma"].to_numpy(), "logmdigamma", rtol=1e-14)
    assert_matches(lgamma(x), ref["lgamma"].to_numpy(), "lgamma", rtol=1e-14)
    spans = [choose_lowess_span(v * 1000, small_n=500) for v in x]
    assert_matches(np.array(spans), ref["chooseLowessSpan"].to_numpy(), "span", rtol=1e-14)
    assert np.isnan(logmdigamma(np.array([0.0, -1.0, np.nan]))).all()


def test_weighted_lowess_matches_limma():
    ref = read_table(DATA / "weighted_lowess.tsv.gz")
    meta = read_json(DATA / "weighted_lowess.json")
    x, y, w = (ref[c].to_numpy() for c in ("x", "y", "w"))
    for it in (1, 4):
        out = weighted_lowess(x, y, w, span=meta["span"], iterations=it)
        assert_matches(out.delta, meta["delta"], "delta", rtol=1e-14)
        # numpy's pow may differ from the C library's in the last bit: 4 robustness iterations
        # amplify that to ~1e-12 where the fit crosses zero
        assert_matches(out.fitted, ref[f"fitted.iter{it}"].to_numpy(), f"fitted {it}", rtol=1e-10)
        assert_matches(out.weights, ref[f"robustness.iter{it}"].to_numpy(), f"rob {it}", rtol=1e-10)
        assert_matches(out.residuals, y - out.fitted, "residuals")
    n = meta["small.n"]
    small = weighted_lowess(x[:n], y[:n], w[:n], span=meta["small.span"], iterations=1)
    assert small.delta == 0
    assert_matches(small.fitted, ref["fitted.small"].to_numpy()[:n], "small", rtol=1e-10)
    lf = weighted_loess_fit(y, x, w, span=0.4, iterations=1, min_weight=1e-8, max_weight=1e2)
    assert_matches(lf, ref["loessfit"].to_numpy(), "loessFit", rtol=1e-10)
