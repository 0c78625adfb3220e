"""A column-major fit (the moderate step's merged fit: load_fits(order="F")) gives the bits of the
row-major one: e_bayes' t, p, lods and F, the ordinary t and p, confidence limits, the F of a
subset of coefficients and nestedF's calls.  e_bayes' t, p and lods are column-major whatever the
fit's layout (each column contiguous: the results table's columns are views of them)."""

from __future__ import annotations

import numpy as np
import pytest

from stacklm.limma.decidetests import classify_tests_f, decide_tests
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.ftest import moderated_f, row_major
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.toptableextras import confint_columns, ordinary_t
from stacklm.rstats.distributions import T_TABLE_MIN_SIZE, _t_sf2

G = 6000  # G x 4 t-statistics >= T_TABLE_MIN_SIZE: the interpolation table's path


def _fit(missing: bool):
    rng = np.random.default_rng(19)
    n = 14
    design = np.column_stack(
        [np.ones(n), np.repeat([0.0, 1.0], n // 2), rng.normal(size=n), np.tile([0.0, 1.0], n // 2)]
    )
    Y = rng.normal(size=(G, n)) + np.outer(rng.normal(size=G) * (rng.random(G) < 0.1), design[:, 1])
    if missing:  # residual df differ: e_bayes' prior and p-values group the rows by df
        Y[rng.random(Y.shape) < 0.02] = np.nan
    return lm_fit(Y, design)


def _column_major(fit):
    return fit.replace(
        coefficients=np.asfortranarray(fit.coefficients),
        stdev_unscaled=np.asfortranarray(fit.stdev_unscaled),
    )


def _same_bits(a, b, name):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, name
    assert a.tobytes() == b.tobytes(), name


def _is_column_major(m):
    return m.flags.f_contiguous and not m.flags.c_contiguous


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
def test_t_tail_keeps_the_layout_and_the_values(missing):
    fit = _fit(missing)
    t = fit.coefficients / fit.stdev_unscaled / fit.sigma[:, None]
    df = fit.df_residual if missing else np.full(G, fit.df_residual[0])
    assert t.size >= T_TABLE_MIN_SIZE
    by_rows = _t_sf2(t, df)
    by_columns = _t_sf2(np.asfortranarray(t), df)
    assert by_rows.flags.c_contiguous and _is_column_major(by_columns)
    _same_bits(by_columns, by_rows, "p")


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
@pytest.mark.parametrize("robust", [False, True], ids=["", "robust"])
def test_e_bayes_of_a_column_major_fit_has_the_same_bits(missing, robust):
    fit = _fit(missing)
    want = e_bayes(fit, robust=robust)
    got = e_bayes(_column_major(fit), robust=robust)
    for name in ("t", "p_value", "lods"):
        assert _is_column_major(getattr(want, name)), name  # whatever the fit's layout
        assert _is_column_major(getattr(got, name)), name
        _same_bits(getattr(got, name), getattr(want, name), name)
    for name in ("s2_post", "df_total", "var_prior", "F", "F_p_value"):
        _same_bits(getattr(got, name), getattr(want, name), name)
    # the moderated F of some coefficients: its product with Q as of a row-major t
    row_t = want.replace(t=np.ascontiguousarray(want.t))
    for coefs in ([1, 2], [1, 3], [1, 2, 3]):
        names = [want.coef_names[j] for j in coefs]
        for a, b in zip(moderated_f(got, names), moderated_f(row_t, names), strict=True):
            _same_bits(a, b, f"F {names}")
    _same_bits(
        classify_tests_f(got, p_value=0.05), classify_tests_f(row_t, p_value=0.05), "nestedF"
    )
    _same_bits(
        decide_tests(got, method="nestedF"), decide_tests(row_t, method="nestedF"), "nestedF"
    )


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
def test_ordinary_t_and_confidence_limits_are_column_major_with_the_same_bits(missing):
    fit = _fit(missing)
    eb = e_bayes(fit)
    columns = [1, 3]
    t, p = ordinary_t(_column_major(eb), columns)
    assert _is_column_major(t) and _is_column_major(p)
    with np.errstate(invalid="ignore", divide="ignore"):  # the User's Guide's formula, in order
        want_t = eb.coefficients[:, columns] / eb.stdev_unscaled[:, columns] / eb.sigma[:, None]
    _same_bits(t, want_t, "t")
    _same_bits(p, _t_sf2(want_t, eb.df_residual), "p")
    low, high = confint_columns(_column_major(eb), 0.9, columns)
    row_low, row_high = confint_columns(eb, 0.9, columns)
    _same_bits(low, row_low, "CI.L")
    _same_bits(high, row_high, "CI.R")


def test_row_major_copies_only_a_column_major_matrix():
    m = np.arange(24.0).reshape(6, 4)
    assert row_major(m) is m
    view = m[:, 1:3]  # rows of a row-major matrix: already in the products' layout
    assert row_major(view) is view
    f = np.asfortranarray(m)
    got = row_major(f[:, 1:3])
    assert got.flags.c_contiguous and np.array_equal(got, m[:, 1:3])
