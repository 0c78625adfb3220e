"""edgeR 3.40.2 calcNormFactors on tie-heavy counts (3,000 genes x 30 samples, most counts 0-20,
all-zero genes, a sample equal to another, one with twice another's counts; non-integer counts):
TMM's trims by average ranks, whose ends fall inside large tie groups, against R
(tests/data/counts_tmm_ties/make_reference.R)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_DATA, assert_matches, read_table

from stacklm.edger import calcnormfactors as cnf

DATA = TEST_DATA / "counts_tmm_ties"
RTOL = 1e-12

CASES = {
    "TMM": ({}, 1.0),
    "TMM_ref1": ({"ref_column": 0}, 1.0),
    "TMM_ref7": ({"ref_column": 6}, 1.0),
    "TMM_trim": ({"logratio_trim": 0.45, "sum_trim": 0.2}, 1.0),
    "TMM_noweight": ({"do_weighting": False}, 1.0),
    "TMM_acutoff": ({"a_cutoff": -12}, 1.0),
    "TMM_frac": ({}, 1 / 3),
    "TMMwsp": ({"method": "TMMwsp"}, 1.0),
    "upperquartile": ({"method": "upperquartile"}, 1.0),
    "uq_p33": ({"method": "upperquartile", "p": 1 / 3}, 1.0),
}


@pytest.fixture(scope="module")
def data():
    counts = read_table(DATA / "counts.tsv.gz", index_col=0).to_numpy(dtype=np.float64)
    return counts, read_table(DATA / "norm_factors.tsv")


@pytest.mark.parametrize("name", list(CASES))
def test_tie_heavy_factors_match_edger(data, name):
    counts, nf = data
    kw, scale = CASES[name]
    x = counts / 3 if scale != 1.0 else counts
    assert_matches(cnf.calc_norm_factors(x, **kw), nf[name].to_numpy(), name, rtol=RTOL)


def test_tie_heavy_factors_do_not_depend_on_blocks(data, monkeypatch):
    counts, _ = data
    default = {name: cnf.calc_norm_factors(counts, **kw) for name, (kw, _) in CASES.items()}
    monkeypatch.setattr(cnf, "SAMPLE_BLOCK_VALUES", 1)
    monkeypatch.setattr(cnf, "COMPUTE_VALUES", 1)
    for name, (kw, _) in CASES.items():
        assert np.array_equal(cnf.calc_norm_factors(counts, **kw), default[name]), name
