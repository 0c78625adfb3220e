"""Resume after a killed run: release the directory lock a dead Snakemake process left behind.

Snakemake locks a working directory (``.snakemake/locks/*.lock``) for the length of a run and
removes the lock when the run ends. A run killed with SIGKILL (or lost with its node) cannot remove
it, and the next run then stops with "Directory cannot be locked" until ``snakemake --unlock``.
Snakemake's lock files do not say which process holds them, so the workflow records its own: the
main Snakemake process writes ``.snakemake/stacklm-run.json`` (host, pid, process start time) once
it holds the lock and removes it when the run ends. A later run on the same host that finds this
record for a process that no longer exists knows the lock is stale and removes it; a record of a
live process (or of another host) is left alone, so two runs on one directory still exclude each
other. Interrupted outputs are then redone by Snakemake's incomplete-file tracking
(``rerun-incomplete`` in ``profiles/default``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

RECORD = Path(".snakemake") / "stacklm-run.json"
LOCKS = Path(".snakemake") / "locks"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _start_time(pid)
    # the same pid with another start time is a new process: the recorded one is gone
    return start_time is None or now is None or now == start_time


def record_run_owner(workdir: str | os.PathLike = ".") -> None:
    """Record this process as the holder of the working directory's Snakemake lock."""
    path = Path(workdir) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    owner = {"host": socket.gethostname(), "pid": pid, "start_time": _start_time(pid)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(owner))
    os.replace(tmp, path)


def clear_run_owner(workdir: str | os.PathLike = ".") -> None:
    """Forget the record at the end of a run (Snakemake removes its lock itself)."""
    path = Path(workdir) / RECORD
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if owner.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def release_stale_lock(workdir: str | os.PathLike = ".") -> int | None:
    """Remove the Snakemake lock of a run on this host whose main process is dead.

    Returns the dead run's pid when a stale lock was removed, else None (no record, a live owner, an
    owner on another host, or no lock files).
    """
    path = Path(workdir) / RECORD
    try:
        owner = json.loads(path.read_text())
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owner.get("host") != socket.gethostname() or _alive(pid, owner.get("start_time")):
        return None
    locks = sorted((Path(workdir) / LOCKS).glob("*.lock"))
    for lock in locks:
        lock.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return pid if locks else None
