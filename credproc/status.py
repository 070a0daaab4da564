"""`status` and `logout`: what is stored for which profile, and forgetting it."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from credproc import profiles
from credproc.deadline import Deadline
from credproc.errors import StoreError, UsageError
from credproc.store import Store

log = logging.getLogger(__name__)

# What `login` says in a row.
LOGGED_IN = "logged in"
LOGGED_OUT = "logged out"
REFUSED = "refused"  # the registry refused the refresh token: setup is needed
MISSING = "missing"  # a profile runs the helper for a registry with nothing stored
DAMAGED = "damaged"


@dataclasses.dataclass(frozen=True)
class Row:
    """One stored login as one profile uses it (profile None: no profile uses it)."""

    profile: str | None
    registry: str
    catalog: str | None
    login: str
    expires: str | None  # the stored credentials' expiry, RFC 3339
    expired: bool | None  # None with no credentials stored
    problem: str | None = None

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def rows(store: Store, config: Path, now: float | None = None) -> list[Row]:
    """A row per stored login and per profile using it, profiles in file order first."""
    linked = profiles.linked_profiles(config)
    stored = store.registries()
    log.debug("%d profiles in %s run quilt-credproc", len(linked), config)
    log.debug("%d logins stored in %s", len(stored), store.directory)
    registries = list(dict.fromkeys([link.registry for link in linked] + stored))
    found = []
    for registry in registries:
        row = _row(store, registry, time.time() if now is None else now)
        users = [link.profile for link in linked if link.registry == registry]
        found += [dataclasses.replace(row, profile=name) for name in users] or [row]
    shown = {store.path(registry) for registry in registries}
    for path in store.unreadable():
        if path not in shown:  # a record no profile names, and that names no registry
            found.append(Row(None, "-", None, DAMAGED, None, None, f"cannot read {path}"))
    return found


def _row(store: Store, registry: str, now: float) -> Row:
    try:
        login = store.load(registry)
    except StoreError as exc:
        return Row(None, registry, None, DAMAGED, None, None, str(exc))
    if login is None:
        return Row(None, registry, None, MISSING, None, None)
    creds = login.credentials if login.logged_in else None
    state, problem = (LOGGED_IN, None) if login.logged_in else (LOGGED_OUT, None)
    if login.logged_in and login.rejected_at:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(login.rejected_at))
        state, problem = REFUSED, f"the registry refused its refresh token at {when}"
    return Row(
        profile=None,
        registry=registry,
        catalog=login.catalog,
        login=state,
        expires=creds.expiration_rfc3339 if creds else None,
        expired=None if creds is None else creds.expiration <= now,
        problem=problem,
    )


def table(found: Iterable[Row]) -> str:
    """The rows as aligned columns for a terminal."""
    lines = [("PROFILE", "LOGIN", "CREDENTIALS", "CATALOG", "REGISTRY")]
    for row in found:
        if row.expires is None:
            creds = "-"
        else:
            creds = f"{'expired' if row.expired else 'good until'} {row.expires}"
        login = row.login if row.problem is None else f"{row.login}: {row.problem}"
        lines.append((row.profile or "-", login, creds, row.catalog or "-", row.registry))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(line, widths)), line[4]])
        for line in lines
    )


def registries_to_forget(
    store: Store, config: Path, profile: str | None, registry: str | None, everything: bool
) -> list[str]:
    """The registries a `logout` names: one profile's, one registry, or all stored."""
    if everything:
        return store.registries()
    if registry is not None:
        return [registry]
    name = profile or profiles.default_profile()
    found = profiles.registry_of_profile(config, name)
    if found is None:
        raise UsageError(
            f"profile {name!r} in {config} does not get its credentials from quilt-credproc; "
            "name one that does with --profile, or use --registry URL or --all"
        )
    return [found]


def logout(store: Store, registries: Iterable[str], budget: Deadline) -> list[tuple[str, bool]]:
    """Forget each registry's tokens and credentials; whether there was a login to forget."""
    done = []
    for registry in registries:
        if not os.path.lexists(store.path(registry)):
            done.append((registry, False))  # nothing to lock for
            continue
        with store.lock(registry, budget):
            done.append((registry, store.forget(registry)))
    return done
