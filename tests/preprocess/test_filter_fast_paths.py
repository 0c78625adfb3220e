"""The row-sum fast paths of the missing-value filter and of the infinite-value check: they look
cell by cell only at the rows whose sum is not finite, and must give what a full pass gives."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from stacklm.io.matrix import _first_infinite
from stacklm.preprocess.filters import feature_filter


def _matrix(g=400, n=12, nan_rows=10, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 1, (g, n))
    rows = rng.choice(g, nan_rows, replace=False)
    for k, r in enumerate(rows):
        x[r, rng.choice(n, 1 + k % n, replace=False)] = np.nan  # 1..n missing values
    return x


@pytest.mark.parametrize("nan_rows", [0, 10, 49, 51, 200, 400])  # fast path up to g/8 = 50 rows
@pytest.mark.parametrize("max_missing", [0.0, 0.25, 0.5, 1.0])
def test_missing_filter_equals_a_full_count(nan_rows, max_missing):
    x = _matrix(nan_rows=nan_rows)
    x[3] = [np.inf, -np.inf] + [1.0] * 10  # infinite values count as observed (sum: NaN)
    x[4] = [1e308, 1e308] + [np.nan] + [0.0] * 9  # the sum overflows: counted cell by cell
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the row sums (a job logs them)
        keep, counts = feature_filter(x, max_missing=max_missing)
    expected = np.isnan(x).mean(axis=1) <= max_missing
    np.testing.assert_array_equal(keep, expected)
    assert counts == {"max_missing": int((~expected).sum())}
    assert keep[3] and keep[4] == (1 / 12 <= max_missing)


def test_missing_filter_of_no_rows():
    keep, counts = feature_filter(np.empty((0, 5)), max_missing=0.5)
    assert keep.shape == (0,) and counts == {"max_missing": 0}


@pytest.mark.parametrize("nan_rows", [0, 10, 200])
def test_first_infinite_value_in_row_major_order(nan_rows):
    x = _matrix(nan_rows=nan_rows)
    assert _first_infinite(x) is None
    x[250, 7] = -np.inf
    x[250, 2] = np.nan  # the same row also has a NaN
    x[301, 0] = np.inf
    x[302, :2] = [1e308, 1e308]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _first_infinite(x) == (250, 7)
    x[17, 11] = np.inf
    assert _first_infinite(x) == (17, 11) == tuple(np.argwhere(np.isinf(x))[0])
    assert _first_infinite(np.empty((0, 4))) is None
