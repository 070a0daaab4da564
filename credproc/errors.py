"""Every failure quilt-credproc reports, and the exit code each one ends with."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    LOGIN_REQUIRED = 3
    # `exec`, as a shell reports a command it could not run.
    COMMAND_NOT_EXECUTABLE = 126
    COMMAND_NOT_FOUND = 127
    INTERRUPTED = 130


class CredprocError(Exception):
    """Base of every error the CLI turns into one stderr line and an exit code.

    The message must never hold a secret: it is printed as it is.
    """

    exit_code = ExitCode.FAILURE


class UsageError(CredprocError, ValueError):
    exit_code = ExitCode.USAGE


class InvalidURLError(UsageError):
    """A catalog or registry URL that is malformed or not allowed (plain http, file://)."""


class LoginRequiredError(CredprocError):
    """No usable login: nothing stored, or the registry rejected the refresh token."""

    exit_code = ExitCode.LOGIN_REQUIRED

    def __init__(self, reason: str, fix_command: str) -> None:
        super().__init__(f"{reason}; run: {fix_command}")
        self.reason = reason
        self.fix_command = fix_command


class CodeRejectedError(CredprocError):
    """setup: the registry did not take the code the user pasted."""

    exit_code = ExitCode.LOGIN_REQUIRED

    def __init__(self, code_url: str) -> None:
        super().__init__(
            f"the registry did not accept that code (each code works once); "
            f"open {code_url} for a new one and run setup again"
        )
        self.code_url = code_url


class ServerError(CredprocError, OSError):
    """A catalog or registry answered badly, or not at all."""

    def __init__(self, endpoint: str, problem: str) -> None:
        super().__init__(f"{endpoint}: {problem}")
        self.endpoint = endpoint
        self.problem = problem


class OutOfTimeError(ServerError):
    """The command's time ran out before a request could be sent: no word on the server."""


class NotACatalogError(ServerError):
    """The catalog URL does not serve a Quilt config.json."""


class IncompleteTokensError(ServerError):
    """/api/token sent a new refresh token, but the rest of its answer is unusable."""

    def __init__(self, endpoint: str, problem: str, refresh_token: str) -> None:
        super().__init__(endpoint, problem)
        self.refresh_token = refresh_token  # never part of the message

    def __repr__(self) -> str:
        return f"IncompleteTokensError({str(self)!r})"


class StaleAccessTokenError(ServerError):
    """get_credentials answered 401: the access token is no longer accepted."""


class TokenRejectedError(ServerError):
    """/api/token answered 401: the refresh token (or code) is dead."""


class StoreError(CredprocError, OSError):
    """The local login store cannot be read or written."""


class LockTimeoutError(CredprocError, TimeoutError):
    def __init__(self, lock_path: str, seconds: float) -> None:
        held = f"{seconds:.2g} s"
        super().__init__(f"another quilt-credproc process held the lock {lock_path} over {held}")
        self.lock_path = lock_path


class CommandError(CredprocError):
    """`exec` could not start the command it was given."""

    def __init__(self, command: str, reason: str, exit_code: ExitCode) -> None:
        super().__init__(f"cannot run {command}: {reason}")
        self.exit_code = exit_code


class AwsConfigError(CredprocError):
    """The AWS config file cannot be read, understood or written safely."""


class InvalidProfileError(UsageError, AwsConfigError):
    """A profile name the AWS config file cannot hold, or the AWS CLI could not be given."""
