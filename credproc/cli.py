"""The command line: process mode (what AWS SDKs run) and the commands people type.

`main` answers from the store before importing anything heavy; everything else is imported
only on the slower paths. This is the one place that turns errors into exit codes.
"""

from __future__ import annotations

import os
import sys
import time

from credproc import deadline, fastpath, paths

# typing imports `re`, which costs about a third of an interpreter start (issue 4); type
# checkers know this name without it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from credproc.registry import Client
    from credproc.store import Login


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()  # the time budget counts from here
    args = list(sys.argv[1:] if argv is None else argv)
    registry = _fast_registry(args)
    if registry is not None:
        folder = paths.data_dir()
        answer = fastpath.cached_answer(folder, registry)
        if answer is None:
            wait = deadline.configured_seconds() or 0.0
            answer = fastpath.answer_or_claim(folder, registry, started + wait)
        if answer is not None:
            return _emit(answer)
    return _main(args, started)


def _emit(answer: str) -> int:
    """Hand the SDK its answer; a closed or full stdout is a failure, not a traceback."""
    try:
        sys.stdout.write(answer)
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError) as exc:  # None, EPIPE/ENOSPC, closed
        # What is still buffered would fail again, noisily, when the interpreter exits.
        try:  # noqa: SIM105 (contextlib is not worth its import on this path)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        reason = getattr(exc, "strerror", None) or "it is closed"
        _say(f"quilt-credproc: cannot write the credentials to standard output: {reason}")
        return 1  # ExitCode.FAILURE, which this path does not import
    return 0


def _fast_registry(args: list[str]) -> str | None:
    if len(args) == 2 and args[0] == "--registry":
        return args[1]
    if len(args) == 1 and args[0].startswith("--registry="):
        return args[0][len("--registry=") :]
    return None


