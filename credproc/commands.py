"""What each command does, between the parsed options and the modules that do the work.

`cli` parses and turns errors into exit codes; these functions return an exit status.
"""

from __future__ import annotations

import logging
import os
import shlex

from credproc import awsconfig, deadline, paths, profiles
from credproc.errors import CredprocError, LoginRequiredError, StoreError, UsageError
from credproc.streams import emit, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from credproc.registry import Client
    from credproc.store import Credentials, Login, Store

log = logging.getLogger(__name__)


def process_mode(options: argparse.Namespace) -> int:
    from credproc import urls

    if options.process_registry is None:
        raise UsageError(
            "nothing to do: AWS tools run `quilt-credproc --registry URL`; "
            "people run `quilt-credproc setup --catalog URL` (see --help)"
        )
    creds = _credentials(urls.registry(options.process_registry), options.started)
    return emit(creds.process_answer() + "\n")


def setup(options: argparse.Namespace) -> int:
    from credproc import login, quilt3

    request = login.SetupRequest(
        profile=options.profile,
        catalog=options.catalog,
        registry=options.registry,
        open_browser=options.open_browser,
    )
    config, store = awsconfig.config_path(), _store()
    borrowed = quilt3.logins() if options.from_quilt3 else None
    try:
        target = login.resolve_target(
            request,
            _client(_deadline(options.started)),
            store,
            config,
            os.environ,
            default_registry=quilt3.only_registry(borrowed) if borrowed else None,
        )
    except UsageError:
        named = request.catalog or request.registry or os.environ.get("QUILT_CATALOG_URL")
        if borrowed and len(borrowed) > 1 and not named:  # say which setup could choose from
            raise quilt3.which_registry(borrowed) from None
        raise
    before = profiles.registry_of_profile(config, request.profile)
    settings = login.profile_settings(login.helper_command(), target)
    # Both before the code is read or spent: a code is good once.
    awsconfig.check_editable(config, request.profile, settings)
    login.check_profile_is_free(config, request.profile)
    store.check_writable(target.registry)
    if borrowed is not None:
        budget = _deadline(options.started)
        found = quilt3.login_for(borrowed, target.registry)
        new_login = login.adopt_quilt3(target, found, _client(budget))
    else:
        say(f"To log in, open {target.code_url} , sign in, and copy the code it shows.")
        if request.open_browser:
            login.default_opener(target.code_url)
        code = login.read_code(login.default_prompt)
        budget = _deadline()  # the time spent at the prompt does not count
        new_login = login.exchange_code(target, code, _client(budget))
    # The code is spent: wait for a refresh holding the lock as long as one can take.
    patient = deadline.Deadline(2 * budget.seconds)
    login.save_login(new_login, store, patient)
    with store.editing(str(config), patient):
        awsconfig.set_profile(config, request.profile, settings, keep_existing=("region",))
    aws = "aws" if request.profile == "default" else f"aws --profile {shlex.quote(request.profile)}"
    say(
        f"Logged in to {target.catalog or target.registry}. Profile {request.profile!r} "
        f"in {config} now gets its credentials from quilt-credproc."
    )
    if before is not None and before != target.registry:
        log.warning("profile %s used the login to %s before this", request.profile, before)
    if borrowed is not None:
        say(
            "quilt3 and quilt-credproc now share this login, and quilt3's files were left "
            "as they were. Where the catalog rotates refresh tokens, whichever renews it first "
            "leaves the other's copy unusable: quilt3 may then ask for quilt3.login() again."
        )
    _warn_of_static_keys(request.profile)
    say(f"Try: {aws} s3 ls")
    return 0


def status(options: argparse.Namespace) -> int:
    import json

    from credproc import status as state

    rows = state.rows(_store(), awsconfig.config_path())
    if options.json:
        return emit(json.dumps([row.as_json() for row in rows], indent=2) + "\n")
    if not rows:
        say("Nothing stored yet: run quilt-credproc setup --catalog URL to log in.")
        return 0
    return emit(state.table(rows) + "\n")


