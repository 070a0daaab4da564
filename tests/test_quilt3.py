"""`setup --from-quilt3`: borrow the login quilt3.login() left, never touching quilt3's files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from helpers import FakeHome
from standin_catalog import StandinCatalog


def quilt3_login(standin: StandinCatalog, *, access_token_ttl: int = 3600) -> dict[str, object]:
    """What quilt3.login() stores for a registry: tokens it got by trading a code."""
    standin.configure(access_token_ttl=access_token_ttl)
    with requests.Session() as http:
        http.trust_env = False
        answer = http.post(
            f"{standin.registry_url}/api/token",
            data={"refresh_token": standin.issue_code()},
            timeout=10,
        )
    answer.raise_for_status()
    standin.configure(access_token_ttl=3600)
    standin.reset_stats()
    tokens: dict[str, object] = answer.json()
    return tokens


def write_auth(home: FakeHome, entries: dict[str, object]) -> Path:
    path = home.root / ".local" / "share" / "Quilt" / "auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    path.chmod(0o600)
    return path


def setup(home: FakeHome, *args: str) -> tuple[int, str]:
    result = home.run("setup", "--from-quilt3", "--no-browser", *args)
    assert result.stdout == ""
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("access_token_ttl", "token_requests"),
    [
        pytest.param(3600, 0, id="access-token-still-good"),
        pytest.param(30, 1, id="access-token-due"),
    ],
)
def test_setup_borrows_quilt3s_login(
    standin: StandinCatalog, home: FakeHome, access_token_ttl: int, token_requests: int
) -> None:
    tokens = quilt3_login(standin, access_token_ttl=access_token_ttl)
    auth = write_auth(home, {standin.registry_url + "/": tokens})
    before = (auth.read_bytes(), os.stat(auth).st_mtime_ns)
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 0, stderr
    assert "Enter the code" not in stderr, "no code is asked for"
    assert "quilt3 and quilt-credproc now share this login" in stderr
    assert (auth.read_bytes(), os.stat(auth).st_mtime_ns) == before, "quilt3's file untouched"
    stats = standin.stats()
    assert (stats["token_requests"], stats["credentials_requests"]) == (token_requests, 1)
    assert f"--registry {standin.registry_url}" in home.aws_config.read_text()
    assert home.run("--registry", standin.registry_url).returncode == 0
    assert not [secret for secret in standin.issued_secrets() if secret in stderr]


def test_one_quilt3_login_needs_no_catalog(standin: StandinCatalog, home: FakeHome) -> None:
    write_auth(home, {standin.registry_url: quilt3_login(standin)})
    status, stderr = setup(home)
    assert status == 0, stderr
    assert home.run("--registry", standin.registry_url).returncode == 0


def test_quilt3_logged_in_elsewhere(standin: StandinCatalog, home: FakeHome) -> None:
    write_auth(home, {"https://other.example.com": quilt3_login(standin)})
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 3
    assert f"quilt3 is not logged in to {standin.registry_url}" in stderr
    assert "https://other.example.com" in stderr
    assert not home.aws_config.exists()


def test_quilt3_not_logged_in_at_all(standin: StandinCatalog, home: FakeHome) -> None:
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 3
    assert "quilt3 is not logged in on this machine" in stderr
    assert "run quilt3.login() first" in stderr
    assert not home.aws_config.exists()


def test_a_damaged_quilt3_file(standin: StandinCatalog, home: FakeHome) -> None:
    auth = write_auth(home, {})
    auth.write_text("{not json")
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 1
    assert f"cannot read quilt3's login {auth}: not JSON" in stderr
    assert stderr.count("\n") == 1


def test_quilt3s_login_no_longer_accepted(standin: StandinCatalog, home: FakeHome) -> None:
    tokens = quilt3_login(standin, access_token_ttl=30)
    standin.revoke_all()
    write_auth(home, {standin.registry_url: tokens})
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 3
    assert "no longer accepts quilt3's login" in stderr
    assert "quilt3.login()" in stderr
    assert not home.aws_config.exists()


def test_an_entry_with_an_odd_expiry_still_logs_in(standin: StandinCatalog, home: FakeHome) -> None:
    tokens = {**quilt3_login(standin), "expires_at": "soon"}  # the access token is then not used
    write_auth(home, {standin.registry_url: tokens, "not a url": {"refresh_token": 1}})
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 0, stderr
    assert standin.stats()["token_requests"] == 1


def test_several_quilt3_logins_need_a_choice(standin: StandinCatalog, home: FakeHome) -> None:
    tokens = quilt3_login(standin)
    write_auth(home, {standin.registry_url: tokens, "https://other.example.com": tokens})
    status, stderr = setup(home)
    assert status == 2
    assert "quilt3 is logged in to 2 registries" in stderr
    assert "https://other.example.com" in stderr and "--catalog URL" in stderr


def test_a_quilt3_file_with_no_usable_login(standin: StandinCatalog, home: FakeHome) -> None:
    write_auth(home, {"not a url": {"refresh_token": 1}})
    status, stderr = setup(home, "--catalog", standin.catalog_url)
    assert status == 3
    assert "holds no login to a registry" in stderr
