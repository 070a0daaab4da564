"""Serve still-fresh stored credentials at the cost of an interpreter start.

This module runs before anything else on every call, so it imports nothing but what the
interpreter has already loaded (no json: its decoder imports `re`). The store writes each
login file as three lines so that this reader needs no parser:

    quilt-credproc-login 1 <epoch second the credentials expire>
    <the credential_process answer, exactly as printed>
    <the full login record, as JSON>
"""

from __future__ import annotations

import os
import time

HEADER_MAGIC = "quilt-credproc-login"
FORMAT_VERSION = 1
# botocore refreshes 15 minutes before expiry and runs the helper again on every request when
# handed anything shorter, so credentials are served from the store only with more left.
MIN_SECONDS_LEFT = 20 * 60
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def login_key(registry: str) -> str | None:
    """The file name stem for a registry URL; different URLs never share a stem."""
    scheme, sep, rest = registry.partition("://")
    if not sep or not scheme.isalpha():
        return None
    encoded = "".join(c if c in _KEPT else f"_{ord(c):x}_" for c in rest.rstrip("/"))
    return f"{scheme.lower()}_{encoded}"


def login_path(directory: str, registry: str) -> str | None:
    key = login_key(registry)
    return None if key is None else os.path.join(directory, key + ".login")


def cached_answer(directory: str, registry: str, now: float | None = None) -> str | None:
    """The stored answer for `registry` if it has more than MIN_SECONDS_LEFT, else None."""
    path = login_path(directory, registry)
    if path is None:
        return None
    try:
        # Non-blocking, so that a FIFO put where the file belongs cannot hang an AWS command.
        with open(os.open(path, os.O_RDONLY | _NONBLOCK), encoding="utf-8") as file:
            header = file.readline().split()
            answer = file.readline()
    except (OSError, UnicodeDecodeError):
        return None  # the full path reports what is wrong
    if len(header) != 3 or header[0] != HEADER_MAGIC or header[1] != str(FORMAT_VERSION):
        return None
    try:
        expires = int(header[2])
    except ValueError:
        return None
    left = expires - (time.time() if now is None else now)
    if left <= MIN_SECONDS_LEFT or not answer.endswith("}\n"):
        return None
    return answer
