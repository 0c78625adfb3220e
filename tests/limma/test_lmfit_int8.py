"""lm_fit on rows with missing values without a loop over rows or patterns (lmfit._fit_rows_sparse:
batched normal equations in the full design's orthonormal basis, sparse Gram downdates) and on
int8 allele counts, against

- R 4.2.2 limma 3.54.1 ``lmFit`` (per-row ``lm.fit`` on the called samples) on 300 simulated SNPs x
  400 samples with 0.5% missing calls, 10 rows with 40% missing, a non-estimable column, df 2 and 0,
  an all-missing and a constant row (tests/data/lmfit_int8, its make_reference.R);
- one QR per missingness pattern (limma's per-row method, MIN_ROWS_FOR_PATTERN_QR = 1) and a long
  double least-squares solve on genotype-like and expression-like rows.

Measured vs R: coefficients within 2.3e-12 of their standard error (<= 2.6e-11 relative, at the
smallest ones; R's own QR rounding), stdev.unscaled 3.7e-14, sigma 2.3e-14 (the constant row: 0
here, 1e-16 in R), Amean exact; int8 and float64 inputs give bit-identical fits.  Against long
double the sparse path's coefficients are within 1e-13 of their standard error, those of the
per-pattern QR of the uncentred rows (lm.fit's method) within 1e-11.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, max_rel_diff, read_table

import stacklm.limma.lmfit as fitmod
from stacklm.limma.lmfit import lm_fit

REF = TEST_DATA / "lmfit_int8"


@pytest.fixture(scope="module")
def reference():
    geno = read_table(REF / "genotypes.tsv.gz", index_col=0)
    design = read_table(REF / "design.tsv", index_col=0)
    fit = read_table(REF / "lmfit.tsv.gz", index_col=0)
    values = geno.to_numpy(dtype=np.float64)
    counts = np.where(np.isnan(values), -127, values).astype(np.int8)
    return values, counts, design, fit


def _count_sparse_rows(monkeypatch):
    seen = {"rows": 0, "solved": 0}
    inner = fitmod._fit_rows_sparse

    def counting(*args, **kwargs):
        out = inner(*args, **kwargs)
        seen["rows"] += out[-1].size
        seen["solved"] += int(out[-1].sum())
        return out

    monkeypatch.setattr(fitmod, "_fit_rows_sparse", counting)
    return seen


@pytest.mark.parametrize("kind", ["int8", "float"])
def test_lm_fit_matches_limma_lmfit(reference, kind, monkeypatch, quiet):
    values, counts, design, ref = reference
    seen = _count_sparse_rows(monkeypatch)
    fit = lm_fit(counts if kind == "int8" else values, design)
    # all rows but the complete ones (~40), the all-missing one and those with few calls or 40%
    # missing, i.e. 250 of 300, go through the sparse path
    assert seen["solved"] >= 240
    names = list(design.columns)
    assert fit.coef_names == names
    coef = ref[[f"coef_{c}" for c in names]].to_numpy()
    stdev = ref[[f"stdev_{c}" for c in names]].to_numpy()
    assert_matches(fit.coefficients, coef, "coefficients", rtol=1e-10)
    assert_matches(fit.stdev_unscaled, stdev, "stdev_unscaled", rtol=1e-12)
    assert_matches(fit.sigma, ref["sigma"], "sigma", rtol=1e-12)
    assert_matches(fit.amean, ref["amean"], "amean", rtol=1e-14)
    np.testing.assert_array_equal(fit.df_residual, ref["df_residual"])
    fitted = np.isfinite(ref["sigma"]).to_numpy() & (ref["sigma"] > 1e-10).to_numpy()
    se = stdev[fitted] * ref["sigma"].to_numpy()[fitted, None]
    assert np.nanmax(np.abs(fit.coefficients[fitted] - coef[fitted]) / se) <= 1e-10
    # the special rows: sexM not estimable (11), df 0 (13, sigma NaN), no call (14), constant (15)
    assert (
        np.isnan(fit.coefficients[10, 2]) and np.isfinite(np.delete(fit.coefficients[10], 2)).all()
    )
    assert fit.df_residual[12] == 0 and np.isnan(fit.sigma[12])
    assert np.isnan(fit.coefficients[13]).all() and fit.df_residual[13] == 0
    assert fit.sigma[14] == pytest.approx(0.0, abs=1e-14)


def test_int8_and_float_inputs_give_the_same_fit(reference):
    values, counts, design, _ = reference
    a, b = lm_fit(counts, design), lm_fit(values, design)
    for name in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        assert max_rel_diff(getattr(a, name), getattr(b, name), atol=0.0) <= 1e-15, name


def _genotype_rows(rng, G, n):
    """Allele counts with 0.5% missing calls (each row its own pattern), the counted allele from
    rare to the major one; a design with an intercept, a trait, sex and 4 covariates."""
    X = np.column_stack(
        [np.ones(n), rng.standard_normal(n), rng.random(n) < 0.5, rng.standard_normal((n, 4))]
    ).astype(float)
    q = rng.uniform(0.005, 0.995, (G, 1))
    u = rng.random((G, n))
    g = ((u < q * q).astype(np.int8) + (u < q * q + 2 * q * (1 - q))).astype(np.int8)
    g[rng.random(g.shape) < 0.005] = -127
    return g, X


def _long_double_fit(y, X):
    """Coefficients and sigma of one row by centred normal equations in long double with
    iterative refinement (a reference more accurate than any double-precision QR)."""
    o = ~np.isnan(y)
    Xo, yo = X[o].astype(np.longdouble), y[o].astype(np.longdouble)
    xm, ym = Xo[:, 1:].mean(axis=0), yo.mean()
    Xc, yc = Xo[:, 1:] - xm, yo - ym
    A, rhs = Xc.T @ Xc, Xc.T @ yc
    sol = np.linalg.solve(A.astype(float), rhs.astype(float)).astype(np.longdouble)
    for _ in range(3):
        sol += np.linalg.solve(A.astype(float), (rhs - A @ sol).astype(float))
    resid = yc - Xc @ sol
    coef = np.concatenate([[ym - xm @ sol], sol]).astype(float)
    return coef, float(np.sqrt(resid @ resid / (o.sum() - X.shape[1])))


def test_sparse_path_against_per_pattern_qr_and_long_double(monkeypatch):
    rng = np.random.default_rng(18)
    g, X = _genotype_rows(rng, 3000, 1500)
    seen = _count_sparse_rows(monkeypatch)
    fast = lm_fit(g, X)
    assert seen["rows"] == seen["solved"] >= 2990  # every row but the complete ones: sparse path
    monkeypatch.setattr(fitmod, "MIN_ROWS_FOR_PATTERN_QR", 1)  # every pattern its own QR
    exact = lm_fit(g, X)
    se = exact.stdev_unscaled * exact.sigma[:, None]
    assert np.nanmax(np.abs(fast.coefficients - exact.coefficients) / se) <= 1e-10
    for name in ("stdev_unscaled", "sigma", "df_residual", "amean"):
        assert_matches(getattr(fast, name), getattr(exact, name), name, rtol=1e-12)
    # both against long double on 40 rows (the 20 with the most extreme allele frequencies)
    y = np.where(g == -127, np.nan, g.astype(float))
    freq = np.nanmean(y, axis=1) / 2
    rows = list(np.argsort(np.abs(freq - 0.5))[-20:]) + list(range(20))
    for r in rows:  # loop over 40 reference rows (the reference solve itself)
        coef, sigma = _long_double_fit(y[r], X)
        se_r = fast.stdev_unscaled[r] * sigma
        assert np.max(np.abs(fast.coefficients[r] - coef) / se_r) <= 1e-12
        assert np.max(np.abs(exact.coefficients[r] - coef) / se_r) <= 1e-10
        assert fast.sigma[r] == pytest.approx(sigma, rel=1e-13)


def test_rows_the_sparse_path_cannot_vouch_for_go_to_the_exact_paths(monkeypatch):
    """Near-exact fits (y'y > RSS_MAX_RATIO * rss after centring), heavy missingness and an
    aliased column among the observed samples: explicit Gram and per-pattern QR paths.  A level
    far above the spread stays on the sparse path (it centres each row first)."""
    rng = np.random.default_rng(4)
    n = 80
    X = np.column_stack([np.ones(n), rng.standard_normal(n), np.arange(n) % 2]).astype(float)
    Y = rng.normal(0, 1, (600, n))
    Y[:200] += 1e3 * X[:, 1]  # R^2 = 1 - 1e-6: the normal equations' rss would lose 6 digits
    Y[300:] += 1e4  # a level 1e4 times the spread
    Y[rng.random(Y.shape) < 0.02] = np.nan
    Y[200:250, : n // 2] = np.nan  # 50% missing
    Y[250, X[:, 2] == 1] = np.nan  # the third column is 0 on the observed samples
    seen = _count_sparse_rows(monkeypatch)
    fast = lm_fit(Y, X)
    assert 250 <= seen["solved"] <= 600 - 251  # (rows without a missing value: the QR of X)
    monkeypatch.setattr(fitmod, "MIN_ROWS_FOR_PATTERN_QR", 1)
    exact = lm_fit(Y, X)
    assert np.isnan(fast.coefficients[250, 2]) and np.isfinite(fast.coefficients[250, :2]).all()
    se = exact.stdev_unscaled * exact.sigma[:, None]
    assert np.nanmax(np.abs(fast.coefficients - exact.coefficients) / se) <= 1e-9
    for name in ("stdev_unscaled", "sigma", "df_residual", "amean"):
        assert_matches(getattr(fast, name), getattr(exact, name), name, rtol=1e-11)


def test_frequent_patterns_get_their_own_qr(monkeypatch):
    """Rows sharing a missingness pattern in one block (here: sample 0 missing everywhere) are
    fitted by one QR of that pattern, as limma; the hash grouping finds them."""
    rng = np.random.default_rng(6)
    g, X = _genotype_rows(rng, 1000, 300)
    g[:, 0] = -127
    g[:400, 5] = -127  # rows missing only {0, 5} (~90) and only {0} (~130)
    monkeypatch.setattr(fitmod, "MIN_ROWS_FOR_PATTERN_QR", 50)
    calls = []
    inner = fitmod._fit_pattern_qr
    monkeypatch.setattr(
        fitmod, "_fit_pattern_qr", lambda Yo, Xo, p: calls.append(len(Yo)) or inner(Yo, Xo, p)
    )
    fast = lm_fit(g, X)
    assert len(calls) == 2 and min(calls) >= 50  # the rows of the two frequent patterns
    monkeypatch.setattr(fitmod, "MIN_ROWS_FOR_PATTERN_QR", 10**9)
    sparse = lm_fit(g, X)
    se = sparse.stdev_unscaled * sparse.sigma[:, None]
    assert np.nanmax(np.abs(fast.coefficients - sparse.coefficients) / se) <= 1e-10
    assert_matches(fast.sigma, sparse.sigma, "sigma", rtol=1e-12)
