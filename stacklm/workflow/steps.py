"""Plumbing shared by the workflow's script entry points (no Snakemake import here): logging to the
rule's log file, BLAS threads from the rule's ``threads``, user errors as one clear line, and the
step's time and peak memory (the job process's high-water RSS) as its last log line."""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
import traceback

from threadpoolctl import threadpool_limits

#: errors caused by the input or the config: shown as one line, traceback only in the log
USER_ERRORS = (ValueError, KeyError, FileNotFoundError)


@contextlib.contextmanager
def workflow_step(name: str, log_path: str | None, threads: int = 1):
    """Run one step: log to ``log_path`` and stderr, limit BLAS threads, turn user errors into one line."""
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
    logging.captureWarnings(True)
    warn_logger = logging.getLogger("py.warnings")
    warn_logger.handlers = list(handlers)
    start = time.perf_counter()
    try:
        with threadpool_limits(limits=max(int(threads), 1)):
            yield logger
    except USER_ERRORS as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        for h in handlers[1:]:
            h.stream.write(traceback.format_exc())
        logger.error(message)
        print(f"\nstacklm error in step {name}: {message}\n", file=sys.stderr)
        sys.exit(1)
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
