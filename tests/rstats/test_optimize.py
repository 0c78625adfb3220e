"""stacklm.rstats.optimize against R's optimize (Brent_fmin): every evaluation point and the result
(R 4.2.2 outputs in tests/data/limma_current, made by make_reference.R there)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_json, read_table

from stacklm.rstats.gamma import lgamma_scalar
from stacklm.rstats.optimize import DEFAULT_TOL, optimize

DATA = TEST_DATA / "limma_current"


def _loglik_like(p):
    d = p / (1 - p)
    return -2 * (d * math.log(d) - lgamma_scalar(d) - 3 * d)


FUNCTIONS = {
    "quadratic": (lambda x: (x - 1 / 3) ** 2, True),
    "sin": (math.sin, False),
    "abs": (lambda x: abs(x - 0.7), True),
    "flat": (lambda x: 0.0, True),
    "quartic_tol": (lambda x: x**4 - 3 * x**3 + 2, True),
    "max_xexp": (lambda x: x * math.exp(-x), False),
    "nan_region": (lambda x: math.nan if x < 0.4 else (x - 0.5) ** 2, True),
    "boundary": (lambda x: x, True),
    "loglik_like": (_loglik_like, False),
}
# True: arithmetic only (R's ^ is pow(): x^2 is x*x, x^3 and x^4 are pow, as Python's **), so the
# iterates are R's bit for bit; False: the C library's sin/exp/log may differ by an ulp elsewhere


def test_default_tolerance_is_r():
    assert DEFAULT_TOL == 2.220446049250313e-16**0.25 == 2.0**-13


@pytest.mark.parametrize("case", list(FUNCTIONS))
def test_optimize_iterates_are_rs(case, recwarn):
    results = {r["case"]: r for r in read_json(DATA / "optimize.json")}
    trace = read_table(DATA / "optimize_trace.tsv")
    expected = trace.loc[trace["case"] == case, "x"].to_numpy()
    ref = results[case]
    f, exact = FUNCTIONS[case]
    out = optimize(f, ref["interval"], maximum=ref["maximum"], tol=ref["tol"])
    got = np.array(out.evaluations)
    assert got.size == expected.size
    x = out.maximum if ref["maximum"] else out.minimum
    if exact:
        assert np.array_equal(got, expected)
        assert x == ref["x"] and out.objective == ref["objective"]
    else:
        assert_matches(got, expected, "evaluations", rtol=1e-12)
        assert_matches(x, ref["x"], "x", rtol=1e-12)
        assert_matches(out.objective, ref["objective"], "objective", rtol=1e-12)
    if case == "nan_region":
        assert any("replaced by maximum positive value" in str(w.message) for w in recwarn)


def test_optimize_argument_checks():
    with pytest.raises(ValueError, match="not less than"):
        optimize(lambda x: x, (1.0, 1.0))
    with pytest.raises(ValueError, match="tol"):
        optimize(lambda x: x, (0.0, 1.0), tol=0)
    with pytest.raises(ValueError, match="xmin"):
        optimize(lambda x: x, (-math.inf, 1.0))
    out = optimize(lambda x: (x - 2) ** 2, lower=0, upper=5)
    assert abs(out.minimum - 2) < 1e-4
