"""Process mode: hand an AWS SDK credentials for one registry, refreshing them when due."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Iterator

from credproc import fastpath
from credproc.deadline import Deadline
from credproc.errors import (
    CredprocError,
    IncompleteTokensError,
    LoginRequiredError,
    OutOfTimeError,
    ServerError,
    StaleAccessTokenError,
    TokenRejectedError,
)
from credproc.store import Credentials, DamagedStoreError, Login, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from credproc.registry import Client

log = logging.getLogger(__name__)

# With such credentials to fall back on, a credentials request gets this long rather than the
# whole budget: botocore runs the helper before every request once credentials near expiry.
# A token request always gets the whole budget: the registry may rotate the refresh token
# after the helper stops waiting, and the stored one would then be dead.
FALLBACK_WAIT = 10.0
# A refresh token the registry refused is not sent again for this long. Every AWS command would
# otherwise present it anew, and a registry that watches for reuse may revoke the whole login.
REJECTION_PAUSE = 300
# After a failed refresh, while stored credentials can stand in, the next try waits this long:
# each AWS command would otherwise wait out a hung registry anew.
FAILURE_PAUSE = 60


def credentials_for(
    registry: str,
    store: Store,
    deadline: Deadline,
    connect: Callable[[Deadline], Client],
    fix_command: Callable[[Login | None], str],
    clock: Callable[[], float] = time.time,
) -> Credentials:
    """Stored credentials while fresh, else new ones from the registry, under the lock.

    `connect` is called only by the process that refreshes: importing the HTTP stack costs
    several interpreter starts, and the processes that wait for its refresh do without it.
    """
    login = _load(store, registry, fix_command)
    if login is not None and login.credentials and _fresh(login.credentials, clock()):
        log.debug("the stored credentials are good until %s", login.credentials.expiration_rfc3339)
        return login.credentials
    if login is None or not login.logged_in:
        # Nothing to wait for: a login appears only through setup, which the user must run.
        raise LoginRequiredError("not logged in to " + registry, fix_command(login))
    seen = login.credentials

    def refreshed_meanwhile() -> bool:
        return _newer(_load(store, registry, fix_command), seen, clock()) is not None

    try:
        # Another process may refresh while this one waits: then there is no need to go on.
        with store.lock(registry, deadline, unless=refreshed_meanwhile) as held:
            login = _load(store, registry, fix_command)
            if login is None or not login.logged_in:
                raise LoginRequiredError("not logged in to " + registry, fix_command(login))
            newer = _newer(login, seen, clock())
            if newer is not None:
                log.debug("another process refreshed the credentials")
                return newer
            if not held:  # refreshed_meanwhile() saw new ones; only a logout takes them away
                raise LoginRequiredError("not logged in to " + registry, fix_command(None))
            usable = login.credentials is not None and _left(login.credentials, clock()) > 0
            return _refresh_or_record(login, store, lambda: connect(deadline), clock, usable)
    except TokenRejectedError as exc:
        fix = fix_command(login)
        failure: CredprocError = LoginRequiredError(
            "the registry no longer accepts this login", fix
        )
        failure.__cause__ = exc
    except CredprocError as exc:
        failure = exc
    stored = login.credentials if login else None
    if stored is not None and _left(stored, clock()) > 0:
        log.warning(
            "%s; using the stored credentials, which expire at %s",
            failure,
            stored.expiration_rfc3339,
        )
        return stored
    raise failure


def _refresh_or_record(
    login: Login,
    store: Store,
    connect: Callable[[], Client],
    clock: Callable[[], float],
    fallback: bool,
) -> Credentials:
    """Refresh under the lock, unless a recent failure says not to try again yet.

    A refused refresh token is not sent again for REJECTION_PAUSE; after any other failure,
    while stored credentials can stand in (`fallback`), the next try waits FAILURE_PAUSE.
    """
    now = clock()
    endpoint = f"POST {login.registry}/api/token"
    if now - login.rejected_at < REJECTION_PAUSE:
        until = _clock_time(login.rejected_at + REJECTION_PAUSE)
        raise TokenRejectedError(endpoint, f"refused earlier; not sent again before {until}")
    if fallback and now - login.failed_at < FAILURE_PAUSE:
        since, until = _clock_time(login.failed_at), _clock_time(login.failed_at + FAILURE_PAUSE)
        raise ServerError(login.registry, f"failed at {since}; next try after {until}")
    try:
        return _refresh(login, store, connect(), clock, FALLBACK_WAIT if fallback else None)
    except TokenRejectedError:
        _record(store, login, rejected_at=now)
        raise
    except OutOfTimeError:
        raise  # the registry was not asked; the next command may have the time to
    except CredprocError:
        if fallback:
            _record(store, login, failed_at=now)
        raise


def _record(store: Store, login: Login, rejected_at: float = 0.0, failed_at: float = 0.0) -> None:
    """Note when a refresh failed, on the record as it is now (the refresh may have stored a
    rotated token first); a store that just failed may fail again, which changes nothing."""
    with contextlib.suppress(CredprocError):
        newest = store.load(login.registry) or login
        store.save(dataclasses.replace(newest, rejected_at=rejected_at, failed_at=failed_at))


def _clock_time(moment: float) -> str:
    return time.strftime("%H:%M:%SZ", time.gmtime(moment))


def _refresh(
    login: Login,
    store: Store,
    client: Client,
    clock: Callable[[], float],
    credentials_wait: float | None,
) -> Credentials:
    """New credentials, renewing the access token first if due; a credentials request gets
    at most `credentials_wait` seconds (None: the whole budget)."""

    def fetch(token: str) -> Credentials:
        quick = client
        if credentials_wait is not None:
            quick = client.within(Deadline(min(client.deadline.remaining(), credentials_wait)))
        return quick.credentials(login.registry, token)

    token = login.access_token
    renewed = token is None or login.access_expires_at - clock() < fastpath.ACCESS_TOKEN_MARGIN
    if renewed or token is None:
        login, token = _renew_access_token(login, store, client)
    try:
        creds = fetch(token)
    except StaleAccessTokenError:
        if renewed:
            raise
        log.debug("the access token was refused; renewing it once and retrying")
        login, token = _renew_access_token(login, store, client)
        creds = fetch(token)
    store.save(dataclasses.replace(login, credentials=creds, failed_at=0.0))
    log.debug("new credentials expire at %s", creds.expiration_rfc3339)
    return creds


def _renew_access_token(login: Login, store: Store, client: Client) -> tuple[Login, str]:
    with _signals_held():
        try:
            tokens = client.refresh(login.registry, login.refresh_token or "")
        except IncompleteTokensError as exc:
            # Of no use but for its refresh token, which may be the only one still accepted.
            store.save(_with_tokens(login, exc.refresh_token, None, 0.0))
            raise
        login = _with_tokens(login, tokens.refresh_token, tokens.access_token, tokens.expires_at)
        # The registry may have retired the old refresh token: keep the new one first.
        store.save(login)
    return login, tokens.access_token


def _with_tokens(login: Login, refresh: str, access: str | None, expires_at: float) -> Login:
    return dataclasses.replace(
        login,
        refresh_token=refresh,
        access_token=access,
        access_expires_at=expires_at,
        rejected_at=0.0,
    )


def _newer(login: Login | None, seen: Credentials | None, now: float) -> Credentials | None:
    """The stored credentials if they will do: fresh, or new since `seen` and not yet ending.

    New ones inside the 20-minute margin are as good as a refresh of this process's own
    would be: a registry that issued them short-lived issues no longer-lived ones.
    """
    creds = login.credentials if login is not None and login.logged_in else None
    if creds is None:
        return None
    if _fresh(creds, now) or (creds != seen and _left(creds, now) > 0):
        return creds
    return None


def _left(creds: Credentials, now: float) -> float:
    """How long the credentials can still be handed out; not at all in their last seconds."""
    return creds.expiration - now - fastpath.EXPIRY_MARGIN


_UNHELD = {
    getattr(signal, name)
    for name in ("SIGKILL", "SIGSTOP", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT")
    if hasattr(signal, name)
}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Let Ctrl-C, SIGTERM, SIGHUP and the like wait until the rotated refresh token is stored.

    A Ctrl-C in the terminal reaches the whole foreground group, this helper too, while the
    registry may already have retired the old token. Held, the signal takes effect once the
    new one is saved: at most one request's timeout later, and after the AWS command is gone.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    # Every signal that would end the process, but the two no process can hold and those a
    # fault of its own raises.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - _UNHELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _load(store: Store, registry: str, fix_command: Callable[[Login | None], str]) -> Login | None:
    try:
        return store.load(registry)
    except DamagedStoreError as exc:
        raise LoginRequiredError(str(exc), fix_command(None)) from exc


def _fresh(creds: Credentials | None, now: float) -> bool:
    return creds is not None and creds.expiration - now > fastpath.MIN_SECONDS_LEFT
