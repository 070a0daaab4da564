"""A `quilt-credproc` killed at any moment of a refresh, and a store left in a bad state.

Each crash test kills the real command with SIGKILL at one point of a refresh, then checks
that the store is whole, that the OS freed the lock, and what the next call does.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import filelock
import pytest
from helpers import (
    STALE_TTL,
    FakeHome,
    assert_clean_success,
    finish,
    login,
    set_credentials_expiry,
    wait_for,
)
from standin_catalog import StandinCatalog

from credproc.deadline import Deadline
from credproc.store import Login, Store

# A sitecustomize.py for one subprocess: it stops the Nth store write at one point, marks
# that it got there, and waits to be killed. Mocking is justified only here: nothing else can
# stop a process between two system calls of the store.
PAUSE_HOOK = """\
import os
import stat
import time

_POINT, _, _NTH = os.environ["CREDPROC_TEST_PAUSE"].partition(":")
_seen = 0


def _reached(point):
    global _seen
    if point == _POINT:
        _seen += 1
        if _seen == int(_NTH):
            open(os.environ["CREDPROC_TEST_MARKER"], "w").close()
            time.sleep(60)


_fsync, _replace = os.fsync, os.replace


def fsync(fd):
    if stat.S_ISREG(os.fstat(fd).st_mode):  # the temp file, not the folder
        _reached("before-fsync")
    _fsync(fd)


def replace(src, dst, **kwargs):
    login = str(dst).endswith(".login")
    if login:
        _reached("before-replace")
    _replace(src, dst, **kwargs)
    if login:
        _reached("after-replace")


