"""How long one command may take: every wait (lock, connect, answer) comes out of one budget.

Loaded on the hot path when stored credentials are stale, so it imports only what the
interpreter has already loaded.
"""

from __future__ import annotations

import os
import time

# An AWS command waiting on a hung registry gives up within a minute.
DEFAULT_SECONDS = 55.0
SETTING = "QUILT_CREDPROC_TIMEOUT"


def configured_seconds() -> float | None:
    """The budget from QUILT_CREDPROC_TIMEOUT (default 55 s); None when it is not a valid one."""
    raw = os.environ.get(SETTING, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None  # NaN fails the test too


class Deadline:
    """The end of a command's time budget, counted from when the command started."""

    def __init__(self, seconds: float, started: float | None = None) -> None:
        self.seconds = seconds
        self._end = (time.monotonic() if started is None else started) + seconds

    def remaining(self) -> float:
        return max(self._end - time.monotonic(), 0.0)
