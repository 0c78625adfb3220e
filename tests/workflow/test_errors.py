"""Bad input gives one clear error (what, where, how to fix), before any job where possible, and
leaves no half-written result.  One test per kind of mistake a first run makes."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import snakemake, write_config

from stacklm.workflow.checks import ConfigCheckError, check_config
from stacklm.workflow.pipeline import normalize_matrix

N_SAMPLES = 16


def _make_inputs(tmp_path, n_features=40, seed=7):
    rng = np.random.default_rng(seed)
    ids = [f"S{i:02d}" for i in range(N_SAMPLES)]
    sheet = pd.DataFrame(
        {
            "sample_id": ids,
            "geography": np.tile(["Agadir", "Desert", "Mountain", "Desert"], N_SAMPLES // 4),
            "sex": rng.permutation(np.repeat(["F", "M"], N_SAMPLES // 2)),
            "batch": rng.permutation(np.tile([1, 2], N_SAMPLES // 2)),
            "age": rng.uniform(20, 70, N_SAMPLES).round(1),
            "tissue": ["blood"] * (N_SAMPLES - 2) + ["skin"] * 2,
        }
    )
    values = rng.normal(8, 1, (n_features, N_SAMPLES))
    matrix = pd.DataFrame(values, index=[f"F{i:03d}" for i in range(n_features)], columns=ids)
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    matrix.rename_axis("feature_id").to_csv(tmp_path / "expr.tsv", sep="\t")
    return sheet, matrix


def _config(tmp_path, **analysis):
    settings = {
        "formula": "~ geography + sex + age",
        "test": ["geographyDesert", "geographyMountain"],
    }
    settings.update(analysis)
    return {
        "matrix": str(tmp_path / "expr.tsv"),
        "samples": str(tmp_path / "samples.tsv"),
        "sample_id": "sample_id",
        "input_scale": "expression",
        "normalize": {"log2": False, "offset": 1, "method": "none"},
        "filter": {"max_missing": 0.5},
        "chunks": 2,
        "analyses": {"a": settings},
    }


@pytest.fixture
def inputs(tmp_path):
    return _make_inputs(tmp_path)


# ---------------------------------------------------------------- checked before any job
CONFIG_CASES = {
    "unknown formula column": (
        dict(formula="~ geography + height"),
        "formula '~ geography + height' uses 'height', not a column of the sample sheet; columns are:",
    ),
    "unknown level": (
        dict(levels={"geography": ["Agadir", "Desert", "Mountain", "Oasis"]}),
        "level(s) 'Oasis' of 'geography' listed in 'levels' do not occur",
    ),
    "level missing from list": (
        dict(levels={"geography": ["Agadir", "Desert"]}),
        "column 'geography' has value(s) 'Mountain' not in its levels",
    ),
    "test names no coefficient": (
        dict(test=["geographyOasis"]),
        "'test' names 'geographyOasis', not a coefficient or contrast of this analysis; available: "
        "geographyDesert, geographyMountain, sexM, age",
    ),
    "contrast syntax error": (
        dict(contrasts={"DvM": "geographyDesert -- * geographyMountain"}, test=["DvM"]),
        "contrast 'geographyDesert -- * geographyMountain' is not a valid expression",
    ),
    "contrast unknown name": (
        dict(contrasts={"DvO": "geographyDesert - geographyOasis"}, test=["DvO"]),
        "names 'geographyOasis', which is not a coefficient",
    ),
    "one level after subset": (
        dict(formula="~ geography + tissue", subset="tissue == 'blood'"),
        "factor 'tissue' has a single level ('blood') in the samples analysed",
    ),
    "fewer samples than columns": (
        dict(subset="sample_id in ['S00', 'S01']", formula="~ age + batch", test=["age"]),
        "the design has 3 columns but only 2 samples; use fewer variables or more samples",
    ),
    "confounded design": (
        dict(formula="~ geography + region", test=["geographyDesert"]),
        "regioninland is a linear combination of geographyDesert, geographyMountain",
    ),
    "subset runs code": (
        dict(subset="__import__('os').system('touch hacked')"),
        "is not allowed",
    ),
    "subset selects nothing": (dict(subset="age > 1000"), "subset 'age > 1000' selects no samples"),
    "empty test": (dict(test=[]), "'test' is empty"),
    "no residual df": (
        dict(formula="~ geography + sex + age", surrogate_variables=12),
        "leave no residual degrees of freedom",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_errors_name_the_problem(tmp_path, inputs, case):
    analysis, message = CONFIG_CASES[case]
    sheet, _ = inputs
    if case == "confounded design":
        sheet["region"] = sheet["geography"].map(
            {"Agadir": "coast", "Desert": "inland", "Mountain": "inland"}
        )
        sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    with pytest.raises(ConfigCheckError) as err:
        check_config(_config(tmp_path, **analysis))
    assert message in str(err.value)
    assert str(err.value).startswith("analysis 'a': ")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "hacked").exists()


def test_sample_ids_do_not_match(tmp_path, inputs):
    sheet, _ = inputs
    sheet.iloc[2:].to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    with pytest.raises(
        ConfigCheckError, match=r"2 matrix column\(s\) not in the sample sheet: S00, S01"
    ):
        check_config(_config(tmp_path))
    extra = pd.concat([sheet, sheet.iloc[[0]].assign(sample_id="S99")])
    extra.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    with pytest.raises(ConfigCheckError, match=r"1 sample sheet row\(s\) not in the matrix: S99"):
        check_config(_config(tmp_path))


def test_duplicated_sample_ids(tmp_path, inputs):
    sheet, _ = inputs
    sheet.loc[3, "sample_id"] = "S02"
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    with pytest.raises(ConfigCheckError, match=r"duplicated 'sample_id' value\(s\) S02"):
        check_config(_config(tmp_path))


def test_wrong_sample_id_column(tmp_path, inputs):
    cfg = _config(tmp_path)
    cfg["sample_id"] = "id"
    with pytest.raises(ConfigCheckError, match="has no column 'id' \\(config 'sample_id'\\)"):
        check_config(cfg)


def test_duplicated_matrix_sample_columns(tmp_path, inputs):
    text = (tmp_path / "expr.tsv").read_text().split("\n")
    text[0] = text[0].replace("S03", "S02")
    (tmp_path / "expr.tsv").write_text("\n".join(text))
    with pytest.raises(ConfigCheckError, match="S02"):
        check_config(_config(tmp_path))


def test_missing_and_wrongly_compressed_matrix(tmp_path, inputs):
    cfg = _config(tmp_path)
    cfg["matrix"] = str(tmp_path / "nope.tsv")
    with pytest.raises(ConfigCheckError, match="nope.tsv"):
        check_config(cfg)
    (tmp_path / "plain.tsv.gz").write_bytes((tmp_path / "expr.tsv").read_bytes())
    cfg["matrix"] = str(tmp_path / "plain.tsv.gz")
    with pytest.raises(ConfigCheckError, match="gzip"):
        check_config(cfg)


def test_log2_with_beta_input_is_rejected(tmp_path, inputs):
    cfg = _config(tmp_path)
    cfg["input_scale"] = "beta"
    cfg["normalize"]["log2"] = True
    with pytest.raises(ConfigCheckError, match="set normalize.log2: false"):
        check_config(cfg)


# ---------------------------------------------------------------- found while reading the matrix
def _write_matrix(tmp_path, edit):
    lines = (tmp_path / "expr.tsv").read_text().split("\n")
    edit(lines)
    (tmp_path / "expr.tsv").write_text("\n".join(lines))


def _set_cell(row, col, text):
    def edit(lines):
        fields = lines[row].split("\t")
        fields[col] = text
        lines[row] = "\t".join(fields)

    return edit


MATRIX_CASES = {
    "non-numeric cell": (_set_cell(5, 3, "high"), ["line 6", "S02", "high"]),
    "infinite cell": (_set_cell(7, 1, "Inf"), ["line 8", "S00", "Inf"]),
    "duplicated feature id": (_set_cell(9, 0, "F001"), ["F001", "line 10"]),
    "empty matrix": (lambda lines: lines.__delitem__(slice(1, None)), ["no data rows"]),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_matrix_errors_name_file_row_and_column(tmp_path, inputs, case):
    edit, needles = MATRIX_CASES[case]
    _write_matrix(tmp_path, edit)
    with pytest.raises(ValueError) as err:
        normalize_matrix(tmp_path / "expr.tsv", tmp_path / "store")
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))
    assert "expr.tsv" in str(err.value)
    assert not (tmp_path / "store").exists()  # nothing half-written


def test_negative_values_with_log2(tmp_path, inputs):
    _write_matrix(tmp_path, _set_cell(3, 2, "-5"))
    with pytest.raises(ValueError, match="log2"):
        normalize_matrix(
            tmp_path / "expr.tsv", tmp_path / "store", normalize={"log2": True, "offset": 1}
        )
    assert not (tmp_path / "store").exists()


def test_all_features_filtered_away(tmp_path, inputs):
    with pytest.raises(
        ValueError, match=r"all 40 features .* were removed by the filters \(min_average: 40\)"
    ):
        normalize_matrix(tmp_path / "expr.tsv", tmp_path / "store", filters={"min_average": 100})
    assert not (tmp_path / "store").exists()


def test_more_chunks_than_features(tmp_path, inputs):
    with pytest.raises(
        ValueError, match=r"'chunks' \(50\) is larger than the number of features kept \(40\)"
    ):
        normalize_matrix(tmp_path / "expr.tsv", tmp_path / "store", min_features=50)
    assert not (tmp_path / "store").exists()


def test_beta_values_outside_0_1(tmp_path, inputs):
    with pytest.raises(ValueError, match="beta"):
        normalize_matrix(tmp_path / "expr.tsv", tmp_path / "store", input_scale="beta")


# ---------------------------------------------------------------- what the user sees from snakemake
def test_snakemake_shows_one_line_before_any_job(tmp_path, inputs):
    cfg = write_config(tmp_path / "c.yaml", _config(tmp_path, test=["geographyOasis"]))
    out = snakemake(tmp_path, cfg)
    assert out.returncode != 0
    assert "'test' names 'geographyOasis', not a coefficient or contrast" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_schema_violation_is_reported_before_any_job(tmp_path, inputs):
    cfg = _config(tmp_path)
    cfg["fdr"] = {"method": "fdrtool"}
    out = snakemake(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    assert out.returncode != 0
    assert (
        "config: fdr.method is 'fdrtool'; use one of 'BH', 'BY', 'holm', 'bonferroni'" in out.stderr
    )
    assert "Failed validating" not in out.stderr  # no schema dump
    assert not (tmp_path / "results").exists()


def test_bad_cell_fails_the_normalize_job_with_one_line(tmp_path, inputs):
    _write_matrix(tmp_path, _set_cell(5, 3, "high"))
    out = snakemake(tmp_path, write_config(tmp_path / "c.yaml", _config(tmp_path)))
    assert out.returncode != 0
    line = next(
        x for x in out.stderr.splitlines() if x.startswith("stacklm error in step normalize:")
    )
    assert "line 6" in line and "S02" in line and "high" in line
    assert not (tmp_path / "results" / "normalized" / "matrix").exists()


def test_gzip_matrix_with_tsv_name(tmp_path, inputs):
    raw = (tmp_path / "expr.tsv").read_bytes()
    (tmp_path / "expr.tsv").write_bytes(gzip.compress(raw))
    with pytest.raises(ConfigCheckError, match="gzip"):
        check_config(_config(tmp_path))
