"""calcNormFactors' sample-block vectorisation: the factors do not depend on how the samples are
cut into blocks (copy blocks and compute steps, one sample to all), and still match edgeR 3.40.2;
the pieces it is built from (row-wise tie-checked log2, rank windows by selection, the log-ratio
windows ranked by the C library's log2, stable-order windows) agree with the one-vector
computations they replace (scipy's rankdata, numpy's lexsort) on data with many ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_table
from scipy.stats import rankdata

from stacklm.edger import calcnormfactors as cnf
from stacklm.edger._rmath import log2_libm, log2_libm_rows

DATA = TEST_DATA / "counts"
RTOL = 1e-12

#: (SAMPLE_BLOCK_VALUES, COMPUTE_VALUES): one sample at a time, blocks of 5 samples computed 3 at
#: a time (24 samples: blocks 5, 5, 5, 5, 4 in steps 3, 2), one block for all
BLOCKINGS = [(1, 1), (5 * 2000, 3 * 2000), (1 << 30, 1 << 30)]


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0).to_numpy(dtype=np.float64)
    keep = read_table(DATA / "filter_by_expr.tsv.gz", index_col=0)["design"].to_numpy(dtype=bool)
    nf = read_table(DATA / "norm_factors.tsv")
    return counts, keep, nf


CASES = {
    "TMM": ("kept", {}),
    "TMMwsp": ("kept", {"method": "TMMwsp"}),
    "upperquartile": ("kept", {"method": "upperquartile"}),
    "TMM_unfiltered": ("all", {}),
    "TMMwsp_unfiltered": ("all", {"method": "TMMwsp"}),
    "TMM_noweight": ("kept", {"do_weighting": False}),
    "TMMwsp_noweight": ("all", {"method": "TMMwsp", "do_weighting": False}),
    "TMM_trim": ("all", {"logratio_trim": 0.2, "sum_trim": 0.1, "a_cutoff": -20}),
    "uq_p90": ("all", {"method": "upperquartile", "p": 0.9}),
}


def test_blocks_of_samples_give_the_same_factors(data, monkeypatch):
    counts, keep, nf = data
    assert counts.shape[1] == 24
    results = []
    for block, step in BLOCKINGS:
        monkeypatch.setattr(cnf, "SAMPLE_BLOCK_VALUES", block)
        monkeypatch.setattr(cnf, "COMPUTE_VALUES", step)
        ours = {}
        for name, (rows, kw) in CASES.items():
            x = counts[keep] if rows == "kept" else counts
            ours[name] = cnf.calc_norm_factors(x, **kw)
            assert_matches(ours[name], nf[name].to_numpy(), f"{name} {block}/{step}", rtol=RTOL)
        results.append(ours)
    for other in results[1:]:
        for name in CASES:
            assert np.array_equal(other[name], results[0][name]), name


def tie_heavy_counts(rng, genes: int, samples: int) -> np.ndarray:
    """Small negative-binomial-like counts: most log ratios are tied with many others."""
    mu = rng.uniform(0.5, 8.0) * np.exp(rng.normal(0, 1.2, genes))[:, None]
    mu = mu * rng.uniform(0.5, 2.0, samples)[None, :]
    return rng.poisson(rng.gamma(4.0, mu / 4.0)).astype(np.float64)


@pytest.mark.parametrize("method", ["TMM", "TMMwsp", "upperquartile"])
def test_many_samples_over_several_blocks(method, monkeypatch):
    """More samples than one block (and than one compute step) with the default sizes: the same
    factors as one sample at a time."""
    rng = np.random.default_rng(16)
    x = tie_heavy_counts(rng, 30_000, 45)
    x[:, 7] = x[:, 3]  # a sample equal to another: TMM's log ratios all zero against it
    default = cnf.calc_norm_factors(x, method=method)
    step = cnf.rows_per_block(x.shape[0], cnf.COMPUTE_VALUES)
    assert 1 < step < x.shape[1] // 2 and cnf.rows_per_block(30_000, cnf.SAMPLE_BLOCK_VALUES) < 45
    monkeypatch.setattr(cnf, "SAMPLE_BLOCK_VALUES", 1)
    monkeypatch.setattr(cnf, "COMPUTE_VALUES", 1)
    assert np.array_equal(cnf.calc_norm_factors(x, method=method), default)
    assert abs(math.exp(np.mean(np.log(default))) - 1) < 1e-14


def test_row_logs_equal_one_vector_logs():
    rng = np.random.default_rng(3)
    x = tie_heavy_counts(rng, 3_000, 6)
    p = x / x.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.ascontiguousarray((p / p[:, [0]]).T)  # 0, inf and NaN included
    ratios[2, :5] = [3 / 7, np.nextafter(3 / 7, 1), 8.0, np.nextafter(8.0, 9), -1.0]
    for order in (False, True):
        rows = log2_libm_rows(ratios, order=order)
        for r in range(ratios.shape[0]):
            one = log2_libm(ratios[r])
            assert np.array_equal(rows.values[r], one, equal_nan=True)
            finite = np.isfinite(one)
            assert rows.n_finite[r] == finite.sum()
            expected_sorted = np.sort(np.where(finite, one, np.inf))
            assert np.array_equal(rows.sorted[r], expected_sorted)
            if order:
                assert np.array_equal(rows.sorted[r], np.where(finite, one, np.inf)[rows.order[r]])
    near = log2_libm_rows(ratios[2:3]).values[0, :4]
    assert near.tolist() == [math.log2(v) for v in ratios[2, :4]]


def test_rank_windows_equal_rankdata_trims():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 30, size=(8, 500)).astype(np.float64) / 4
    finite = rng.random(values.shape) < 0.9
    n = finite.sum(axis=1)
    for trim in (0.05, 0.3, 0.45, 0.6, -0.1):
        lo = np.floor(n * trim).astype(np.int64) + 1
        hi = n + 1 - lo
        for r in range(values.shape[0]):
            padded = np.where(finite[r], values[r], np.inf)
            window = cnf._rank_window(padded, int(n[r]), int(lo[r]), int(hi[r]))
            ranks = rankdata(values[r, finite[r]])
            expected = np.zeros(values.shape[1], dtype=bool)
            expected[finite[r]] = (ranks >= lo[r]) & (ranks <= hi[r])
            assert np.array_equal(window, expected)


def test_log_rank_windows_rank_the_c_library_logs():
    """Ratios a few ulps apart (equal fractions computed two ways, nextafter neighbours) at and
    around the trim boundaries: the window is that of R's ranks of the C library's log2."""
    rng = np.random.default_rng(11)
    for case in range(40):
        m = int(rng.integers(20, 400))
        num = rng.integers(1, 12, m).astype(np.float64)
        den = rng.integers(1, 12, m).astype(np.float64)
        scale = rng.integers(1, 4, m).astype(np.float64)
        ratios = (num * scale / 1e6) / (den * scale / 3e6)  # equal fractions, different roundings
        bumps = rng.random(m) < 0.2
        ratios[bumps] = np.nextafter(ratios[bumps], np.inf * rng.choice([-1, 1], bumps.sum()))
        finite = rng.random(m) < 0.9
        n = int(finite.sum())
        padded = np.where(finite, ratios, np.inf)
        exact = np.array([math.log2(v) for v in ratios])  # R's log2
        ranks = rankdata(exact[finite])
        for trim in (0.05, 0.3, 0.45):
            lo = math.floor(n * trim) + 1
            hi = n + 1 - lo
            with np.errstate(divide="ignore"):
                logs = np.log2(padded)
            window = cnf._exact_rank_window(logs, n, lo, hi, lambda i, a=padded: cnf._c_log2(a[i]))
            expected = np.zeros(m, dtype=bool)
            expected[finite] = (ranks >= lo) & (ranks <= hi)
            assert np.array_equal(window, expected), case
            # the values near the bounds now hold the C library's log2, the others numpy's
            assert np.all(np.abs(logs[finite] - exact[finite]) <= np.spacing(np.abs(exact[finite])))


def test_log_rank_windows_where_numpy_and_the_c_library_tie_differently():
    """Neighbouring doubles whose numpy log2 tie and C library log2 do not (or the reverse; found
    on CPUs whose numpy log2 is a SIMD kernel, else plain neighbours) at every boundary position:
    the window follows the C library's ties."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0.05, 20, 50_000)
    pairs = []
    for v in x[np.log2(x) != np.array([math.log2(t) for t in x])][:40].tolist() + [3 / 7]:
        for w in (np.nextafter(v, 0), np.nextafter(v, 100)):
            if (math.log2(v) == math.log2(w)) != (np.log2(v) == np.log2(w)) or v == 3 / 7:
                pairs.append((v, float(w)))
    assert pairs
    for a, b in pairs[:8]:
        group = np.array([a, b, a, b, b])
        low = rng.uniform(0.001, 0.002, 7)
        high = rng.uniform(100, 200, 6)
        ratios = rng.permutation(np.concatenate([low, group, high, [np.inf, np.inf]]))
        finite = np.isfinite(ratios)
        n = int(finite.sum())
        ranks = rankdata([math.log2(t) for t in ratios[finite]])
        for lo in range(1, n + 1):
            for hi in (lo, lo + 1, n + 1 - lo, n):
                logs = np.log2(ratios)
                window = cnf._exact_rank_window(
                    logs, n, lo, hi, lambda i, a=ratios: cnf._c_log2(a[i])
                )
                expected = np.zeros(ratios.size, dtype=bool)
                expected[finite] = (ranks >= lo) & (ranks <= hi)
                assert np.array_equal(window, expected), (a, b, lo, hi)


def test_stable_position_windows_equal_lexsort_trims():
    rng = np.random.default_rng(7)
    for _ in range(20):
        m = int(rng.integers(5, 400))
        key = rng.integers(0, 12, m).astype(np.float64)
        tie = rng.integers(0, 4, m).astype(np.float64)
        sorted_key = np.sort(key)
        for trim in (0.05, 0.3):
            lo = int(m * trim) + 1
            hi = m + 1 - lo
            expected = np.zeros(m, dtype=bool)
            expected[np.lexsort((tie, key))[lo - 1 : hi]] = True
            got = cnf._stable_position_window(key, sorted_key, lo, hi, tie)
            assert np.array_equal(got, expected)
            expected[:] = False
            expected[np.argsort(key, kind="stable")[lo - 1 : hi]] = True
            assert np.array_equal(cnf._stable_position_window(key, sorted_key, lo, hi), expected)
