"""Plumbing shared by the workflow's script entry points (no Snakemake import here): logging to the
rule's log file, BLAS threads from the rule's ``threads``, the allocator's reuse of freed memory
(:mod:`stacklm.workflow.allocator`), exit without the interpreter's last garbage collection
(:mod:`stacklm.workflow.shutdown`), warnings and user errors as one clear line each, and the
step's time and peak memory (the job process's high-water RSS) as its last log line."""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
import traceback
import warnings

from threadpoolctl import threadpool_limits

from stacklm.workflow.allocator import reuse_freed_memory
from stacklm.workflow.failures import ERROR_PREFIX
from stacklm.workflow.shutdown import skip_final_collection

#: errors caused by the input or the config: shown as one line, traceback only in the log
USER_ERRORS = (ValueError, KeyError, FileNotFoundError)


def one_line_warning(message, category, filename=None, lineno=None, line=None) -> str:
    """A warning as one line of text: its message (and its category unless it is a plain
    UserWarning), without the file, line number and source line Python prints."""
    text = " ".join(str(message).split())
    return text if category is UserWarning else f"{category.__name__}: {text}"


@contextlib.contextmanager
def one_line_warnings(emit=None):
    """Within the block, warnings are shown by ``emit(text)`` as one line (default: printed to
    stderr as ``stacklm warning: ...``) instead of Python's ``file:line: Category: message`` and
    source line.  The Snakefile's config check uses it; :func:`workflow_step` logs them instead."""
    if emit is None:

        def emit(text):
            print(f"stacklm warning: {text}", file=sys.stderr, flush=True)

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        emit(one_line_warning(message, category))

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@contextlib.contextmanager
def workflow_step(name: str, log_path: str | None, threads: int = 1):
    """Run one step: log to ``log_path`` and stderr, limit BLAS threads, show warnings as one log
    line, and end a failed step's log with its cause in one line (``stacklm error in step NAME:
    ...``, :data:`stacklm.workflow.failures.ERROR_PREFIX`), which the Snakefile's ``onerror`` shows
    last.  User errors (bad input or config) exit with that line; other errors are re-raised after
    it (their traceback is in the log either way)."""
    reuse_freed_memory()  # arrays freed are reused, not faulted in again (allocator.py)
    skip_final_collection()  # the job exits without the interpreter's last collection (shutdown.py)
    logger = logging.getLogger("stacklm")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s [" + name + "] %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)

    def cause(line: str) -> None:
        # the last line of the log, without timestamp: the fixed prefix is what onerror looks for
        for h in handlers[1:]:
            h.stream.write(traceback.format_exc())
            h.stream.write(line + "\n")
            h.flush()
        print(f"\n{line}\n", file=sys.stderr, flush=True)

    start = time.perf_counter()
    try:
        with one_line_warnings(logger.warning), threadpool_limits(limits=max(int(threads), 1)):
            yield logger
    except USER_ERRORS as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        cause(f"{ERROR_PREFIX}{name}: {' '.join(message.split())}")
        sys.exit(1)
    except Exception as err:
        detail = " ".join(str(err).split())
        cause(
            f"{ERROR_PREFIX}{name}: unexpected {type(err).__name__}: {detail} (not a problem of "
            "the input that stacklm checks for; the traceback is in the log)"
        )
        raise
    logger.info("done in %.1f s, peak memory %.0f MiB", time.perf_counter() - start, peak_rss_mib())


def peak_rss_mib() -> float:
    """High-water resident memory of this process (MiB): VmHWM where /proc has it (the process
    image only; ru_maxrss also counts the parent's pages at fork and survives exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
