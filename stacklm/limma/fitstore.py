"""Fits of row chunks: concatenated in feature order, saved and loaded as ``.npz`` files."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from stacklm.limma.marraylm import LinearModelFit
from stacklm.threads import executor

# --------------------------------------------------------------------------------------------
# chunks
# --------------------------------------------------------------------------------------------
_ROW_FIELDS = ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean", "feature_ids")


def concat_fits(fits: Sequence[LinearModelFit]) -> LinearModelFit:
    """Stack fits of row chunks (same design) into one fit, in the given order, before moderation."""
    if not fits:
        raise ValueError("no fits to concatenate")
    first = fits[0]
    for f in fits[1:]:
        if f.coef_names != first.coef_names or not np.array_equal(
            f.cov_coefficients, first.cov_coefficients
        ):
            raise ValueError("fits to concatenate must come from the same design and coefficients")
        if f.t is not None:
            raise ValueError("concatenate fits before moderation (e_bayes is global)")
    rows = {name: np.concatenate([getattr(f, name) for f in fits]) for name in _ROW_FIELDS}
    return first.replace(**rows)


def save_fit(fit: LinearModelFit, path) -> None:
    """Write the un-moderated fit as a compact binary ``.npz`` (float64 arrays + names)."""
    np.savez(
        path,
        coefficients=fit.coefficients,
        stdev_unscaled=fit.stdev_unscaled,
        sigma=fit.sigma,
        df_residual=fit.df_residual,
        amean=fit.amean,
        cov_coefficients=fit.cov_coefficients,
        coef_names=np.array(fit.coef_names, dtype=str),
        feature_ids=np.asarray(fit.feature_ids).astype(str),
        design=fit.design if fit.design is not None else np.zeros((0, 0)),
    )


def load_fit(path) -> LinearModelFit:
    """Read a fit written by :func:`save_fit`."""
    with np.load(path, allow_pickle=False) as z:
        design = z["design"]
        names = [str(s) for s in z["coef_names"]]
        return LinearModelFit(
            coefficients=z["coefficients"],
            stdev_unscaled=z["stdev_unscaled"],
            sigma=z["sigma"],
            df_residual=z["df_residual"],
            amean=z["amean"],
            cov_coefficients=z["cov_coefficients"],
            coef_names=names,
            feature_ids=z["feature_ids"],
            design=design if design.size else None,
            design_names=names,
        )


def load_fits(paths: Sequence, threads: int = 1, order: str = "C") -> LinearModelFit:
    """``concat_fits([load_fit(p) for p in paths])``, the same fit, with each chunk's row arrays
    read from its file straight into their place in the concatenated arrays (``threads`` files at a
    time): one copy of the data instead of two, and half the fresh memory.  The members are checked
    against their CRC-32 as ``np.load`` does; a chunk stored otherwise than :func:`save_fit` stores
    it (compressed, Fortran order) is read with :func:`load_fit`.

    ``order="F"``: the coefficients and unscaled standard deviations (G x p) column-major, each
    column contiguous (a results table's columns are then views of them, not copies; the values
    are the same), read through a buffer of :data:`READ_BLOCK_BYTES`."""
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    paths = list(paths)
    if not paths:
        raise ValueError("no fits to concatenate")
    layouts = [_row_layout(p) for p in paths]
    if any(layout is None for layout in layouts):
        with executor(min(threads, len(paths))) as pool:
            return concat_fits(list(pool.map(load_fit, paths)))
    with np.load(paths[0], allow_pickle=False) as z:
        first = {k: z[k] for k in ("cov_coefficients", "coef_names", "design")}
    names = [str(s) for s in first["coef_names"]]
    for path in paths[1:]:
        with np.load(path, allow_pickle=False) as z:
            if [str(s) for s in z["coef_names"]] != names or not np.array_equal(
                z["cov_coefficients"], first["cov_coefficients"]
            ):
                raise ValueError(
                    "fits to concatenate must come from the same design and coefficients"
                )
    rows = {}
    starts = np.cumsum([0] + [layout["sigma"][1][0] for layout in layouts])
    for name in _ROW_FIELDS:
        shapes = [layout[name][1] for layout in layouts]
        if any(shape[1:] != shapes[0][1:] for shape in shapes):
            raise ValueError(f"chunk fits differ in the shape of {name}")
        dtype = np.result_type(*(layout[name][2] for layout in layouts))
        rows[name] = np.empty((int(starts[-1]), *shapes[0][1:]), dtype=dtype, order=order)

    def fill(i):
        with open(paths[i], "rb") as fh:
            for name in _ROW_FIELDS:
                target = rows[name][starts[i] : starts[i + 1]]
                _read_member(fh, paths[i], name, layouts[i][name], target)

    with executor(min(threads, len(paths))) as pool:
        list(pool.map(fill, range(len(paths))))
    design = first["design"]
    return LinearModelFit(
        **rows,
        cov_coefficients=first["cov_coefficients"],
        coef_names=names,
        design=design if design.size else None,
        design_names=names,
    )


def load_fits_in_background(paths: Sequence, threads: int = 1, order: str = "C") -> Future:
    """A Future of :func:`load_fits`, read in a background thread: a job reads its chunk fits
    (file reads and CRC checks release the GIL) while it imports the rest of its modules."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(load_fits, list(paths), threads, order)
    pool.shutdown(wait=False)
    return future


