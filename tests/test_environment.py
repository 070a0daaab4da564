"""`exec` and `env`: a profile's credentials as environment variables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FakeHome, login
from standin_catalog import StandinCatalog

SHOW_ENV = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if 'AWS' in k}))"


def aws_environment(home: FakeHome, *args: str) -> dict[str, str]:
    result = home.run("exec", *args, "--", sys.executable, "-c", SHOW_ENV)
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout)
    return found


def test_exec_hands_the_command_the_helpers_credentials(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    expected = json.loads(home.run("--registry", standin.registry_url).stdout)
    home.env["AWS_PROFILE"] = "quilt"  # would send an SDK back to the profile: cleared
    found = aws_environment(home, "--profile", "quilt")
    assert found["AWS_ACCESS_KEY_ID"] == expected["AccessKeyId"]
    assert found["AWS_SECRET_ACCESS_KEY"] == expected["SecretAccessKey"]
    assert found["AWS_SESSION_TOKEN"] == expected["SessionToken"]
    assert found["AWS_CREDENTIAL_EXPIRATION"] == expected["Expiration"]
    assert found["AWS_REGION"] == found["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in found


def test_exec_renews_stale_credentials_first(standin: StandinCatalog, home: FakeHome) -> None:
    standin.configure(credentials_ttl=60)
    login(standin, home)
    standin.configure(credentials_ttl=3600)
    standin.reset_stats()
    aws_environment(home)
    assert standin.stats()["credentials_requests"] == 1


@pytest.mark.parametrize("status", [0, 7, 255])
def test_exec_exits_with_the_commands_status(
    standin: StandinCatalog, home: FakeHome, status: int
) -> None:
    login(standin, home)
    result = home.run("exec", "--", "sh", "-c", f"exit {status}")
    assert result.returncode == status
    assert result.stderr == ""


def test_exec_passes_stdin_and_stdout_through(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    result = home.run("exec", "--", "tr", "a-z", "A-Z", input="hello\n")
    assert (result.returncode, result.stdout) == (0, "HELLO\n")


@pytest.mark.parametrize(
    ("command", "status", "words"),
    [
        pytest.param(["no-such-command-here"], 127, "no such command", id="not-found"),
        pytest.param(["{tmp}/notes.txt"], 126, "not executable", id="not-executable"),
        pytest.param([], 2, "no command to run", id="missing"),
        pytest.param([""], 127, "cannot run '': no such command", id="empty-name"),
    ],
)
def test_exec_that_cannot_start(
    standin: StandinCatalog,
    home: FakeHome,
    tmp_path: Path,
    command: list[str],
    status: int,
    words: str,
) -> None:
    login(standin, home)
    (tmp_path / "notes.txt").write_text("not a program\n")  # no execute bit, for root too
    result = home.run("exec", "--", *(word.format(tmp=tmp_path) for word in command))
    assert result.returncode == status
    assert words in result.stderr
    assert result.stderr.count("\n") == 1


def test_exec_with_a_profile_that_is_not_ours(home: FakeHome) -> None:
    result = home.run("exec", "--profile", "nope", "--", "true")
    assert result.returncode == 3
    assert "quilt-credproc setup --profile nope --catalog URL" in result.stderr


@pytest.mark.parametrize("command", ["exec", "env"])
@pytest.mark.parametrize("profile", ["", "two words"])
def test_a_profile_name_no_config_can_hold_is_a_usage_error(
    home: FakeHome, command: str, profile: str
) -> None:
    result = home.run(command, "--profile", profile, *(["--", "true"] if command == "exec" else []))
    assert result.returncode == 2
    assert "profile name" in result.stderr and result.stderr.count("\n") == 1
    assert "setup" not in result.stderr, "no fix that setup itself would refuse"


def test_exec_without_a_login(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    assert home.run("logout").returncode == 0
    result = home.run("exec", "--", "true")
    assert result.returncode == 3
    assert f"quilt-credproc setup --profile quilt --catalog {standin.catalog_url}" in result.stderr


def test_env_prints_export_lines_a_shell_can_eval(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    expected = json.loads(home.run("--registry", standin.registry_url).stdout)
    exports = home.run("env", "--profile", "quilt")
    assert exports.returncode == 0, exports.stderr
    assert all(
        line.startswith(("export AWS_", "unset AWS_")) for line in exports.stdout.splitlines()
    )
    script = f'AWS_PROFILE=quilt; eval "$1"; {sys.executable} -c "$2"'
    shell = subprocess.run(
        ["sh", "-c", script, "sh", exports.stdout, SHOW_ENV],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found = json.loads(shell.stdout)
    assert found["AWS_SESSION_TOKEN"] == expected["SessionToken"]
    assert "AWS_PROFILE" not in found


def test_a_tool_that_reads_only_the_environment(standin: StandinCatalog, home: FakeHome) -> None:
    # botocore with no profile at all: only AWS_* variables can give it credentials.
    login(standin, home)
    expected = json.loads(home.run("--registry", standin.registry_url).stdout)
    code = (
        "import botocore.session\n"
        "c = botocore.session.Session().get_credentials()\n"
        "print(c.method, c.get_frozen_credentials().access_key)\n"
    )
    nowhere = f"AWS_CONFIG_FILE={home.root}/none"
    result = home.run("exec", "--", "env", nowhere, sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["env", expected["AccessKeyId"]]


def test_the_profile_defaults_to_aws_profile(standin: StandinCatalog, home: FakeHome) -> None:
    with StandinCatalog(region="eu-west-1") as other:
        login(standin, home)
        login(other, home, profile="work")
        home.env["AWS_PROFILE"] = "work"
        assert aws_environment(home)["AWS_REGION"] == "eu-west-1"
