"""Progress lines of a long step: how far a fit job is through its rows, logged at most every
:data:`PROGRESS_SECONDS` seconds (or every ``STACKLM_PROGRESS_SECONDS`` seconds when that
environment variable is set), so a user watching a job's log (``tail -f`` on a cluster) sees it
move, while a short job logs nothing extra."""

from __future__ import annotations

import logging
import os
import time

#: at most one progress line per this many seconds (the first one after this long)
PROGRESS_SECONDS = 10.0

_log = logging.getLogger("stacklm")


def progress_seconds() -> float:
    """The seconds between progress lines: ``STACKLM_PROGRESS_SECONDS`` when it is a number >= 0,
    else :data:`PROGRESS_SECONDS`."""
    try:
        value = float(os.environ.get("STACKLM_PROGRESS_SECONDS", ""))
    except ValueError:
        return PROGRESS_SECONDS
    return value if value >= 0 else PROGRESS_SECONDS


class Progress:
    """Counts the rows done of ``total`` and logs ``"<label>: <done> of <total> features
    (<percent>%)"`` when at least ``interval`` seconds (default: :func:`progress_seconds`, read
    when made) have passed since the start or the last line."""

    def __init__(self, label: str, total: int, log: logging.Logger | None = None, interval=None):
        self.label = label
        self.total = int(total)
        self.done = 0
        self.log = _log if log is None else log
        self.interval = progress_seconds() if interval is None else float(interval)
        self._last = time.monotonic()

    def at(self, done: int) -> None:
        """``done`` rows done in all; a progress line if it is time for one."""
        self.done = int(done)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            percent = 100.0 * self.done / self.total if self.total else 100.0
            self.log.info(
                "%s: %d of %d features (%.0f%%)", self.label, self.done, self.total, percent
            )