def _main(args: list[str], started: float) -> int:
    import logging

    from credproc.errors import CredprocError, ExitCode

    log = logging.getLogger("credproc")
    verbose = False
    try:
        options = _parser().parse_args(args)
        options.started = started
        verbose = bool(getattr(options, "verbose", False))
        _configure_logging(verbose)
        return int(options.handler(options))
    except CredprocError as exc:
        _configure_logging(verbose)
        # Only the names of the causes: their messages come from other libraries.
        causes, cause = [], exc.__cause__
        while cause is not None:
            causes.append(f"{type(cause).__module__}.{type(cause).__qualname__}")
            cause = cause.__cause__
        log.debug("%s failed; caused by: %s", type(exc).__name__, " <- ".join(causes) or "-")
        log.error("%s", exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("\nquilt-credproc: interrupted\n")
        return 130
    except Exception as exc:
        _configure_logging(verbose)
        log.debug("unexpected failure", exc_info=True)
        log.error("internal error (%s); run again with --verbose for details", type(exc).__name__)
        return int(ExitCode.FAILURE)


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

    from credproc import __version__
    from credproc.errors import UsageError

    class Parser(argparse.ArgumentParser):
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
    parser = Parser(
        prog="quilt-credproc",
        description="Give every AWS tool a Quilt catalog's permissions.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    # No default for verbose here: set_defaults would reach into the action the subcommands
    # share, and `quilt-credproc -v setup` would lose its -v.
    parser.set_defaults(handler=_process_mode)
    parser.add_argument("--version", action="version", version=f"quilt-credproc {__version__}")
    parser.add_argument(
        "--registry",
        metavar="URL",
        help="process mode: print credentials for this registry as credential_process JSON",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    setup = commands.add_parser(
        "setup",
        parents=[common],
        help="log in to a catalog and write an AWS profile",
        description="Log in to a Quilt catalog and point an AWS profile at quilt-credproc.",
        epilog=_SETUP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.set_defaults(handler=_setup)
    where = setup.add_mutually_exclusive_group()
    where.add_argument("--catalog", metavar="URL", help="the catalog's web address")
    where.add_argument("--registry", metavar="URL", help="the registry (API) address instead")
    setup.add_argument("--profile", default="quilt", help="AWS profile to write (default: quilt)")
    setup.add_argument(
        "--no-browser",
        dest="open_browser",
        action="store_false",
        help="only print the code page's URL, do not open a browser",
    )
    return parser


def _process_mode(options: argparse.Namespace) -> int:
    from credproc import process, urls
    from credproc.errors import UsageError
    from credproc.store import Store

    if not options.registry:
        raise UsageError(
            "nothing to do: AWS tools run `quilt-credproc --registry URL`; "
            "people run `quilt-credproc setup --catalog URL` (see --help)"
        )
    registry = urls.registry(options.registry)
    budget = _deadline(options.started)
    creds = process.credentials_for(
        registry,
        Store(paths.data_dir()),
        budget,
        lambda: _client(budget),
        lambda login: _fix_command(registry, login),
    )
    return _emit(creds.process_answer() + "\n")


def _setup(options: argparse.Namespace) -> int:
    import shlex

    from credproc import awsconfig, login
    from credproc.store import Store

    request = login.SetupRequest(
        profile=options.profile,
        catalog=options.catalog,
        registry=options.registry,
        open_browser=options.open_browser,
    )
    config = awsconfig.config_path()
    store = Store(paths.data_dir())
    target = login.resolve_target(
        request, _client(_deadline(options.started)), store, config, os.environ
    )
    settings = login.profile_settings(login.helper_command(), target)
    # Both before the prompt: a code is good once, so nothing may fail after it is spent.
    awsconfig.check_editable(config, request.profile, settings)
    store.check_writable(target.registry)
    _say(f"To log in, open {target.code_url} , sign in, and copy the code it shows.")
    if request.open_browser:
        login.default_opener(target.code_url)
    code = login.read_code(login.default_prompt)
    budget = _deadline()  # the time spent at the prompt does not count
    new_login = login.exchange_code(target, code, _client(budget))
    login.save_login(new_login, store, budget)
    awsconfig.set_profile(config, request.profile, settings, keep_existing=("region",))
    aws = "aws" if request.profile == "default" else f"aws --profile {shlex.quote(request.profile)}"
    _say(
        f"Logged in to {target.catalog or target.registry}. Profile {request.profile!r} "
        f"in {config} now gets its credentials from quilt-credproc.\nTry: {aws} s3 ls"
    )
    return 0


def _deadline(started: float | None = None) -> deadline.Deadline:
    from credproc.errors import UsageError

    seconds = deadline.configured_seconds()
    if seconds is None:
        raw = os.environ.get(deadline.SETTING, "")
        raise UsageError(f"{deadline.SETTING} must be a number of seconds above 0, not {raw!r}")
    return deadline.Deadline(seconds, started)


def _client(budget: deadline.Deadline) -> Client:
    from credproc.registry import Client

    return Client(budget)


def _fix_command(registry: str, login: Login | None) -> str:
    """The exact setup command that logs this registry in again, quoted for a POSIX shell."""
    import shlex

    from credproc import awsconfig
    from credproc.errors import CredprocError
    from credproc.login import registry_in_command

    try:
        profiles = [
            p.name
            for p in awsconfig.read_profiles(awsconfig.config_path())
            if registry_in_command(p.settings.get("credential_process", "")) == registry
        ]
    except CredprocError:
        profiles = []
    words = ["quilt-credproc", "setup"]
    if len(profiles) == 1:
        words += ["--profile", profiles[0]]
    if login is not None and login.catalog:
        words += ["--catalog", login.catalog]
    else:
        words += ["--registry", registry]
    return shlex.join(words)


def _say(text: str) -> None:
    """Talk to the person at the terminal: stdout is reserved for credentials."""
    if sys.stderr is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


_EPILOG = """\
examples:
  quilt-credproc setup --catalog https://catalog.example.com
      log in once; writes profile "quilt" to ~/.aws/config
  aws --profile quilt s3 ls
      any AWS tool now runs quilt-credproc as its credential_process
  quilt-credproc --registry https://registry.example.com
      what the AWS tools run: prints one credentials JSON object

exit codes: 0 ok, 1 failure, 2 usage, 3 login required (run the setup command shown)
"""

_SETUP_EPILOG = """\
examples:
  quilt-credproc setup --catalog https://catalog.example.com
  quilt-credproc setup --catalog https://catalog.example.com --profile work --no-browser
  echo "$CODE" | quilt-credproc setup --catalog https://catalog.example.com

The code is read without echo from a terminal, or as one line from standard input.
"""
