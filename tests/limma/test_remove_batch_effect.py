"""removeBatchEffect against limma 3.63.2 (tests/data/limma_results, made by make_reference.R):
the first 60 of its bladderbatch probes, complete and with 2% NA (probes 5 and 6 keep 3 and 7
observations), design ~ cancer kept, batch removed as covariates / a contr.sum factor / two factors
and a covariate / a factor aliased with the design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, assert_matches, limma_results_inputs, read_table

from stacklm.limma.removebatcheffect import batch_contr_sum, remove_batch_effect

DATA = TEST_DATA / "limma_results"
KEPT = ["Intercept", "cancerCancer", "cancerNormal"]
ADJ = ["batch2", "batch3", "batch4", "batch5"]
ROWS = 60


@pytest.fixture(scope="module")
def inputs():
    expr, with_na, samples = limma_results_inputs()
    return {"complete": expr.iloc[:ROWS], "na": with_na.iloc[:ROWS]}, samples


def _calls(samples):
    design = samples[KEPT + ADJ].to_numpy()
    batch = samples["batch"].to_numpy()
    return {
        "covariates": {"covariates": samples[ADJ].to_numpy(), "design": samples[KEPT].to_numpy()},
        "batch": {"batch": batch, "design": samples[KEPT].to_numpy()},
        "batch2_cov": {
            "batch": batch,
            "batch2": samples["second_batch"].to_numpy(),
            "covariates": samples["covariate"].to_numpy(),
        },
        "batch_aliased": {"batch": batch, "design": design},
    }


@pytest.mark.parametrize("which", ["complete", "na"])
@pytest.mark.parametrize("call", ["covariates", "batch", "batch2_cov", "batch_aliased"])
def test_remove_batch_effect(inputs, which, call):
    data, samples = inputs
    x = data[which]
    out = remove_batch_effect(x, **_calls(samples)[call])
    ref = read_table(DATA / f"rbe_{which}_{call}.tsv.gz", index_col=0)
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == list(ref.index) and list(out.columns) == list(ref.columns)
    assert_matches(out.to_numpy(), ref.to_numpy(), f"{which} {call}")
    # an ndarray in, an ndarray out; NaN cells stay NaN
    arr = remove_batch_effect(x.to_numpy(), **_calls(samples)[call])
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, out.to_numpy())
    np.testing.assert_array_equal(np.isnan(arr), np.isnan(x.to_numpy()))


def test_group_and_level_order(inputs):
    data, samples = inputs
    x = data["na"]
    ref = read_table(DATA / "rbe_na_batch.tsv.gz", index_col=0)
    # group = cancer builds model.matrix(~cancer), the design of the "batch" reference
    cancer = pd.Categorical(samples["cancer"], categories=["Biopsy", "Cancer", "Normal"])
    out = remove_batch_effect(x, batch=samples["batch"].to_numpy(), group=cancer)
    assert_matches(out.to_numpy(), ref.to_numpy(), "group")
    # the removed effect does not depend on the order of the batch levels where every fit has
    # full rank (complete data); the features with 3 and 7 observations (rows 5, 6) drop columns
    # by their order, as R's lm.fit
    batch = pd.Categorical(samples["batch"], categories=[5, 3, 1, 2, 4])
    full_rank = np.ones(ROWS, dtype=bool)
    full_rank[[4, 5]] = False
    for which in ("complete", "na"):
        ref = read_table(DATA / f"rbe_{which}_batch.tsv.gz", index_col=0)
        out = remove_batch_effect(data[which], batch=batch, design=samples[KEPT].to_numpy())
        rows = slice(None) if which == "complete" else full_rank
        assert_matches(out.to_numpy()[rows], ref.to_numpy()[rows], f"{which} level order")


def test_contr_sum_coding_and_no_batch():
    np.testing.assert_array_equal(
        batch_contr_sum(["b", "a", "c", "a"]), [[0, 1], [1, 0], [-1, -1], [1, 0]]
    )
    x = np.arange(12.0).reshape(3, 4)
    out = remove_batch_effect(x)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    with pytest.raises(ValueError, match="samples"):
        remove_batch_effect(x, batch=[1, 2, 1])
