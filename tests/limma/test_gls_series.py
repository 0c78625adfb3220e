"""stacklm.limma.glsseries against limma 3.63.2's lmFit(..., block =, correlation =) (gls.series) +
eBayes on 1,500 genes of the shared paired counts study (tests/data/dupcor, make_reference.R):
the consensus correlation of each duplicateCorrelation case, and given correlations (0.5 with voom
weights and missing values; -0.05 with array weights, limma's fast path)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, dupcor_inputs, read_table

from stacklm.limma.dupcor import duplicate_correlation
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.fitstore import concat_fits
from stacklm.limma.ftest import moderated_f
from stacklm.limma.glsseries import block_correlation_matrix, gls_series

DATA = TEST_DATA / "dupcor"
F_COEFS = ["regionDesert", "regionMountain"]


def _scalars():
    return dict(line.split("\t") for line in (DATA / "scalars.tsv").read_text().splitlines())


def _inputs(case):
    M, W, design, block = dupcor_inputs(case)
    if "_aw" in case:
        W = read_table(DATA / "array_weights.tsv")["weight"].to_numpy()
    return M, W, design, block


CASES = {
    # name: (correlation, trend)
    "logcpm": ("consensus.logcpm", True),
    "voom": ("consensus.voom", False),
    "logcpm_na": ("consensus.logcpm_na", True),
    "voom_na": ("consensus.voom_na", False),
    "voom_na_rho0.5": (0.5, False),
    "logcpm_aw_rhoneg": (-0.05, True),
}


def _correlation(name):
    rho = CASES[name][0]
    return float(_scalars()[rho]) if isinstance(rho, str) else rho


def _moderated(fit, trend):
    """eBayes on the genes with an observation (limma stops on the all-missing gene's NaN Amean)."""
    keep = np.isfinite(fit.amean)
    rows = {
        k: getattr(fit, k)[keep]
        for k in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean", "feature_ids")
    }
    return e_bayes(fit.replace(**rows), trend=trend)


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name = request.param
    M, W, design, block = _inputs(name)
    fit = gls_series(M, design, block, _correlation(name), weights=W)
    return name, M, W, design, block, fit


def test_moderated_statistics(case):
    """t and p for every coefficient, eBayes' F over all coefficients, topTable's F over region:
    <= 1e-8 relative (measured: <= ~1e-10)."""
    name, M, W, design, block, fit = case
    ref = read_table(DATA / f"gls_{name}.tsv.gz", index_col=0)
    eb = _moderated(fit, CASES[name][1])
    idx = np.asarray([list(eb.feature_ids).index(f) for f in ref.index])
    np.testing.assert_array_equal(eb.df_residual[idx], ref["df.residual"].to_numpy())
    for j, k in enumerate(fit.coef_names):
        assert_matches(eb.t[idx, j], ref[f"t.{k}"].to_numpy(), f"{name} t.{k}", rtol=1e-8)
        assert_matches(
            eb.p_value[idx, j], ref[f"p.value.{k}"].to_numpy(), f"{name} p.{k}", rtol=1e-8
        )
    assert_matches(eb.F[idx], ref["F.all"].to_numpy(), f"{name} F.all", rtol=1e-8)
    assert_matches(eb.F_p_value[idx], ref["F.all.p.value"].to_numpy(), f"{name} F.all.p", rtol=1e-8)
    F, p = moderated_f(eb, F_COEFS)
    assert_matches(F[idx], ref["F"].to_numpy(), f"{name} F", rtol=1e-8)
    assert_matches(p[idx], ref["F.p.value"].to_numpy(), f"{name} F.p.value", rtol=1e-8)


def test_cov_coefficients(case):
    name, *_, fit = case
    cov = np.array([float(x) for x in _scalars()[f"cov.coefficients.{name}"].split(",")])
    assert_matches(
        fit.cov_coefficients, cov.reshape(5, 5, order="F"), f"{name} cov", rtol=1e-10, atol=1e-14
    )


def test_chunks_do_not_change_the_fit(case):
    name, M, W, design, block, fit = case
    rho = _correlation(name)
    bounds = [0, 3, 500, 1499, M.shape[0]]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        w = W[a:b] if W is not None and W.ndim == 2 else W
        parts.append(gls_series(M.iloc[a:b], design, block, rho, weights=w))
    whole = concat_fits(parts)
    for field in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        assert_matches(
            getattr(whole, field), getattr(fit, field), f"{name} {field}", rtol=1e-12, atol=1e-14
        )


def test_special_rows():
    """The all-missing gene is all NA with df 0; a coefficient not estimable on a gene's observed
    samples is NA (gene 4 lost every Mountain sample)."""
    M, W, design, block = _inputs("voom_na")
    fit = gls_series(M, design, block, 0.3, weights=W)
    assert (
        np.all(np.isnan(fit.coefficients[0])) and np.isnan(fit.sigma[0]) and fit.df_residual[0] == 0
    )
    assert np.isnan(fit.amean[0])
    j = fit.coef_names.index("regionMountain")
    assert np.isnan(fit.coefficients[3, j]) and np.isnan(fit.stdev_unscaled[3, j])
    assert np.all(np.isfinite(np.delete(fit.coefficients[3], j)))
    assert fit.extra["correlation"] == 0.3


def test_estimated_correlation_and_errors():
    M, W, design, block = _inputs("voom")
    rows = M.iloc[:200]
    direct = gls_series(rows, design, block, None, weights=W[:200])
    rho = duplicate_correlation(rows, design, block, weights=W[:200]).consensus
    given = gls_series(rows, design, block, rho, weights=W[:200])
    np.testing.assert_array_equal(direct.coefficients, given.coefficients)
    with pytest.raises(ValueError, match="degenerate"):
        gls_series(rows, design, block, 1.0)
    with pytest.raises(ValueError, match="positive"):
        gls_series(rows, design, np.repeat(["a", "b"], 12), -0.2)
    C = block_correlation_matrix(block, 0.4)
    assert C[0, 1] == 0.4 and C[0, 2] == 0.0 and np.all(np.diag(C) == 1.0)
