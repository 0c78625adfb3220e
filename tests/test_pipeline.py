"""A fit job works through its chunk in row blocks of bounded size: the same fit and cross-products
as one block (memory of a fit job does not grow with the chunk)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import stacklm.pipeline as pipeline
from stacklm.diagnostics import cross_products_path, load_cross_products
from stacklm.fit import load_fit
from stacklm.io import write_binary_matrix


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
        assert pipeline.fit_chunk(tmp_path / "store", design, 1, 2, path) == G - 252
        out[name] = (load_fit(path), load_cross_products(cross_products_path(path)))
    (fit1, cp1), (fit2, cp2) = out["one"], out["blocks"]
    assert list(fit1.feature_ids) == list(fit2.feature_ids) == [f"g{i}" for i in range(252, G)]
    for attr in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean"):
        np.testing.assert_allclose(getattr(fit2, attr), getattr(fit1, attr), rtol=1e-13, atol=0)
    assert cp1.n_features == cp2.n_features == G - 252
    for key, matrix in cp1.matrices.items():
        np.testing.assert_allclose(cp2.matrices[key], matrix, rtol=1e-10, atol=1e-9)
