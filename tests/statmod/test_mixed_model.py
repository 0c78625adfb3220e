"""stacklm.statmod against R statmod 1.5.0: glmgam.fit (iterates, iteration counts, deviance) and
mixedModel2Fit's variance components, on the references of tests/data/dupcor (make_reference.R)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, dupcor_inputs, read_table

from stacklm.rstats.qr import batched_qr
from stacklm.statmod.glmgam import CONVERGED, MAXIT, glmgam_fit
from stacklm.statmod.mixedmodel import MAXIT as MM_MAXIT
from stacklm.statmod.mixedmodel import mixed_model2_fit

DATA = TEST_DATA / "dupcor"


def test_glmgam_fit_matches_r():
    ref = read_table(DATA / "glmgam.tsv.gz")
    X = read_table(DATA / "glmgam_design.tsv").to_numpy()
    y = ref[[f"y{i}" for i in range(1, X.shape[0] + 1)]].to_numpy()
    start = ref[["start1", "start2", "start3"]].to_numpy()
    coef_r = ref[["coef1", "coef2", "coef3"]].to_numpy()
    # fits with the same tol and maxit run as one batch
    for (tol, maxit), group in ref.groupby(["tol", "maxit"]):
        rows = group.index.to_numpy()
        fit = glmgam_fit(X, y[rows], start[rows], tol=tol, maxit=int(maxit))
        np.testing.assert_array_equal(fit.iter, group["iter"].to_numpy())
        assert_matches(
            fit.coefficients, coef_r[rows], f"coefficients tol={tol} maxit={maxit}", rtol=1e-10
        )
        dev_r = group["deviance"].to_numpy()
        np.testing.assert_array_equal(np.isinf(fit.deviance), np.isinf(dev_r))
        finite = np.isfinite(dev_r)
        assert_matches(fit.deviance[finite], dev_r[finite], "deviance", rtol=1e-10)
        # within maxit the fit converged; at maxit + 1 it may have converged on its last step
        within = group["iter"].to_numpy() <= maxit
        assert np.all(fit.status[within] == CONVERGED)
        assert np.all(np.isin(fit.status[~within], [CONVERGED, MAXIT]))
        if tol == 1e-10 and maxit == 3:
            assert np.any(fit.status == MAXIT)
    # the fit with zeros in y has an infinite deviance in R too
    assert np.isinf(ref["deviance"].iloc[-1])


def test_glmgam_count_groups_components():
    """A component with count c and response ybar gives the fit of c components averaging ybar."""
    X = read_table(DATA / "glmgam_design.tsv").to_numpy()
    ref = read_table(DATA / "glmgam.tsv.gz")
    y = ref[[f"y{i}" for i in range(1, X.shape[0] + 1)]].to_numpy()[:10]
    start = ref[["start1", "start2", "start3"]].to_numpy()[:10]
    Xd = np.vstack([X, np.repeat(X[:1], 3, axis=0)])  # three extra copies of the first row
    yd = np.hstack([y, y[:, :1] * np.array([0.5, 1.0, 1.5])])
    full = glmgam_fit(Xd, yd, start)
    Xg = np.vstack([X, X[:1]])
    yg = np.hstack([y, y[:, :1]])
    grouped = glmgam_fit(Xg, yg, start, count=np.r_[np.ones(X.shape[0]), 3.0])
    np.testing.assert_array_equal(full.iter, grouped.iter)
    assert_matches(grouped.coefficients, full.coefficients, "grouped", rtol=1e-12)


def _dupcor_inputs(case):
    M, W, design, block = dupcor_inputs(case)
    return M.to_numpy(), W, design.to_numpy(), block


@pytest.mark.parametrize(
    "case", ["logcpm", "voom", "logcpm_na", "voom_na", "unbalanced_logcpm", "unbalanced_voom"]
)
def test_mixed_model2_fit_varcomp_matches_r(case):
    """mixedModel2Fit(y[o], X[o, ], Z, w[o], only.varcomp = TRUE, maxit = 20) of every gene that
    duplicateCorrelation fits: both variance components and glmgam's iteration count (the
    unbalanced cases: blocks of 1 to 4 samples, up to 21 iterations)."""
    M, W, X, block = _dupcor_inputs(case.replace("unbalanced_", ""))
    ref = read_table(DATA / f"dupcor_{case}.tsv.gz", index_col=0)
    if case.startswith("unbalanced"):
        block = read_table(DATA / "unbalanced_block.tsv")["block"].to_numpy()
        M = M[: len(ref)]
        W = None if W is None else W[: len(ref)]
    fitted = ref["iter"].notna().to_numpy()
    if W is not None:
        W = np.where(W > 0, W, np.nan)
        M = np.where(np.isfinite(W), M, np.nan)
    obs = np.isfinite(M)
    Z = (block[:, None] == np.unique(block)[None, :]).astype(float)
    rows = np.flatnonzero(fitted)
    w = None if W is None else np.where(obs[rows], W[rows], 1.0)
    fit = mixed_model2_fit(M[rows], X, Z, w=w, observed=obs[rows], maxit=20)
    vr = ref[["varcomp.Residual", "varcomp.Block"]].to_numpy()[rows]
    # components near 0 (the block variance of genes without a donor effect) are compared on the
    # scale of the residual variance
    scale = np.abs(vr).max(axis=1, keepdims=True)
    diff = np.abs(fit.varcomp - vr) / scale
    assert diff.max() <= 1e-9, (
        f"{case}: max difference {diff.max():.3g} relative to the larger component"
    )
    np.testing.assert_array_equal(fit.iter, ref["iter"].to_numpy()[rows].astype(int))
    at_maxit = ref["iter"].to_numpy()[rows] > 20
    assert np.all(~(fit.status == MM_MAXIT) | at_maxit)
    if "crit" in ref:  # R stopped at maxit without reaching crossprod(dl, dbeta) < 1e-6
        expected = at_maxit & ~(ref["crit"].to_numpy()[rows] < 1e-6)
        np.testing.assert_array_equal(fit.status == MM_MAXIT, expected)


def test_mixed_model2_fit_paths_agree():
    """Rows fitted one by one with their own weights (the batched path) agree with the shared
    transform when the weights are all 1, and a weight-free missing pattern with its subset."""
    M, _, X, block = _dupcor_inputs("logcpm")
    Z = (block[:, None] == np.unique(block)[None, :]).astype(float)
    y = M[:300]
    shared = mixed_model2_fit(y, X, Z)
    batched = mixed_model2_fit(y, X, Z, w=np.ones_like(y))
    assert_matches(batched.varcomp, shared.varcomp, "weights 1", rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(batched.iter, shared.iter)
    obs = np.ones(y.shape, dtype=bool)
    obs[:, [0, 5]] = False
    masked = mixed_model2_fit(y, X, Z, observed=obs)
    keep = np.ones(y.shape[1], dtype=bool)
    keep[[0, 5]] = False
    subset = mixed_model2_fit(y[:, keep], X[keep], Z[keep][:, Z[keep].sum(axis=0) > 0])
    assert_matches(masked.varcomp, subset.varcomp, "observed mask", rtol=1e-10, atol=1e-13)


def test_batched_qr_rank_rule():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 10, 3))
    A[1, :, 2] = A[1, :, 0] + A[1, :, 1]  # aliased third column
    A[2, :, 0] = 0.0  # zero first column
    Q, R, keep = batched_qr(A)
    np.testing.assert_array_equal(keep, [[1, 1, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1]])
    for i in range(4):
        k = keep[i]
        np.testing.assert_allclose(Q[i][:, k].T @ Q[i][:, k], np.eye(k.sum()), atol=1e-14)
        np.testing.assert_allclose(Q[i][:, k] @ R[i][np.ix_(k, k)], A[i][:, k], atol=1e-13)
