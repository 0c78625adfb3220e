"""load_fits reads chunk fits straight into the concatenated arrays: the fit of concat_fits of
load_fit, field for field (ids of different lengths, an odd chunk stored compressed), also into
column-major matrices read through a small buffer, and refuses a corrupt or truncated chunk."""

import numpy as np
import pytest

from stacklm.limma import fitstore
from stacklm.limma.fitstore import concat_fits, load_fit, load_fits, save_fit
from stacklm.limma.lmfit import lm_fit


def _chunks(tmp_path, n_chunks=3):
    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(12), rng.normal(size=12), np.repeat([0.0, 1.0], 6)])
    paths = []
    for c in range(n_chunks):
        values = rng.normal(size=(40 + 7 * c, 12))
        values[0, 3] = np.nan  # unequal residual df
        ids = [f"f{c}_{i}" + "x" * c for i in range(values.shape[0])]  # ids longer per chunk
        fit = lm_fit(values, design, feature_ids=ids)
        path = tmp_path / f"chunk_{c}.npz"
        with open(path, "wb") as fh:
            save_fit(fit, fh)
        paths.append(path)
    return paths


def _assert_same_fit(a, b):
    for name in ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean", "feature_ids",
                 "cov_coefficients"):  # fmt: skip
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name
    assert a.coef_names == b.coef_names and a.design_names == b.design_names
    assert (a.design is None and b.design is None) or np.array_equal(a.design, b.design)


@pytest.mark.parametrize("threads", [1, 2])
def test_load_fits_is_concat_of_load_fit(tmp_path, threads):
    paths = _chunks(tmp_path)
    want = concat_fits([load_fit(p) for p in paths])
    _assert_same_fit(load_fits(paths, threads=threads), want)


def _empty_chunk(path) -> None:
    """Rewrite the chunk fit at ``path`` with no rows (as a chunk whose row groups are empty)."""
    fit = load_fit(path)
    empty = fit.replace(**{k: getattr(fit, k)[:0] for k in ("coefficients", "stdev_unscaled",
                           "sigma", "df_residual", "amean", "feature_ids")})  # fmt: skip
    with open(path, "wb") as fh:
        save_fit(empty, fh)


def test_an_empty_chunk_is_read(tmp_path):
    paths = _chunks(tmp_path, 2)
    _empty_chunk(paths[0])
    want = concat_fits([load_fit(p) for p in paths])
    _assert_same_fit(load_fits(paths, threads=2), want)


def test_a_compressed_chunk_is_read_as_load_fit_reads_it(tmp_path):
    paths = _chunks(tmp_path)
    with np.load(paths[1]) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(paths[1], **arrays)
    want = concat_fits([load_fit(p) for p in paths])
    _assert_same_fit(load_fits(paths, threads=2), want)


def test_a_damaged_chunk_is_refused(tmp_path):
    paths = _chunks(tmp_path, 2)
    data = bytearray(paths[1].read_bytes())
    at = data.find(b"coefficients.npy")
    data[at + 400] ^= 0xFF  # a byte of the coefficients' values
    paths[1].write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"chunk_1.npz: coefficients is corrupt"):
        load_fits(paths)


@pytest.fixture
def small_buffer(monkeypatch):
    """A read buffer of 2 rows of 3 coefficients (and 8 of the 1-D arrays): many blocks per
    chunk, the last one shorter."""
    monkeypatch.setattr(fitstore, "READ_BLOCK_BYTES", 64)


@pytest.mark.parametrize("threads", [1, 2])
def test_column_major_fit_has_the_same_values(tmp_path, threads, small_buffer):
    paths = _chunks(tmp_path)
    want = concat_fits([load_fit(p) for p in paths])
    got = load_fits(paths, threads=threads, order="F")
    _assert_same_fit(got, want)  # tobytes compares the values (in row-major order)
    for name in ("coefficients", "stdev_unscaled"):
        m = getattr(got, name)
        assert m.flags.f_contiguous and not m.flags.c_contiguous, name
        assert m[:, 1].flags.c_contiguous, name  # a column is contiguous: a view for tables


def test_column_major_fit_with_an_empty_chunk(tmp_path, small_buffer):
    paths = _chunks(tmp_path, 2)
    _empty_chunk(paths[1])
    want = concat_fits([load_fit(p) for p in paths])
    _assert_same_fit(load_fits(paths, order="F"), want)


def test_a_damaged_chunk_is_refused_when_read_through_the_buffer(tmp_path, small_buffer):
    paths = _chunks(tmp_path, 2)
    data = bytearray(paths[1].read_bytes())
    at = data.find(b"stdev_unscaled.npy")
    data[at + 900] ^= 0xFF  # a byte of the values, in a later block
    paths[1].write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"chunk_1.npz: stdev_unscaled is corrupt"):
        load_fits(paths, order="F")
    with pytest.raises(ValueError, match="order must be 'C' or 'F'"):
        load_fits(paths, order="A")
