"""The per-sample distributions normalize collects: independent of how the rows are blocked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stacklm.diagnostics.distributions import InputDistributions, reservoir_size
from stacklm.io.store import write_binary_matrix


def test_distributions_do_not_depend_on_the_blocks_and_read_the_store(tmp_path):
    rng = np.random.default_rng(11)
    g, n = 30_000, 6  # more rows than the reservoir keeps (reservoir_size(6) = 20,000)
    assert g > reservoir_size(n)
    values = rng.normal(8, 2, (g, n))
    samples = [f"s{j}" for j in range(n)]
    write_binary_matrix(tmp_path / "store", [f"f{i}" for i in range(g)], samples, values - 1.0)
    tables = []
    for cuts in ([g], [1000, 12_345, g], [7, 20_000, 29_999, g]):
        found = InputDistributions(samples)
        start = 0
        for stop in cuts:
            found.add(values[start:stop])
            start = stop
        tables.append(found.finish(tmp_path / "store"))
    for dens, quant in tables[1:]:
        pd.testing.assert_frame_equal(dens, tables[0][0])
        pd.testing.assert_frame_equal(quant, tables[0][1])
    dens, quant = tables[0]
    assert set(dens["stage"]) == {"input", "normalized"}
    q = quant.set_index(["stage", "sample"])
    # the normalized side is random rows of the store (values - 1): its medians sit 1 lower
    shift = q.loc["input", "q50"].to_numpy() - q.loc["normalized", "q50"].to_numpy()
    assert np.all(np.abs(shift - 1.0) < 0.1)
    assert (q["n_values"] == reservoir_size(n)).all()
