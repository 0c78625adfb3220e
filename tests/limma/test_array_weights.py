"""stacklm.limma.arrayweights against R's limma 3.63.2 ``arrayWeights`` (R 4.2.2): gene-by-gene
and REML, with and without voom observation weights, var.group, var.design, no design, an aliased
design column, prior.n, missing values and zero weights.  Input: voom on the first 2,000 genes of
the shared simulated counts (1,815 kept); references in tests/data/counts_quality, written by
make_reference.R there."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.limma.arrayweights import array_weights, contr_sum, var_group_design

DATA = TEST_DATA / "counts_quality"
# measured: <= 6e-15 relative for every case (both methods); the bound leaves room for BLAS/SIMD
RTOL = 1e-10


def _read(name: str, **kw) -> pd.DataFrame:
    path = DATA / name
    if not path.exists():
        pytest.fail(f"reference {path} is missing")
    return read_table(path, **kw)


@pytest.fixture(scope="module")
def inputs():
    counts = _read("counts_kept.tsv.gz", index_col=0).to_numpy(dtype=float)
    lib = _read("libraries.tsv")
    X = _read("design.tsv", index_col=0).to_numpy()
    W = _read("voom_weights.tsv.gz", index_col=0).to_numpy()
    L = (lib["lib.size"] * lib["norm.factors"]).to_numpy()
    # voom's E (the tests of voom itself check it against R)
    E = np.log2((counts + 0.5) / (L + 1) * 1e6)
    na = _read("na_cells.tsv").to_numpy() - 1
    zero = _read("zero_weight_cells.tsv").to_numpy() - 1
    Ena = E.copy()
    Ena[na[:, 0], na[:, 1]] = np.nan
    Wz = W.copy()
    Wz[zero[:, 0], zero[:, 1]] = 0.0
    n = E.shape[1]
    after = (np.arange(n) % 2 == 1).astype(float)
    return {
        "E": E,
        "W": W,
        "X": X,
        "Ena": Ena,
        "Wz": Wz,
        "vg": lib["region"].to_numpy(),
        "vd": np.column_stack([np.log(lib["lib.size"].to_numpy()), after]),
        "rankdef": np.column_stack([X, X[:, 2] + X[:, 3]]),
    }


CASES = {
    # name in array_weights.tsv: keyword arguments (values name entries of `inputs`)
    "gbg_w": dict(E="E", design="X", weights="W", method="genebygene"),
    "reml_w": dict(E="E", design="X", weights="W", method="reml"),
    "gbg_w_vg": dict(E="E", design="X", weights="W", method="genebygene", var_group="vg"),
    "reml_w_vg": dict(E="E", design="X", weights="W", method="reml", var_group="vg"),
    "gbg_w_vd": dict(E="E", design="X", weights="W", method="genebygene", var_design="vd"),
    "reml_w_vd": dict(E="E", design="X", weights="W", method="reml", var_design="vd"),
    "auto_E": dict(E="E", design="X"),
    "gbg_E": dict(E="E", design="X", method="genebygene"),
    "auto_E_vg": dict(E="E", design="X", var_group="vg"),
    "auto_E_nodesign": dict(E="E"),
    "auto_E_rankdef": dict(E="E", design="rankdef"),
    "reml_E_prior3": dict(E="E", design="X", prior_n=3, method="reml"),
    "auto_Ena": dict(E="Ena", design="X"),
    "reml_Ena": dict(E="Ena", design="X", method="reml"),
    "auto_Ena_w": dict(E="Ena", design="X", weights="W"),
    "auto_E_wz": dict(E="E", design="X", weights="Wz"),
    "reml_E_wz": dict(E="E", design="X", weights="Wz", method="reml"),
}


@pytest.fixture(scope="module")
def reference():
    return _read("array_weights.tsv", index_col=0)


@pytest.mark.parametrize("case", list(CASES))
def test_array_weights_match_r(case, inputs, reference):
    kw = {
        k: (inputs[v] if isinstance(v, str) and v in inputs else v) for k, v in CASES[case].items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # R converged without warnings on all of these
        got = array_weights(**kw)
    assert got.shape == (inputs["E"].shape[1],)
    assert_matches(got, reference[case].to_numpy(), case, rtol=RTOL)


def test_inputs_are_not_modified(inputs):
    Ena, Wz = inputs["Ena"].copy(), inputs["Wz"].copy()
    array_weights(inputs["Ena"], inputs["X"], weights=inputs["Wz"])
    np.testing.assert_array_equal(inputs["Ena"], Ena)
    np.testing.assert_array_equal(inputs["Wz"], Wz)


def test_var_group_level_order_does_not_matter(inputs):
    E, X, vg = inputs["E"], inputs["X"], inputs["vg"]
    a = array_weights(E, X, var_group=vg)
    b = array_weights(
        E, X, var_group=pd.Categorical(vg, categories=["Mountain", "Agadir", "Desert"])
    )
    assert_matches(b, a, rtol=1e-12)
    # one weight per group
    for g in np.unique(vg):
        assert np.ptp(a[vg == g]) == 0.0


def test_contrast_matrices():
    np.testing.assert_array_equal(contr_sum(3), [[1, 0], [0, 1], [-1, -1]])
    np.testing.assert_array_equal(
        var_group_design(["b", "a", "c", "a"]), [[0, 1], [1, 0], [-1, -1], [1, 0]]
    )
    with pytest.raises(ValueError, match="two variance groups"):
        var_group_design(["a", "a"])


def test_degenerate_inputs_give_unit_weights(inputs):
    E, X = inputs["E"], inputs["X"]
    np.testing.assert_array_equal(array_weights(E[:1], X), np.ones(24))
    # fewer than 2 residual df
    np.testing.assert_array_equal(array_weights(E[:, :3], X[:3, :2]), np.ones(3))


def test_invalid_weights_are_errors(inputs):
    E, X, W = inputs["E"], inputs["X"], inputs["W"]
    for bad, msg in [(-1.0, "Negative"), (np.nan, "NA weights"), (np.inf, "Infinite")]:
        Wb = W.copy()
        Wb[3, 4] = bad
        with pytest.raises(ValueError, match=msg):
            array_weights(E, X, weights=Wb)
    with pytest.raises(ValueError, match="dimensions"):
        array_weights(E, X, weights=W[:10])
    with pytest.raises(ValueError, match="method"):
        array_weights(E, X, method="fast")


def test_rank_detecting_path_gives_the_same_weights(inputs, reference, monkeypatch):
    """Complete rows with widely spread weights take the path with lm.wfit's rank detection;
    forced for every row, it gives the fast path's weights."""
    import stacklm.limma.arrayweights as aw

    monkeypatch.setattr(aw, "_WEIGHT_RATIO", 0.0)
    got = aw.array_weights(inputs["E"], inputs["X"], weights=inputs["W"], method="genebygene")
    assert_matches(got, reference["gbg_w"].to_numpy(), "gbg_w (rank-detecting path)", rtol=RTOL)
