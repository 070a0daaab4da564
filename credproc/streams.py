"""Standard output carries only what was asked for (credentials, status); the rest is stderr.

Loaded on the hot path, so it imports nothing the interpreter has not already loaded.
"""

from __future__ import annotations

import os
import sys


def emit(text: str) -> int:
    """Write to stdout; a closed or full stdout is a failure, not a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError) as exc:  # None, EPIPE/ENOSPC, closed
        # What is still buffered would fail again, noisily, when the interpreter exits.
        try:  # noqa: SIM105 (contextlib is not worth its import on the hot path)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        reason = getattr(exc, "strerror", None) or "it is closed"
        say(f"quilt-credproc: cannot write to standard output: {reason}")
        return 1  # ExitCode.FAILURE, which the hot path does not import
    return 0


def interrupted() -> int:
    """Ctrl-C: one line, after ending a prompt's line on a terminal; the status a shell expects."""
    tty = sys.stderr is not None and sys.stderr.isatty()
    say(("\n" if tty else "") + "quilt-credproc: interrupted")
    return 130  # ExitCode.INTERRUPTED


def say(text: str) -> None:
    """Talk to the person at the terminal: stdout is reserved for what was asked for."""
    if sys.stderr is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