os.fsync, os.replace = fsync, replace
"""


def stale_login(standin: StandinCatalog, home: FakeHome, access_token_ttl: int = 30) -> Login:
    """Log in with stale credentials and an access token due for renewal; reset the stats.

    Credentials issued from now on are fresh, and access tokens last `access_token_ttl`.
    """
    standin.configure(credentials_ttl=STALE_TTL, access_token_ttl=30)
    login(standin, home)
    standin.configure(credentials_ttl=3600, access_token_ttl=access_token_ttl)
    standin.reset_stats()
    return home.stored(standin.registry_url)


def wait_while_running(
    process: subprocess.Popen[str], reached: Callable[[], object], what: str
) -> None:
    wait_for(lambda: reached() or process.poll() is not None, what)
    assert process.poll() is None, f"it ended before {what}: {finish(process).stderr}"


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()
    assert finish(process).returncode == -signal.SIGKILL


def lock_is_free(home: FakeHome, registry: str) -> bool:
    try:
        with filelock.FileLock(home.store.lock_path(registry), timeout=0):
            return True
    except filelock.Timeout:
        return False


def leftovers(home: FakeHome) -> list[str]:
    return sorted(path.name for path in home.data_dir.glob(".*.tmp"))


# -- killed while a request is out ---------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        pytest.param("token", "hang", id="token-request-unanswered"),
        pytest.param("credentials", "hang", id="credentials-request-unanswered"),
        pytest.param("credentials", "lost", id="credentials-minted-answer-lost"),
    ],
)
def test_killed_while_a_request_is_out(
    standin: StandinCatalog, home: FakeHome, endpoint: str, fault: str
) -> None:
    before = stale_login(standin, home)
    standin.set_fault(endpoint, fault)
    process = home.start("--registry", standin.registry_url)
    asked = f"{endpoint}_requests"
    wait_while_running(process, lambda: standin.stats()[asked] == 1, f"the {endpoint} request")
    assert not lock_is_free(home, standin.registry_url), "the refresh holds the lock"
    kill(process)
    assert lock_is_free(home, standin.registry_url), "the OS freed the lock"
    after = home.stored(standin.registry_url)
    if endpoint == "token":
        assert after == before, "nothing was stored"
    else:
        assert after.refresh_token != before.refresh_token, "the rotated token was stored first"
        assert after.credentials == before.credentials
    standin.set_fault(endpoint, None)
    standin.reset_stats()
    home.env["QUILT_CREDPROC_TIMEOUT"] = "10"
    started = time.monotonic()
    result = home.run("--registry", standin.registry_url)
    assert time.monotonic() - started < 5, "the next call waited for the dead process's lock"
    assert_clean_success(result)
    stats = standin.stats()
    # Its access token was due too, so the next call refreshes with the stored refresh token:
    # after a kill at credentials, that is the rotated one.
    assert (stats["token_requests"], stats["credentials_requests"]) == (1, 1)
    assert (stats["reused_refresh_tokens"], stats["rejected_refresh_tokens"]) == (0, 0)


def test_killed_after_the_registry_rotated_but_before_its_answer_arrived(
    standin: StandinCatalog, home: FakeHome
) -> None:
    before = stale_login(standin, home)
    path = Path(home.store.path(standin.registry_url))
    text = path.read_text()
    issued = len(standin.issued_secrets())
    standin.set_fault("token", "lost")
    process = home.start("--registry", standin.registry_url)
    # The rotation hands out two secrets, a refresh token and an access token.
    wait_while_running(process, lambda: len(standin.issued_secrets()) == issued + 2, "rotation")
    kill(process)
    assert path.read_text() == text, "the store is as it was"
    assert lock_is_free(home, standin.registry_url)
    standin.set_fault("token", None)
    # The registry has retired the stored refresh token, and its successor never reached this
    # machine: no client can refresh this login again. What the user sees:
    fix = f"quilt-credproc setup --profile quilt --catalog {standin.catalog_url}"
    refused = f"the registry no longer accepts this login; run: {fix}"
    result = home.run("--registry", standin.registry_url)
    assert before.credentials is not None
    assert result.returncode == 0
    assert result.stdout == before.credentials.process_answer() + "\n"
    assert result.stderr.startswith(f"quilt-credproc: warning: {refused}; using the stored ")
    assert result.stderr.count("\n") == 1
    set_credentials_expiry(home, standin.registry_url, -60)
    result = home.run("--registry", standin.registry_url)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == f"quilt-credproc: {refused}\n"
    # The command it names, as the user would paste it, puts things right.
    words = shlex.split(result.stderr.rstrip("\n").partition("; run: ")[2])
    setup = home.run(*words[1:], "--no-browser", input=standin.issue_code() + "\n")
    assert setup.returncode == 0, setup.stderr
    assert_clean_success(home.run("--registry", standin.registry_url))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_while_the_token_request_is_out(
    standin: StandinCatalog, home: FakeHome, signum: int
) -> None:
    # Ctrl-C during `aws s3 ls` reaches the helper too. Unlike SIGKILL, it can be held off
    # until the rotated refresh token is stored, and must be: the registry rotates regardless.
    stale_login(standin, home)
    standin.set_fault("token", "slow:1")
    process = home.start("--registry", standin.registry_url)
    wait_while_running(process, lambda: standin.stats()["token_requests"] == 1, "the request")
    process.send_signal(signum)
    result = finish(process)
    assert result.returncode == (130 if signum == signal.SIGINT else -signal.SIGTERM)
    assert result.stdout == ""
    standin.reset_stats()
    assert_clean_success(home.run("--registry", standin.registry_url))
    assert standin.stats()["reused_refresh_tokens"] == 0, "the rotated token was kept"


# -- killed inside a store write -----------------------------------------------------------


# The refresh writes the store twice: the rotated tokens first, then the new credentials.
@pytest.mark.parametrize(
    ("write", "point", "in_place", "newest"),
    [
        pytest.param(1, "before-fsync", "old", "tokens", id="tokens-write-before-fsync"),
        pytest.param(1, "before-replace", "old", "tokens", id="tokens-write-before-replace"),
        pytest.param(1, "after-replace", "tokens", "tokens", id="tokens-write-after-replace"),
        pytest.param(2, "before-fsync", "tokens", "all", id="credentials-write-before-fsync"),
        pytest.param(2, "before-replace", "tokens", "all", id="credentials-write-before-replace"),
        pytest.param(2, "after-replace", "all", "all", id="credentials-write-after-replace"),
    ],
)
def test_killed_while_writing_the_store(
    standin: StandinCatalog,
    home: FakeHome,
    tmp_path: Path,
    write: int,
    point: str,
    in_place: str,
    newest: str,
) -> None:
    before = stale_login(standin, home, access_token_ttl=3600)
    process = paused_at(home, tmp_path, point, write).start("--registry", standin.registry_url)
    wait_while_running(process, (tmp_path / "paused").exists, f"write {write} {point}")
    kill(process)
    assert lock_is_free(home, standin.registry_url)
    # In place is the old version or a new one, whole (load() checks every field); before the
    # rename the new one waits, whole too, in a leftover temp file.
    after = home.stored(standin.registry_url)
    assert (after.refresh_token != before.refresh_token) == (in_place != "old")
    assert (after.credentials != before.credentials) == (in_place == "all")
    assert len(leftovers(home)) == (0 if point == "after-replace" else 1)
    standin.reset_stats()
    result = home.run("--registry", standin.registry_url)
    assert_clean_success(result)
    stats = standin.stats()
    assert (stats["reused_refresh_tokens"], stats["rejected_refresh_tokens"]) == (0, 0)
    # The next call carries on from the newest version: with the rotated access token it
    # needs no token request, and with the new credentials no request at all.
    assert (stats["token_requests"], stats["credentials_requests"]) == (0, int(newest != "all"))
    assert leftovers(home) == []


def test_a_half_written_leftover_is_dropped(
    standin: StandinCatalog, home: FakeHome, tmp_path: Path
) -> None:
    # As a power cut can leave it: the write's temp file cut short, the new tokens in place.
    before = stale_login(standin, home, access_token_ttl=3600)
    process = paused_at(home, tmp_path, "before-replace", 2).start(
        "--registry", standin.registry_url
    )
    wait_while_running(process, (tmp_path / "paused").exists, "the credentials write")
    kill(process)
    (temp,) = home.data_dir.glob(".*.tmp")
    _cut(temp)
    standin.reset_stats()
    assert_clean_success(home.run("--registry", standin.registry_url))
    assert leftovers(home) == []
    assert home.stored(standin.registry_url).refresh_token != before.refresh_token
    stats = standin.stats()
    assert (stats["token_requests"], stats["credentials_requests"]) == (0, 1)
    assert stats["reused_refresh_tokens"] == 0


def test_a_leftover_of_another_registry_is_left_alone(tmp_path: Path) -> None:
    # `.../a.login` and `.../a` differ by the very suffix the store gives its files.
    store = Store(str(tmp_path))
    other = "https://registry.example.com/a.login"
    with store.lock(other, Deadline(1)):
        store.save(Login(registry=other, refresh_token="rt-other"))
    other_temp = Path(store.path(other)).with_name(f".{Path(store.path(other)).name}.x1y2.tmp")
    other_temp.write_text("an unfinished write of the other registry\n")
    mine = "https://registry.example.com/a"
    with store.lock(mine, Deadline(1)):
        store.save(Login(registry=mine, refresh_token="rt-mine"))
    assert other_temp.exists()


def paused_at(home: FakeHome, tmp_path: Path, point: str, write: int) -> FakeHome:
    """This user, whose next command stops at `point` of its `write`th store write."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_HOOK)
    search = [str(hook), *filter(None, [home.env.get("PYTHONPATH")])]
    env = {
        **home.env,
        "PYTHONPATH": os.pathsep.join(search),
        "CREDPROC_TEST_PAUSE": f"{point}:{write}",
        "CREDPROC_TEST_MARKER": str(tmp_path / "paused"),
    }
    return dataclasses.replace(home, env=env)


