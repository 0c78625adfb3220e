"""The int8 binary store (SNP genotypes, 1 byte per call, -127 = missing): written from int8 or float
blocks, read back as float64 with NaN by every reader of a store (rows, values[...], asarray)."""

from __future__ import annotations

import numpy as np
import pytest

from stacklm.io.store import BinaryMatrixWriter, open_binary_matrix


def test_int8_store_reads_as_float_with_nan(tmp_path):
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, size=(50, 7)).astype(np.int8)
    g[rng.random(g.shape) < 0.1] = -127
    expected = np.where(g == -127, np.nan, g.astype(float))
    path = tmp_path / "store"
    with BinaryMatrixWriter(path, [f"s{i}" for i in range(7)], dtype="int8") as w:
        w.append([f"snp{i}" for i in range(30)], g[:30])
        w.append([f"snp{i}" for i in range(30, 50)], expected[30:])  # float with NaN
    assert (path / "values.i8").stat().st_size == 50 * 7
    store = open_binary_matrix(path, load_feature_ids=False)
    assert store.n_features == 50 and store.n_samples == 7
    assert np.array_equal(store.rows(3, 41), expected[3:41], equal_nan=True)
    assert store.rows(3, 41).dtype == np.float64
    assert np.array_equal(np.asarray(store.values), expected, equal_nan=True)
    assert np.array_equal(store.values[[0, 7, 49]], expected[[0, 7, 49]], equal_nan=True)
    assert store.values.dtype == np.float64 and store.values.raw.dtype == np.int8
    assert list(store.read_feature_ids(48, 60)) == ["snp48", "snp49"]
    # raw int8 blocks (the fit jobs' input) and sampled rows read without the memory map
    raw = store.rows(3, 41, raw=True)
    assert raw.dtype == np.int8 and np.array_equal(raw, np.where(np.isnan(expected), -127,
                                                                 expected)[3:41])  # fmt: skip
    picked = [0, 7, 7, 49, 12]
    assert np.array_equal(store.take_rows(picked), expected[picked], equal_nan=True)
    assert store.take_rows([]).shape == (0, 7)
    with BinaryMatrixWriter(tmp_path / "f", [f"s{i}" for i in range(7)]) as w:
        w.append([f"g{i}" for i in range(50)], expected)
    floats = open_binary_matrix(tmp_path / "f")
    assert np.array_equal(floats.take_rows(picked), expected[picked], equal_nan=True)
    assert np.array_equal(floats.rows(5, 9, raw=True), expected[5:9], equal_nan=True)


def test_int8_store_refuses_values_that_are_not_counts(tmp_path):
    with pytest.raises(ValueError, match="not a whole number"):
        with BinaryMatrixWriter(tmp_path / "s", ["a", "b"], dtype="int8") as w:
            w.append(["x"], np.array([[0.5, 1.0]]))
    assert not (tmp_path / "s").exists()
