"""Atomic writes that follow the user's umask: a temp file in the same folder, renamed into place
when complete, so an interrupted job never leaves a file that looks finished.  Light to import
(no pandas or pyarrow: small jobs such as the matrix checksum use it); the table writers are in
:mod:`stacklm.io.outputs`."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
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

    The temporary path is a new hidden name (``.<name>.<random>.tmp``) that does not exist yet:
    the writer creates the file.  A writer that opened an existing file would truncate it, and
    ext4 (its ``auto_da_alloc`` default) then writes the whole file out to disk when it is closed,
    in the writer's time: 0.25 s for the 575 MB results table at 10^6 features.  The file is
    created with the mode of ``open`` (0666 less the umask) and keeps it when renamed, so results
    on shared storage are as readable as the user's umask makes any file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary_path(path)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_temporary_path(path: Path) -> Path:
    """A hidden name beside ``path`` that no file has (random, so that concurrent writers of the
    same output do not share one)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        if not os.path.lexists(tmp):
            return tmp


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
