"""stacklm.normalize against R (limma 3.54.1, R 4.2.2): normalizeQuantiles / normalizeBetweenArrays
(complete, 2% NA, heavy ties), normalizeCyclicLoess ("fast", "pairs", "affy", with NA), stats::lowess,
beta -> M, and the feature filters against R's per-feature statistics.  References in
tests/data/normalize, written by make_reference.R there (README.txt) from the committed 1,000-probe
bladderbatch subset tests/data/bladder/expression.tsv.gz."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.limma.loessfit import loess_fit
from stacklm.limma.normalize import cyclic_loess, quantile_normalize
from stacklm.preprocess.filters import feature_filter
from stacklm.preprocess.scales import beta_to_m, check_dosage, log2_transform
from stacklm.rstats.lowess import lowess

DATA = TEST_DATA / "normalize"
QUANTILE_RTOL = 1e-10
LOESS_RTOL = 1e-8  # the task asks for 1e-6; the port agrees with R to ~1e-14 absolute
LOESS_ATOL = 1e-10


def ref_table(name: str) -> pd.DataFrame:
    path = DATA / name
    if not path.exists():
        pytest.fail(f"reference {path} is missing")
    return read_table(path, index_col=0)


@pytest.fixture(scope="module")
def bladder() -> pd.DataFrame:
    return read_table(TEST_DATA / "bladder" / "expression.tsv.gz", index_col=0)


@pytest.fixture(scope="module")
def bladder_na(bladder) -> pd.DataFrame:
    """The 1000 x 30 matrix Y of make_reference.R (the subset's first 30 samples) with its NA cells
    (na_mask.tsv)."""
    sub = bladder.iloc[:, :30].copy()
    mask = read_table(DATA / "na_mask.tsv")
    values = sub.to_numpy().copy()
    values[mask["row"] - 1, mask["col"] - 1] = np.nan
    return pd.DataFrame(values, index=sub.index, columns=sub.columns)


def _input_for(ref: pd.DataFrame, source: pd.DataFrame) -> np.ndarray:
    return source.loc[ref.index, ref.columns].to_numpy()


# ----------------------------------------------------------------------------------------------
# quantile normalization


def test_quantile_bladder_matches_limma(bladder):
    ref = ref_table("quantile_bladder.tsv.gz")
    assert ref.shape == (1000, 57)
    out = quantile_normalize(_input_for(ref, bladder))
    assert_matches(out, ref.to_numpy(), "quantile", rtol=QUANTILE_RTOL)


def test_quantile_with_missing_values_matches_limma(bladder_na):
    ref = ref_table("quantile_na.tsv.gz")
    values = _input_for(ref, bladder_na)
    assert 0.02 < np.isnan(values).mean() < 0.03
    out = quantile_normalize(values)
    assert np.array_equal(np.isnan(out), np.isnan(values))
    assert_matches(out, ref.to_numpy(), "quantile NA", rtol=QUANTILE_RTOL)


def test_quantile_ties_match_limma():
    values = ref_table("ties_input.tsv")
    ref = ref_table("quantile_ties.tsv")
    out = quantile_normalize(values.to_numpy())
    assert_matches(out, ref.to_numpy(), "quantile ties", rtol=QUANTILE_RTOL)
    # tied inputs stay tied
    col = values.iloc[:, 0].to_numpy()
    same = col == col[~np.isnan(col)][0]
    assert np.unique(out[same, 0]).size == 1


def test_quantile_edge_cases():
    x = np.arange(6.0).reshape(6, 1)
    assert np.array_equal(quantile_normalize(x), x)  # one sample: unchanged (as in limma)
    bad = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 1.0]])
    with pytest.raises(ValueError, match="sample column 2 has 1 observed value"):
        quantile_normalize(bad)
    inp = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    before = inp.copy()
    quantile_normalize(inp)
    assert np.array_equal(inp, before)  # input untouched


# ----------------------------------------------------------------------------------------------
# lowess and cyclic loess


def test_lowess_matches_r():
    cases = read_table(DATA / "lowess_cases.tsv")
    assert cases["case"].nunique() == 6
    for case, g in cases.groupby("case", sort=False):
        delta = g["delta"].iloc[0]
        fitted = lowess(
            g["x"].to_numpy(),
            g["y"].to_numpy(),
            f=g["f"].iloc[0],
            iterations=int(g["iter"].iloc[0]),
            delta=None if np.isnan(delta) else delta,
        )
        assert_matches(fitted, g["fitted"].to_numpy(), f"lowess {case}", LOESS_RTOL, LOESS_ATOL)


def test_loess_fit_edge_cases():
    y = np.array([1.0, np.nan, 3.0, 2.0])
    x = np.array([0.0, 1.0, np.inf, 2.0])
    out = loess_fit(y, x, span=0.3)  # span < 1/n_obs: fitted = y on finite pairs
    assert np.array_equal(out, [1.0, np.nan, np.nan, 2.0], equal_nan=True)
    assert np.isnan(loess_fit(np.full(3, np.nan), np.arange(3.0))).all()


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("cyclicloess_fast.tsv.gz", {}),
        ("cyclicloess_pairs.tsv.gz", {"method": "pairs"}),
        ("cyclicloess_affy.tsv.gz", {"method": "affy", "span": 0.5, "iterations": 2}),
    ],
)
def test_cyclic_loess_matches_limma(bladder, name, kwargs):
    ref = ref_table(name)
    out = cyclic_loess(_input_for(ref, bladder), **kwargs)
    assert_matches(out, ref.to_numpy(), name, LOESS_RTOL, LOESS_ATOL)


@pytest.mark.parametrize(
    "name, method", [("cyclicloess_fast_na.tsv.gz", "fast"), ("cyclicloess_pairs_na.tsv", "pairs")]
)
def test_cyclic_loess_with_missing_values_matches_limma(bladder_na, name, method):
    ref = ref_table(name)
    values = _input_for(ref, bladder_na)
    out = cyclic_loess(values, method=method)
    if method == "pairs":  # R spreads a missing value to the other column of each pair
        assert np.isnan(out).sum() > np.isnan(values).sum()
    assert_matches(out, ref.to_numpy(), name, LOESS_RTOL, LOESS_ATOL)


def test_cyclic_loess_rejects_unknown_method():
    with pytest.raises(ValueError, match="'fast', 'pairs' or 'affy'"):
        cyclic_loess(np.zeros((5, 2)), method="loess")


# ----------------------------------------------------------------------------------------------
# input scales


def test_beta_to_m_matches_r():
    beta = ref_table("beta_input.tsv")
    ref = ref_table("beta_m.tsv")
    assert_matches(beta_to_m(beta.to_numpy()), ref.to_numpy(), "M-values", rtol=1e-12)
    with pytest.raises(ValueError, match=r"1 value\(s\) outside.*range -0.1 .. 0.9"):
        beta_to_m(np.array([[0.5, -0.1], [0.9, np.nan]]))


def test_log2_transform():
    x = np.array([[0.0, 1.0], [np.nan, 1023.0]])
    assert np.array_equal(log2_transform(x), [[0.0, 1.0], [np.nan, 10.0]], equal_nan=True)
    assert log2_transform(np.array([[-0.5]]), offset=1.0)[0, 0] == -1.0
    with pytest.raises(
        ValueError,
        match=r"2 value\(s\) are <= -offset \(-1; smallest value -3\).*raise the offset above 3",
    ):
        log2_transform(np.array([[-1.0, -3.0, 2.0]]))


def test_check_dosage():
    d = check_dosage([[0, 1, 2], [0.5, np.nan, 1.9]])
    assert d.dtype == np.float64
    with pytest.raises(ValueError, match=r"2 value\(s\) outside"):
        check_dosage([[0, 3, -1]])


# ----------------------------------------------------------------------------------------------
# feature filters


def test_feature_filter_matches_r_statistics():
    values = ref_table("filter_input.tsv").to_numpy()
    stats = read_table(DATA / "filter_stats.tsv")
    miss = stats["missing_fraction"].to_numpy()
    avg = stats["average"].to_numpy()  # NaN when all missing
    var = stats["variance"].to_numpy()  # NA when < 2 observed
    max_missing, min_average, min_variance = 0.3, 0.0, 1.0

    keep, counts = feature_filter(values, max_missing, min_average, min_variance)
    k1 = miss <= max_missing
    k2 = k1 & (avg >= min_average)
    k3 = k2 & (var >= min_variance)
    assert np.array_equal(keep, k3)
    assert counts == {
        "max_missing": int((~k1).sum()),
        "min_average": int((k1 & ~k2).sum()),
        "min_variance": int((k2 & ~k3).sum()),
    }
    assert min(counts["max_missing"], counts["min_average"], counts["min_variance"]) > 0

    # one filter at a time; features with undefined mean / variance fail those filters
    keep, counts = feature_filter(values, min_variance=min_variance)
    assert np.array_equal(keep, var >= min_variance) and not keep[:2].any()
    assert counts == {"min_variance": int((var < min_variance).sum() + np.isnan(var).sum())}
    keep, counts = feature_filter(values, min_average=min_average)
    assert np.array_equal(keep, avg >= min_average) and not keep[0]
    keep, counts = feature_filter(values)
    assert keep.all() and counts == {}
    with pytest.raises(ValueError, match="fraction"):
        feature_filter(values, max_missing=50)
