"""Provenance of a result folder: the configuration it was made from, the versions of stacklm and
the packages its numbers depend on (with the BLAS in use), the stacklm source (git commit when run
from a checkout) and SHA-256 checksums of the input files, so a result can be traced to its inputs
and reproduced.  Written by the workflow's ``moderate`` step into ``summary.json`` → ``provenance``."""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from stacklm.io.atomic import write_json

#: config keys that name input files, in the order they are reported
INPUT_KEYS = ("matrix", "samples", "features")

_BLOCK = 1 << 20


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks into one buffer (constant memory; a
    new bytes object per block cost ~10% more CPU on a 3 GB file)."""
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def file_checksum(path) -> dict:
    """``{"path", "bytes", "mtime_ns", "sha256"}`` of one file (``path`` absolute)."""
    path = Path(path).resolve()
    stat = path.stat()
    return {
        "path": str(path),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256_file(path),
    }


def write_checksum(path, out_path) -> dict:
    """:func:`file_checksum` of ``path``, written as JSON to ``out_path``: the direct Parquet
    path's own light job hashes the matrix beside the design and fit jobs (normalize does on the
    store path; in moderate it sat alone on the critical path, 4.5 s for 8.9 GB)."""
    record = file_checksum(path)
    write_json(record, out_path)
    return record


def background_checksum(path) -> concurrent.futures.Future:
    """:func:`file_checksum` computed in a thread (hashlib and file reads release the GIL), so a
    step that reads a large input anyway overlaps the two (the normalize step hashes the matrix
    while it converts it; the result goes into its summary for :func:`input_checksums`)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(file_checksum, path)
    pool.shutdown(wait=False)
    return future


def input_checksums(config: Mapping, keys=INPUT_KEYS, known: Mapping | None = None) -> dict:
    """``{key: {"path", "bytes", "sha256"}}`` for every input file the config names (``None`` for a
    key left out or null).  Relative paths are resolved against the working directory, as the
    workflow does; ``path`` is reported absolute.  ``known``: checksums already computed
    (:func:`file_checksum` records by key, e.g. the normalize step's of the matrix), reused when
    the file's path, size and modification time are unchanged."""
    out: dict = {}
    for key in keys:
        value = config.get(key)
        if not value:
            out[key] = None
            continue
        path = Path(value).resolve()
        stat = path.stat()
        done = (known or {}).get(key)
        if not (
            done
            and done.get("path") == str(path)
            and done.get("bytes") == stat.st_size
            and done.get("mtime_ns") == stat.st_mtime_ns
        ):
            done = file_checksum(path)
        out[key] = {"path": str(path), "bytes": stat.st_size, "sha256": done["sha256"]}
    return out


def blas_info() -> list[dict]:
    """The BLAS/LAPACK/OpenMP libraries numpy and scipy use (threadpoolctl): name, version, threading
    layer; the last digits of a fit can depend on them.  Sorted by file path and API (threadpoolctl
    lists them in the order the libraries were loaded, which differs between runs)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return []
    keys = ("internal_api", "version", "threading_layer", "architecture", "filepath")
    found = [{k: lib.get(k) for k in keys if k in lib} for lib in threadpool_info()]
    return sorted(found, key=lambda lib: (str(lib.get("filepath")), str(lib.get("internal_api"))))


def source_info(directory) -> dict:
    """Where the workflow code came from: its directory and, for a git checkout (the directory is the
    repository's top), the commit and whether tracked files differ from it (``git_dirty``); ``None``
    values when git is unavailable or the workflow is the copy installed with the package."""
    directory = Path(directory).resolve()
    info: dict = {"path": str(directory), "git_commit": None, "git_dirty": None}

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()

    try:
        # only the workflow's own repository: a workflow installed with the package (in a venv that
        # may sit inside some other repository) has no commit of its own
        if Path(git("rev-parse", "--show-toplevel")).resolve() == directory:
            info["git_commit"] = git("rev-parse", "HEAD")
            info["git_dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def provenance(config: Mapping, workflow_dir=None, known_inputs: Mapping | None = None) -> dict:
    """The provenance record of one analysis' results.

    ``config`` is the configuration the results depend on (global settings and this analysis);
    ``workflow_dir`` the stacklm checkout the workflow ran from (its git commit is recorded);
    ``known_inputs`` checksums computed earlier (see :func:`input_checksums`)."""

    found = versions()
    for pkg in ("threadpoolctl", "pyyaml", "jsonschema", "pygments"):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = "not installed"
    record = {
        "config": dict(config),
        "versions": found,
        "blas": blas_info(),
        "inputs": input_checksums(config, known=known_inputs),
        "working_directory": os.getcwd(),
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if workflow_dir is not None:
        record["source"] = source_info(workflow_dir)
    return record


def versions() -> dict[str, str]:
    """Versions of stacklm and the packages its numbers depend on."""
    out = {"python": platform.python_version()}
    for pkg in ("stacklm", "numpy", "scipy", "pandas", "pyarrow", "snakemake"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
