"""Input checksums: the normalize step's hash of the matrix is reused, never a stale one."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from stacklm.workflow.provenance import (
    background_checksum,
    blas_info,
    file_checksum,
    input_checksums,
    sha256_file,
)


def test_known_checksums_are_reused_only_for_the_same_file_state(tmp_path):
    m = tmp_path / "m.tsv"
    m.write_bytes(b"feature_id\ta\nf1\t1\n")
    done = background_checksum(m).result()
    assert done == file_checksum(m)
    assert done["sha256"] == hashlib.sha256(m.read_bytes()).hexdigest()
    fake = dict(done, sha256="0" * 64)  # a recorded value is trusted while path/size/mtime match
    got = input_checksums({"matrix": str(m)}, keys=("matrix",), known={"matrix": fake})
    assert got["matrix"] == {
        "path": str(m.resolve()),
        "bytes": m.stat().st_size,
        "sha256": "0" * 64,
    }
    os.utime(m, ns=(done["mtime_ns"] + 10**9, done["mtime_ns"] + 10**9))  # touched: hashed again
    got = input_checksums({"matrix": str(m)}, keys=("matrix",), known={"matrix": fake})
    assert got["matrix"]["sha256"] == done["sha256"]


def test_sha256_of_files_across_block_boundaries(tmp_path):
    """The block-wise hash equals hashlib's of the whole bytes: empty, exactly one 1 MiB block,
    several blocks and a partial last one."""
    rng = np.random.default_rng(5)
    for size in (0, 1 << 20, (5 << 19) + 7):
        path = tmp_path / f"f{size}"
        data = rng.bytes(size)
        path.write_bytes(data)
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_blas_libraries_are_listed_in_a_fixed_order(monkeypatch):
    import threadpoolctl

    libs = [
        {"internal_api": "openblas", "filepath": "/z/libscipy_openblas.so", "version": "0.3"},
        {"internal_api": "openmp", "filepath": "/a/libgomp.so", "version": None},
        {"internal_api": "openblas", "filepath": "/m/libopenblas.so", "version": "0.3"},
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: list(libs))
    first = blas_info()
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: list(reversed(libs)))
    assert blas_info() == first
    assert [lib["filepath"] for lib in first] == sorted(lib["filepath"] for lib in libs)