def _row_layout(path):
    """Where each row array of a :func:`save_fit` file is: name -> (offset of the member, shape,
    dtype, offset of the data, CRC-32, member size); None if one is not stored as save_fit
    stores it."""
    out = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for name in _ROW_FIELDS:
            try:
                info = zf.getinfo(f"{name}.npy")
            except KeyError:
                return None
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                return None
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                return None
            n_name, n_extra = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + n_name + n_extra
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None
            if fortran or dtype.hasobject or not shape:
                return None
            out[name] = (start, shape, dtype, fh.tell(), info.CRC, info.file_size)
    if len({v[1][0] for v in out.values()}) != 1:
        return None
    return out


#: a chunk's row array goes into a column-major (or differently typed) target through a buffer
#: of about this many bytes
READ_BLOCK_BYTES = 4 << 20


def _read_member(fh, path, name, layout, target: np.ndarray) -> None:
    """Read one row array (stored row-major) into ``target`` (its rows of the concatenated array)
    and check the member's CRC-32: straight into a contiguous target of its type, else a block of
    rows at a time through a buffer of :data:`READ_BLOCK_BYTES`."""
    start, shape, dtype, data, crc, size = layout
    fh.seek(start)
    header = fh.read(data - start)
    n_rows = int(shape[0])
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    if data - start + n_rows * row_bytes != size:
        raise ValueError(f"chunk fit {path}: {name} is truncated; re-run its fit job")
    direct = target.dtype == dtype and target.flags.c_contiguous
    if direct:
        blocks, buffer = [0], target  # one block: the target itself
    else:
        step = max(1, READ_BLOCK_BYTES // max(row_bytes, 1))
        blocks = range(0, n_rows, step)
        buffer = np.empty((min(step, n_rows), *shape[1:]), dtype=dtype)
    checksum = zlib.crc32(header)
    for a in blocks:
        piece = buffer[: min(len(buffer), n_rows - a)]
        view = memoryview(piece.reshape(-1).view(np.uint8))  # bytes, also of an empty chunk
        if fh.readinto(view) != view.nbytes:
            raise ValueError(f"chunk fit {path}: {name} is truncated; re-run its fit job")
        checksum = zlib.crc32(view, checksum)
        if not direct:
            target[a : a + len(piece)] = piece
    if checksum != crc:
        raise ValueError(f"chunk fit {path}: {name} is corrupt (bad CRC-32); re-run its fit job")
