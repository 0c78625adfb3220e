"""Values the input scale cannot take are reported by feature and sample, with their number
(issue 14, item 10): log2(x + offset) of x <= -offset, beta values outside [0, 1], dosages outside
[0, 2]; from the library functions and from the workflow's normalize step."""

from __future__ import annotations

import numpy as np
import pytest

from stacklm.preprocess.scales import beta_to_m, check_dosage, log2_transform
from stacklm.workflow.pipeline import normalize_matrix, transform_values

IDS = np.array(["g1", "g2", "g3"], dtype=object)
SAMPLES = ["s1", "s2", "s3", "s4"]


def _values():
    return np.array(
        [[1.0, 2.0, 3.0, 4.0], [5.0, np.nan, -1.5, -3.0], [-2.0, 0.5, 0.0, 1.0]], dtype=np.float64
    )


def test_log2_names_first_feature_sample_and_count():
    with pytest.raises(ValueError) as err:
        log2_transform(_values(), offset=1.0, feature_ids=IDS, samples=SAMPLES)
    message = str(err.value)
    # row-major first: g2 in s3 (-1.5); the others are g2/s4 (-3) and g3/s1 (-2)
    assert "feature 'g2', sample 's3' (value -1.5)" in message
    assert (
        "3 value(s) are <= -offset (-1; smallest value -3) of the 12 values, in 2 feature(s)"
        in (message)
    )
    assert "smallest value -3" in message and "raise the offset above 3" in message
    # without names: positions
    with pytest.raises(ValueError, match=r"row 2, column 3 \(value -1.5\)"):
        log2_transform(_values(), offset=1.0)


def test_beta_and_dosage_name_first_feature_and_sample():
    beta = np.array([[0.1, 0.2], [1.2, 0.5], [-0.1, 0.3]])
    with pytest.raises(
        ValueError,
        match=r"2 value\(s\) outside .* of the 6 values, in 2 feature\(s\), first feature 'g2', sample 's1' \(value 1.2\)",
    ):
        beta_to_m(beta, feature_ids=IDS, samples=SAMPLES[:2])
    dosage = np.array([[0.0, 1.0], [2.0, 2.5], [1.0, 0.0]])
    with pytest.raises(
        ValueError,
        match=r"1 value\(s\) outside .* of the 6 values, in 1 feature\(s\), first feature 'g2', sample 's2' \(value 2.5\)",
    ):
        check_dosage(dosage, feature_ids=IDS, samples=SAMPLES[:2])


def test_transform_values_passes_names_on():
    with pytest.raises(ValueError, match="feature 'g2', sample 's3'"):
        transform_values(_values(), "expression", 1e-6, {"log2": True, "offset": 1.0}, IDS, SAMPLES)


def test_normalize_step_names_feature_and_sample(tmp_path):
    path = tmp_path / "m.tsv"
    rows = ["id\t" + "\t".join(SAMPLES)]
    rows += [
        f"{g}\t" + "\t".join(f"{v:g}" for v in row) for g, row in zip(IDS, _values(), strict=True)
    ]
    path.write_text("\n".join(rows).replace("nan", "NA") + "\n")
    with pytest.raises(ValueError, match=r"feature 'g2', sample 's3' \(value -1.5\)"):
        normalize_matrix(path, tmp_path / "store", normalize={"log2": True, "offset": 1.0})
