"""The command line: process mode (what AWS SDKs run) and the commands people type.

`main` answers from the store before importing anything heavy; everything else is imported
only on the slower paths. This is the one place that turns errors into exit codes.
"""

from __future__ import annotations

import sys
import time

import credproc
from credproc import deadline, fastpath, paths, streams

# typing imports `re`, which costs about a third of an interpreter start (issue 4); type
# checkers know this name without it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()  # the time budget counts from here
    _catch_interrupts()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        registry = _fast_registry(args)
        if registry is not None:
            folder = paths.data_dir()
            answer = fastpath.cached_answer(folder, registry)
            if answer is None:
                wait = deadline.configured_seconds() or 0.0
                answer = fastpath.answer_or_claim(folder, registry, started + wait)
            if answer is not None:
                return streams.emit(answer)
        return _main(args, started)
    except KeyboardInterrupt:
        # Here too, not only in _main: Ctrl-C may come while a module is still being imported.
        return streams.interrupted()


def _catch_interrupts() -> None:
    """From here on Ctrl-C is a KeyboardInterrupt that main turns into one line; until now
    the package's own start-up handler stood in (see credproc/__init__.py)."""
    import _signal  # type: ignore[import-not-found]  # see credproc/__init__.py

    if _signal.getsignal(_signal.SIGINT) is credproc.interrupted_at_start:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def _fast_registry(args: list[str]) -> str | None:
    if len(args) == 2 and args[0] == "--registry":
        return args[1]
    if len(args) == 1 and args[0].startswith("--registry="):
        return args[0][len("--registry=") :]
    return None


def _main(args: list[str], started: float) -> int:
    import logging

    from credproc.errors import CredprocError, ExitCode, UsageError

    log = logging.getLogger("credproc")
    verbose = False
    try:
        _check_leading_options(args)
        options = _parser().parse_args(args)
        if options.command_name != "process_mode" and options.process_registry:
            name = options.command_name.removesuffix("_command")
            fix = (
                f"put it after the command: {name} --registry URL"
                if name in ("setup", "logout")
                else f"{name} takes no --registry"
            )
            raise UsageError(f"--registry before a command means process mode; {fix}")
        options.started = started
        verbose = bool(getattr(options, "verbose", False))
        _configure_logging(verbose)
        from credproc import commands

        return int(getattr(commands, options.command_name)(options))
    except CredprocError as exc:
        _configure_logging(verbose)
        # Only the names of the causes: their messages come from other libraries.
        causes, cause = [], exc.__cause__
        while cause is not None:
            causes.append(f"{type(cause).__module__}.{type(cause).__qualname__}")
            cause = cause.__cause__
        if causes:
            log.debug("caused by: %s", " <- ".join(causes))
        log.error("%s", exc)
        return int(exc.exit_code)
    except Exception as exc:
        _configure_logging(verbose)
        log.debug("unexpected failure", exc_info=True)
        log.error("internal error (%s); run again with --verbose for details", type(exc).__name__)
        return int(ExitCode.FAILURE)


_LEADING_OPTIONS = ("-v", "--verbose", "--version", "-h", "--help")


def _check_leading_options(args: list[str]) -> None:
    """Name an unknown option before the command; argparse would take its value for the
    command and say that `https://...` is not one."""
    from credproc.errors import UsageError

    words = iter(args)
    for word in words:
        if word in ("-", "--") or not word.startswith("-"):
            return  # the command, or what argparse makes of it
        if word == "--registry":
            next(words, None)
            continue
        known = word in _LEADING_OPTIONS or word.startswith("--registry=")
        bundled = word[1] != "-" and set(word[1:]) <= {"v", "h"}  # -vv
        if not (known or bundled):
            raise UsageError(f"unrecognized option {word} (see quilt-credproc --help)")


def _configure_logging(verbose: bool) -> None:
    import logging

    class Formatter(logging.Formatter):
        """Warnings and errors read the same at any verbosity; steps get a time and a source."""

        def format(self, record: logging.LogRecord) -> str:
            if record.levelno >= logging.ERROR:
                return f"quilt-credproc: {record.getMessage()}"
            if record.levelno == logging.WARNING:
                return f"quilt-credproc: warning: {record.getMessage()}"
            moment = f"{self.formatTime(record, '%H:%M:%S')}.{record.msecs:03.0f}"
            return f"quilt-credproc: {moment} {record.name}: {record.getMessage()}"

    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # filelock's own lines repeat ours (lock path and wait) with object ids.
    logging.getLogger("filelock").setLevel(logging.INFO)


