"""lm_wfit against limma 3.63.2's lmFit with weights (lm.series -> lm.wfit per gene): observation
weights with zero and NA weights, missing values and rows made rank deficient, nearly singular or
with extreme weights; sample weights with and without missing values (tests/data/counts,
make_reference.R).  Both the batched Gram path and the vectorised dqrdc2 path are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.edger.cpm import log_cpm_voom
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.lmsolve import DesignQR
from stacklm.limma.weightedfit import _wfit_gram, _wfit_householder, lm_wfit
from stacklm.rstats.qr import estimable_columns

DATA = TEST_DATA / "counts"
RTOL = 1e-10
NAMES = ["Intercept", "treatmentafter", "regionDesert", "regionMountain", "sexM"]


@pytest.fixture(scope="module")
def inputs():
    """The R script's inputs, rebuilt: voom's E of the first 400 kept genes, deterministic weights,
    zero / NA weights and NA values at deterministic cells, special rows 101-111."""
    counts = read_table(DATA / "counts.tsv.gz", index_col=0).to_numpy(dtype=np.float64)
    design = read_table(DATA / "design.tsv", index_col=0)
    samples = read_table(DATA / "samples.tsv")
    keep = read_table(DATA / "filter_by_expr.tsv.gz", index_col=0)["design"].to_numpy(dtype=bool)
    nf = read_table(DATA / "norm_factors.tsv")["TMM"].to_numpy()
    kept = counts[keep]
    E0 = log_cpm_voom(kept, kept.sum(axis=0) * nf)[:400]
    E = E0.copy()
    G, n = E.shape
    i = np.arange(1, G + 1)[:, None]
    j = np.arange(1, n + 1)[None, :]
    W = (1 + (37 * i + 101 * j) % 97) / 16
    W[(7 * i + 3 * j) % 53 == 0] = 0
    W[(5 * i + 11 * j) % 61 == 0] = np.nan
    E[(13 * i + j) % 71 == 0] = np.nan
    reg = samples["region"].to_numpy()
    trt = samples["treatment"].to_numpy()
    sex = samples["sex"].to_numpy()
    W[100, reg == "Desert"] = 0
    W[101, reg == "Mountain"] = np.nan
    W[101, 0] = 0
    W[102, np.setdiff1d(np.arange(n), [0, 3, 7, 12, 21])] = 0
    W[103, np.setdiff1d(np.arange(n), [1, 8, 16])] = np.nan
    W[104] = 0
    W[105, trt == "before"] = 0
    W[106, sex == "M"] = np.nan
    W[107] = 8.0 ** ((np.arange(1, n + 1) * 7) % 13 - 6)
    W[108, reg != "Desert"] = 0
    W[108, (reg == "Desert") & (trt == "after")] = 1e-3
    E[109, reg != "Desert"] = np.nan
    W[110] = 1e-300 * W[110]
    na = read_table(DATA / "wfit_na_cells.tsv")
    expected = np.zeros((G, n), dtype=bool)
    expected[na["row"] - 1, na["col"] - 1] = True
    assert np.array_equal(np.isnan(E), expected)
    scalars = json.loads((DATA / "wfit_scalars.json").read_text())
    return E0, E, W, design, scalars


def _check(fit, name):
    ref = read_table(DATA / f"{name}.tsv.gz", index_col=0)
    assert_matches(fit.amean, ref["Amean"].to_numpy(), f"{name} Amean", rtol=1e-15)
    assert_matches(fit.df_residual, ref["df.residual"].to_numpy(), f"{name} df", rtol=0)
    assert_matches(fit.sigma, ref["sigma"].to_numpy(), f"{name} sigma", RTOL)
    for key, field in (("coefficients", "coefficients"), ("stdev.unscaled", "stdev_unscaled")):
        cols = ref[[f"{key}.{k}" for k in NAMES]].to_numpy()
        assert_matches(getattr(fit, field), cols, f"{name} {key}", RTOL)
    return ref


def test_observation_weights_match_limma(inputs):
    _, E, W, design, scalars = inputs
    fit = lm_wfit(E, design, W)
    assert fit.coef_names == NAMES
    ref = _check(fit, "wfit_observation")
    # the special rows do what they were built for
    nan_coef = ref[[f"coefficients.{k}" for k in NAMES]].isna().to_numpy()
    assert nan_coef[100].tolist() == [False, False, True, False, False]
    assert nan_coef[101, 3] and ref["df.residual"].iloc[101] == 11
    assert nan_coef[102, 3] and ref["df.residual"].iloc[102] == 1  # 5 samples, no Mountain
    assert ref["df.residual"].iloc[103] == 0 and np.isnan(fit.sigma[103])  # 3 samples, rank 3
    assert nan_coef[103, 3:].all() and not nan_coef[103, :3].any()
    assert nan_coef[104].all() and ref["df.residual"].iloc[104] == 0
    assert nan_coef[105, 1] and nan_coef[106, 4] and nan_coef[[108, 109]][:, [2, 3]].all()
    assert fit.sigma[110] < 1e-140  # weights of 1e-300 scale sigma, nothing else
    assert_matches(
        fit.cov_coefficients.ravel(), scalars["cov.observation"], "cov", rtol=1e-12, atol=1e-14
    )


def test_both_paths_match_limma(inputs):
    """Every row through the Gram path (where it accepts the row) and through the dqrdc2 port."""
    _, E, W, design, _ = inputs
    X = design.to_numpy()
    obs = ~np.isnan(E) & np.isfinite(W) & (W > 0)
    Wz = np.where(obs, W, 0.0)
    Yz = np.where(obs, E, 0.0)
    ref = read_table(DATA / "wfit_observation.tsv.gz", index_col=0)
    coef_ref = ref[[f"coefficients.{k}" for k in NAMES]].to_numpy()
    sd_ref = ref[[f"stdev.unscaled.{k}" for k in NAMES]].to_numpy()
    c, s, sg, d = _wfit_householder(Yz, Wz, X)
    assert_matches(c, coef_ref, "householder coef", RTOL)
    assert_matches(s, sd_ref, "householder stdev", RTOL)
    assert_matches(sg, ref["sigma"].to_numpy(), "householder sigma", RTOL)
    assert_matches(d, ref["df.residual"].to_numpy(), "householder df", rtol=0)
    c, s, sg, d, ok = _wfit_gram(Yz, Wz, DesignQR(X))
    assert ok.sum() >= 380  # ordinary rows take the batched path ...
    # ... rank-deficient rows not (row 107's extreme weights still give a well-conditioned G_i)
    assert not ok[[100, 101, 102, 103, 104, 105, 106, 108, 109]].any()
    assert_matches(c[ok], coef_ref[ok], "gram coef", RTOL)
    assert_matches(s[ok], sd_ref[ok], "gram stdev", RTOL)
    assert_matches(sg[ok], ref["sigma"].to_numpy()[ok], "gram sigma", RTOL)
    # the rank decisions are lm.fit's (estimable_columns on sqrt(w) X of the observed samples)
    for r in range(E.shape[0]):
        o = obs[r]
        if o.any():
            est = estimable_columns(np.sqrt(W[r, o])[:, None] * X[o])
            assert np.array_equal(~np.isnan(coef_ref[r]), est) or o.sum() < X.shape[1]


def test_sample_weights_match_limma(inputs):
    E0, E, _, design, scalars = inputs
    sw = ((np.arange(1, 25)) % 5 + 1) / 3
    fit = lm_wfit(E0, design, sw)  # one lm.wfit for all genes: weighted cov.coefficients
    _check(fit, "wfit_sample")
    assert_matches(fit.cov_coefficients.ravel(), scalars["cov.sample"], "cov", rtol=1e-12)
    fit = lm_wfit(E, design, sw)  # missing values: the per-gene loop, unweighted cov
    _check(fit, "wfit_sample_na")
    assert_matches(
        fit.cov_coefficients.ravel(), scalars["cov.sample_na"], "cov na", rtol=1e-12, atol=1e-14
    )
    fit = lm_wfit(E0, design, np.array(scalars["sample.weights.zero"]))  # zero weights drop samples
    _check(fit, "wfit_sample_zero")
    # a 1 x n matrix is sample weights too, and unit weights give lm_fit's numbers
    fit = lm_wfit(E0, design, sw[None, :])
    _check(fit, "wfit_sample")
    ones = lm_wfit(E, design, np.ones_like(E))
    plain = lm_fit(E, design)
    assert_matches(ones.coefficients, plain.coefficients, "unit weights", rtol=1e-10)
    assert_matches(ones.stdev_unscaled, plain.stdev_unscaled, "unit weights sd", rtol=1e-12)


def test_bad_inputs(inputs):
    _, E, W, design, _ = inputs
    with pytest.raises(ValueError, match="weights of shape"):
        lm_wfit(E, design, W[:, :5])
    bad = design.to_numpy().copy()
    bad[:, 4] = bad[:, 2] + bad[:, 3]
    with pytest.raises(ValueError, match="full column rank"):
        lm_wfit(E, bad, W)
    Einf = E.copy()
    Einf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        lm_wfit(Einf, design, W)
