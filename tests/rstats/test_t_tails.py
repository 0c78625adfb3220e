"""The t tails eBayes' tmixture uses without importing scipy.stats: the numbers of
``scipy.stats.t.sf`` / ``t.isf`` (the same special functions, and isf's edge values)."""

import numpy as np
import pytest
from scipy import stats

from stacklm.rstats.distributions import _t_isf, _t_sf


@pytest.mark.parametrize("df", [1.0, 2.0, 3.0, 91.7, 1234.5, 1e7, np.inf])
def test_t_tails_are_scipy_stats(df):
    rng = np.random.default_rng(7)
    q = np.concatenate([rng.random(5000), rng.random(500) * 1e-12, [0, 1, 0.5, 1e-300, np.nan]])
    x = np.concatenate([rng.random(5000) * 10, [0, np.inf, -np.inf, 40, 1e-300, np.nan, -3]])
    want_isf, got_isf = stats.t.isf(q, df), _t_isf(q, df)
    want_sf, got_sf = stats.t.sf(x, df), _t_sf(x, df)
    np.testing.assert_array_equal(got_isf, want_isf)
    np.testing.assert_array_equal(np.signbit(got_isf), np.signbit(want_isf))
    np.testing.assert_array_equal(got_sf, want_sf)
