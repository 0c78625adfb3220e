"""Matrix file formats: extension and magic-byte detection, compression, the errors raised."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MISSING_VALUES = ("NA", "NaN", "nan", "")


STORE_FORMAT = "stacklm-binary-matrix"
STORE_VERSION = 1
#: storage precision -> (numpy dtype in meta.json, values file name)
STORE_DTYPES = {"float64": ("<f8", "values.f64"), "float32": ("<f4", "values.f32")}
#: int8 storage of allele counts (SNP genotypes, 1 byte per call): -127 is a missing call
STORE_DTYPES["int8"] = ("<i1", "values.i8")
INT8_MISSING = -127

_TEXT_EXTENSIONS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv"}
_PARQUET_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet"}
_DELIMITERS = {"tsv": "\t", "csv": ","}
_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"PAR1", "parquet"),
]
_NUMBER = re.compile(
    r"[ \t]*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)[ \t]*\Z", re.IGNORECASE
)


class MatrixInputError(ValueError):
    """A matrix file that cannot be used; the message names the file, line/row, column and the fix."""


@dataclass
class MatrixBlock:
    """A block of consecutive feature rows of a matrix file."""

    feature_ids: np.ndarray  # object array of str, length b
    values: np.ndarray  # float64, b x n, NaN = missing
    first_row: int  # 0-based index of the block's first feature in the file


# --------------------------------------------------------------------------------------------------
# format and compression


def matrix_format(path, fmt: str | None = None) -> str:
    """``"tsv"``, ``"csv"`` or ``"parquet"``: ``fmt`` if given, else from the file name
    (``.tsv``/``.txt``/``.csv`` with optional ``.gz``; ``.parquet``/``.pq``)."""
    if fmt is not None:
        fmt = str(fmt).lower()
        if fmt not in ("tsv", "csv", "parquet"):
            raise MatrixInputError(
                f"{path}: unknown matrix format {fmt!r}; use 'tsv', 'csv' or 'parquet'"
            )
        return fmt
    name = Path(path).name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if suffix in _TEXT_EXTENSIONS:
        return _TEXT_EXTENSIONS[suffix]
    if suffix in _PARQUET_EXTENSIONS and not name.endswith(".gz"):
        return "parquet"
    raise MatrixInputError(
        f"{path}: cannot tell the matrix format from the file name; name it .tsv, .txt, .csv "
        "(optionally .gz), .parquet or .pq, or give the format explicitly (tsv, csv or parquet)"
    )


def _magic_kind(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise MatrixInputError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise MatrixInputError(f"{path}: is a directory, not a matrix file") from None
    except OSError as exc:
        raise MatrixInputError(f"{path}: cannot be read ({exc}); check permissions") from None
    if not head:
        raise MatrixInputError(
            f"{path}: the file is empty; it needs a header line and one row per feature"
        )
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _text_compression(path: Path) -> str | None:
    """``"gzip"`` or ``None`` for a text matrix, checking the name against the file's magic bytes."""
    kind = _magic_kind(path)
    named_gz = path.name.lower().endswith(".gz")
    if kind == "gzip":
        if not named_gz:
            raise MatrixInputError(
                f"{path}: the file is gzip-compressed but its name does not end in .gz; "
                f"rename it to {path.name}.gz"
            )
        return "gzip"
    if named_gz:
        found = f"{kind}-compressed" if kind else "not compressed"
        raise MatrixInputError(
            f"{path}: the name ends in .gz but the file is {found}; "
            "drop the .gz from the name or compress the file with gzip"
        )
    if kind == "parquet":
        raise MatrixInputError(
            f"{path}: this is a Parquet file; name it .parquet (or give format 'parquet')"
        )
    if kind is not None:
        raise MatrixInputError(
            f"{path}: the file is {kind}-compressed; only gzip is supported: decompress it "
            "and gzip it (name ending .gz) or leave it uncompressed"
        )
    return None


def _open_text_binary(path: Path, compression: str | None):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")
