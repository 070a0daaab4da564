"""Borrowing the login of the quilt3 Python library: its auth.json, read and never written.

quilt3 keeps, in platformdirs' user data folder for app "Quilt" by "QuiltData", an auth.json
that maps each registry URL to `{"refresh_token", "access_token", "expires_at"}`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

from credproc import fastpath, paths, urls
from credproc.errors import CredprocError, ExitCode, InvalidURLError, UsageError

log = logging.getLogger(__name__)


class Quilt3Error(CredprocError):
    """quilt3's auth.json cannot be read."""


class Quilt3NotLoggedInError(Quilt3Error):
    """quilt3 holds no login for the registry: a login is required, as with nothing stored."""

    exit_code = ExitCode.LOGIN_REQUIRED


@dataclasses.dataclass(frozen=True)
class Quilt3Login:
    registry: str
    refresh_token: str
    access_token: str | None
    expires_at: float

    def __repr__(self) -> str:
        return f"Quilt3Login(registry={self.registry!r})"

    def usable_access_token(self, now: float | None = None) -> str | None:
        """The access token, if more than quilt3's own margin of it is left."""
        left = self.expires_at - (time.time() if now is None else now)
        return self.access_token if left > fastpath.ACCESS_TOKEN_MARGIN else None


def auth_path() -> str:
    return os.path.join(paths.quilt3_data_dir(), "auth.json")


def logins(path: str | None = None) -> dict[str, Quilt3Login]:
    """Each registry quilt3 is logged in to, by normalised URL, but for entries it cannot use."""
    path = path or auth_path()
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise Quilt3NotLoggedInError(
            f"quilt3 is not logged in on this machine ({path} does not exist); "
            "run quilt3.login() first, or setup without --from-quilt3"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not JSON"
        raise Quilt3Error(f"cannot read quilt3's login {path}: {reason}") from exc
    if not isinstance(data, dict):
        raise Quilt3Error(f"cannot read quilt3's login {path}: not a JSON object")
    found = {}
    for key, entry in data.items():
        login = _entry(key, entry)
        if login is None:
            log.info("%s: skipping an entry quilt3 cannot use either", path)
        else:
            found[login.registry] = login
    if not found:
        raise Quilt3NotLoggedInError(
            f"quilt3's login {path} holds no login to a registry; run quilt3.login() first, "
            "or setup without --from-quilt3"
        )
    return found


def which_registry(found: dict[str, Quilt3Login]) -> UsageError:
    """The error for a setup that names no catalog while quilt3 knows several registries."""
    return UsageError(
        f"quilt3 is logged in to {len(found)} registries ({', '.join(sorted(found))}); "
        "name one with --catalog URL or --registry URL"
    )


def only_registry(found: dict[str, Quilt3Login]) -> str | None:
    """The registry when quilt3 is logged in to just one: setup then needs no --catalog."""
    return next(iter(found)) if len(found) == 1 else None


def login_for(found: dict[str, Quilt3Login], registry: str) -> Quilt3Login:
    login = found.get(registry)
    if login is None:
        known = ", ".join(sorted(found)) or "none"
        raise Quilt3NotLoggedInError(
            f"quilt3 is not logged in to {registry} (it is to: {known}); "
            "run quilt3.login() for it first, or setup without --from-quilt3"
        )
    return login


def _entry(key: object, entry: object) -> Quilt3Login | None:
    if not isinstance(key, str) or not isinstance(entry, dict):
        return None
    refresh, access, expires = (
        entry.get(k) for k in ("refresh_token", "access_token", "expires_at")
    )
    if not isinstance(refresh, str) or not refresh:
        return None
    try:
        registry = urls.registry(key)
    except InvalidURLError:
        return None
    if not isinstance(expires, (int, float)) or isinstance(expires, bool):
        expires = 0.0  # unknown: the access token is not used, the refresh token still is
    return Quilt3Login(
        registry=registry,
        refresh_token=refresh,
        access_token=access if isinstance(access, str) and access else None,
        expires_at=float(expires),
    )