def _parser() -> argparse.ArgumentParser:
    import argparse

    from credproc import __version__, profiles
    from credproc.errors import UsageError

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # `--regis` for `--registry` would make every misspelling a guess.
            kwargs["allow_abbrev"] = False
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(f"{message} (see {self.prog} --help)")

    common = Parser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log each step (URLs, status codes, timing, lock waits) to stderr; never secrets",
    )
    common.add_argument("--version", action="version", version=f"quilt-credproc {__version__}")
    raw = argparse.RawDescriptionHelpFormatter
    profile = profiles.default_profile()
    default = f"default: {profile}" + (
        "" if profile == profiles.DEFAULT_PROFILE else ", from AWS_PROFILE"
    )
    parser = Parser(
        prog="quilt-credproc",
        description="Give every AWS tool a Quilt catalog's permissions.",
        epilog=_EPILOG,
        formatter_class=raw,
        parents=[common],
    )
    # No default for verbose here: set_defaults would reach into the action the subcommands
    # share, and `quilt-credproc -v setup` would lose its -v.
    parser.set_defaults(command_name="process_mode")
    parser.add_argument(
        "--registry",
        dest="process_registry",
        metavar="URL",
        help="process mode: print credentials for this registry as credential_process JSON",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, summary: str, epilog: str, handler: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary + ".",
            epilog=epilog,
            formatter_class=raw,
        )
        sub.set_defaults(command_name=handler or name)
        return sub

    setup = command(
        "setup", "Log in to a catalog and point an AWS profile at quilt-credproc", _SETUP
    )
    where = setup.add_mutually_exclusive_group()
    where.add_argument("--catalog", metavar="URL", help="the catalog's web address")
    where.add_argument("--registry", metavar="URL", help="the registry (API) address instead")
    setup.add_argument("--profile", default=profile, help=f"AWS profile to write ({default})")
    setup.add_argument(
        "--no-browser",
        dest="open_browser",
        action="store_false",
        help="only print the code page's URL, do not open a browser",
    )
    setup.add_argument(
        "--from-quilt3",
        action="store_true",
        help="log in with the login of the quilt3 Python library (quilt3.login()), no code",
    )
    status = command("status", "Show each stored login and the profiles that use it", _STATUS)
    status.add_argument("--json", action="store_true", help="print the rows as JSON")
    logout = command("logout", "Forget a login's tokens and credentials; profiles stay", _LOGOUT)
    which = logout.add_mutually_exclusive_group()
    which.add_argument(
        "--profile", default=profile, help=f"the login this profile uses ({default})"
    )
    which.add_argument("--registry", metavar="URL", help="the login to this registry")
    which.add_argument("--all", action="store_true", help="every stored login")
    run = command(
        "exec",
        "Run a command with a profile's credentials in its environment",
        _EXEC,
        "exec_command",
    )
    run.add_argument("--profile", default=profile, help=f"the profile to use ({default})")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- and the command to run")
    env = command("env", "Print export lines that put a profile's credentials in a shell", _ENV)
    env.add_argument("--profile", default=profile, help=f"the profile to use ({default})")
    return parser


_EPILOG = """\
examples:
  quilt-credproc setup --catalog https://catalog.example.com
      log in once; writes profile "quilt" to ~/.aws/config
  aws --profile quilt s3 ls
      any AWS tool now runs quilt-credproc as its credential_process
  quilt-credproc status
      which logins are stored, for which profiles, and until when
  quilt-credproc --registry https://registry.example.com
      what the AWS tools run: prints one credentials JSON object

exit codes: 0 ok, 1 failure, 2 usage, 3 login required (run the setup command shown),
130 interrupted; exec exits with its command's status (126: not executable, 127: not found)
"""

_SETUP = """\
examples:
  quilt-credproc setup --catalog https://catalog.example.com
  quilt-credproc setup --catalog https://catalog.example.com --profile work --no-browser
  echo "$CODE" | quilt-credproc setup --catalog https://catalog.example.com
  quilt-credproc setup --profile work                     # again, with the catalog it remembers
  quilt-credproc setup --from-quilt3 --catalog https://catalog.example.com

The code is read without echo from a terminal, or as one line from standard input.
"""

_STATUS = """\
examples:
  quilt-credproc status
  quilt-credproc status --json | jq '.[] | select(.login != "logged in")'

No token, code or key is shown.
"""

_LOGOUT = """\
examples:
  quilt-credproc logout                  # the login profile "quilt" uses
  quilt-credproc logout --profile work
  quilt-credproc logout --all

The profile stays in the AWS config: `quilt-credproc setup --profile NAME` logs in again.
"""

_EXEC = """\
examples:
  quilt-credproc exec --profile quilt -- duckdb -c "select count(*) from 's3://bucket/x.parquet'"
  quilt-credproc exec -- aws sts get-caller-identity

For tools that read AWS_ACCESS_KEY_ID and friends but no AWS profile. The credentials do not
renew themselves inside the command: one that outlives them must be run again.
"""

_ENV = """\
examples:
  eval "$(quilt-credproc env --profile quilt)"

Prints export lines for a POSIX shell, secrets included: do not paste them anywhere.
"""
