"""The command line's edges: options, environment, standard streams and the terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from helpers import FakeHome, credproc_executable, login
from standin_catalog import StandinCatalog


@pytest.mark.parametrize(
    "args",
    [pytest.param(["-v", "setup"], id="before"), pytest.param(["setup", "-v"], id="after")],
)
def test_verbose_works_before_or_after_the_command(
    standin: StandinCatalog, home: FakeHome, args: list[str]
) -> None:
    result = home.run(*args, "--catalog", standin.catalog_url, "--no-browser", input="")
    assert result.returncode == 2
    assert f"GET {standin.catalog_url}/config.json -> HTTP 200" in result.stderr


def test_verbose_says_when_stored_credentials_are_served(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    result = home.run("--verbose", "--registry", standin.registry_url)
    assert result.returncode == 0
    assert "the stored credentials are good until " in result.stderr


@pytest.mark.parametrize("stale", [pytest.param(False, id="cached"), pytest.param(True, id="new")])
@pytest.mark.parametrize(
    "target", [pytest.param("/dev/full", id="full"), pytest.param(None, id="closed")]
)
def test_an_unwritable_stdout_is_one_line_not_a_traceback(
    standin: StandinCatalog, home: FakeHome, stale: bool, target: str | None
) -> None:
    if stale:
        standin.configure(credentials_ttl=60)
    login(standin, home)
    argv = [str(credproc_executable()), "--registry", standin.registry_url]
    if target is None:
        # `>&-` in a shell: the helper starts with file descriptor 1 closed.
        argv = ["sh", "-c", 'exec "$@" >&-', "sh", *argv]
    with open(target or os.devnull, "w") as stdout:
        result = subprocess.run(
            argv, env=home.env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=30
        )
    assert result.returncode == 1
    assert result.stderr.startswith("quilt-credproc: cannot write to standard output")
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("value", ["abc", "nan", "0", "-1", "inf", ""])
def test_a_bad_timeout_is_a_usage_error(
    standin: StandinCatalog, home: FakeHome, value: str
) -> None:
    standin.configure(credentials_ttl=60)
    login(standin, home)
    home.env["QUILT_CREDPROC_TIMEOUT"] = value
    result = home.run("--registry", standin.registry_url)
    if value == "":
        assert result.returncode == 0, "empty means the default"
        return
    assert result.returncode == 2
    assert result.stderr.startswith("quilt-credproc: QUILT_CREDPROC_TIMEOUT must be a number")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(b"\xff\xfe\n", id="not-utf8"),
        pytest.param("cöde\n".encode(), id="not-ascii"),
        pytest.param(b"two words\n", id="two-words"),
        pytest.param(b"tab\there\n", id="tab"),
    ],
)
def test_a_code_that_cannot_be_one_is_refused_unsent(
    standin: StandinCatalog, home: FakeHome, code: bytes
) -> None:
    result = subprocess.run(
        [str(credproc_executable()), "setup", "--catalog", standin.catalog_url, "--no-browser"],
        env=home.env,
        input=code,
        capture_output=True,
        timeout=30,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.splitlines()[-1].startswith(
        f"quilt-credproc: that is not a code from {standin.catalog_url}/code"
    )
    assert "words" not in stderr and "here" not in stderr, "what was pasted is not echoed"
    assert standin.stats()["token_requests"] == 0
    assert not home.aws_config.exists()


def test_suggested_commands_are_shell_quoted(standin: StandinCatalog, home: FakeHome) -> None:
    standin.configure(credentials_ttl=3)  # too short to be served: the next call refreshes
    result = login(standin, home, profile="a&b")
    assert "Try: aws --profile 'a&b' s3 ls" in result.stderr
    standin.revoke_all()
    standin.expire_access_tokens()
    failed = home.run("--registry", standin.registry_url)
    assert failed.returncode == 3
    assert f"run: quilt-credproc setup --profile 'a&b' --catalog {standin.catalog_url}" in (
        failed.stderr
    )


def test_a_strange_region_is_not_written(standin: StandinCatalog, home: FakeHome) -> None:
    standin.region = "us-east-1 ; x"
    result = login(standin, home)
    assert "warning: " in result.stderr and "ignoring its region" in result.stderr
    assert "region" not in home.aws_config.read_text()


def test_no_login_leaves_no_trace(standin: StandinCatalog, home: FakeHome) -> None:
    result = home.run("--registry", standin.registry_url)
    assert result.returncode == 3
    assert not home.data_dir.exists(), "a call that cannot succeed creates nothing"


def read_until(fd: int, wanted: bytes | None, timeout: float = 20) -> bytes:
    """What the terminal shows until `wanted` appears (None: until the child closes it)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted is None or wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"never saw {wanted!r}; saw {seen!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_a_terminal(home: FakeHome, standin: StandinCatalog, typed: bytes) -> tuple[int, bytes]:
    """Run setup with a real pseudo-terminal as its stdin, stdout and stderr; type `typed`."""
    primary, secondary = pty.openpty()
    argv = [str(credproc_executable()), "setup", "--catalog", standin.catalog_url, "--no-browser"]
    with subprocess.Popen(
        argv, env=home.env, stdin=secondary, stdout=secondary, stderr=secondary
    ) as process:
        os.close(secondary)
        seen = read_until(primary, b"Enter the code from the webpage: ")
        os.write(primary, typed)
        seen += read_until(primary, None)
        code = process.wait(timeout=30)
    os.close(primary)
    return code, seen


def test_the_prompt_on_a_terminal_does_not_echo(standin: StandinCatalog, home: FakeHome) -> None:
    code = standin.issue_code()
    status, seen = on_a_terminal(home, standin, code.encode() + b"\r")
    assert status == 0, seen
    assert code.encode() not in seen
    assert b"Logged in to " in seen


def test_ctrl_d_at_the_prompt_ends_the_line_first(standin: StandinCatalog, home: FakeHome) -> None:
    status, seen = on_a_terminal(home, standin, b"\x04")
    assert status == 2
    assert b"Enter the code from the webpage: \r\nquilt-credproc: no code was entered" in seen


@pytest.mark.parametrize("command", [[], ["setup"], ["status"], ["exec"]])
def test_version_everywhere(home: FakeHome, command: list[str]) -> None:
    result = home.run(*command, "--version")
    assert (result.returncode, result.stdout.split()[0]) == (0, "quilt-credproc")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(
            ["--registry", "https://r.example.com", "status"],
            "process mode; status takes no --registry",
            id="mix",
        ),
        pytest.param(
            ["--registry", "https://r.example.com", "exec", "--", "true"],
            "process mode; exec takes no --registry",
            id="mix-exec",
        ),
        pytest.param(
            ["--registry", "https://r.example.com", "logout"],
            "put it after the command: logout --registry URL",
            id="mix-logout",
        ),
        pytest.param(
            ["--regis", "https://r.example.com"], "unrecognized option --regis", id="abbreviated"
        ),
        pytest.param(["--registry", ""], "the registry URL is empty", id="empty-registry"),
    ],
)
def test_arguments_are_never_guessed(home: FakeHome, args: list[str], words: str) -> None:
    result = home.run(*args)
    assert result.returncode == 2
    assert words in result.stderr and result.stderr.count("\n") == 1


def _still_starting(returncode: int, stderr: str) -> bool:
    """Whether a Ctrl-C came before any of the package ran: while the interpreter itself
    started (it dies of the signal, or prints its own traceback from `site`), or while the
    launcher looked for the package. Tracebacks of imports leave out importlib's frames, not
    those of a module being run, so one that shows no file of the package began outside it."""
    if returncode == -signal.SIGINT and not stderr:
        return True
    return "Traceback" in stderr and "/credproc/" not in stderr


@pytest.mark.parametrize("delay", [0.02, 0.03, 0.06, 0.1, 0.2, 0.4])
def test_ctrl_c_at_any_moment_is_one_line(
    standin: StandinCatalog, home: FakeHome, delay: float
) -> None:
    standin.configure(credentials_ttl=60)
    login(standin, home)
    standin.set_fault("token", "slow:1")
    standin.set_fault("credentials", "slow:1")
    for attempt in range(20):  # on a loaded machine, the interpreter may still be starting
        process = home.start("--registry", standin.registry_url)
        time.sleep(delay + attempt * 0.005)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        if not _still_starting(process.returncode, stderr):
            break
    else:
        pytest.fail(f"from {delay} s on, the interpreter was still starting every time")
    assert "Traceback" not in stderr
    assert process.returncode == 130, stderr
    assert stderr == "quilt-credproc: interrupted\n"


def test_a_program_importing_the_package_keeps_its_ctrl_c() -> None:
    """Only the command's own launchers swap in the start-up handler."""
    check = (
        "import signal, credproc\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler"
    )
    subprocess.run([sys.executable, "-c", check], check=True)