def logout(options: argparse.Namespace) -> int:
    from credproc import status as state

    store, config = _store(), awsconfig.config_path()
    registry = _registry_option(options.registry)
    named = state.registries_to_forget(store, config, options.profile, registry, options.all)
    linked = profiles.linked_profiles(config)
    if not named:
        say("Nothing is stored: there is no login to forget.")
    for forgotten, was_in in state.logout(store, named, _deadline(options.started)):
        users = [link.profile for link in linked if link.registry == forgotten]
        if not was_in:
            say(f"Not logged in to {forgotten}; nothing to forget.")
        elif users:
            # One setup logs every profile of the login in again; the one named, if it is one.
            by_name = registry is None and not options.all and options.profile in users
            again = options.profile if by_name else users[0]
            shared = f" (used by {len(users)} profiles)" if len(users) > 1 else ""
            say(
                f"Logged out of {forgotten}{shared}. "
                f"To log in again: quilt-credproc setup --profile {shlex.quote(again)}"
            )
        else:
            say(f"Logged out of {forgotten}.")
    unreadable = store.unreadable() if options.all else []
    if unreadable:
        raise StoreError(
            f"cannot read {', '.join(unreadable)}, so cannot tell which login it holds; "
            "remove it to forget that login"
        )
    return 0


def exec_command(options: argparse.Namespace) -> int:
    from credproc import environment

    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        raise UsageError("no command to run: put it after --, as in: exec -- aws s3 ls")
    values = _environment(options.profile, options.started)
    return environment.run(command, values)


def env(options: argparse.Namespace) -> int:
    from credproc import environment

    return emit(environment.exports(_environment(options.profile, options.started)))


def _environment(profile: str, started: float) -> dict[str, str]:
    from credproc import environment

    config = awsconfig.config_path()
    awsconfig.check_profile_name(config, profile)  # the fix below would name it otherwise
    link = next((p for p in profiles.linked_profiles(config) if p.profile == profile), None)
    if link is None:
        raise LoginRequiredError(
            f"profile {profile!r} in {config} does not get its credentials from quilt-credproc",
            f"quilt-credproc setup --profile {shlex.quote(profile)} --catalog URL",
        )
    creds = _credentials(link.registry, started, profile)
    return environment.variables(creds, link.region)


def _credentials(registry: str, started: float | None, profile: str | None = None) -> Credentials:
    """What process mode prints: stored while fresh, renewed when due, under the lock."""
    from credproc import process

    budget = _deadline(started)
    return process.credentials_for(
        registry,
        _store(),
        budget,
        _client,
        lambda login: fix_command(registry, login, profile),
    )


def _warn_of_static_keys(profile: str) -> None:
    path = awsconfig.credentials_path()
    if awsconfig.has_static_keys(path, profile):
        log.warning(
            "%s gives profile %s static keys (aws_access_key_id in [%s]); every AWS SDK uses "
            "those before credential_process: remove them from that section",
            path,
            profile,
            profile,
        )


def _registry_option(raw: str | None) -> str | None:
    from credproc import urls

    return None if raw is None else urls.registry(raw)


def _store() -> Store:
    from credproc.store import Store

    return Store(paths.data_dir())


def _deadline(started: float | None = None) -> deadline.Deadline:
    seconds = deadline.configured_seconds()
    if seconds is None:
        raw = os.environ.get(deadline.SETTING, "")
        raise UsageError(f"{deadline.SETTING} must be a number of seconds above 0, not {raw!r}")
    return deadline.Deadline(seconds, started)


def _client(budget: deadline.Deadline) -> Client:
    from credproc.registry import Client

    return Client(budget)


def fix_command(registry: str, login: Login | None, profile: str | None = None) -> str:
    """The exact setup command that logs this registry in again, quoted for a POSIX shell.

    It always names a profile that runs the helper for this registry (the one the user named,
    if any): setup with the default one could point that profile at another catalog.
    """
    try:
        linked = profiles.linked_profiles(awsconfig.config_path())
    except CredprocError:
        linked = []
    names = [link.profile for link in linked if link.registry == registry]
    taken = {link.profile for link in linked if link.registry != registry}
    if profile is None or profile not in names:
        profile = names[0] if names else profiles.free_name(registry, taken)
    words = ["quilt-credproc", "setup", "--profile", profile]
    if login is not None and login.catalog:
        words += ["--catalog", login.catalog]
    else:
        words += ["--registry", registry]
    return shlex.join(words)
