"""Written files and folders follow the umask (issue 14, item 3): 0644 / 0755 under umask 022,
0664 / 0775 under 002, as files made with ``open`` and folders made with ``mkdir`` are, so that
colleagues on shared storage can read the results (``mkstemp`` / ``mkdtemp`` alone give 0600 / 0700).
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from stacklm.io.outputs import atomic_path, write_json, write_text, write_tsv
from stacklm.io.store import open_binary_matrix, write_binary_matrix
from stacklm.limma.fitstore import save_fit
from stacklm.limma.lmfit import lm_fit


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=["022", "002", "077"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_file_follows_umask(tmp_path, umask):
    target = tmp_path / "new" / "folder" / "out.bin"
    with atomic_path(target) as tmp:
        # the temporary file is not the target (nobody reads a half-written file) and does not
        # exist before the writer creates it (no truncation: ext4 would flush it on close)...
        assert tmp != target and tmp.parent == target.parent and not tmp.exists()
        tmp.write_bytes(b"x")
    # ...and gets the umask's mode when it is renamed into place
    assert _mode(target) == 0o666 & ~umask
    assert _mode(target.parent) == 0o777 & ~umask
    assert _mode(target.parent.parent) == 0o777 & ~umask
    # replacing a file gives the umask's mode too
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"y")
    assert _mode(target) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_table_json_and_text_writers_follow_umask(tmp_path, umask):
    write_tsv(pd.DataFrame({"a": [1.5, 2.0]}), tmp_path / "t.tsv.gz")
    write_tsv(pd.DataFrame({"a": [1.5, 2.0]}), tmp_path / "t.tsv")
    write_json({"a": 1}, tmp_path / "s.json")
    write_text("hello\n", tmp_path / "s.md")
    for name in ("t.tsv.gz", "t.tsv", "s.json", "s.md"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name


def test_fit_written_through_atomic_path_follows_umask(tmp_path, umask):
    rng = np.random.default_rng(1)
    fit = lm_fit(rng.normal(size=(5, 4)), np.column_stack([np.ones(4), [0, 0, 1, 1]]))
    with atomic_path(tmp_path / "fit.npz") as tmp, open(tmp, "wb") as fh:
        save_fit(fit, fh)
    assert _mode(tmp_path / "fit.npz") == 0o666 & ~umask


def test_binary_store_folder_and_files_follow_umask(tmp_path, umask):
    store = tmp_path / "out" / "matrix.store"
    write_binary_matrix(store, ["f1", "f2"], ["s1", "s2"], np.arange(4.0).reshape(2, 2))
    assert _mode(store) == 0o777 & ~umask
    assert _mode(store.parent) == 0o777 & ~umask
    files = sorted(store.iterdir())
    assert {p.name for p in files} >= {"meta.json", "features.txt", "samples.txt"}
    for p in files:
        assert _mode(p) == 0o666 & ~umask, p.name
    # replacing a store keeps the modes and leaves no temporary folder behind
    write_binary_matrix(store, ["f1"], ["s1", "s2"], np.ones((1, 2)))
    assert _mode(store) == 0o777 & ~umask
    assert [p.name for p in store.parent.iterdir()] == ["matrix.store"]
    assert open_binary_matrix(store).n_features == 1
