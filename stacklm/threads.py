"""Independent pieces of work side by side on a few threads (numpy's ufuncs and sorts, Arrow's
conversions and file reads release the GIL), or one after the other in the calling thread."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor


class InlineExecutor:
    """An executor without threads: ``submit`` and ``map`` run each task at once in the calling
    thread (the one-thread case of :func:`executor`)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args, **kwargs) -> Future:
        done: Future = Future()
        done.set_result(fn(*args, **kwargs))
        return done

    def map(self, fn, *iterables):
        return map(fn, *iterables)


def executor(threads: int):
    """A pool of ``threads`` threads, or for one thread an :class:`InlineExecutor`; either way a
    context manager with ``submit`` and ``map``, and results that do not depend on ``threads``."""
    return ThreadPoolExecutor(threads) if threads > 1 else InlineExecutor()
