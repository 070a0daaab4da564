"""The login store: one private file per registry, written atomically under a file lock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from credproc import fastpath
from credproc.errors import LockTimeoutError, StoreError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: int  # epoch seconds

    def __repr__(self) -> str:
        return f"Credentials(access_key_id=..., expiration={self.expiration})"

    @property
    def expiration_rfc3339(self) -> str:
        # Go's SDK parses strict RFC 3339; botocore rejects a time without a zone.
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expiration))

    def process_answer(self) -> str:
        """The credential_process answer: one JSON object on one line."""
        return json.dumps(
            {
                "Version": 1,
                "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "SessionToken": self.session_token,
                "Expiration": self.expiration_rfc3339,
            }
        )

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Login:
    registry: str
    catalog: str | None = None
    region: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    access_expires_at: float = 0.0
    credentials: Credentials | None = None

    def __repr__(self) -> str:
        return f"Login(registry={self.registry!r}, catalog={self.catalog!r})"

    @property
    def logged_in(self) -> bool:
        return self.refresh_token is not None


def _login_from_record(record: Any, registry: str) -> Login:
    """Build a Login from the JSON record, raising ValueError on anything off."""
    if not isinstance(record, dict) or record.get("registry") != registry:
        raise ValueError("it belongs to another registry")
    fields = {f.name for f in dataclasses.fields(Login)}
    values = {k: v for k, v in record.items() if k in fields}
    creds = values.get("credentials")
    if creds is not None:
        values["credentials"] = Credentials(**creds)
        if not isinstance(values["credentials"].expiration, int):
            raise ValueError("its credentials have no expiry")
    for name in ("refresh_token", "access_token", "catalog", "region"):
        if values.get(name) is not None and not isinstance(values[name], str):
            raise ValueError(f"its {name} is not a string")
    if not isinstance(values.get("access_expires_at", 0.0), (int, float)):
        raise ValueError("its access token has no expiry")
    return Login(**values)


class Store:
    """Login records, one per registry, in a private folder."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, registry: str) -> str:
        path = fastpath.login_path(self.directory, registry)
        if path is None:
            raise ValueError(f"not a URL: {registry!r}")
        return path

    def lock_path(self, registry: str) -> str:
        return self.path(registry)[: -len(".login")] + ".lock"

    def load(self, registry: str) -> Login | None:
        """The stored login, None when there is none; StoreError when it cannot be used."""
        path = self.path(registry)
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the stored login {path}: {_reason(exc)}") from exc
        return self._parse(text, path, registry)

    def _parse(self, text: str, path: str, registry: str) -> Login:
        lines = text.split("\n")
        header = lines[0].split()
        if len(header) == 3 and header[0] == fastpath.HEADER_MAGIC:
            if header[1] != str(fastpath.FORMAT_VERSION):
                raise StoreError(
                    f"the stored login {path} was written by a newer quilt-credproc "
                    f"(format {header[1]}); upgrade quilt-credproc or run setup again"
                )
            try:
                return _login_from_record(json.loads(lines[2]), registry)
            except (IndexError, ValueError, TypeError) as exc:
                problem = f"damaged ({exc})" if isinstance(exc, ValueError) else "damaged"
        else:
            problem = "empty" if not text.strip() else "not a quilt-credproc login file"
        raise DamagedStoreError(path, problem)

    def save(self, login: Login) -> None:
        """Replace the record atomically: readers see the old file or the new, never a part."""
        path = self.path(login.registry)
        record = dataclasses.asdict(login)
        creds = login.credentials
        expires = creds.expiration if creds else 0
        answer = creds.process_answer() if creds else "{}"
        header = f"{fastpath.HEADER_MAGIC} {fastpath.FORMAT_VERSION} {expires}"
        text = f"{header}\n{answer}\n{json.dumps(record)}\n"
        self._ensure_directory()
        self._write_atomically(path, text)
        log.debug("stored the login for %s in %s", login.registry, path)

    def delete(self, registry: str) -> bool:
        try:
            os.remove(self.path(registry))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot remove {self.path(registry)}: {_reason(exc)}") from exc
        return True

    def registries(self) -> list[str]:
        """The registries with a readable record, for status and logout --all."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.directory}: {_reason(exc)}") from exc
        found = []
        for name in names:
            if name.endswith(".login"):
                registry = _registry_in(os.path.join(self.directory, name))
                if registry:
                    found.append(registry)
        return found

    @contextlib.contextmanager
    def lock(self, registry: str, timeout: float) -> Iterator[None]:
        """Hold the registry's lock; the OS frees it if this process dies."""
        import filelock

        self._ensure_directory()
        path = self.lock_path(registry)
        lock = filelock.FileLock(path, timeout=max(timeout, 0), mode=0o600)
        started = time.monotonic()
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(path, timeout) from exc
        except OSError as exc:
            raise StoreError(f"cannot lock {path}: {_reason(exc)}") from exc
        log.debug("holding %s after waiting %.3f s", path, time.monotonic() - started)
        try:
            yield
        finally:
            lock.release()

    def _ensure_directory(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.directory}: {_reason(exc)}") from exc

    def _write_atomically(self, path: str, text: str) -> None:
        directory, name = os.path.split(path)
        self._remove_leftovers(name)
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise StoreError(f"cannot write in {directory}: {_reason(exc)}") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(temp)
            raise StoreError(f"cannot write {path}: {_reason(exc)}") from exc

    def _remove_leftovers(self, name: str) -> None:
        # A process killed while writing leaves its temp file; the caller holds the lock for
        # this registry, so no other writer of these names is alive.
        with contextlib.suppress(OSError):
            for other in os.listdir(self.directory):
                if other.startswith(f".{name}.") and other.endswith(".tmp"):
                    os.remove(os.path.join(self.directory, other))


class DamagedStoreError(StoreError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"the stored login {path} is {problem}")
        self.path = path


def _registry_in(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
        registry = json.loads(lines[2]).get("registry")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return registry if isinstance(registry, str) else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
