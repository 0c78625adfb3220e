"""The binary store: a features x samples float64 (or float32) file memory-mapped by row range.

An ``int8`` store holds allele counts (SNP genotypes: 0, 1, 2, and :data:`INT8_MISSING` = -127 for
a missing call), 8 times smaller than float64; it reads as float64 with NaN for a missing call
(:meth:`BinaryMatrix.rows`, and :class:`Int8Values` as its ``values``), so every reader of a store
works on it unchanged."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stacklm.io.atomic import folder_mode
from stacklm.io.formats import (
    INT8_MISSING,
    STORE_DTYPES,
    STORE_FORMAT,
    STORE_VERSION,
    MatrixInputError,
)

# --------------------------------------------------------------------------------------------------
# binary store


def _check_names(kind: str, names: Sequence[str]) -> list[str]:
    out = [str(x) for x in names]
    for x in out:
        if "\n" in x or "\r" in x:
            raise ValueError(f"{kind} {x!r} contains a line break; it cannot be stored")
        if x == "":
            raise ValueError(f"empty {kind} name")
    if len(set(out)) != len(out):
        raise ValueError(f"duplicated {kind} names")
    return out


class BinaryMatrixWriter:
    """Write a binary matrix store (see module docstring) row block by row block.

    Everything goes to a temporary directory beside ``path``, renamed to ``path`` on :meth:`close`
    (replacing an existing store there) with the mode of a folder made by ``mkdir`` (the umask's).  Used as a context manager, an exception removes the
    temporary directory and leaves nothing behind.

    ``dtype`` is the storage precision, ``"float64"`` (exact) or ``"float32"`` (half the bytes;
    values are rounded to float32's 24-bit significand, ~6e-8 relative; a finite value outside
    float32's normal range, |x| > 3.4e38 or 0 < |x| < 1.2e-38, is an error), or ``"int8"`` for
    allele counts (int8 blocks with :data:`INT8_MISSING` for a missing call, or float blocks of
    whole numbers in -126..127 and NaN)."""

    def __init__(self, path, samples: Sequence[str], dtype: str = "float64"):
        self.path = Path(path)
        self.samples = _check_names("sample", samples)
        if not self.samples:
            raise ValueError("a binary matrix needs at least one sample")
        if dtype not in STORE_DTYPES:
            raise ValueError(f"unknown store dtype {dtype!r}; use 'float64', 'float32' or 'int8'")
        self.dtype = dtype
        self._numpy_dtype, values_name = STORE_DTYPES[dtype]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        self._values = open(self._tmp / values_name, "wb")
        self._features = open(self._tmp / "features.txt", "w", encoding="utf-8", newline="\n")
        self._seen: set[str] = set()
        self.n_features = 0
        self._closed = False

    def append(self, feature_ids, values) -> None:
        """Append rows (in order): ``values`` is b x n (n = number of samples)."""
        if self._closed:
            raise ValueError("BinaryMatrixWriter is closed")
        ids = _check_names("feature", list(np.asarray(feature_ids, dtype=object).ravel()))
        if self.dtype == "int8":
            values = _to_int8(values)
        else:
            values = np.ascontiguousarray(values, dtype="<f8")
        if values.ndim != 2 or values.shape != (len(ids), len(self.samples)):
            raise ValueError(
                f"values must be {len(ids)} x {len(self.samples)} (features x samples), "
                f"got shape {values.shape}"
            )
        if not self._seen.isdisjoint(ids):
            dup = next(x for x in ids if x in self._seen)
            raise ValueError(f"feature id {dup!r} was already written")
        self._seen.update(ids)
        if self.dtype == "float32" and values.size:
            values = _to_float32(values)
        if values.size:
            self._values.write(memoryview(values).cast("B"))
        if ids:
            self._features.write("\n".join(ids) + "\n")
        self.n_features += len(ids)

    def close(self) -> None:
        """Finish the store: write metadata and move it into place (one rename: readers see the
        whole store or none).  It is not fsync'ed: the store is an intermediate that Snakemake
        re-makes when its job did not finish, and forcing 10^8 values to disk cost 0.4 s."""
        if self._closed:
            return
        try:
            for fh in (self._values, self._features):
                fh.close()
            (self._tmp / "samples.txt").write_text(
                "".join(s + "\n" for s in self.samples), encoding="utf-8"
            )
            meta = {
                "format": STORE_FORMAT,
                "version": STORE_VERSION,
                "dtype": self._numpy_dtype,
                "order": "C",
                "n_features": self.n_features,
                "n_samples": len(self.samples),
            }
            (self._tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            # mkdtemp's folder is private (0700): the store gets the mode of a mkdir'd folder
            os.chmod(self._tmp, folder_mode())
            _replace_dir(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Discard everything written so far."""
        self._closed = True
        for fh in (self._values, self._features):
            try:
                fh.close()
            except OSError:
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BinaryMatrixWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _to_float32(values: np.ndarray) -> np.ndarray:
    """``values`` as little-endian float32, refusing finite values float32 cannot hold."""
    with np.errstate(over="ignore"):  # overflow is detected (and refused) just below
        out = values.astype("<f4")
    finite = np.isfinite(values)
    lost = finite & ~np.isfinite(out)
    tiny = finite & (values != 0) & (np.abs(values) < np.finfo(np.float32).tiny)
    bad = lost | tiny
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"value {values[r, c]!r} is outside float32's range (1.2e-38 .. 3.4e38 in absolute "
            "value); use precision: float64"
        )
    return out


def _to_int8(values) -> np.ndarray:
    """An int8 block as stored (C order); a float block of whole numbers with NaN as missing."""
    values = np.asarray(values)
    if values.dtype == np.int8:
        return np.ascontiguousarray(values)
    x = np.asarray(values, dtype=np.float64)
    missing = np.isnan(x)
    ok = missing | ((x == np.round(x)) & (x >= -126) & (x <= 127))
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise ValueError(
            f"value {x[r, c]!r} is not a whole number in -126..127; an int8 store holds counts"
        )
    out = np.where(missing, INT8_MISSING, x).astype(np.int8)
    return np.ascontiguousarray(out)


def _int8_to_float(block: np.ndarray) -> np.ndarray:
    out = block.astype(np.float64)
    out[block == INT8_MISSING] = np.nan
    return out


class Int8Values:
    """The values of an int8 store seen as float64: indexing (``values[a:b]``, ``values[rows]``)
    and ``np.asarray(values)`` give float64 with NaN for a missing call, decoded from the int8
    memory map ``raw`` (only the indexed rows are decoded)."""

    def __init__(self, raw: np.ndarray):
        self.raw = raw
        self.shape = raw.shape
        self.ndim = raw.ndim
        self.dtype = np.dtype(np.float64)
        self.filename = getattr(raw, "filename", None)

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, key) -> np.ndarray:
        return _int8_to_float(np.asarray(self.raw[key]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = _int8_to_float(np.asarray(self.raw))
        return out if dtype is None else out.astype(dtype, copy=False)


def _replace_dir(tmp: Path, path: Path) -> None:
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink():
            contents = {p.name for p in path.iterdir()}
            if contents and "meta.json" not in contents:
                raise FileExistsError(
                    f"{path} exists and is not a stacklm binary matrix; remove it first"
                )
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, trash / "store")
            os.rename(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
            return
        raise FileExistsError(f"{path} exists and is not a directory; remove it first")
    os.rename(tmp, path)


@dataclass
class BinaryMatrix:
    """A binary matrix store opened read-only; ``values`` is a G x n memory map of the stored dtype
    (float64, or float32 for a float32 store; for an int8 store an :class:`Int8Values` that reads
    as float64 with NaN): use :meth:`rows` or convert to float64."""

    path: Path
    feature_ids: np.ndarray | None  # None when opened with load_feature_ids=False
    samples: list[str]
    values: np.ndarray

    @property
    def n_features(self) -> int:
        return int(self.values.shape[0])

    def read_feature_ids(self, start: int, stop: int) -> np.ndarray:
        """Feature ids of rows ``start:stop`` (clipped as a slice), streamed from ``features.txt``:
        only those ids are held (for a store opened with ``load_feature_ids=False``)."""
        if self.feature_ids is not None:
            return self.feature_ids[start:stop]
        start, stop, _ = slice(start, stop).indices(self.n_features)
        with open(self.path / "features.txt", encoding="utf-8", newline="\n") as fh:
            ids = [line[:-1] for line in itertools.islice(fh, start, max(stop, start))]
        return np.array(ids, dtype=object)

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def columns_of(self, samples: Sequence) -> list[int]:
        """Column positions of ``samples`` (sample ids, compared as strings) in the store, in their
        order; a sample the store lacks is named in the error."""
        position = {s: i for i, s in enumerate(self.samples)}
        missing = [str(s) for s in samples if str(s) not in position]
        if missing:
            raise MatrixInputError(
                f"{self.path}: sample(s) {', '.join(missing[:5])} not in the stored matrix "
                f"(it holds {len(self.samples)} samples; re-run the normalize step)"
            )
        return [position[str(s)] for s in samples]

    def take_rows(self, rows) -> np.ndarray:
        """Rows at the positions ``rows`` (e.g. a random sample) as float64 (NaN missing), each
        read with a positioned read of the file: indexing the memory map would leave the pages the
        kernel reads ahead around every row resident (1.1 GB for 1,000 random rows of a 5 GB
        store)."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        n = self.n_samples
        filename = getattr(self.values, "filename", None)
        if filename is None or rows.size == 0:
            return np.array(self.values[rows], dtype=np.float64).reshape(rows.size, n)
        stored = getattr(self.values, "raw", self.values)
        width = n * stored.dtype.itemsize
        out = np.empty((rows.size, n), dtype=stored.dtype)
        view = memoryview(out).cast("B")
        fd = os.open(filename, os.O_RDONLY)
        try:
            for k, r in enumerate(rows.tolist()):  # one read per sampled row (I/O, not compute)
                os.preadv(fd, [view[k * width : (k + 1) * width]], int(r) * width)
        finally:
            os.close(fd)
        if stored.dtype == np.int8:
            return _int8_to_float(out)
        return out.astype(np.float64, copy=stored.dtype != np.float64)

    def rows(self, start: int, stop: int, raw: bool = False) -> np.ndarray:
        """A copy (in memory, writable, float64) of rows ``start:stop`` (clipped as a slice); with
        ``raw``, in the stored dtype (an int8 store's counts with :data:`INT8_MISSING`).

        Read from the file with one positioned read, not through the memory map, so the pages read
        do not stay resident in the process: a job that works through its rows block by block holds
        one block, however many rows it covers."""
        g, n = self.n_features, self.n_samples
        start, stop, _ = slice(start, stop).indices(g)
        count = max(stop - start, 0)
        filename = getattr(self.values, "filename", None)
        stored = getattr(self.values, "raw", self.values)
        if filename is None or count == 0:
            if raw:
                return np.array(stored[start:stop], copy=True)
            return np.array(self.values[start:stop], dtype=np.float64, copy=True)
        dtype = stored.dtype
        with open(filename, "rb") as fh:
            block = np.fromfile(fh, dtype=dtype, count=count * n, offset=start * n * dtype.itemsize)
        if raw:
            return block.reshape(count, n)
        if dtype == np.int8:
            return _int8_to_float(block.reshape(count, n))
        return block.reshape(count, n).astype(np.float64, copy=dtype != np.float64)


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            count += chunk.count(b"\n")
    return count


def open_binary_matrix(path, load_feature_ids: bool = True) -> BinaryMatrix:
    """Open a store written by :class:`BinaryMatrixWriter`; the values are memory-mapped read-only.

    ``load_feature_ids=False`` leaves ``feature_ids`` None (a job on a row range then reads only its
    ids with :meth:`BinaryMatrix.read_feature_ids`, and its memory does not grow with the store)."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError:
        raise MatrixInputError(f"{path}: not a stacklm binary matrix (no meta.json)") from None
    if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
        raise MatrixInputError(f"{path}: unknown binary matrix format {meta.get('format')!r}")
    g, n = int(meta["n_features"]), int(meta["n_samples"])
    dtype = meta.get("dtype", "<f8")
    names = {d: name for d, name in STORE_DTYPES.values()}
    if dtype not in names:
        raise MatrixInputError(f"{path}: unknown binary matrix dtype {dtype!r}")
    if load_feature_ids:
        features = (path / "features.txt").read_text(encoding="utf-8").split("\n")[:-1]
        n_ids = len(features)
    else:
        features, n_ids = None, _count_lines(path / "features.txt")
    samples = (path / "samples.txt").read_text(encoding="utf-8").split("\n")[:-1]
    values_path = path / names[dtype]
    try:
        size = values_path.stat().st_size
    except FileNotFoundError:
        size = None
    itemsize = np.dtype(dtype).itemsize
    if n_ids != g or len(samples) != n or size != itemsize * g * n:
        raise MatrixInputError(
            f"{path}: binary matrix is inconsistent (meta says {g} x {n}, found {n_ids} "
            f"features, {len(samples)} samples, {'no' if size is None else size} bytes of values); "
            "re-create it"
        )
    if g == 0:
        values = np.empty((0, n), dtype=dtype)
        values.flags.writeable = False
    else:
        values = np.memmap(values_path, dtype=dtype, mode="r", shape=(g, n), order="C")
    ids = None if features is None else np.array(features, dtype=object)
    if values.dtype == np.int8:
        values = Int8Values(values)
    return BinaryMatrix(path, ids, samples, values)


def write_binary_matrix(path, feature_ids, samples, values, dtype: str = "float64") -> None:
    """Write a whole G x n matrix as a binary store (atomically)."""
    with BinaryMatrixWriter(path, samples, dtype=dtype) as writer:
        writer.append(feature_ids, values)


def chunk_bounds(n_features: int, n_chunks: int) -> list[tuple[int, int]]:
    """Exactly ``n_chunks`` contiguous row ranges ``(start, stop)`` covering ``0..n_features``, sizes
    differing by at most one (the first ``n_features % n_chunks`` are one longer); ranges are empty
    when there are more chunks than features."""
    if n_chunks < 1:
        raise ValueError("n_chunks must be >= 1")
    if n_features < 0:
        raise ValueError("n_features must be >= 0")
    base, extra = divmod(n_features, n_chunks)
    bounds, start = [], 0
    for k in range(n_chunks):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds
