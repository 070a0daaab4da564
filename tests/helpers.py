"""Small helpers shared by the test modules: a fake user environment and a scripted login."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from credproc.store import Login, Store

if TYPE_CHECKING:
    from standin_catalog import StandinCatalog

# Variables that would let the developer's own setup leak into a test run.
_LEAKY_PREFIXES = ("AWS_", "QUILT_")
# A credentials lifetime under the helper's 20-minute margin, so that stored ones are stale.
STALE_TTL = 10 * 60


def credproc_executable() -> Path:
    """The installed console script, next to the interpreter running the tests."""
    path = Path(sys.executable).parent / "quilt-credproc"
    if not path.exists():
        pytest.fail(
            f"{path} does not exist: install the package into the environment that runs "
            f"pytest (pip install -e .) before running the tests",
            pytrace=False,
        )
    return path


@dataclass(frozen=True)
class FakeHome:
    """A user whose home, XDG folders and AWS files all live under one tmp_path.

    `env` is a plain dict: a test may add or change variables before calling run().
    """

    root: Path
    env: dict[str, str]
    aws_config: Path
    aws_credentials: Path
    config_dir: Path
    data_dir: Path
    # Put before the command; without_privileges() sets it.
    runner: tuple[str, ...] = ()

    def command(self, *args: str) -> list[str]:
        return [*self.runner, str(credproc_executable()), *args]

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `quilt-credproc` with this user's environment."""
        return self.run_program(*self.command(*args), input=input, timeout=timeout)

    def run_program(
        self, *command: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run any program as this user: a consumer, an example, the helper from elsewhere."""
        return subprocess.run(
            command,
            env=self.env,
            input=input,
            # Without input, a prompt must see end-of-file at once rather than wait on ours.
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start the real command without waiting for it, for tests that race or kill it."""
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def without_privileges(self) -> FakeHome:
        """The same user, for whom file permissions bind even when the tests run as root."""
        return dataclasses.replace(self, runner=unprivileged_runner())

    @property
    def store(self) -> Store:
        return Store(str(self.data_dir))

    def stored(self, registry: str) -> Login:
        login = self.store.load(registry)
        assert login is not None, f"no login stored for {registry}"
        return login


def unprivileged_runner() -> tuple[str, ...]:
    """A command prefix that takes away root's power to ignore file permissions.

    Switching to another user does not work everywhere: the venv's interpreter may live under
    /root (0700), where such a user cannot follow it, and Python then quietly starts from
    another installation. Without these capabilities root is held to a file's owner bits like
    any user, in the same home, with the same interpreter.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail(
            "the tests run as root: install setpriv (util-linux) so that permission tests "
            "can run without root's power over file permissions",
            pytrace=False,
        )
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--")


def set_credentials_expiry(home: FakeHome, registry: str, seconds_left: float) -> Login:
    """Make the stored credentials expire `seconds_left` from now, as time passing would."""
    login = home.stored(registry)
    assert login.credentials is not None, "the login holds no credentials"
    expiration = int(time.time() + seconds_left)
    aged = dataclasses.replace(
        login, credentials=dataclasses.replace(login.credentials, expiration=expiration)
    )
    home.store.save(aged)
    return aged


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Poll until `condition()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
        time.sleep(0.01)


def assert_clean_success(result: subprocess.CompletedProcess[str]) -> None:
    """Credentials printed, and nothing said: a failed refresh that fell back exits 0 too."""
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith('{"Version": 1,')


def finish(process: subprocess.Popen[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Wait for a started command; its outcome, as run() would have returned it."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def make_home(tmp_path: Path) -> FakeHome:
    root = tmp_path / "home"
    root.mkdir()
    # Only HOME itself exists: the tool must create ~/.aws and the XDG folders it needs.
    aws_dir = root / ".aws"
    xdg_config = root / ".config"
    xdg_data = root / ".local" / "share"
    env = {key: value for key, value in os.environ.items() if not key.startswith(_LEAKY_PREFIXES)}
    env.update(
        HOME=str(root),
        XDG_CONFIG_HOME=str(xdg_config),
        XDG_DATA_HOME=str(xdg_data),
        XDG_CACHE_HOME=str(root / ".cache"),
        XDG_STATE_HOME=str(root / ".local" / "state"),
        AWS_CONFIG_FILE=str(aws_dir / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws_dir / "credentials"),
        # botocore would otherwise probe 169.254.169.254 when a profile yields nothing.
        AWS_EC2_METADATA_DISABLED="true",
        # The stand-in is on loopback; a proxy from the developer's shell must not intercept.
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return FakeHome(
        root=root,
        env=env,
        aws_config=aws_dir / "config",
        aws_credentials=aws_dir / "credentials",
        config_dir=xdg_config / "quilt-credproc",
        data_dir=xdg_data / "quilt-credproc",
    )


def login(
    standin: StandinCatalog, home: FakeHome, profile: str = "quilt"
) -> subprocess.CompletedProcess[str]:
    """Run `setup` against the stand-in, pasting a fresh code as a user would."""
    result = home.run(
        "setup",
        "--catalog",
        standin.catalog_url,
        "--no-browser",
        "--profile",
        profile,
        input=standin.issue_code() + "\n",
    )
    assert result.returncode == 0, f"setup failed ({result.returncode}): {result.stderr}"
    return result
