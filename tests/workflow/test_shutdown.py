"""Processes of the workflow exit without the interpreter's last garbage collection
(stacklm.workflow.shutdown): the objects alive at exit are frozen first, once per process."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import atexit, gc, sys
# registered first, so it runs last: after every handler registered below
atexit.register(lambda: print("frozen", gc.get_freeze_count(), flush=True))
if sys.argv[1] == "skip":
    from stacklm.workflow.shutdown import skip_final_collection
    skip_final_collection()
    skip_final_collection()  # once per process
elif sys.argv[1] == "step":
    from stacklm.workflow.steps import workflow_step
    with workflow_step("x", sys.argv[2]) as log:
        log.info("ok")
print("callbacks", atexit._ncallbacks(), flush=True)  # exit handlers registered
with open(sys.argv[2] + ".out", "w") as fh:  # written and closed as before
    fh.write("complete\n")
"""


def _exit_report(mode: str, tmp_path) -> tuple[int, int]:
    """(objects frozen when the process exited, exit handlers registered) of SCRIPT in ``mode``."""
    log = tmp_path / f"{mode}.log"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(log)], capture_output=True, text=True, check=True
    )
    lines = dict(line.split() for line in out.stdout.strip().splitlines()[-2:])
    assert (tmp_path / f"{mode}.log.out").read_text() == "complete\n"
    return int(lines["frozen"]), int(lines["callbacks"])


def test_exit_freezes_the_live_objects_once(tmp_path):
    frozen, handlers = _exit_report("default", tmp_path)
    assert frozen == 0  # Python's own exit: nothing frozen, the final collection sees everything
    frozen, skip_handlers = _exit_report("skip", tmp_path)
    assert frozen > 1000  # the modules' objects, skipped by the final collection
    assert skip_handlers == handlers + 1  # called twice, registered once


def test_workflow_steps_exit_without_the_final_collection(tmp_path):
    frozen, _ = _exit_report("step", tmp_path)
    assert frozen > 1000
    assert "done in" in (tmp_path / "step.log").read_text()


def test_snakemakes_own_process_exits_without_the_final_collection(tmp_path):
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    site = tmp_path / "site"
    site.mkdir()
    # loaded before Snakemake: its exit handler runs after the Snakefile's
    (site / "sitecustomize.py").write_text(
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), flush=True))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo)])}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(repo / "Snakefile")]
        + ["--directory", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    counts = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("frozen")]
    assert len(counts) == 1 and counts[0] > 1000, out.stdout[-2000:]
