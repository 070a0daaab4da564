"""`setup`: log in to a catalog in the browser, store the login, and point a profile at it."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from credproc import awsconfig, profiles, urls
from credproc.deadline import Deadline
from credproc.errors import (
    AwsConfigError,
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
# Far more than any refresh token; a longer "code" is something else pasted by mistake.
MAX_CODE_CHARS = 8192
_CATALOG_VAR = "QUILT_CATALOG_URL"  # setup's catalog when none is named


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
    catalog, registry = request.catalog, request.registry
    # What the command line names comes first; an empty one there is a mistake to report,
    # while an empty variable is as good as none.
    from_environment = catalog is None and registry is None and bool(environ.get(_CATALOG_VAR))
    if from_environment:
        catalog = environ[_CATALOG_VAR]
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
        try:
            catalog = urls.catalog(catalog)
        except InvalidURLError as exc:
            if not from_environment:
                raise
            raise InvalidURLError(f"{_CATALOG_VAR}: {exc}") from None
        config_json = client.catalog_config(catalog)
        try:
            registry = urls.registry(config_json.registry)
        except InvalidURLError as exc:
            raise ServerError(f"GET {catalog}/config.json", f"its registryUrl: {exc}") from exc
        return Target(registry, catalog, config_json.region, f"{catalog}/code")
    registry = urls.registry(registry or "")
    # A catalog found for this registry before stays known: it is the best fix to suggest.
    remembered = _stored(store, registry)
    if remembered is None:
        return Target(registry, None, None, f"{registry}/login")
    return Target(registry, remembered.catalog, remembered.region, f"{registry}/login")


def exchange_code(target: Target, code: str, client: Client) -> Login:
    """Trade the code for tokens, and prove the login by fetching credentials once."""
    code = code.strip()
    if len(code) > 1 and code[0] == code[-1] and code[0] in "'\"":
        code = code[1:-1].strip()  # pasted with the quotes around it
    if not code:
        raise UsageError("no code was entered; nothing was changed")
    readable = code.isascii() and code.isprintable() and not any(c.isspace() for c in code)
    if not readable or len(code) > MAX_CODE_CHARS:
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


# Settings with which the AWS tools get a profile's credentials before, or instead of, running
# its credential_process.
OTHER_SOURCES = (
    "aws_access_key_id",
    "role_arn",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
)


def check_profile_is_free(config: Path, profile: str) -> None:
    """Refuse a profile that gets its credentials some other way: the AWS tools would go on
    doing so, and a credential_process of another program is not ours to replace."""
    found = awsconfig.get_profile(config, profile)
    if found is None:
        return
    others = [key for key in OTHER_SOURCES if key in found.settings]
    command = found.settings.get("credential_process")
    if command and profiles.registry_in_command(command) is None:
        others.append("credential_process (another program)")
    if others:
        raise AwsConfigError(
            f"profile {profile!r} in {config} already gets its credentials another way "
            f"({', '.join(others)}); use another --profile, or remove those settings first"
        )


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
    """The path as credential_process needs it. Bare where it can be; else in double quotes,
    which botocore and the SDKs read alike on every system (and sh, which the JavaScript, Go and
    Java SDKs run it with); else, for a `"`, `$`, backtick or backslash, quoted for sh."""
    if all(c.isalnum() or c in _PLAIN for c in path):
        return path
    if os.name == "nt" or not any(c in path for c in '"$`\\'):
        return f'"{path}"'
    return shlex.quote(path)


_PLAIN = frozenset("/._-+=:@,%~")


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
    if sys.stdin is None:
        raise EOFError
    line = sys.stdin.readline(MAX_CODE_CHARS + 2)
    while line and not line.strip():  # a blank line before the code, from a here-document
        line = sys.stdin.readline(MAX_CODE_CHARS + 2)
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
