"""The login store: one private file per registry, written atomically under a file lock."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from credproc import fastpath
from credproc.errors import LockTimeoutError, StoreError

if TYPE_CHECKING:
    import filelock

    from credproc.deadline import Deadline

log = logging.getLogger(__name__)

# While another process holds a lock: how often to try it, and to ask whether to keep waiting.
_LOCK_POLL_SECONDS = 0.025
_LOCK_CHECK_SECONDS = 0.05


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
    rejected_at: float = 0.0  # when the registry last refused the refresh token
    failed_at: float = 0.0  # when a refresh last failed otherwise, while credentials remained

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
    for name in ("access_expires_at", "rejected_at", "failed_at"):
        if not isinstance(values.get(name, 0.0), (int, float)):
            raise ValueError(f"its {name} is not a number")
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
        path = fastpath.lock_path(self.directory, registry)
        if path is None:
            raise ValueError(f"not a URL: {registry!r}")
        return path

    def load(self, registry: str) -> Login | None:
        """The stored login, None when there is none; StoreError when it cannot be used."""
        path = self.path(registry)
        try:
            text = _read_text(path)
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise DamagedStoreError(path, "not a quilt-credproc login file") from exc
        except OSError as exc:
            raise StoreError(f"cannot read the stored login {path}: {_reason(exc)}") from exc
        return self._parse(text, path, registry)

    def _parse(self, text: str, path: str, registry: str) -> Login:
        lines = text.split("\n")
        header = lines[0].split()
        if len(header) == 3 and header[0] == fastpath.HEADER_MAGIC:
            if header[1] != str(fastpath.FORMAT_VERSION):
                # Unusable by this version, so a login is required as for a damaged file.
                problem = f"in format {header[1]}, from a newer quilt-credproc (upgrade to use it)"
                raise DamagedStoreError(path, problem)
            try:
                return _login_from_record(json.loads(lines[2]), registry)
            except json.JSONDecodeError:
                problem = "damaged (its record is cut short, or not JSON)"
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

    def forget(self, registry: str) -> bool:
        """Log out: drop the tokens and credentials, keep the catalog and region for setup.

        The caller holds the lock. False when there was no login to forget.
        """
        try:
            login = self.load(registry)
        except DamagedStoreError:
            login = Login(registry=registry, refresh_token="")  # nothing of it can be kept
        if login is None or not login.logged_in:
            return False
        self.save(Login(registry=login.registry, catalog=login.catalog, region=login.region))
        return True

    def registries(self) -> list[str]:
        """The registries with a readable record, for status and logout --all."""
        return [registry for registry in self._records().values() if registry is not None]

    def unreadable(self) -> list[str]:
        """The record files whose registry cannot be read from them: damaged, or not ours."""
        return [path for path, registry in self._records().items() if registry is None]

    def _records(self) -> dict[str, str | None]:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot list {self.directory}: {_reason(exc)}") from exc
        paths = [os.path.join(self.directory, name) for name in names if name.endswith(".login")]
        return {path: _registry_in(path) for path in paths}

    def check_writable(self, registry: str) -> None:
        """Raise StoreError now if a login for `registry` could not be stored.

        Call it before spending what a failed write would lose: setup's one-time code, or a
        refresh token, which the registry retires as it answers.
        """
        path = self.path(registry)
        self._ensure_directory()
        if os.path.lexists(path) and not os.path.isfile(path):
            what = "a folder" if os.path.isdir(path) else "something that is not a file"
            raise StoreError(f"cannot store the login as {path}: {what} is in the way; remove it")
        lock = self.lock_path(registry)
        try:
            os.close(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot use the lock file {lock}: {_reason(exc)}") from exc
        try:
            fd, probe = tempfile.mkstemp(
                prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=self.directory
            )
        except OSError as exc:
            raise StoreError(f"cannot write in {self.directory}: {_reason(exc)}") from exc
        try:
            # As much as a record takes, so that a full disk shows now rather than later.
            os.write(fd, b"\n" * _PROBE_BYTES)
        except OSError as exc:
            raise StoreError(f"cannot write in {self.directory}: {_reason(exc)}") from exc
        finally:
            os.close(fd)
            # Named like a leftover, so that a kill right here leaves nothing the store keeps;
            # a lock holder may also have removed it already.
            with contextlib.suppress(OSError):
                os.remove(probe)

    @contextlib.contextmanager
    def lock(
        self, registry: str, deadline: Deadline, unless: Callable[[], bool] | None = None
    ) -> Iterator[bool]:
        """Hold the registry's lock for a read-modify-write; the OS frees it if this process dies.

        Yields True once it is held: then a write that a killed process left unfinished has been
        completed, and the folder checked to take a write, before the caller spends a token it
        must store. While another process holds it, `unless()` is asked now and then; once it
        answers True the wait ends and False is yielded, and the caller must not write.
        """
        path = self.lock_path(registry)
        if fastpath.holds_claim(path):
            # The hot path took this same flock at start-up; taking it again here would wait
            # on this very process.
            log.debug("holding %s, taken at start-up", path)
            release: Callable[[], None] = fastpath.release_claim
        else:
            held = self._acquire(path, deadline, unless)
            if held is None:
                yield False
                return
            release = held.release
        try:
            self._finish_interrupted_write(registry)
            self.check_writable(registry)
            yield True
        finally:
            release()

    @contextlib.contextmanager
    def editing(self, config: str, deadline: Deadline) -> Iterator[None]:
        """Hold the lock for editing the AWS config file `config`, so that setups run at once
        for different profiles do not each write back a file without the other's profile."""
        name = "aws-config-" + hashlib.sha256(os.path.realpath(config).encode()).hexdigest()[:16]
        self._ensure_directory()
        held = self._acquire(os.path.join(self.directory, name + ".lock"), deadline, None)
        try:
            yield
        finally:
            if held is not None:
                held.release()

    def _acquire(
        self, path: str, deadline: Deadline, unless: Callable[[], bool] | None
    ) -> filelock.BaseFileLock | None:
        """The lock at `path`, held; None when `unless()` ended the wait first."""
        import filelock

        self._ensure_directory()
        lock = filelock.FileLock(path, mode=0o600)
        started = time.monotonic()
        waiting = False
        while True:
            try:
                lock.acquire(
                    timeout=min(deadline.remaining(), _LOCK_CHECK_SECONDS),
                    poll_interval=_LOCK_POLL_SECONDS,
                )
            except filelock.Timeout:
                if not waiting:
                    waiting = True
                    log.debug("waiting for %s: another process holds it", path)
                if unless is not None and unless():
                    log.debug("no need to wait for %s any more", path)
                    return None
                if deadline.remaining() <= 0:
                    # The whole budget, which may have begun before this wait (the hot path's).
                    raise LockTimeoutError(path, deadline.seconds) from None
                continue
            except OSError as exc:
                raise StoreError(f"cannot lock {path}: {_reason(exc)}") from exc
            log.debug("holding %s after waiting %.3f s", path, time.monotonic() - started)
            return lock

    def _ensure_directory(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            # A folder others may write in could be given a login of theirs to adopt.
            if stat.S_IMODE(os.stat(self.directory).st_mode) & 0o077:
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise StoreError(f"cannot create {self.directory}: {_reason(exc)}") from exc

    def _write_atomically(self, path: str, text: str) -> None:
        self._remove_leftovers(path)
        try:
            fd, temp = tempfile.mkstemp(
                prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=self.directory
            )
        except OSError as exc:
            raise StoreError(f"cannot write in {self.directory}: {_reason(exc)}") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            self._put_in_place(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(temp)
            raise StoreError(f"cannot write {path}: {_reason(exc)}") from exc

    def _put_in_place(self, temp: str, path: str) -> None:
        os.replace(temp, path)
        # The rename is durable only once the folder is synced; a power cut before that would
        # bring back the old record, whose refresh token the registry has retired.
        with contextlib.suppress(OSError):
            _sync(self.directory)

    def _finish_interrupted_write(self, registry: str) -> None:
        """Put in place the record that a process killed before its rename left complete.

        Writers hold the lock and remove older leftovers before they write, so a complete
        leftover is newer than the stored record, and may hold the only refresh token the
        registry still takes. Incomplete ones (a kill or power cut mid-write) are dropped.
        """
        path = self.path(registry)
        complete = None
        for temp in self._leftovers(path):
            try:
                text = _read_text(temp)
                if text.endswith("\n"):
                    self._parse(text, temp, registry)
                    complete = temp
            except (OSError, UnicodeDecodeError, StoreError):
                continue
        if complete is not None:
            try:
                _sync(complete)  # the kill may have come before its own fsync
                self._put_in_place(complete, path)
            except OSError as exc:
                raise StoreError(f"cannot write {path}: {_reason(exc)}") from exc
            log.debug("put in place %s, which a killed process had written", complete)
        self._remove_leftovers(path)

    def _leftovers(self, path: str) -> list[str]:
        """Temp files that earlier writes of `path` left behind, oldest first."""
        prefix = _temp_prefix(path)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        # mkstemp's random part has no dot: this keeps the temp files of another registry's
        # `x.login.login` out of those of `x.login`.
        found = [
            os.path.join(self.directory, name)
            for name in names
            if name.startswith(prefix)
            and name.endswith(_TEMP_SUFFIX)
            and "." not in name[len(prefix) : -len(_TEMP_SUFFIX)]
        ]
        return sorted(found, key=_modified)

    def _remove_leftovers(self, path: str) -> None:
        # The caller holds the lock for this registry, so no writer of these names is alive.
        for temp in self._leftovers(path):
            with contextlib.suppress(OSError):
                os.remove(temp)


class DamagedStoreError(StoreError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"the stored login {path} is {problem}")
        self.path = path


def _registry_in(path: str) -> str | None:
    try:
        lines = _read_text(path).split("\n")
        registry = json.loads(lines[2]).get("registry")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return registry if isinstance(registry, str) else None


_TEMP_SUFFIX = ".tmp"
_PROBE_BYTES = 16 * 1024
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _read_text(path: str) -> str:
    """A file's text; a folder or a FIFO in its place is refused at once, never waited on."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise OSError(errno.EINVAL, f"it is {what}; remove it", path)
        with open(fd, encoding="utf-8", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


def _sync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _modified(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
