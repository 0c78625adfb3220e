"""Shared test helpers: where the reference data live, and how results are compared with R."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
#: the project's shared data beside the checkout (absent in a user's clone): only the extra
#: full-data comparisons in tests/shared_data read it, and they are collected only when it exists
SHARED_DATA = REPO.parent / "shared" / "data"
if not SHARED_DATA.is_dir():
    collect_ignore = ["shared_data"]

RTOL = 1e-8
ATOL = 1e-12


def read_table(path, **kw) -> pd.DataFrame:
    """Read a TSV written with 17 significant digits so every value comes back bit-equal."""
    if int(pd.__version__.split(".")[0]) < 3:
        kw.setdefault("float_precision", "round_trip")
    return pd.read_csv(path, sep="\t", **kw)


def read_json(path):
    return json.loads(Path(path).read_text())


def max_rel_diff(actual, expected, atol: float = ATOL) -> float:
    """Largest |a - b| / max(|b|, atol/rtol-floor); NaN must match NaN exactly."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return np.inf
    ok = ~nan_a
    diff = np.abs(a[ok] - b[ok])
    within_floor = diff <= atol
    rel = np.where(within_floor, 0.0, diff / np.maximum(np.abs(b[ok]), np.finfo(float).tiny))
    return float(rel.max()) if rel.size else 0.0


def assert_matches(actual, expected, name: str = "", rtol: float = RTOL, atol: float = ATOL):
    """|a - b| <= max(rtol * |b|, atol) elementwise, with NaN in the same places."""
    d = max_rel_diff(actual, expected, atol=atol)
    assert d <= rtol, f"{name}: max relative difference {d:.3g} > {rtol:g}"


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@functools.cache
def _limma_results_inputs():
    data = TEST_DATA / "limma_results"
    expr = read_table(data / "expression.tsv.gz", index_col=0)
    samples = read_table(data / "samples.tsv", index_col=0)
    mask = read_table(data / "na_mask.tsv.gz")
    values = expr.to_numpy(copy=True)
    rows = expr.index.get_indexer(mask.feature_id)
    values[rows, expr.columns.get_indexer(mask.sample_id)] = np.nan
    with_na = pd.DataFrame(values, index=expr.index, columns=expr.columns)
    return expr, with_na, samples


def limma_results_inputs():
    """tests/data/limma_results' inputs (its make_reference.R): the 1,500-probe matrix, the same
    with its NA mask applied, and the sample sheet (with the design columns). Copies: callers may
    change them."""
    expr, with_na, samples = _limma_results_inputs()
    return expr.copy(), with_na.copy(), samples.copy()


def dupcor_inputs(case: str):
    """tests/data/dupcor's inputs (its make_reference.R) for a case named ``logcpm...`` or
    ``voom...``: the matrix (DataFrame; with ``_na`` in the name its NA cells set, and the voom
    weights' zero cells), the observation weights (voom) or None, the design without the block
    column, and the block (donor) codes."""
    data = TEST_DATA / "dupcor"
    design = read_table(data / "design.tsv", index_col=0)
    block = design.pop("donor").to_numpy()
    if case.startswith("voom"):
        M = read_table(data / "voom_E.tsv.gz", index_col=0)
        W = read_table(data / "voom_weights.tsv.gz", index_col=0).to_numpy()
    else:
        M = read_table(data / "logcpm.tsv.gz", index_col=0)
        W = None
    if "_na" in case:
        na = read_table(data / "na_cells.tsv")
        values = M.to_numpy().copy()
        values[na["row"] - 1, na["col"] - 1] = np.nan
        M = pd.DataFrame(values, index=M.index, columns=M.columns)
        if W is not None:
            zero = read_table(data / "zero_weight_cells.tsv")
            W = W.copy()
            W[zero["row"] - 1, zero["col"] - 1] = 0.0
    return M, W, design, block
