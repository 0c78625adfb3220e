"""stacklm.limma.dupcor against limma 3.63.2's duplicateCorrelation (statmod 1.5.0) on 1,500 genes of
the shared paired counts study (tests/data/dupcor, make_reference.R): log-CPM, voom E with the voom
weights of the block recipe, both with 3% missing values (and zero weights), and ndups = 2."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, dupcor_inputs, read_table

from stacklm.limma.dupcor import (
    consensus_correlation,
    duplicate_correlation,
    duplicate_correlation_rows,
)
from stacklm.rstats.sums import r_mean

DATA = TEST_DATA / "dupcor"
CASES = ["logcpm", "voom", "logcpm_na", "voom_na"]


def _scalars():
    out = {}
    for line in (DATA / "scalars.tsv").read_text().splitlines():
        key, value = line.split("\t")
        out[key] = value
    return out


def _inputs(case):
    M, W, design, block = dupcor_inputs(case)
    return M.to_numpy(), W, design, block


@pytest.fixture(scope="module", params=CASES)
def case(request):
    name = request.param
    M, W, design, block = _inputs(name)
    result = duplicate_correlation(M, design, block, weights=W)
    ref = read_table(DATA / f"dupcor_{name}.tsv.gz", index_col=0)
    return name, M, W, design, block, result, ref


def test_consensus(case):
    name, *_, result, _ref = case
    expected = float(_scalars()[f"consensus.{name}"])
    assert abs(result.consensus - expected) <= 1e-8 * abs(expected)
    # in practice the difference is a few ulp
    assert abs(result.consensus - expected) <= 1e-14


def test_atanh_correlations(case):
    """Per gene: <= 1e-6 relative everywhere (R's tolerance); <= 1e-8 where glmgam.fit converged
    within maxit = 20 (R's crossprod(dl, dbeta) < 1e-6) -- the measured agreement is ~1e-11 for all
    genes, including the ones that stopped at maxit (the iterates are R's).  Atanh values near 0 are
    compared on an absolute floor of 1e-12."""
    name, *_, result, ref = case
    r = ref["atanh.correlations"].to_numpy()
    ours = result.atanh_correlations
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(r))
    assert_matches(ours, r, f"{name} atanh, all genes", rtol=1e-6)
    converged = (ref["iter"] <= 20).to_numpy() & ref["crit"].lt(1e-6).to_numpy()
    assert_matches(ours[converged], r[converged], f"{name} atanh, converged genes", rtol=1e-8)
    assert_matches(ours, r, f"{name} atanh, all genes (measured)", rtol=1e-10)


def test_iterations_and_convergence(case):
    name, *_, result, ref = case
    fitted = ref["iter"].notna().to_numpy()
    np.testing.assert_array_equal(result.rows.iterations[fitted], ref["iter"][fitted].astype(int))
    # not converged: glmgam.fit stopped at maxit = 20 without crossprod(dl, dbeta) < 1e-6, or damped
    n_maxit = int(((ref["iter"] > 20) & ~ref["crit"].lt(1e-6)).sum())
    n_damped = int((ref["damped"] == 1).sum())
    assert result.n_not_converged == n_maxit + n_damped
    assert result.n_na == int(ref["atanh.correlations"].isna().sum())
    if name == "logcpm_na":
        assert result.n_not_converged == 1  # one gene stops at maxit in R too


def test_chunks_do_not_change_results(case):
    """Pass 1 in chunks, consensus over the chunks: the same numbers (<= 1e-12)."""
    name, M, W, design, block, result, _ref = case
    bounds = [0, 7, 400, 401, 1100, M.shape[0]]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        w = None if W is None else W[a:b]
        parts.append(duplicate_correlation_rows(M[a:b], design, block, weights=w))
    atanh = np.concatenate([p.atanh_correlations for p in parts])
    assert_matches(atanh, result.atanh_correlations, f"{name} chunks", rtol=1e-12, atol=1e-14)
    assert abs(consensus_correlation(atanh) - result.consensus) <= 1e-12
    assert sum(p.n_not_converged for p in parts) == result.n_not_converged


@pytest.mark.parametrize("name", ["logcpm", "voom"])
def test_unbalanced_blocks(name):
    """Blocks of 1 to 4 samples crossing the donors (300 genes): many distinct d_j, up to 21
    iterations, 30 genes at maxit in R; iteration counts and correlations as R's."""
    M, W, design, _ = _inputs(name)
    block = read_table(DATA / "unbalanced_block.tsv")["block"].to_numpy()
    ref = read_table(DATA / f"dupcor_unbalanced_{name}.tsv.gz", index_col=0)
    result = duplicate_correlation(M[:300], design, block, weights=None if W is None else W[:300])
    r = ref["atanh.correlations"].to_numpy()
    assert_matches(result.atanh_correlations, r, f"unbalanced {name}", rtol=1e-10)
    np.testing.assert_array_equal(result.rows.iterations, ref["iter"].astype(int))
    assert 0 < result.n_not_converged <= int((ref["iter"] > 20).sum())
    expected = float(_scalars()[f"consensus.unbalanced_{name}"])
    assert abs(result.consensus - expected) <= 1e-8 * abs(expected)


def test_ndups():
    M, _, design, _ = _inputs("logcpm")
    ref = read_table(DATA / "dupcor_ndups2.tsv.gz")
    result = duplicate_correlation(M[:600], design, ndups=2)
    assert_matches(
        result.atanh_correlations, ref["atanh.correlations"].to_numpy(), "ndups=2", rtol=1e-10
    )
    expected = float(_scalars()["consensus.ndups2"])
    assert abs(result.consensus - expected) <= 1e-8 * abs(expected)


def test_correlation_zero_cases():
    M, _, design, block = _inputs("logcpm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        singles = duplicate_correlation(M[:20], design, np.arange(M.shape[1]))
        encoded = duplicate_correlation(
            M[:20],
            np.column_stack([design.to_numpy(), block == block[0]]),
            np.where(block == block[0], 1, 2),
        )
    assert singles.consensus == 0 and np.all(singles.atanh_correlations == 0)
    assert encoded.consensus == 0 and np.all(encoded.atanh_correlations == 0)
    messages = " ".join(str(w.message) for w in caught)
    assert "Blocks all of size 1" in messages and "already encoded" in messages


def test_r_mean_trim():
    # R: mean(c(5, 1, 9, NA, 3, 7, 100, -50), trim = 0.15, na.rm = TRUE) = 5 (one value off each end
    # of 7); mean(x, trim = 0.5) is the median
    x = np.array([5, 1, 9, np.nan, 3, 7, 100, -50])
    assert r_mean(x, 0.15, na_rm=True) == pytest.approx(5.0, rel=1e-15)
    assert r_mean(x, 0.6, na_rm=True) == 5.0
    assert np.isnan(r_mean(x, 0.15))
    assert r_mean(np.array([0.1] * 10)) == 0.1
