"""`setup`: log in to a catalog in the browser, store the login, and point a profile at it."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from credproc import profiles, urls
from credproc.deadline import Deadline
from credproc.errors import (
    CodeRejectedError,
    CredprocError,
    InvalidURLError,
    LoginRequiredError,
    ServerError,
    StaleAccessTokenError,
    TokenRejectedError,
    UsageError,
)
from credproc.quilt3 import Quilt3Login
from credproc.registry import Client, Tokens
from credproc.store import Credentials, Login, Store

log = logging.getLogger(__name__)

PROMPT = "Enter the code from the webpage: "


@dataclasses.dataclass(frozen=True)
class SetupRequest:
    profile: str = "quilt"
    catalog: str | None = None
    registry: str | None = None
    open_browser: bool = True


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the user logs in: the code page, and the registry that takes the code."""

    registry: str
    catalog: str | None
    region: str | None
    code_url: str


def resolve_target(
    request: SetupRequest,
    client: Client,
    store: Store,
    config: Path,
    environ: Mapping[str, str],
    default_registry: str | None = None,
) -> Target:
    """Where to log in: the catalog or registry named, else the one the profile remembers."""
    catalog = request.catalog or environ.get("QUILT_CATALOG_URL") or None
    registry = request.registry
    if catalog is None and registry is None:
        registry = profiles.registry_of_profile(config, request.profile) or default_registry
        remembered = _stored(store, registry) if registry else None
        catalog = remembered.catalog if remembered else None
        if catalog is None and registry is None:
            raise UsageError(
                f"no catalog to log in to for profile {request.profile!r}; pass "
                "--catalog https://your-catalog.example.com (or set QUILT_CATALOG_URL)"
            )
    if catalog is not None:
        catalog = urls.catalog(catalog)
        config_json = client.catalog_config(catalog)
        try:
            registry = urls.registry(config_json.registry)
        except InvalidURLError as exc:
            raise ServerError(f"GET {catalog}/config.json", f"its registryUrl: {exc}") from exc
        return Target(registry, catalog, config_json.region, f"{catalog}/code")
    registry = urls.registry(registry or "")
    remembered = _stored(store, registry)
    region = remembered.region if remembered else None
    return Target(registry, None, region, f"{registry}/login")


def exchange_code(target: Target, code: str, client: Client) -> Login:
    """Trade the code for tokens, and prove the login by fetching credentials once."""
    code = code.strip()
    if not code:
        raise UsageError("no code was entered; nothing was changed")
    if not (code.isascii() and code.isprintable()) or any(c.isspace() for c in code):
        # Never echo it: whatever was pasted may be a secret of some other kind.
        raise UsageError(
            f"that is not a code from {target.code_url} (a code is one word of letters, "
            "digits and punctuation); nothing was changed"
        )
    try:
        tokens = client.refresh(target.registry, code)
    except TokenRejectedError as exc:
        raise CodeRejectedError(target.code_url) from exc
    return _proven(target, tokens, client.credentials(target.registry, tokens.access_token))


def adopt_quilt3(target: Target, borrowed: Quilt3Login, client: Client) -> Login:
    """quilt3's login for the target, proven by fetching credentials once.

    Its access token is used while it lasts, so that quilt3's own refresh token is not spent
    (and, where the registry rotates them, retired) just to get started.
    """
    access_token = borrowed.usable_access_token()
    if access_token is not None:
        tokens = Tokens(borrowed.refresh_token, access_token, borrowed.expires_at)
        try:
            return _proven(target, tokens, client.credentials(target.registry, tokens.access_token))
        except StaleAccessTokenError:
            log.debug("quilt3's access token was refused; renewing it")
    try:
        tokens = client.refresh(target.registry, borrowed.refresh_token)
    except TokenRejectedError as exc:
        raise LoginRequiredError(
            f"the registry no longer accepts quilt3's login to {target.registry}",
            "quilt3.login() in Python, or quilt-credproc setup without --from-quilt3",
        ) from exc
    return _proven(target, tokens, client.credentials(target.registry, tokens.access_token))


def _proven(target: Target, tokens: Tokens, creds: Credentials) -> Login:
    return Login(
        registry=target.registry,
        catalog=target.catalog,
        region=target.region,
        refresh_token=tokens.refresh_token,
        access_token=tokens.access_token,
        access_expires_at=tokens.expires_at,
        credentials=creds,
    )


def save_login(login: Login, store: Store, budget: Deadline) -> None:
    with store.lock(login.registry, budget):
        store.save(login)


def profile_settings(helper: str, target: Target) -> dict[str, str]:
    """What setup writes into the profile; an existing region is kept."""
    settings = {"credential_process": f"{helper} --registry {target.registry}"}
    if target.region:
        settings["region"] = target.region
    return settings


def helper_command(argv0: str | None = None) -> str:
    """How the AWS config should start this helper: by absolute path, quoted if need be."""
    script = os.path.abspath(argv0 if argv0 is not None else sys.argv[0])
    if os.path.basename(script).startswith("quilt-credproc") and os.access(script, os.X_OK):
        return _quote(script)
    return f"{_quote(sys.executable)} -m credproc"


def _quote(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def read_code(prompt: Callable[[str], str]) -> str:
    try:
        return prompt(PROMPT)
    except EOFError as exc:
        raise UsageError("no code was entered; nothing was changed") from exc


def default_prompt(text: str) -> str:
    """Ask on the terminal without echo; from a pipe, read one line."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(text, stream=sys.stderr)
        except EOFError:
            sys.stderr.write("\n")  # Ctrl-D: end the prompt's line before the message
            raise
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise EOFError
    return line


def default_opener(url: str) -> None:
    """Open the browser in the background; never block, never take over the terminal."""
    has_display = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not has_display:
        log.info("no display found; not opening a browser")
        return

    def run() -> None:
        import webbrowser

        try:
            webbrowser.open(url, new=2)
        except Exception as exc:  # a broken browser setting must not stop the login
            log.info("could not open a browser: %s", type(exc).__name__)

    threading.Thread(target=run, daemon=True).start()


def _stored(store: Store, registry: str | None) -> Login | None:
    if registry is None:
        return None
    try:
        return store.load(urls.registry(registry))
    except CredprocError:
        return None