# -- a store left in a bad state -----------------------------------------------------------


def _cut(path: Path) -> None:
    path.write_text(path.read_text()[: path.stat().st_size // 2])


def _newer(path: Path) -> None:
    header, sep, rest = path.read_text().partition("\n")
    path.write_text(
        header.replace("quilt-credproc-login 1 ", "quilt-credproc-login 99 ") + sep + rest
    )


def _record_not_json(path: Path) -> None:
    lines = path.read_text().split("\n")
    path.write_text("\n".join([*lines[:2], "{'registry': not json", ""]))


def _folder_in_the_way(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _fifo_in_the_way(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "empty": lambda path: path.write_text(""),
    "truncated": _cut,
    "record-not-json": _record_not_json,
    "not-a-login-file": lambda path: path.write_text('{"refresh_token": "rt-x"}\n'),
    "binary": lambda path: path.write_bytes(b"\xff\xfe\x00garbage\x80\n"),
    "newer-format": _newer,
    "unreadable": lambda path: path.chmod(0),
    "folder-in-the-way": _folder_in_the_way,
    "fifo-in-the-way": _fifo_in_the_way,
    "unwritable-folder": lambda path: path.parent.chmod(0o500),
}


@pytest.mark.parametrize(
    ("damage", "returncode", "problem"),
    [
        pytest.param("empty", 3, "is empty", id="empty"),
        pytest.param("truncated", 3, "is damaged", id="truncated"),
        pytest.param("record-not-json", 3, "is damaged", id="record-not-json"),
        pytest.param("not-a-login-file", 3, "is not a quilt-credproc login", id="not-a-login"),
        pytest.param("binary", 3, "is not a quilt-credproc login", id="binary"),
        pytest.param("newer-format", 3, "is in format 99, from a newer", id="newer-format"),
        pytest.param("unreadable", 1, "Permission denied", id="unreadable"),
        pytest.param("folder-in-the-way", 1, "it is a folder; remove it", id="folder"),
        pytest.param("fifo-in-the-way", 1, "it is not a regular file; remove it", id="fifo"),
        pytest.param("unwritable-folder", 1, "Permission denied", id="unwritable-folder"),
    ],
)
def test_a_bad_store_is_one_line_and_an_exit_code(
    standin: StandinCatalog, home: FakeHome, damage: str, returncode: int, problem: str
) -> None:
    standin.configure(access_token_ttl=30)  # a refresh would rotate the refresh token
    login(standin, home)
    set_credentials_expiry(home, standin.registry_url, -60)  # nothing to fall back on
    path = Path(home.store.path(standin.registry_url))
    DAMAGE[damage](path)
    standin.reset_stats()
    user = home.without_privileges()
    result = user.run("--registry", standin.registry_url)
    assert (result.returncode, result.stdout) == (returncode, ""), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert problem in result.stderr
    fix = f"quilt-credproc setup --profile quilt --registry {standin.registry_url}"
    if returncode == 3:
        assert result.stderr.rstrip("\n").endswith(f"; run: {fix}")
    else:
        assert str(path if damage != "unwritable-folder" else path.parent) in result.stderr
    assert "Traceback" not in result.stderr
    path.parent.chmod(0o700)
    if damage == "unwritable-folder":
        # Once the folder takes writes again, the login works: no token was spent unstored.
        assert standin.stats()["token_requests"] == 0
        assert_clean_success(user.run("--registry", standin.registry_url))
        return
    if damage == "folder-in-the-way":
        path.rmdir()
    elif damage == "fifo-in-the-way":
        path.unlink()
    # The command the message names, or for a file it could not read, setup with the catalog.
    words = shlex.split(fix)[1:] if returncode == 3 else ["setup", "--catalog", standin.catalog_url]
    setup = user.run(*words, "--no-browser", input=standin.issue_code() + "\n")
    assert setup.returncode == 0, setup.stderr
    assert_clean_success(user.run("--registry", standin.registry_url))


@pytest.mark.parametrize("damage", ["unwritable-folder", "folder-in-the-way"])
def test_setup_refuses_an_unwritable_store_before_spending_the_code(
    standin: StandinCatalog, home: FakeHome, damage: str
) -> None:
    login(standin, home)
    path = Path(home.store.path(standin.registry_url))
    DAMAGE[damage](path)
    standin.reset_stats()
    code = standin.issue_code()
    setup = home.without_privileges().run(
        "setup", "--catalog", standin.catalog_url, "--no-browser", input=code + "\n"
    )
    path.parent.chmod(0o700)
    assert setup.returncode == 1
    assert str(path.parent if damage == "unwritable-folder" else path) in setup.stderr
    assert standin.stats()["token_requests"] == 0, "the code is still good"
