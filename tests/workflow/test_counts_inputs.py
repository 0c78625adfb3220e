"""Bad counts and settings that do not fit counts, weights or blocks: one-line errors naming the
file, line, column and feature (the normalize step) or the key and the fix (the config checks run
before any job), issues 16 and 17."""

from __future__ import annotations

import gzip

import pytest
from workflow_helpers import REPO

from stacklm.io.formats import MatrixInputError
from stacklm.io.store import open_binary_matrix
from stacklm.workflow.checks import ConfigCheckError, check_config
from stacklm.workflow.config import validate_config
from stacklm.workflow.pipeline import normalize_matrix

EXAMPLE = REPO / "resources" / "example_counts"
HEADER = "feature_id\tS1\tS2\tS3\n"


def _matrix(tmp_path, rows, name="counts.tsv.gz"):
    path = tmp_path / name
    text = HEADER + "".join("\t".join(map(str, r)) + "\n" for r in rows)
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


@pytest.mark.parametrize(
    "bad, what",
    [("-3", "negative (-3)"), ("2.5", "not a whole number (2.5)"), ("NA", "missing (NA)")],
)
def test_bad_count_names_file_line_column_and_feature(tmp_path, bad, what):
    rows = [["g1", 1, 2, 3], ["g2", 4, 5, 6], ["g3", 7, bad, 9], ["g4", 0, 0, 0]]
    path = _matrix(tmp_path, rows)
    with pytest.raises(MatrixInputError) as err:
        normalize_matrix(path, tmp_path / "store", input_scale="counts", filters={})
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert "line 4 (data row 3)" in message  # the header is line 1
    assert "column 3 ('S2')" in message
    assert "feature 'g3'" in message and what in message
    assert "non-negative whole numbers" in message


def test_counts_within_tolerance_are_stored_rounded(tmp_path):
    path = _matrix(tmp_path, [["g1", "1.0000000001", 2, 3], ["g2", 4, "4.9999999999", 6]])
    normalize_matrix(path, tmp_path / "store", input_scale="counts", filters={})
    store = open_binary_matrix(tmp_path / "store")
    assert store.rows(0, 2).tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def _config(analysis=None, **top):
    config = {
        "matrix": str(EXAMPLE / "counts.tsv.gz"),
        "samples": str(EXAMPLE / "samples.tsv"),
        "input_scale": "counts",
        "analyses": {
            "a": dict(
                {
                    "formula": "~ treatment + region + sex",
                    "levels": {"treatment": ["before", "after"]},
                    "test": "treatmentafter",
                },
                **(analysis or {}),
            )
        },
    }
    config.update(top)
    return validate_config(config)


def test_counts_defaults():
    config = _config()
    settings = config["analyses"]["a"]
    assert config["normalize"]["method"] == "TMM"
    assert settings["weights"] == "voom"
    assert settings["filter_by_expr"] == {
        "min_count": 10, "min_total_count": 15, "large_n": 10, "min_prop": 0.7,
    }  # fmt: skip
    spec = check_config(config)["a"]
    assert spec.filter_by_expr.min_count == 10 and spec.weighting.weights == "voom"
    given = _config({"filter_by_expr": {"min_count": 5}})["analyses"]["a"]["filter_by_expr"]
    assert given["min_count"] == 5 and given["min_prop"] == 0.7
    assert _config({"filter_by_expr": False})["analyses"]["a"]["filter_by_expr"] is False


@pytest.mark.parametrize(
    "analysis, top, expected",
    [
        ({}, {"normalize": {"log2": True}}, "set normalize.log2: false"),
        ({}, {"normalize": {"method": "quantile"}}, "calcNormFactors"),
        ({}, {"precision": "float32"}, "keep precision: float64"),
        ({}, {"filter": {"min_average": 1}}, "filterByExpr"),
        ({"surrogate_variables": 2}, {}, "surrogate_variables: 0"),
        ({"export_corrected": True}, {}, "export_corrected: false"),
        ({"array_weights": True}, {}, "weights: voom_quality"),
        ({"weights": "voom_quality", "sample_weights": "age"}, {}, "drop one of them"),
        ({"sample_weights": "age", "array_weights": True, "weights": "none"}, {}, "not both"),
        ({"correlation": 0.3}, {}, "without block"),
        ({"block": "donr"}, {}, "column 'donr' is not in the sample sheet"),
        ({"sample_weights": "region"}, {}, "positive finite numbers"),
        ({"formula": "~ treatment + donor", "block": "donor"}, {}, "already encoded in the design"),
    ],
)  # fmt: skip
def test_settings_that_do_not_fit_counts_are_one_line_errors(analysis, top, expected):
    with pytest.raises(ConfigCheckError) as err:
        check_config(_config(analysis, **top))
    message = str(err.value)
    assert "\n" not in message and expected in message, message


@pytest.mark.parametrize(
    "analysis, top, expected",
    [
        ({"weights": "voom"}, {}, "needs input_scale: counts"),
        ({"weights": "voom_quality"}, {}, "needs input_scale: counts"),
        ({"filter_by_expr": True}, {}, "counts only"),
        ({}, {"normalize": {"method": "TMM"}}, "set input_scale: counts"),
        ({"block": "batch", "correlation": 1.5}, {}, "correlation"),
    ],
)  # fmt: skip
def test_count_settings_on_continuous_input_are_one_line_errors(analysis, top, expected):
    example = REPO / "resources" / "example"
    config = {
        "matrix": str(example / "expression.tsv.gz"),
        "samples": str(example / "samples.tsv"),
        "analyses": {"a": dict({"formula": "~ geography + sex", "test": "sexM"}, **analysis)},
        **top,
    }
    with pytest.raises(ConfigCheckError) as err:
        check_config(config)
    message = str(err.value)
    assert "\n" not in message and expected in message, message


def test_a_block_that_pairs_no_samples_is_an_error(tmp_path):
    import pandas as pd

    sheet = pd.read_csv(EXAMPLE / "samples.tsv", sep="\t")
    sheet["tube"] = [f"T{i}" for i in range(len(sheet))]
    path = tmp_path / "samples.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    with pytest.raises(ConfigCheckError, match="no two samples share a block"):
        check_config(_config({"block": "tube"}, samples=str(path)))


def test_continuous_input_with_blocks_and_weights_passes_the_checks():
    example = REPO / "resources" / "example"
    specs = check_config(
        {
            "matrix": str(example / "expression.tsv.gz"),
            "samples": str(example / "samples.tsv"),
            "analyses": {
                "a": {
                    "formula": "~ geography + sex",
                    "test": "sexM",
                    "block": "batch",
                    "array_weights": True,
                },  # fmt: skip
            },
        }
    )
    w = specs["a"].weighting
    assert w.block == "batch" and w.array_weights and w.weights == "none"
