"""Process mode, driven as AWS SDKs drive it: the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone

import pytest
from helpers import FakeHome, credproc_executable, login
from standin_catalog import StandinCatalog

ANSWER_KEYS = {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}


def fetch(home: FakeHome, registry: str) -> dict[str, object]:
    result = home.run("--registry", registry)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1, "exactly one line of JSON"
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def expiry(answer: dict[str, object]) -> float:
    text = str(answer["Expiration"])
    assert text.endswith("Z"), "Expiration must be UTC RFC 3339 ending in Z"
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return moment.timestamp()


def test_fresh_credentials_are_served_without_the_network(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    standin.reset_stats()
    answer = fetch(home, standin.registry_url)
    assert set(answer) == ANSWER_KEYS
    assert answer["Version"] == 1
    assert str(answer["AccessKeyId"]).startswith("ASIA")
    assert 3500 < expiry(answer) - time.time() <= 3600
    assert standin.stats()["token_requests"] == 0
    assert standin.stats()["credentials_requests"] == 0


@pytest.mark.parametrize(
    ("credentials_ttl", "access_token_ttl", "token_requests"),
    [
        pytest.param(20 * 60 - 30, 3600, 0, id="credentials-within-20-min-access-token-good"),
        pytest.param(600, 30, 1, id="access-token-within-60-s-too"),
    ],
)
def test_stale_credentials_are_refreshed(
    standin: StandinCatalog,
    home: FakeHome,
    credentials_ttl: int,
    access_token_ttl: int,
    token_requests: int,
) -> None:
    standin.configure(credentials_ttl=credentials_ttl, access_token_ttl=access_token_ttl)
    login(standin, home)
    before = fetch(home, standin.registry_url)
    standin.configure(credentials_ttl=3600, access_token_ttl=3600)
    standin.reset_stats()
    after = fetch(home, standin.registry_url)
    stats = standin.stats()
    assert after["AccessKeyId"] != before["AccessKeyId"]
    assert expiry(after) - time.time() > 3500
    assert (stats["token_requests"], stats["credentials_requests"]) == (token_requests, 1)
    assert stats["reused_refresh_tokens"] == 0
    # The rotated login keeps working: the next refresh sends the newest refresh token.
    standin.configure(credentials_ttl=60, access_token_ttl=10)
    standin.expire_access_tokens()
    fetch(home, standin.registry_url)
    assert standin.stats()["reused_refresh_tokens"] == 0
    assert standin.stats()["rejected_refresh_tokens"] == 0


@pytest.mark.parametrize("style", ["Z", "+02:00", "fractional", "+00:00"])
def test_any_iso_8601_expiration_becomes_utc_z(
    standin: StandinCatalog, home: FakeHome, style: str
) -> None:
    standin.configure(expiration_format=style)
    login(standin, home)
    answer = fetch(home, standin.registry_url)
    assert 3500 < expiry(answer) - time.time() <= 3601


def test_no_stored_login_is_login_required(standin: StandinCatalog, home: FakeHome) -> None:
    result = home.run("--registry", standin.registry_url)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert (
        f"quilt-credproc setup --profile quilt --registry {standin.registry_url}" in result.stderr
    )


def test_rejected_refresh_token_names_the_setup_command(
    standin: StandinCatalog, home: FakeHome
) -> None:
    standin.configure(credentials_ttl=1)
    login(standin, home, profile="work")
    standin.revoke_all()
    standin.expire_access_tokens()
    time.sleep(1.1)
    result = home.run("--registry", standin.registry_url)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    fix = f"quilt-credproc setup --profile work --catalog {standin.catalog_url}"
    assert result.stderr.rstrip().endswith(fix)


def test_the_registry_url_may_be_written_with_a_trailing_slash(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    assert fetch(home, standin.registry_url + "/")["Version"] == 1


def test_stdin_left_open_is_never_read(standin: StandinCatalog, home: FakeHome) -> None:
    standin.configure(credentials_ttl=60)
    login(standin, home)
    with subprocess.Popen(
        [str(credproc_executable()), "--registry", standin.registry_url],
        env=home.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        # stdin stays open, as some SDKs leave it; the helper must answer regardless.
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        assert json.loads(process.stdout.read())["Version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "nothing to do", id="no-arguments"),
        pytest.param(["--registry", "http://registry.example.com"], "https", id="plain-http"),
        pytest.param(["--registry", "file:///etc/passwd"], "https", id="file-url"),
        pytest.param(["--bogus"], "unrecognized", id="unknown-option"),
    ],
)
def test_usage_errors_exit_2_with_one_line(home: FakeHome, args: list[str], message: str) -> None:
    result = home.run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
