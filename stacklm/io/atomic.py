"""Atomic writes that follow the user's umask: a temp file in the same folder, renamed into place
when complete, so an interrupted job never leaves a file that looks finished.  Light to import
(no pandas or pyarrow: small jobs such as the matrix checksum use it); the table writers are in
:mod:`stacklm.io.outputs`."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def current_umask() -> int:
    """The process's umask, read from /proc where it can be (``os.umask`` can only be read by
    setting it, which is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open`` gives a new file: 0666 less the umask (0644 under umask 022)."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0777 less the umask (0755 under umask 022)."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary file is private (``mkstemp``'s 0600) while it is written; the finished file gets
    the mode of a file created with ``open`` (0666 less the umask), so results on shared storage are
    as readable as the user's umask makes any file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def json_plain(obj, finite: bool = False):
    """``obj`` with plain Python in place of numpy (mappings with string keys, lists for tuples
    and arrays, Python scalars); ``finite``: non-finite floats as ``null`` (NaN), ``"Infinity"``
    and ``"-Infinity"``, which strict JSON readers take."""
    if isinstance(obj, Mapping):
        return {str(k): json_plain(v, finite) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_plain(v, finite) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_plain(obj.tolist(), finite)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if finite and isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    return obj


def write_json(obj, path) -> None:
    """Write JSON atomically (sorted keys, NaN as null: :func:`json_plain`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_plain(obj, finite=True), indent=2, sort_keys=True) + "\n")


def write_text(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
