"""Parquet input read the same whatever its row groups: whole groups, column groups, batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
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
