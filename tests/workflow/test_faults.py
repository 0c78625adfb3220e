"""Faults and determinism of the real workflow: kill -9 during the fit chunks, re-run the same
command, get byte-identical results; the same config gives the same bytes with any ``--cores``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from workflow_helpers import REPO, example_config, write_config

from stacklm.workflow.runlock import clear_run_owner, record_run_owner, release_stale_lock

TARGETS = ["results/geography/results.tsv.gz", "results/geography/feature_annotation.tsv.gz"]
CHUNKS = 12


def command(work, cfg, cores):
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(cfg),
        "--directory",
        str(work),
        "--cores",
        str(cores),
        *TARGETS,
    ]


def fit_outputs(work):
    return sorted(
        (work / "results" / "geography" / "intermediate" / "fit").glob("chunk_*[0-9].npz")
    )


def test_kill_during_fit_chunks_then_same_command_gives_identical_bytes(tmp_path):
    config = example_config(chunks=CHUNKS)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir()
    killed.mkdir()
    cfg = write_config(tmp_path / "config.yaml", config)

    # the reference: one uninterrupted run on 2 cores
    out = subprocess.run(command(ref, cfg, 2), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]

    # the same config on 1 core, killed (SIGKILL to Snakemake and its jobs) once some fit chunks
    # are written and others are not
    proc = subprocess.Popen(
        command(killed, cfg, 1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    try:
        while len(fit_outputs(killed)) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no fit chunk was written in 10 minutes"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = len(fit_outputs(killed))
    assert 2 <= written < CHUNKS, f"killed after {written} of {CHUNKS} chunks"
    assert not (killed / TARGETS[0]).exists()

    # re-run with the very same command: resumes (incomplete outputs redone) and finishes
    out = subprocess.run(command(killed, cfg, 1), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(fit_outputs(killed)) == CHUNKS
    for target in TARGETS:
        assert (killed / target).read_bytes() == (ref / target).read_bytes(), target


def _write_record(work, **owner):
    (work / ".snakemake" / "locks").mkdir(parents=True)
    (work / ".snakemake" / "locks" / "0.output.lock").write_text("results/x\n")
    (work / ".snakemake" / "stacklm-run.json").write_text(json.dumps(owner))


def test_stale_lock_of_a_dead_run_is_released(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(tmp_path, host=socket.gethostname(), pid=dead.pid, start_time="1")
    assert release_stale_lock(tmp_path) == dead.pid
    assert not list((tmp_path / ".snakemake" / "locks").iterdir())
    assert not (tmp_path / ".snakemake" / "stacklm-run.json").exists()


def test_lock_of_a_live_run_or_another_host_is_kept(tmp_path):
    record_run_owner(tmp_path)  # this process: alive
    (tmp_path / ".snakemake" / "locks").mkdir()
    (tmp_path / ".snakemake" / "locks" / "0.output.lock").write_text("results/x\n")
    assert release_stale_lock(tmp_path) is None
    assert (tmp_path / ".snakemake" / "locks" / "0.output.lock").exists()
    clear_run_owner(tmp_path)
    assert not (tmp_path / ".snakemake" / "stacklm-run.json").exists()

    other = tmp_path / "other"
    _write_record(other, host="another-node", pid=2**22 + 7, start_time="1")
    assert release_stale_lock(other) is None
    assert (other / ".snakemake" / "locks" / "0.output.lock").exists()


def test_reused_pid_counts_as_dead(tmp_path):
    # the recorded pid now belongs to a process started at another time (this one)
    _write_record(tmp_path, host=socket.gethostname(), pid=os.getpid(), start_time="-1")
    assert release_stale_lock(tmp_path) == os.getpid()
