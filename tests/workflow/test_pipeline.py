"""A fit job works through its chunk in row blocks of bounded size: the same fit and cross-products
as one block (memory of a fit job does not grow with the chunk)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import assert_matches

import stacklm.workflow.pipeline as pipeline
from stacklm.diagnostics.crossproducts import cross_products_path, load_cross_products
from stacklm.io.store import open_binary_matrix, write_binary_matrix
from stacklm.limma.fitstore import load_fit
from stacklm.workflow.pipeline import fit_chunk


def test_fit_chunk_in_row_blocks_equals_one_block(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    G, n = 503, 12
    samples = [f"s{i}" for i in range(n)]
    Y = rng.normal(8, 1, (G, n))
    Y[rng.random((G, n)) < 0.03] = np.nan
    Y[7] = np.nan
    write_binary_matrix(tmp_path / "store", [f"g{i}" for i in range(G)], samples, Y)
    design = pd.DataFrame(
        {"Intercept": 1.0, "group": [0, 1] * 6, "age": rng.normal(40, 9, n)},
        index=pd.Index(samples[::-1], name="sample_id"),  # another order than the store's
    )
    out = {}
    for name, block in (("one", 1 << 30), ("blocks", 40 * n)):  # 40 rows a block: 13 blocks
        monkeypatch.setattr(pipeline, "FIT_BLOCK_VALUES", block)
        path = tmp_path / f"{name}.npz"
        assert fit_chunk(tmp_path / "store", design, 1, 2, path) == G - 252
        out[name] = (load_fit(path), load_cross_products(cross_products_path(path)))
    (fit1, cp1), (fit2, cp2) = out["one"], out["blocks"]
    assert list(fit1.feature_ids) == list(fit2.feature_ids) == [f"g{i}" for i in range(252, G)]
    for attr in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        # BLAS kernels for different block shapes may differ in the last bits: 1e-12 relative
        assert_matches(getattr(fit2, attr), getattr(fit1, attr), attr, rtol=1e-12)
    assert cp1.n_features == cp2.n_features == G - 252
    for key, matrix in cp1.matrices.items():
        np.testing.assert_allclose(cp2.matrices[key], matrix, rtol=1e-10, atol=1e-9)


def test_store_rows_read_from_the_file_equal_the_memory_map(tmp_path):
    rng = np.random.default_rng(9)
    values = rng.normal(size=(97, 5))
    values[3, 2] = np.nan
    ids, samples = [f"g{i}" for i in range(97)], [f"s{i}" for i in range(5)]
    for dtype in ("float64", "float32"):
        write_binary_matrix(tmp_path / dtype, ids, samples, values, dtype=dtype)
        store = open_binary_matrix(tmp_path / dtype)
        for a, b in [(0, 97), (5, 6), (40, 200), (96, 97), (50, 50), (-3, 97)]:
            got = store.rows(a, b)
            want = np.asarray(store.values[a:b], dtype=np.float64)
            assert got.dtype == np.float64 and got.flags.writeable
            np.testing.assert_array_equal(got, want)


def test_store_feature_ids_of_a_row_range_only(tmp_path):
    ids = [f"probe_{i}" for i in range(1000)] + ["é-unicode", "last"]
    write_binary_matrix(tmp_path / "s", ids, ["a", "b"], np.zeros((len(ids), 2)))
    full = open_binary_matrix(tmp_path / "s")
    lazy = open_binary_matrix(tmp_path / "s", load_feature_ids=False)
    assert lazy.feature_ids is None and lazy.n_features == full.n_features == len(ids)
    for a, b in [(0, 1002), (3, 7), (999, 1002), (500, 500), (990, 5000)]:
        assert list(lazy.read_feature_ids(a, b)) == list(full.read_feature_ids(a, b)) == ids[a:b]
