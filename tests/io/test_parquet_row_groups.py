"""Parquet input read the same whatever its row groups: whole groups, column groups, batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import stacklm.io.parquet as parquet
from stacklm.io.matrix import read_matrix_blocks


@pytest.fixture
def wide_file(tmp_path):
    rng = np.random.default_rng(3)
    g, n = 3000, 7
    values = rng.standard_normal((g, n))
    values[rng.random((g, n)) < 0.05] = np.nan
    cols = {"feature_id": pa.array([f"f{i}" for i in range(g)])}
    cols.update({f"s{j}": pa.array(values[:, j], from_pandas=True) for j in range(n - 1)})
    cols[f"s{n - 1}"] = pa.array(np.arange(g, dtype=np.int32))  # an integer sample column
    values[:, n - 1] = np.arange(g)
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table(cols), path, row_group_size=1300)  # groups of 1300, 1300, 400
    return path, values


def _read(path, block_rows):
    blocks = list(read_matrix_blocks(path, block_rows=block_rows))
    ids = np.concatenate([b.feature_ids for b in blocks])
    return ids, np.vstack([b.values for b in blocks]), [len(b.feature_ids) for b in blocks]


@pytest.mark.parametrize("way", ["whole groups", "column groups", "batches"])
def test_every_way_of_reading_row_groups_gives_the_same_blocks(wide_file, way, monkeypatch):
    path, values = wide_file
    monkeypatch.setattr(parquet, "COLUMN_GROUP", 3)  # 7 columns: groups of 3, 3, 1
    block_rows = 1000 if way == "whole groups" else 200  # 1300 > 4 x 200: not read whole
    if way == "batches":
        monkeypatch.setattr(parquet, "ROW_GROUP_MAX_VALUES", 1000)
    ids, got, sizes = _read(path, block_rows)
    assert ids.tolist() == [f"f{i}" for i in range(3000)]
    np.testing.assert_array_equal(got, values)  # NaN in the same places
    assert sizes == [block_rows] * (3000 // block_rows) + (
        [3000 % block_rows] if 3000 % block_rows else []
    )


def test_a_missing_id_is_named_with_its_row_in_the_column_group_path(tmp_path, monkeypatch):
    ids = pa.array([f"f{i}" for i in range(999)] + [None] + [f"f{i}" for i in range(1000, 1200)])
    table = pa.table({"id": ids, "a": pa.array(np.ones(1200)), "b": pa.array(np.ones(1200))})
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=1200)
    with pytest.raises(ValueError, match=r"row 1000: the feature id \('id'\) is missing"):
        list(read_matrix_blocks(tmp_path / "m.parquet", block_rows=100))


def test_a_ring_of_buffers_gives_the_same_blocks_and_reuses_the_arrays(wide_file):
    """buffers=2: the values of the blocks are the same as with a new array per block (read each
    before the next but one), and block k + 2 is filled into block k's array."""
    path, values = wide_file
    got, arrays = [], []
    for block in read_matrix_blocks(path, block_rows=700, buffers=2):
        got.append(block.values.copy())
        arrays.append(block.values)
    np.testing.assert_array_equal(np.vstack(got), values)
    # 3000 rows: 4 full blocks (in two arrays, used in turn) and the last 200 rows copied
    assert [len(g) for g in got] == [700, 700, 700, 700, 200]
    assert arrays[2] is arrays[0] and arrays[3] is arrays[1] and arrays[1] is not arrays[0]
    with pytest.raises(ValueError, match="buffers must be 0"):
        list(read_matrix_blocks(path, buffers=1))


def _arrow_float64(a) -> np.ndarray:
    """What Arrow's own conversion gives (NaN where null)."""
    return np.asarray(a.to_numpy(zero_copy_only=False), dtype=np.float64)


def test_columns_read_from_the_buffers_equal_arrows_conversion():
    """_as_float64 reads Arrow's buffers (its to_numpy imports pandas): the same values, NaN
    where null, for sliced, chunked, cast and all-null columns; chunks without nulls unchanged
    and read-only (the caller copies them)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(1000)
    mask = rng.random(1000) < 0.1
    with_nulls = pa.array(x, mask=mask)
    cases = {
        "plain": pa.array(x),
        "nulls": with_nulls,
        "sliced nulls": with_nulls.slice(37, 500),
        "sliced": pa.array(x).slice(3, 11),
        "chunked": pa.chunked_array(
            [with_nulls.slice(5, 100), pa.array(x[:7]), pa.array([], pa.float64())]
        ),
        "empty chunked": pa.chunked_array([], pa.float64()),
        "int32": pa.array(np.arange(50, dtype=np.int32)),
        "int64 with null": pa.array([1, None, 3], pa.int64()),
        "bool": pa.array([True, False, None]),
        "all null": pa.array([None, None], pa.float64()),
        "null type": pa.array([None, None, None]),
        "float32": pa.array(np.float32([0.1, 2.5])),
    }
    for name, col in cases.items():
        got = parquet._as_float64(col)
        want = _arrow_float64(pc.cast(col, pa.float64()) if col.type != pa.float64() else col)
        assert got.dtype == np.float64, name
        np.testing.assert_array_equal(got, want, err_msg=name)  # NaN where null, bit for bit
    plain = parquet._as_float64(cases["plain"])
    assert not plain.flags.writeable and np.shares_memory(
        plain, np.frombuffer(cases["plain"].buffers()[1], dtype=np.float64)
    )


def test_a_fit_job_loads_no_pandas(tmp_path):
    """A direct Parquet fit job, run to the end, has not imported pandas (Arrow's to_numpy and
    pa.array would, 0.2 s of each fit job)."""
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    g, n = 300, 6
    values = rng.standard_normal((g, n))
    values[rng.random((g, n)) < 0.05] = np.nan
    cols = {"feature_id": pa.array([f"f{i}" for i in range(g)])}
    cols.update({f"s{j}": pa.array(values[:, j], from_pandas=True) for j in range(n)})
    pq.write_table(pa.table(cols), tmp_path / "m.parquet", row_group_size=100)
    (tmp_path / "design.tsv").write_text(
        "sample_id\tIntercept\tx\n" + "".join(f"s{j}\t1\t{j % 2}\n" for j in range(n))
    )
    code = f"""
import sys
from stacklm.workflow.direct import direct_fit_chunk
from stacklm.workflow.pipeline import read_design_table
d = read_design_table({str(tmp_path / "design.tsv")!r})
out = [{str(tmp_path)!r} + f"/{{k}}.npz" for k in ("fit", "cp", "in")]
n = direct_fit_chunk({str(tmp_path / "m.parquet")!r}, d, 1, 2, *out, filters={{"max_missing": 0.5}})
print(n, "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows, loaded = out.stdout.split()
    assert int(rows) == 100 and loaded == "False"  # chunk 1: the last row group
