"""edgeR 3.40.2 filterByExpr against R: identical keep flags for the design, group and no-design
forms and non-default arguments, on 2,000 genes x 24 samples (tests/data/counts, make_reference.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

from stacklm.edger.filterbyexpr import filter_by_expr, hat_values

DATA = TEST_DATA / "counts"


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0)
    design = read_table(DATA / "design.tsv", index_col=0)
    samples = read_table(DATA / "samples.tsv")
    flags = read_table(DATA / "filter_by_expr.tsv.gz", index_col=0)
    lib13 = read_table(DATA / "lib13.tsv")["lib13"].to_numpy()
    return counts, design, samples, flags, lib13


def _variants(counts, design, samples, lib13):
    y = counts.to_numpy()
    X = design.to_numpy()
    # model.matrix(~ 0 + region + treatment)
    X0 = np.column_stack(
        [
            pd.get_dummies(samples["region"]).to_numpy(dtype=np.float64),
            (samples["treatment"] == "after").to_numpy(dtype=np.float64),
        ]
    )
    return {
        "design": filter_by_expr(counts, design),
        "group_region": filter_by_expr(y, group=samples["region"]),
        "group_sex": filter_by_expr(y, group=samples["sex"].to_numpy()),
        "none": filter_by_expr(y),
        "design_mincount5": filter_by_expr(y, X, min_count=5),
        "design_noint": filter_by_expr(y, X0),
        "design_largen5": filter_by_expr(y, X, large_n=5, min_prop=0.5, min_total_count=40),
        "design_libsize": filter_by_expr(y, X, lib_size=lib13),
    }


def test_flags_identical_to_edger(data):
    counts, design, samples, flags, lib13 = data
    ours = _variants(counts, design, samples, lib13)
    assert set(ours) == set(flags.columns)
    for name, keep in ours.items():
        ref = flags[name].to_numpy(dtype=bool)
        assert keep.dtype == bool
        assert np.array_equal(keep, ref), f"{name}: {np.sum(keep != ref)} flags differ"
    # the variants do differ from each other (the test would notice a mixed-up argument)
    assert len({tuple(flags[c]) for c in flags.columns}) >= 6
    assert flags["design"].sum() == 1815


def test_hat_values_add_an_intercept():
    # R's hat(x) adds a column of ones: a design without one gets the intercept's leverage too
    x = np.arange(6.0)[:, None]
    h = hat_values(x)
    X1 = np.column_stack([np.ones(6), x])
    expected = np.diag(X1 @ np.linalg.inv(X1.T @ X1) @ X1.T)
    np.testing.assert_allclose(h, expected, rtol=1e-14)
    # a design that already spans the ones column: the aliased extra column changes nothing
    group = np.repeat(np.eye(3), [2, 3, 5], axis=0)
    np.testing.assert_allclose(hat_values(group), 1 / np.repeat([2, 3, 5], [2, 3, 5]), rtol=1e-14)


def test_min_sample_size_tolerance():
    # groups of 3: a gene needs 3 samples at the cutoff; 1 / max(hat) is 3 up to rounding, which
    # the 1e-14 tolerance absorbs (as edgeR)
    design = np.repeat(np.eye(2), 3, axis=0)
    lib = np.full(6, 1e6)
    y = np.array(
        [
            [10, 10, 10, 0, 0, 0],  # exactly 3 samples at 10 CPM (= min.count / median lib * 1e6)
            [10, 10, 9, 0, 0, 0],  # 2 samples
            [30, 0, 0, 0, 0, 0],  # total passes, CPM in 1 sample only
        ],
        dtype=float,
    )
    keep = filter_by_expr(y, design, lib_size=lib)
    assert keep.tolist() == [True, False, False]
    assert filter_by_expr(y, group=[1, 1, 1, 2, 2, 2], lib_size=lib).tolist() == [
        True,
        False,
        False,
    ]


def test_bad_inputs():
    with pytest.raises(ValueError, match="lib_size"):
        filter_by_expr(np.ones((3, 4)), lib_size=[1, 2])
    with pytest.raises(ValueError, match="design"):
        filter_by_expr(np.ones((3, 4)), np.ones((3, 1)))
