"""Process exit without Python's last garbage collection.

When the interpreter exits it clears every module and then runs the cyclic garbage collector over
what is left, which takes longer than the collection itself would while running: measured on the
2-core test VM, Snakemake's own process spends 0.45-0.6 s there after the last job has finished
(nothing else happens then: py-spy shows the main thread in ``gc_collect_main``, no system calls),
the design job 0.15 s and moderate 0.15 s.  All of it is wall time a user waits for, and the
process is about to hand all its memory back anyway.

:func:`skip_final_collection` registers :func:`gc.freeze` to run at exit: the objects alive then
move to the collector's permanent generation, which the final collection skips.  Nothing else
changes: objects are still freed by reference counting, files still flushed and closed (logging's
own exit handler and the ``with`` blocks do that, not the collector), and a process that does not
exit keeps collecting as before.  The Snakefile calls it in Snakemake's process and
:func:`stacklm.workflow.steps.workflow_step` in every job.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """At this process' exit, freeze the objects still alive so that the interpreter's last
    garbage collection passes over them (module docstring); registered once per process."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
