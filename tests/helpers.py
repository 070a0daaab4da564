"""Small helpers shared by the test modules: a fake user environment and a scripted login."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from standin_catalog import StandinCatalog

# Variables that would let the developer's own setup leak into a test run.
_LEAKY_PREFIXES = ("AWS_", "QUILT_")


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

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `quilt-credproc` with this user's environment."""
        return subprocess.run(
            [str(credproc_executable()), *args],
            env=self.env,
            input=input,
            # Without input, a prompt must see end-of-file at once rather than wait on ours.
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


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
