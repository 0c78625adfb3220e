"""Fit jobs reading a Parquet matrix directly (stacklm/workflow/direct.py): the same fits and the
same normalize summary as the store path, its errors, and when the workflow takes it."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from workflow_helpers import snakemake, write_config

from stacklm.diagnostics.crossproducts import load_cross_products
from stacklm.io.formats import MatrixInputError
from stacklm.limma.fitstore import concat_fits, load_fit
from stacklm.spec import AnalysisSpec
from stacklm.workflow.chunks import direct_chunk_groups, direct_fit_reason
from stacklm.workflow.config import validate_config
from stacklm.workflow.direct import (
    check_unique_feature_ids,
    direct_distributions,
    direct_fit_chunk,
    direct_normalize_summary,
    distribution_stride,
    read_input_pieces,
)
from stacklm.workflow.pipeline import fit_chunk, normalize_matrix
from stacklm.workflow.provenance import write_checksum

N = 16
G = 2600
ROW_GROUP = 400  # 7 row groups


def _matrix(seed=5, missing_rows=40):
    rng = np.random.default_rng(seed)
    samples = [f"S{i:02d}" for i in range(N)]
    values = 2 ** rng.normal(7, 1, (G, N))
    values[rng.random(values.shape) < 0.02] = np.nan
    # rows the max_missing filter removes, spread over the row groups
    gone = rng.choice(G, missing_rows, replace=False)
    values[gone, : N // 2 + 2] = np.nan
    ids = np.array([f"f{i:05d}" for i in range(G)], dtype=object)
    return ids, samples, values


def _write_parquet(path, ids, samples, values, row_group=ROW_GROUP):
    table = pa.table(
        {"feature_id": pa.array(list(ids), pa.string())}
        | {s: pa.array(values[:, j]) for j, s in enumerate(samples)}
    )
    pq.write_table(table, path, row_group_size=row_group)
    return path


def _design(samples):
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(N), np.repeat([0.0, 1.0], N // 2), rng.normal(size=N)])
    return pd.DataFrame(X, index=samples, columns=["(Intercept)", "groupb", "age"])


SETTINGS = {
    "input_scale": "expression",
    "beta_epsilon": 1e-6,
    "normalize": {"log2": True, "offset": 1.0, "method": "none"},
    "filters": {"max_missing": 0.5},
}


def _direct(tmp_path, path, design, chunks):
    fits, crosses, pieces = [], [], []
    for c in range(chunks):
        paths = [tmp_path / f"d{c}.npz", tmp_path / f"d{c}.cp.npz", tmp_path / f"d{c}.in.npz"]
        direct_fit_chunk(path, design, c, chunks, *paths, **SETTINGS)
        fits.append(load_fit(paths[0]))
        crosses.append(load_cross_products(paths[1]))
        pieces.append(paths[2])
    return concat_fits(fits), crosses, pieces


def _store(tmp_path, path, design, chunks):
    store = tmp_path / "store"
    s = SETTINGS
    summary = normalize_matrix(
        path, store, input_scale=s["input_scale"], beta_epsilon=s["beta_epsilon"],
        normalize=s["normalize"], filters=s["filters"],
    )  # fmt: skip
    fits, crosses = [], []
    for c in range(chunks):
        out = tmp_path / f"s{c}.npz"
        fit_chunk(store, design, c, chunks, out, tmp_path / f"s{c}.cp.npz")
        fits.append(load_fit(out))
        crosses.append(load_cross_products(tmp_path / f"s{c}.cp.npz"))
    return concat_fits(fits), crosses, summary


def _total(crosses):
    total = crosses[0]
    for c in crosses[1:]:
        total = total + c
    return total


FIELDS = ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean")


def test_direct_fits_equal_the_store_path_and_its_summary(tmp_path):
    ids, samples, values = _matrix()
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    design = _design(samples)
    direct, _, pieces = _direct(tmp_path, path, design, chunks=3)
    stored, _, summary = _store(tmp_path, path, design, chunks=2)
    assert list(direct.feature_ids) == list(stored.feature_ids)
    assert direct.n_features == G - 40 == summary["n_features"]
    for name in FIELDS:
        a, b = np.asarray(getattr(direct, name)), np.asarray(getattr(stored, name))
        assert a.shape == b.shape and np.isfinite(a).sum() > 0.9 * a.size
        # the same float64 rows fitted the same way; row blocks and chunks do not change a row
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
    got = direct_normalize_summary(
        path, pieces, SETTINGS["input_scale"], SETTINGS["normalize"], SETTINGS["filters"]
    )
    assert got == summary
    write_checksum(path, tmp_path / "checksum.json")
    checked = direct_normalize_summary(path, pieces, checksum_path=tmp_path / "checksum.json", **{
        "input_scale": SETTINGS["input_scale"], "normalize": SETTINGS["normalize"],
        "filters": SETTINGS["filters"]})  # fmt: skip
    record = checked.pop("input_checksums")["matrix"]
    assert checked == summary and record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["bytes"] == path.stat().st_size
    assert got["removed_by_filter"] == {"max_missing": 40}


def test_direct_cross_products_equal_the_store_path_without_filtered_rows(tmp_path):
    ids, samples, values = _matrix(missing_rows=0)
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    design = _design(samples)
    _, direct, _ = _direct(tmp_path, path, design, chunks=2)
    _, stored, _ = _store(tmp_path, path, design, chunks=3)
    a, b = _total(direct), _total(stored)
    assert a.n_features == b.n_features == G
    for name in ("input", "fitted", "residuals"):
        np.testing.assert_allclose(a.matrices[name], b.matrices[name], rtol=1e-12, atol=1e-9)
        assert a.sums_of_squares[name] == pytest.approx(b.sums_of_squares[name], rel=1e-12)


def test_distribution_sample_is_every_kth_input_row_and_its_kept_rows(tmp_path):
    ids, samples, values = _matrix()
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    _, _, pieces = _direct(tmp_path, path, _design(samples), chunks=3)
    found = read_input_pieces(pieces)
    k = distribution_stride(G, N)
    rows = np.arange(0, G, k)
    expected = np.log2(values[rows] + 1)
    np.testing.assert_array_equal(found["sample_values"], expected)
    kept = np.isnan(values[rows]).mean(axis=1) <= 0.5
    np.testing.assert_array_equal(found["sample_kept"], kept)
    assert found["n_read"] == G and found["n_kept"] == G - 40
    densities, quantiles = direct_distributions(pieces)
    assert set(densities["stage"]) == {"input", "normalized"}
    q = quantiles.set_index(["stage", "sample"])
    assert q.loc[("input", "S00"), "n_values"] == np.isfinite(expected[:, 0]).sum()
    assert q.loc[("normalized", "S00"), "n_values"] == np.isfinite(expected[kept, 0]).sum()
    assert q.loc[("input", "S03"), "q50"] == pytest.approx(np.nanmedian(expected[:, 3]))


def test_chunks_take_whole_row_groups_evenly(tmp_path):
    ids, samples, values = _matrix()
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    # 7 row groups of 400 rows (the last 200) in 3 chunks
    assert direct_chunk_groups(path, 3) == [(0, 2, 0), (2, 5, 800), (5, 7, 2000)]
    assert direct_chunk_groups(path, 7)[-1] == (6, 7, 2400)
    with pytest.raises(ValueError, match="7 row groups cannot make 8 chunks"):
        direct_chunk_groups(path, 8)


def test_a_duplicated_id_in_another_chunk_is_refused_with_both_rows(tmp_path):
    ids, samples, values = _matrix()
    unique = _write_parquet(tmp_path / "unique.parquet", ids, samples, values)
    assert check_unique_feature_ids(unique) == len(ids) == 2600  # every row group's ids
    ids = ids.copy()
    ids[2500] = ids[10]  # row groups 0 and 6: different chunks
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    with pytest.raises(MatrixInputError, match=r"'f00010' appears twice \(row 11 and row 2501\)"):
        check_unique_feature_ids(path)


def test_an_infinite_value_is_refused_with_its_row_and_column(tmp_path):
    ids, samples, values = _matrix()
    values = values.copy()
    values[1234, 5] = np.inf
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    design = _design(samples)
    chunk = 1  # rows 800-1999
    paths = [tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"]
    with pytest.raises(MatrixInputError, match=r"row 1235.*column 7 \('S05'\).*infinite"):
        direct_fit_chunk(path, design, chunk, 3, *paths, **SETTINGS)
    assert not any(p.exists() for p in paths)  # nothing half-written


def _config(path, **extra):
    config = {
        "matrix": str(path),
        "samples": "samples.tsv",
        "chunks": 2,
        "analyses": {"g": {"formula": "~ group", "test": ["groupb"]}},
    }
    return validate_config(config | extra)


def _specs(config):
    return {n: AnalysisSpec.from_settings(n, s) for n, s in config["analyses"].items()}


def test_when_the_fit_jobs_read_the_matrix_directly(tmp_path):
    ids, samples, values = _matrix()
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    tsv = tmp_path / "m.tsv"
    tsv.write_text("feature_id\tS00\nf1\t1\n")
    one_group = _write_parquet(tmp_path / "one.parquet", ids, samples, values, row_group=G)

    def reason(p, chunks=2, **extra):
        config = _config(p, **extra)
        return direct_fit_reason(config, _specs(config), chunks)

    assert reason(path) is None
    assert reason(path, fit_input="store") == "fit_input: store"
    assert reason(tsv) == "not a Parquet matrix"
    assert reason(one_group) == "fewer row groups than chunks"
    assert reason(one_group, chunks=1) is None
    assert reason(path, precision="float32") == "precision float32"
    assert reason(path, normalize={"method": "quantile"}) == "between-sample normalization"
    assert reason(path, input_scale="counts") == "counts"
    sv = {"g": {"formula": "~ group", "test": ["groupb"], "surrogate_variables": 2}}
    assert reason(path, analyses=sv) == "analysis g needs the normalized matrix"
    block = {"g": {"formula": "~ group", "test": ["groupb"], "block": "donor"}}
    assert reason(path, analyses=block) == "analysis g needs the normalized matrix"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The workflow on a Parquet matrix of 7 row groups, fitted directly and from the store."""
    tmp = tmp_path_factory.mktemp("direct")
    ids, samples, values = _matrix()
    path = _write_parquet(tmp / "m.parquet", ids, samples, values)
    sheet = pd.DataFrame({"sample_id": samples, "group": np.repeat(["a", "b"], N // 2)})
    sheet.to_csv(tmp / "samples.tsv", sep="\t", index=False)
    out = {}
    for name, extra in (("direct", {}), ("store", {"fit_input": "store"})):
        work = tmp / name
        work.mkdir()
        config = {
            "matrix": str(path),
            "samples": str(tmp / "samples.tsv"),
            "chunks": 3,
            "normalize": {"log2": True},
            "analyses": {"g": {"formula": "~ group", "test": ["groupb"]}},
            **extra,
        }
        res = snakemake(work, write_config(work / "c.yaml", config), "-q", "rules")
        assert res.returncode == 0, res.stderr[-3000:]
        out[name] = work
    return out


def test_workflow_results_equal_with_and_without_the_store(runs):
    a = pq.read_table(runs["direct"] / "results" / "g" / "results.parquet")
    b = pq.read_table(runs["store"] / "results" / "g" / "results.parquet")
    assert a.num_rows == G - 40
    assert a.column_names == b.column_names
    for name in a.column_names:
        x, y = a[name].to_numpy(zero_copy_only=False), b[name].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
        else:
            assert (x == y).all(), name
    sa, sb = (json.loads((runs[k] / "results/g/summary.json").read_text()) for k in runs)
    assert sa["normalization"] == sb["normalization"]
    assert sa["normalization"]["removed_by_filter"] == {"max_missing": 40}
    assert (
        sa["provenance"]["inputs"]["matrix"]["sha256"]
        == (sb["provenance"]["inputs"]["matrix"]["sha256"])
    )
    na, nb = (json.loads((runs[k] / "results/normalized/summary.json").read_text()) for k in runs)
    assert na == nb  # the checksum too (the direct path's matrix_checksum job)
    assert (
        na["input_checksums"]["matrix"]["sha256"]
        == hashlib.sha256((runs["direct"].parent / "m.parquet").read_bytes()).hexdigest()
    )


def test_workflow_direct_path_writes_no_store_and_keeps_normalize_outputs(runs):
    direct, store = runs["direct"], runs["store"]
    assert not (direct / "results" / "normalized" / "matrix").exists()
    assert (store / "results" / "normalized" / "matrix").is_dir()
    for name in ("sample_densities.tsv", "sample_quantiles.tsv"):
        table = pd.read_csv(direct / "results" / "normalized" / name, sep="\t")
        assert set(table["stage"]) == {"input", "normalized"}
        assert table["sample"].nunique() == N
    assert (direct / "results" / "g" / "plots" / "sample_density.png").stat().st_size > 0


def test_a_chunk_of_empty_row_groups_writes_an_empty_fit(tmp_path):
    rng = np.random.default_rng(3)
    samples = [f"S{i}" for i in range(6)]

    def table(a, b):
        ids = pa.array([f"f{i}" for i in range(a, b)], pa.string())
        return pa.table(
            {"feature_id": ids} | {s: pa.array(rng.normal(size=b - a)) for s in samples}
        )

    path = tmp_path / "gaps.parquet"
    with pq.ParquetWriter(path, table(0, 1).schema) as writer:  # row groups of 50, 0 and 30 rows
        for a, b in ((0, 50), (50, 50), (50, 80)):
            writer.write_table(table(a, b))
    design = pd.DataFrame({"(Intercept)": 1.0, "x": np.arange(6.0)}, index=samples)
    kept, pieces = [], []
    for c in range(3):
        paths = [tmp_path / f"{c}.npz", tmp_path / f"{c}.cp.npz", tmp_path / f"{c}.in.npz"]
        kept.append(direct_fit_chunk(path, design, c, 3, *paths))
        assert load_fit(paths[0]).n_features == kept[-1]
        pieces.append(paths[2])
    assert kept == [50, 0, 30]
    summary = direct_normalize_summary(path, pieces)
    assert summary["n_input_features"] == summary["n_features"] == 80


def _progress_lines(caplog, chunk):
    """(done, total, percent text) of the chunk's progress lines, in order."""
    out = []
    for r in caplog.records:
        text = r.getMessage()
        if text.startswith(f"chunk {chunk}: ") and " features (" in text:
            counts, percent = text.split(": ")[1].split(" features ")
            done, _, total = counts.split()
            out.append((int(done), int(total), percent))
    return out


@pytest.mark.parametrize("path_kind", ["direct", "store"])
def test_fit_jobs_log_their_progress(tmp_path, monkeypatch, caplog, path_kind):
    """A fit job logs how many of its rows are fitted after each row block, at most every
    PROGRESS_SECONDS (0 here: every block; the default 10 s leaves a short job's log as it was)."""
    import stacklm.workflow.direct as direct
    import stacklm.workflow.pipeline as pipeline
    import stacklm.workflow.progress as progress

    ids, samples, values = _matrix(missing_rows=0)
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    design = _design(samples)
    fit = _direct if path_kind == "direct" else _store
    monkeypatch.setattr(direct, "DIRECT_BLOCK_VALUES", 150 * N)  # 150-row blocks
    monkeypatch.setattr(pipeline, "FIT_BLOCK_VALUES", 150 * N)
    caplog.set_level("INFO", logger="stacklm")
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 1e9)
    fit(tmp_path, path, design, chunks=2)
    assert _progress_lines(caplog, 0) == _progress_lines(caplog, 1) == []  # not yet time
    caplog.clear()
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    fit(tmp_path, path, design, chunks=2)
    if path_kind == "direct":  # chunk 1: row groups 4-6 (400, 400, 200 rows), 150-row blocks
        total = G - direct_chunk_groups(path, 2)[1][2]
        groups = ((0, 400), (400, 400), (800, 200))
        done = sorted({min(a + d, a + size) for a, size in groups for d in (150, 300, 450)})
    else:  # chunk 1 of the store: rows 1,300-2,599 in 150-row blocks
        total = G - G // 2
        done = [*range(150, total, 150), total]
    assert total == (1000 if path_kind == "direct" else 1300)
    expected = [(d, total, f"({100 * d / total:.0f}%)") for d in done]
    assert _progress_lines(caplog, 1) == expected


def test_a_duplicated_id_within_a_chunk_is_refused_by_the_whole_file_check(tmp_path):
    """The fit jobs leave the ids' uniqueness to the whole-file check (moderate and normalize run
    it before anything is written from the fits): a duplicate inside one chunk is refused there,
    with both rows, as one in different chunks."""
    ids, samples, values = _matrix()
    ids = ids.copy()
    ids[130] = ids[20]  # row group 0: the same chunk
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    _, _, pieces = _direct(tmp_path, path, _design(samples), chunks=3)
    with pytest.raises(MatrixInputError, match=r"'f00020' appears twice \(row 21 and row 131\)"):
        direct_normalize_summary(path, pieces, **{
            "input_scale": SETTINGS["input_scale"], "normalize": SETTINGS["normalize"],
            "filters": SETTINGS["filters"]})  # fmt: skip


def test_design_table_reads_the_numbers_read_design_reads(tmp_path):
    """design.tsv read as arrays (the fit jobs, without pandas) and as a DataFrame: the same
    samples, columns and float64 values bit for bit (17-digit values, as SVs have, included), and
    the same fits from either."""
    from stacklm.io.outputs import write_tsv
    from stacklm.workflow.pipeline import read_design, read_design_table

    ids, samples, values = _matrix()
    design = _design(samples)
    rng = np.random.default_rng(7)
    design["SV1"] = rng.normal(size=N) * np.pi  # full-precision values
    design.loc["S03", "SV1"] = 5e-324  # the smallest subnormal, written as 5e-324
    write_tsv(design.rename_axis("sample_id"), tmp_path / "design.tsv", index=True)
    frame = read_design(tmp_path / "design.tsv")
    table = read_design_table(tmp_path / "design.tsv")
    assert table.samples == list(frame.index) == samples
    assert table.columns == list(frame.columns) == ["(Intercept)", "groupb", "age", "SV1"]
    assert table.values.dtype == np.float64
    np.testing.assert_array_equal(table.values, frame.to_numpy())
    np.testing.assert_array_equal(table.values, design.to_numpy())  # as written
    path = _write_parquet(tmp_path / "m.parquet", ids, samples, values)
    out = [[tmp_path / f"{k}{c}" for c in ("f.npz", "c.npz", "i.npz")] for k in "ab"]
    direct_fit_chunk(path, frame, 1, 3, *out[0], **SETTINGS)
    direct_fit_chunk(path, table, 1, 3, *out[1], **SETTINGS)
    a, b = load_fit(out[0][0]), load_fit(out[1][0])
    assert list(a.coef_names) == list(b.coef_names) == table.columns
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
