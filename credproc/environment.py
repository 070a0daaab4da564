"""`exec` and `env`: credentials as environment variables, for tools that read no AWS profile.

Such credentials cannot renew themselves: a command that outlives them must be run again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence

from credproc.errors import CommandError, ExitCode
from credproc.store import Credentials

# An SDK told to use a profile would look there first, and might find another one.
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def variables(creds: Credentials, region: str | None) -> dict[str, str]:
    """What every AWS SDK reads from the environment; botocore also reads the expiry."""
    values = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "AWS_CREDENTIAL_EXPIRATION": creds.expiration_rfc3339,
    }
    if region:
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"] = region
    return values


def exports(values: Mapping[str, str]) -> str:
    """POSIX shell lines that set `values` and clear what would override them."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines += [f"unset {name}" for name in CLEARED]
    return "\n".join(lines) + "\n"


def run(command: Sequence[str], values: Mapping[str, str]) -> int:
    """Run `command` with `values` in its environment; its exit status is returned as is.

    On POSIX systems the command takes this process's place, so signals, the terminal and
    the exit status are its own.
    """
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    env.update(values)
    if not command[0]:  # as a shell says of it; os.exec* would raise ValueError
        raise CommandError("''", "no such command", ExitCode.COMMAND_NOT_FOUND)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "posix":
            os.execvpe(command[0], list(command), env)  # noqa: S606 (the user named it, argv and all)
        return subprocess.run(list(command), env=env, check=False).returncode
    except FileNotFoundError:
        raise CommandError(command[0], "no such command", ExitCode.COMMAND_NOT_FOUND) from None
    except PermissionError:
        raise CommandError(command[0], "not executable", ExitCode.COMMAND_NOT_EXECUTABLE) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CommandError(command[0], reason, ExitCode.COMMAND_NOT_EXECUTABLE) from None
