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
# Credentials are never handed out in their last seconds: a request signed with them could
# reach AWS after they end.
EXPIRY_MARGIN = 5
# quilt3 renews an access token when less than this is left of it; so does this helper.
ACCESS_TOKEN_MARGIN = 60
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_WAIT_POLL_SECONDS = 0.025  # shorter polls, many at once, slow the refresh they wait for
# The lock answer_or_claim() took: its path, and the descriptor that holds its flock.
_claimed: list[tuple[str, int]] = []
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


def lock_path(directory: str, registry: str) -> str | None:
    key = login_key(registry)
    return None if key is None else os.path.join(directory, key + ".lock")


def answer_or_claim(directory: str, registry: str, until: float) -> str | None:
    """Another process's fresh answer, or None once this process may refresh itself.

    AWS commands started together all find the same stale credentials. The first to get here
    takes the registry's lock at once (before loading anything else) and refreshes; the others
    find it held and wait here for its answer, without ever loading the HTTP stack. None also
    when the holder lets go without storing fresh credentials, or at `until` (a
    time.monotonic() value), or where this cannot be done: the caller then goes the long way,
    which reads the store again under the lock. The store's lock() adopts a lock taken here.

    Credentials stored meanwhile by another process count as its answer even with less than
    MIN_SECONDS_LEFT, as long as they have not ended: a registry that issues short-lived
    credentials would issue this process no longer-lived ones.
    """
    path, login = lock_path(directory, registry), login_path(directory, registry)
    if path is None or login is None or not os.path.exists(login):
        return None  # nothing to refresh: the long way says what to do
    stale = _stored(directory, registry)
    seen = None if stale is None else stale[0]
    try:
        import fcntl  # filelock takes the same flock() on POSIX systems
    except ImportError:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            answer = _answer_since(directory, registry, seen)
            if answer is None and time.monotonic() < until:
                time.sleep(_WAIT_POLL_SECONDS)
                continue
            os.close(fd)
            return answer
        except OSError:
            os.close(fd)
            return None
        # Held: a refresh may have ended just before, leaving nothing to do.
        answer = _answer_since(directory, registry, seen)
        if answer is not None:
            os.close(fd)
            return answer
        _claimed.append((path, fd))
        return None


def holds_claim(path: str) -> bool:
    """Whether answer_or_claim() took the lock at `path` for this process."""
    return any(held == path for held, _ in _claimed)


def release_claim() -> None:
    """Let go of the lock answer_or_claim() took (the process's exit would, too)."""
    while _claimed:
        os.close(_claimed.pop()[1])  # closing the descriptor releases its flock


def cached_answer(directory: str, registry: str, now: float | None = None) -> str | None:
    """The stored answer for `registry` if it has more than MIN_SECONDS_LEFT, else None."""
    found = _stored(directory, registry)
    if found is None:
        return None
    expires, answer = found
    left = expires - (time.time() if now is None else now)
    return answer if left > MIN_SECONDS_LEFT else None


def _answer_since(directory: str, registry: str, seen: int | None) -> str | None:
    """The stored answer if fresh, or if it replaced the one that expires at `seen` and has
    not ended yet."""
    found = _stored(directory, registry)
    if found is None:
        return None
    expires, answer = found
    left = expires - time.time()
    fresh = left > MIN_SECONDS_LEFT or (expires != seen and left > EXPIRY_MARGIN)
    return answer if fresh else None


def _stored(directory: str, registry: str) -> tuple[int, str] | None:
    """When the stored credentials expire, and their answer; None unless the file is whole."""
    path = login_path(directory, registry)
    if path is None:
        return None
    try:
        # Non-blocking, so that a FIFO put where the file belongs cannot hang an AWS command.
        with open(os.open(path, os.O_RDONLY | _NONBLOCK), encoding="utf-8") as file:
            header = file.readline().split()
            answer = file.readline()
            record = file.readline()  # served only from a whole file, as the long way reads it
    except (OSError, UnicodeDecodeError):
        return None  # the full path reports what is wrong
    if len(header) != 3 or header[0] != HEADER_MAGIC or header[1] != str(FORMAT_VERSION):
        return None
    try:
        expires = int(header[2])
    except ValueError:
        return None
    if not (answer.endswith("}\n") and record.endswith("}\n")):
        return None
    return expires, answer
