"""stacklm.io: block reading of TSV/CSV(.gz)/Parquet matrices (bit-exact 17-digit values, missing
values, clear errors with line and column) and the memory-mapped binary matrix store."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

import stacklm.io.text as sio
from stacklm.io.formats import MatrixInputError, matrix_format
from stacklm.io.matrix import read_matrix, read_matrix_blocks, read_matrix_header
from stacklm.io.store import (
    BinaryMatrixWriter,
    chunk_bounds,
    open_binary_matrix,
    write_binary_matrix,
)


def _values(rng, g, n, na_fraction=0.05):
    """Awkward doubles: wide exponents, subnormals, signed zeros, exact integers, some NaN."""
    v = rng.normal(size=(g, n)) * 10.0 ** rng.integers(-300, 300, size=(g, n))
    v.flat[::7] = rng.normal(size=v.flat[::7].shape)
    v.flat[1::97] = 5e-324 * rng.integers(1, 1000, size=v.flat[1::97].shape)
    v.flat[2::101] = -0.0
    v.flat[3::103] = 2.0**53
    v[rng.random((g, n)) < na_fraction] = np.nan
    return v


def _write_text(path, ids, samples, values, sep="\t", na=("NA",), id_name="feature_id"):
    rng = np.random.default_rng(7)
    lines = [sep.join([id_name, *samples])]
    for fid, row in zip(ids, values, strict=True):
        cells = [na[rng.integers(len(na))] if np.isnan(x) else f"{x:.17g}" for x in row]
        lines.append(sep.join([fid, *cells]))
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    # NaN positions equal, and every other value identical bit for bit (incl. -0.0)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert np.array_equal(a[ok].view(np.int64), b[ok].view(np.int64))


@pytest.fixture(scope="module")
def matrix():
    rng = np.random.default_rng(2024)
    g, n = 1200, 9
    ids = np.array([f"feat{i:05d}" for i in range(g)], dtype=object)
    samples = [f"S{j}" for j in range(n)]
    return ids, samples, _values(rng, g, n)


# ----------------------------------------------------------------------------------------------
# reading: exactness, formats, blocks


@pytest.mark.parametrize(
    "name, sep",
    [("m.tsv", "\t"), ("m.tsv.gz", "\t"), ("m.txt", "\t"), ("m.csv", ","), ("m.csv.gz", ",")],
)
def test_text_round_trip_bit_exact(tmp_path, matrix, name, sep):
    ids, samples, values = matrix
    path = tmp_path / name
    _write_text(path, ids, samples, values, sep=sep, na=("NA", "NaN", "nan", ""))
    got_ids, got_samples, got = read_matrix(path)
    assert got_ids.tolist() == ids.tolist()
    assert got_samples == samples
    assert got.dtype == np.float64 and got.shape == values.shape
    _same_bits(got, values)
    assert read_matrix_header(path) == ("feature_id", samples)


def test_blocks_stream_in_order(tmp_path, matrix, monkeypatch):
    ids, samples, values = matrix
    path = tmp_path / "m.tsv.gz"
    _write_text(path, ids, samples, values)
    # small arrow batches so blocks are assembled from several pieces and split across them
    monkeypatch.setattr(sio, "ARROW_BLOCK_BYTES", 4096)
    blocks = list(read_matrix_blocks(path, block_rows=500))
    assert [b.first_row for b in blocks] == [0, 500, 1000]
    assert [len(b.feature_ids) for b in blocks] == [500, 500, 200]
    for b in blocks:
        assert b.values.shape == (len(b.feature_ids), len(samples))
        assert (
            b.feature_ids.tolist() == ids[b.first_row : b.first_row + len(b.feature_ids)].tolist()
        )
        _same_bits(b.values, values[b.first_row : b.first_row + len(b.feature_ids)])
    assert len(list(read_matrix_blocks(path, block_rows=1200))) == 1
    assert len(list(read_matrix_blocks(path, block_rows=10**6))) == 1


@pytest.mark.parametrize(("name", "rows"), [("expression", 1000), ("expression_na", 1002)])
def test_bladderbatch_matches_pandas_round_trip(name, rows):
    """The tests/data/bladder subset (and its NA version) read as pandas reads it, in blocks too."""
    path = TEST_DATA / "bladder" / f"{name}.tsv.gz"
    ref = read_table(path, index_col=0)
    ids, samples, values = read_matrix(path)
    assert ids.tolist() == ref.index.astype(str).tolist()
    assert samples == ref.columns.tolist()
    assert values.shape == (rows, 57)
    _same_bits(values, ref.to_numpy())
    blocks = list(read_matrix_blocks(path, block_rows=225))
    assert [b.first_row for b in blocks] == [0, 225, 450, 675, 900]
    _same_bits(np.concatenate([b.values for b in blocks]), ref.to_numpy())


def test_missing_spellings_and_quoting(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,"a b",c\n"x,1",NA,""\nNA,nan,NaN\n"y",1.5,"2"\n')
    ids, samples, values = read_matrix(path)
    assert ids.tolist() == ["x,1", "NA", "y"]  # an id spelled NA stays an id
    assert samples == ["a b", "c"]
    assert np.isnan(values[:2]).all() and values[2].tolist() == [1.5, 2.0]


def test_id_column_any_name_and_blank_lines(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text("probe\ts1\n\nf1\t1\n\nf2\t2\n\n")
    ids, samples, values = read_matrix(path)
    assert read_matrix_header(path) == ("probe", ["s1"])
    assert ids.tolist() == ["f1", "f2"] and values.ravel().tolist() == [1.0, 2.0]


@pytest.mark.parametrize("how", ["index", "first_string", "string_elsewhere", "int_ids"])
def test_parquet(tmp_path, matrix, how):
    ids, samples, values = matrix
    df = pd.DataFrame(values, columns=samples)
    path = tmp_path / "m.parquet"
    if how == "index":
        df.index = pd.Index(ids, name="probe")
        df.to_parquet(path)
        id_name = "probe"
    elif how == "first_string":
        df.insert(0, "gene", ids)
        df.to_parquet(path, index=False)
        id_name = "gene"
    elif how == "string_elsewhere":
        df.insert(3, "gene", ids)
        df.to_parquet(path, index=False)
        id_name = "gene"
    else:
        df.insert(0, "entrez", np.arange(len(ids)) + 100)
        df.to_parquet(path, index=False)
        id_name = "entrez"
    assert read_matrix_header(path) == (id_name, samples)
    got_ids, got_samples, got = read_matrix(path)
    expect_ids = [str(i + 100) for i in range(len(ids))] if how == "int_ids" else ids.tolist()
    assert got_ids.tolist() == expect_ids and got_samples == samples
    _same_bits(got, values)
    blocks = list(read_matrix_blocks(path, block_rows=700))
    assert [b.first_row for b in blocks] == [0, 700]
    _same_bits(np.concatenate([b.values for b in blocks]), values)


def test_parquet_integer_values_and_nulls(tmp_path):
    path = tmp_path / "d.pq"
    pd.DataFrame(
        {"id": ["a", "b"], "s1": pd.array([0, None], dtype="Int64"), "s2": [2, 1]}
    ).to_parquet(path, index=False)
    ids, samples, values = read_matrix(path)
    assert ids.tolist() == ["a", "b"] and samples == ["s1", "s2"]
    assert values[0].tolist() == [0.0, 2.0] and np.isnan(values[1, 0]) and values[1, 1] == 1.0


def test_matrix_format():
    assert matrix_format("x/y.tsv") == "tsv"
    assert matrix_format("y.TXT.gz") == "tsv"
    assert matrix_format("y.csv.gz") == "csv"
    assert matrix_format("y.parquet") == "parquet"
    assert matrix_format("y.pq") == "parquet"
    assert matrix_format("y.dat", fmt="csv") == "csv"
    with pytest.raises(MatrixInputError, match="cannot tell the matrix format"):
        matrix_format("y.dat")
    with pytest.raises(MatrixInputError, match="unknown matrix format"):
        matrix_format("y.tsv", fmt="xlsx")


# ----------------------------------------------------------------------------------------------
# errors: file, line, column and the fix


def _error(tmp_path, name, content, **kw) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(MatrixInputError) as info:
        read_matrix(path, **kw)
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            "id\ta\tb\nf1\t1\t2\n\nf2\t1\tabc\n",
            r"line 4 \(data row 2\), column 3 \('b'\): value 'abc' is not a number",
        ),
        (
            "id\ta\tb\nf1\t1\t2\nf2\tN/A\t1\n",
            r"line 3 \(data row 2\), column 2 \('a'\): value 'N/A' is not a number.*NA",
        ),
        (
            "id\ta\tb\nf1\t1\t2\nf2\t1\t-Inf\n",
            r"line 3 \(data row 2\), column 3 \('b'\): value '-Inf' is infinite",
        ),
        (
            "id\ta\tb\nf1\t1e400\t2\n",
            r"line 2 \(data row 1\), column 2 \('a'\): value '1e400' is infinite",
        ),
        ("id\ta\tb\nf1\t1\t2\nf2\t1\n", r"line 3 \(data row 2\): 2 fields but the header has 3"),
        ("id\ta\tb\nf1\t1\t2\t3\n", r"line 2 \(data row 1\): 4 fields but the header has 3"),
        (
            "a\tb\nf1\t1\t2\n",
            r"4 fields|3 fields but the header has 2.*lack a name for the feature id column",
        ),
        ("id\ta\ta\nf1\t1\t2\n", r"line 1: sample column 'a' appears twice \(columns 2 and 3\)"),
        ("id\tid\nf1\t1\n", r"feature id column name 'id' is also used as a sample column"),
        ("id\ta\t\nf1\t1\t2\n", r"line 1, column 3: empty sample name"),
        ("id\ta\tb\n", r"no data rows"),
        ("id\n", r"line 1: no sample columns"),
        ("id,a,b\nf1,1,2\n", r"no sample columns.*is the file CSV"),
        ("", r"the file is empty"),
        (
            "id\ta\nf1\t1\nf2\t2\nf1\t3\n",
            r"feature id 'f1' appears twice \(line 2 \(data row 1\) and line 4 \(data row 3\)\)",
        ),
        ("id\ta\nf1\t1\n\t2\n", r"line 3 \(data row 2\), column 1 \('id'\): empty feature id"),
    ],
)
def test_text_errors(tmp_path, content, expected):
    assert re.search(expected, _error(tmp_path, "m.tsv", content), re.DOTALL)


def test_error_hints(tmp_path):
    assert "decimals with a point" in _error(tmp_path, "c.tsv", "id\ta\nf1\t1,5\n")


def test_crlf_and_byte_order_mark(tmp_path):
    path = tmp_path / "w.tsv"
    path.write_bytes(b"\xef\xbb\xbfid\ta\tb\r\nf1\t1.5\tNA\r\nf2\t.5\t+1e-3\r\nf3\t5.\t-0")
    ids, samples, values = read_matrix(path)
    assert read_matrix_header(path) == ("id", ["a", "b"])
    assert ids.tolist() == ["f1", "f2", "f3"] and samples == ["a", "b"]
    assert np.array_equal(values, [[1.5, np.nan], [0.5, 1e-3], [5.0, -0.0]], equal_nan=True)


def test_csv_error_names_line_and_column(tmp_path):
    message = _error(tmp_path, "m.csv", "gene,s1,s2\ng1,1,2\ng2,x,2\n")
    assert "line 3 (data row 2), column 2 ('s1'): value 'x' is not a number" in message


def test_duplicate_ids_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(sio, "ARROW_BLOCK_BYTES", 4096)
    lines = ["id\ts1"] + [f"f{i}\t{i}" for i in range(3000)] + ["f17\t1"]
    path = tmp_path / "dup.tsv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        MatrixInputError, match=r"'f17' appears twice \(line 19 \(data row 18\) and line 3002"
    ):
        for _ in read_matrix_blocks(path, block_rows=100):
            pass


def test_bad_value_late_in_gzip_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sio, "ARROW_BLOCK_BYTES", 4096)
    lines = ["id\ts1\ts2"] + [f"f{i}\t{i}\t0.5" for i in range(5000)]
    lines[4321] = "f4320\t1\toops"
    path = tmp_path / "late.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(MatrixInputError, match=r"line 4322 \(data row 4321\), column 3 \('s2'\)"):
        read_matrix(path)


def test_compression_errors(tmp_path):
    good = b"id\ta\nf1\t1\n"
    msg = _error(tmp_path, "m.tsv", gzip.compress(good))
    assert "gzip-compressed but its name does not end in .gz; rename it to m.tsv.gz" in msg
    msg = _error(tmp_path, "m.tsv.gz", good)
    assert "name ends in .gz but the file is not compressed" in msg
    msg = _error(tmp_path, "m.tsv", b"BZh91AY&SY" + b"\x00" * 20)
    assert "bzip2-compressed; only gzip is supported" in msg
    big = gzip.compress(b"id\ta\n" + b"".join(b"f%d\t%d\n" % (i, i) for i in range(100000)))
    msg = _error(tmp_path, "t.tsv.gz", big[: len(big) // 2])
    assert "truncated or corrupt" in msg
    msg = _error(tmp_path, "m.tsv", b"id\ta\nf\xff\t1\n")
    assert "line 2 is not valid UTF-8" in msg
    msg = _error(tmp_path, "m.parquet", good)
    assert "not a Parquet file" in msg
    pq_bytes = tmp_path / "real.parquet"
    pd.DataFrame({"id": ["a"], "s": [1.0]}).to_parquet(pq_bytes, index=False)
    msg = _error(tmp_path, "p.tsv", pq_bytes.read_bytes())
    assert "this is a Parquet file" in msg
    with pytest.raises(MatrixInputError, match="file not found"):
        read_matrix(tmp_path / "absent.tsv")


def test_parquet_errors(tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"id": ["a", "b"], "s1": [1.0, np.inf]}).to_parquet(path, index=False)
    with pytest.raises(MatrixInputError, match=r"row 2, column 2 \('s1'\).*infinite"):
        read_matrix(path)
    pd.DataFrame({"id": ["a", "a"], "s1": [1.0, 2.0]}).to_parquet(path, index=False)
    with pytest.raises(MatrixInputError, match=r"'a' appears twice \(row 1 and row 2\)"):
        read_matrix(path)
    pd.DataFrame({"id": ["a"], "s1": [1.0], "s2": ["x"]}).to_parquet(path, index=False)
    with pytest.raises(MatrixInputError, match=r"column 3 \('s2'\) has type (large_)?string"):
        read_matrix(path)
    pd.DataFrame({"id": ["a"]}).to_parquet(path, index=False)
    with pytest.raises(MatrixInputError, match="no sample columns"):
        read_matrix(path)
    pd.DataFrame({"id": pd.Series([], dtype=str), "s": pd.Series([], dtype=float)}).to_parquet(
        path, index=False
    )
    with pytest.raises(MatrixInputError, match="no data rows"):
        read_matrix(path)
    path.write_bytes(b"PAR1garbagegarbagePAR1")
    with pytest.raises(MatrixInputError, match="cannot be read as Parquet"):
        read_matrix(path)


# ----------------------------------------------------------------------------------------------
# binary store


def test_binary_store_round_trip(tmp_path, matrix):
    ids, samples, values = matrix
    store = tmp_path / "norm" / "matrix.bin"
    with BinaryMatrixWriter(store, samples) as writer:
        for start, stop in chunk_bounds(len(ids), 5):
            writer.append(ids[start:stop], values[start:stop])
    assert sorted(p.name for p in store.iterdir()) == [
        "features.txt",
        "meta.json",
        "samples.txt",
        "values.f64",
    ]
    assert [p.name for p in store.parent.iterdir()] == ["matrix.bin"]  # no temp dirs left
    m = open_binary_matrix(store)
    assert m.n_features == len(ids) and m.n_samples == len(samples)
    assert m.feature_ids.tolist() == ids.tolist() and m.samples == samples
    assert isinstance(m.values, np.memmap) and not m.values.flags.writeable
    _same_bits(m.values, values)
    part = m.rows(100, 250)
    assert part.flags.writeable and not isinstance(part, np.memmap)
    _same_bits(part, values[100:250])
    # a fit job can also map just its rows by hand: raw little-endian float64, row-major
    raw = np.memmap(store / "values.f64", dtype="<f8", mode="r", offset=8 * 9 * 100, shape=(150, 9))
    _same_bits(raw, values[100:250])


def test_binary_store_replaces_and_is_atomic(tmp_path):
    store = tmp_path / "m.bin"
    write_binary_matrix(store, ["a", "b"], ["s1"], np.array([[1.0], [2.0]]))
    write_binary_matrix(store, ["c"], ["s1", "s2"], np.array([[3.0, 4.0]]))
    m = open_binary_matrix(store)
    assert m.feature_ids.tolist() == ["c"] and m.values.tolist() == [[3.0, 4.0]]
    with pytest.raises(RuntimeError, match="boom"):
        with BinaryMatrixWriter(tmp_path / "new.bin", ["s1"]) as writer:
            writer.append(["x"], [[1.0]])
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]
    with pytest.raises(ValueError, match="already written"):
        with BinaryMatrixWriter(tmp_path / "dup.bin", ["s1"]) as writer:
            writer.append(["x"], [[1.0]])
            writer.append(["x"], [[2.0]])
    with pytest.raises(ValueError, match=r"values must be 1 x 1"):
        write_binary_matrix(tmp_path / "bad.bin", ["x"], ["s1"], np.zeros((1, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        write_binary_matrix(tmp_path / "other", ["x"], ["s1"], np.zeros((1, 1)))
    assert (tmp_path / "other" / "keep.txt").exists()


def test_binary_store_empty_and_inconsistent(tmp_path):
    store = tmp_path / "e.bin"
    write_binary_matrix(store, [], ["s1", "s2"], np.zeros((0, 2)))
    m = open_binary_matrix(store)
    assert m.n_features == 0 and m.values.shape == (0, 2) and m.rows(0, 0).shape == (0, 2)
    (store / "values.f64").write_bytes(b"\x00" * 8)
    with pytest.raises(MatrixInputError, match="inconsistent"):
        open_binary_matrix(store)
    with pytest.raises(MatrixInputError, match="no meta.json"):
        open_binary_matrix(tmp_path)


def test_chunk_bounds():
    assert chunk_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert chunk_bounds(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert chunk_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    assert chunk_bounds(0, 2) == [(0, 0), (0, 0)]
    for g, k in [(22283, 8), (200_000, 7), (5, 5)]:
        b = chunk_bounds(g, k)
        sizes = [stop - start for start, stop in b]
        assert len(b) == k and b[0][0] == 0 and b[-1][1] == g
        assert all(b[i][1] == b[i + 1][0] for i in range(k - 1)) and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        chunk_bounds(10, 0)
