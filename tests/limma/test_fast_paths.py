"""The fast paths of lm_fit and e_bayes give the numbers of the plain methods they replace.

* the interpolated two-sided t tail (moderation._TwoSidedTTail) against R's pt
  (tests/data/t_tail, made by make_reference.R there) and against scipy's stats.t.sf;
* _t_sf2's grouping of rows by df, and tmixture.vector's candidate subset against a full sort;
* lm_fit's batched Gram path (sparse and dense, centred and with refinement) against one QR per
  missingness pattern (limma's per-gene method), and its blocked passes against other block sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_table
from scipy import stats

import stacklm.limma.lmfit as fitmod
import stacklm.rstats.distributions as modmod
from stacklm.limma.ebayes import _tmixture_vector, e_bayes
from stacklm.limma.fitstore import concat_fits
from stacklm.limma.lmfit import lm_fit
from stacklm.rstats.distributions import _t_sf2, _TwoSidedTTail


# --------------------------------------------------------------------------------------------
# t tails
# --------------------------------------------------------------------------------------------
def test_t_tail_table_matches_r():
    ref = read_table(TEST_DATA / "t_tail" / "t_tail.tsv")
    assert len(ref) == 401 * 12
    for nu, rows in ref.groupby("nu", sort=False):
        table = _TwoSidedTTail(float(nu))
        assert table.ok, (nu, table.max_error)
        ours = table(rows["t"].to_numpy())
        r_p = rows["p"].to_numpy()
        normal = r_p >= 1e-300  # below, R gives subnormal numbers where scipy's stdtr gives 0
        assert_matches(ours[normal], r_p[normal], f"2*pt(-t, {nu})", rtol=2e-12, atol=0.0)
        assert np.all(ours[~normal] < 1e-290)


@pytest.mark.parametrize("nu", [1.2, 2.5, 5.0, 13.7, 60.4, 412.9, 8e3, 1.1e6])
def test_t_tail_table_matches_scipy(nu):
    rng = np.random.default_rng(int(nu * 10))
    t = np.concatenate(
        [
            rng.standard_normal(60000) * 3,
            rng.uniform(0, 70, 20000),
            rng.standard_cauchy(5000),
            [0.0, np.nan, np.inf, -np.inf, 1e6],
        ]
    )
    ours = _t_sf2(t, nu)
    exact = 2 * stats.t.sf(np.abs(t), nu)
    assert_matches(ours, exact, f"nu={nu}", rtol=1e-12, atol=0.0)


def test_t_sf2_groups_rows_by_df():
    rng = np.random.default_rng(7)
    G, k = 30000, 3
    t = rng.standard_normal((G, k)) * 4
    t[5, 1] = np.nan
    df = np.choose(rng.integers(0, 3, G), [20.5, 21.5, 22.5])  # three large groups
    df[:40] = rng.uniform(3, 30, 40)  # small groups: stats.t.sf directly
    df[40:45] = np.inf  # the normal distribution
    ours = _t_sf2(t, df)
    exact = np.where(
        np.isinf(df)[:, None], 2 * stats.norm.sf(np.abs(t)), 2 * stats.t.sf(np.abs(t), df[:, None])
    )
    assert_matches(ours, exact, "grouped", rtol=1e-12, atol=0.0)
    # a scalar or constant df gives the same numbers
    assert_matches(_t_sf2(t, 21.5), _t_sf2(t, np.full(G, 21.5)), "const", rtol=0)


def _tmixture_full_sort(tstat, su, df, proportion, v0_lim):
    """tmixture.vector as limma writes it: convert every lower-df t, sort all of them."""
    keep = ~np.isnan(tstat)
    tstat, su, df = np.abs(tstat[keep]), su[keep], df[keep]
    ngenes = tstat.size
    ntarget = int(np.ceil(proportion / 2 * ngenes))
    p = max(ntarget / ngenes, proportion)
    max_df = df.max()
    lower = df < max_df
    tstat = tstat.copy()
    if lower.any():
        tstat[lower] = stats.t.isf(np.exp(stats.t.logsf(tstat[lower], df[lower])), max_df)
    o = np.argsort(-tstat, kind="stable")[:ntarget]
    tstat, v1 = tstat[o], su[o] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * stats.t.sf(tstat, max_df)
    ptarget = ((r - 0.5) / ngenes - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    qtarget = stats.t.isf(ptarget[pos] / 2, max_df)
    v0[pos] = v1[pos] * ((tstat[pos] / qtarget) ** 2 - 1)
    return float(np.mean(np.clip(v0, v0_lim[0], v0_lim[1])))


@pytest.mark.parametrize("unequal_df", [False, True])
def test_tmixture_candidates_give_the_full_sort(unequal_df):
    rng = np.random.default_rng(11)
    G = 50000
    tstat = rng.standard_normal(G) * np.where(rng.random(G) < 0.05, 4.0, 1.0)
    tstat[rng.integers(0, G, 300)] = 3.25  # ties at the top
    tstat[:10] = np.nan
    su = rng.uniform(0.1, 0.5, G)
    df = rng.choice([10.5, 11.5, 12.5], G) if unequal_df else np.full(G, 12.5)
    lim = (0.01, 50.0)
    p_value = _t_sf2(np.abs(tstat), df)
    fast = _tmixture_vector(tstat, su, df, 0.01, lim, p_value=p_value)
    assert fast == _tmixture_full_sort(tstat, su, df, 0.01, lim)


# --------------------------------------------------------------------------------------------
# lm_fit
# --------------------------------------------------------------------------------------------
def _design(n, rng, intercept=True):
    group = np.arange(n) % 3
    batch = rng.permutation(np.arange(n) % 4)
    age = rng.uniform(20, 70, n)
    cols = [group == 1, group == 2, batch == 1, batch == 2, batch == 3, age]
    if intercept:
        cols.insert(0, np.ones(n))
    else:
        cols.insert(0, group == 0)
    return np.column_stack(cols).astype(float)


def _matrix_with_gaps(X, G, rng):
    n = X.shape[0]
    Y = rng.normal(0, 1, (G, X.shape[1])) @ X.T + rng.normal(0, 0.5, (G, n))
    Y += rng.normal(500.0, 100.0, (G, 1))  # a high level: the Gram path must not lose digits to it
    Y[rng.random((G, n)) < 0.03] = np.nan
    Y[: G // 10][rng.random((G // 10, n)) < 0.3] = np.nan  # heavier missingness
    batch3 = X[:, 4] == 1
    Y[1, batch3] = np.nan  # a non-estimable coefficient: the exact QR path
    Y[2] = np.nan  # all missing
    Y[3, X.shape[1] :] = np.nan  # df 0
    return Y


def _assert_same_fit(a, b, rtol_coef, rtol=1e-12):
    assert_matches(a.coefficients, b.coefficients, "coefficients", rtol=rtol_coef)
    for name in ("stdev_unscaled", "sigma", "df_residual", "amean"):
        assert_matches(getattr(a, name), getattr(b, name), name, rtol=rtol)


@pytest.mark.parametrize("intercept", [True, False])
def test_gram_path_matches_one_qr_per_pattern(intercept, monkeypatch):
    rng = np.random.default_rng(3)
    X = _design(60, rng, intercept)
    Y = _matrix_with_gaps(X, 4000, rng)
    fast = lm_fit(Y, X)
    assert np.isnan(fast.coefficients[1, 4]) and np.isfinite(fast.coefficients[1, :4]).all()
    assert fast.df_residual[3] == 0 and np.isnan(fast.sigma[3])
    monkeypatch.setattr(fitmod, "GRAM_SPARSE_FRACTION", 0.0)  # dense Gram products
    dense = lm_fit(Y, X)
    monkeypatch.setattr(fitmod, "MIN_ROWS_FOR_PATTERN_QR", 1)  # every pattern its own QR
    exact = lm_fit(Y, X)
    _assert_same_fit(fast, exact, rtol_coef=1e-9)
    _assert_same_fit(dense, fast, rtol_coef=1e-9)


def test_blocked_passes_do_not_change_the_numbers(monkeypatch):
    rng = np.random.default_rng(5)
    X = _design(40, rng)
    Y = _matrix_with_gaps(X, 3000, rng)
    Y[1500:] = np.where(np.isnan(Y[1500:]), 1.0, Y[1500:])  # complete blocks too
    whole = lm_fit(Y, X)
    monkeypatch.setattr(fitmod, "BLOCK_VALUES", 1000)
    blocked = lm_fit(Y, X)
    _assert_same_fit(blocked, whole, rtol_coef=1e-12)
    parts = [lm_fit(Y[a : a + 700], X) for a in range(0, 3000, 700)]
    merged = concat_fits(parts)
    _assert_same_fit(merged, whole, rtol_coef=1e-12)


def test_e_bayes_with_missing_values_is_unchanged_by_the_t_table(monkeypatch, quiet):
    """Rows grouped by df: large groups use the interpolation table, the rest stats.t.sf."""
    rng = np.random.default_rng(9)
    X = _design(30, rng)
    Y = _matrix_with_gaps(X, 20000, rng)
    fit = lm_fit(Y, X)
    fast = e_bayes(fit)
    monkeypatch.setattr(modmod, "T_TABLE_MIN_SIZE", 10**12)
    exact = e_bayes(fit)
    assert_matches(fast.p_value, exact.p_value, "p_value", rtol=1e-12, atol=0.0)
    for name in ("t", "lods", "var_prior", "F", "F_p_value", "s2_post"):
        assert np.array_equal(getattr(fast, name), getattr(exact, name), equal_nan=True), name
