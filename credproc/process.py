"""Process mode: hand an AWS SDK credentials for one registry, refreshing them when due."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Iterator

from credproc import fastpath
from credproc.errors import (
    CredprocError,
    LoginRequiredError,
    StaleAccessTokenError,
    TokenRejectedError,
)
from credproc.store import Credentials, DamagedStoreError, Login, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from credproc.deadline import Deadline
    from credproc.registry import Client

log = logging.getLogger(__name__)

# Stored credentials are still handed out during a registry outage while they have this left.
FALLBACK_MARGIN = 5


def credentials_for(
    registry: str,
    store: Store,
    deadline: Deadline,
    connect: Callable[[], Client],
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

    def refreshed_meanwhile() -> bool:
        again = _load(store, registry, fix_command)
        return again is not None and _fresh(again.credentials, clock())

    try:
        # Another process may refresh while this one waits: then there is no need to go on.
        with store.lock(registry, deadline, unless=refreshed_meanwhile) as held:
            login = _load(store, registry, fix_command)
            if login is None or not login.logged_in:
                raise LoginRequiredError("not logged in to " + registry, fix_command(login))
            if login.credentials is not None and (not held or _fresh(login.credentials, clock())):
                log.debug("another process refreshed the credentials")
                return login.credentials
            if not held:  # only a logout removes credentials, and it removes the login with them
                raise LoginRequiredError("not logged in to " + registry, fix_command(login))
            return _refresh(login, store, connect(), clock)
    except TokenRejectedError as exc:
        fix = fix_command(login)
        failure: CredprocError = LoginRequiredError(
            "the registry no longer accepts this login", fix
        )
        failure.__cause__ = exc
    except CredprocError as exc:
        failure = exc
    stored = login.credentials if login else None
    if stored is not None and stored.expiration - clock() > FALLBACK_MARGIN:
        log.warning(
            "%s; using the stored credentials, which expire at %s",
            failure,
            stored.expiration_rfc3339,
        )
        return stored
    raise failure


def _refresh(login: Login, store: Store, client: Client, clock: Callable[[], float]) -> Credentials:
    token = login.access_token
    renewed = token is None or login.access_expires_at - clock() < fastpath.ACCESS_TOKEN_MARGIN
    if renewed or token is None:
        login, token = _renew_access_token(login, store, client)
    try:
        creds = client.credentials(login.registry, token)
    except StaleAccessTokenError:
        if renewed:
            raise
        log.debug("the access token was refused; renewing it once and retrying")
        login, token = _renew_access_token(login, store, client)
        creds = client.credentials(login.registry, token)
    store.save(dataclasses.replace(login, credentials=creds))
    log.debug("new credentials expire at %s", creds.expiration_rfc3339)
    return creds


def _renew_access_token(login: Login, store: Store, client: Client) -> tuple[Login, str]:
    with _signals_held():
        tokens = client.refresh(login.registry, login.refresh_token or "")
        login = dataclasses.replace(
            login,
            refresh_token=tokens.refresh_token,
            access_token=tokens.access_token,
            access_expires_at=tokens.expires_at,
        )
        # The registry may have retired the old refresh token: keep the new one first.
        store.save(login)
    return login, tokens.access_token


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Let Ctrl-C and SIGTERM wait until the rotated refresh token is stored.

    A Ctrl-C in the terminal reaches the whole foreground group, this helper too, while the
    registry may already have retired the old token. Held, the signal takes effect once the
    new one is saved: at most one request's timeout later, and after the AWS command is gone.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
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
