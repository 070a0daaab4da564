"""`status` and `logout`, with several catalogs side by side, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from helpers import FakeHome, login
from standin_catalog import StandinCatalog


@pytest.fixture
def other() -> Iterator[StandinCatalog]:
    """A second catalog, with a registry and a region of its own."""
    with StandinCatalog(region="eu-west-1") as catalog:
        yield catalog


def status(home: FakeHome) -> list[dict[str, object]]:
    result = home.run("status", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def fetch(home: FakeHome, standin: StandinCatalog) -> int:
    return home.run("--registry", standin.registry_url).returncode


def test_status_lists_each_profile_and_its_login(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    login(other, home, profile="work")
    rows = status(home)
    assert [(row["profile"], row["registry"], row["catalog"], row["login"]) for row in rows] == [
        ("quilt", standin.registry_url, standin.catalog_url, "logged in"),
        ("work", other.registry_url, other.catalog_url, "logged in"),
    ]
    assert all(row["expired"] is False and str(row["expires"]).endswith("Z") for row in rows)
    table = home.run("status")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "PROFILE", "LOGIN", "CREDENTIALS", "CATALOG", "REGISTRY"
    ]  # fmt: skip
    assert "work" in table.stdout and "good until " in table.stdout
    secrets = standin.issued_secrets() + other.issued_secrets()
    shown = table.stdout + table.stderr + json.dumps(rows)
    assert not [secret for secret in secrets if secret in shown]


def test_status_shows_a_profile_whose_login_is_missing(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home, profile="work")
    for path in home.data_dir.glob("*.login"):
        path.unlink()
    (row,) = status(home)
    assert (row["profile"], row["login"], row["registry"]) == (
        "work",
        "missing",
        standin.registry_url,
    )


def test_status_shows_a_damaged_login(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    (path,) = home.data_dir.glob("*.login")
    path.write_text("not a login\n")
    (row,) = status(home)
    assert row["login"] == "damaged"
    assert "not a quilt-credproc login file" in str(row["problem"])


def test_status_with_nothing_stored(home: FakeHome) -> None:
    assert status(home) == []
    result = home.run("status")
    assert (result.returncode, result.stdout) == (0, "")
    assert "quilt-credproc setup --catalog URL" in result.stderr


def test_logging_out_of_one_catalog_leaves_the_other_working(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    login(other, home, profile="work")
    result = home.run("logout", "--profile", "work")
    assert result.returncode == 0, result.stderr
    assert "To log in again: quilt-credproc setup --profile work" in result.stderr
    assert fetch(home, standin) == 0
    refused = home.run("--registry", other.registry_url)
    assert refused.returncode == 3
    assert f"quilt-credproc setup --profile work --catalog {other.catalog_url}" in refused.stderr
    rows = status(home)
    assert [row["login"] for row in rows] == ["logged in", "logged out"]
    assert [row["expired"] for row in rows] == [False, None], "no credentials, no verdict"
    # The profile stays, and setup remembers its catalog: no --catalog needed.
    config = home.aws_config.read_text()
    again = home.run("setup", "--profile", "work", "--no-browser", input=other.issue_code())
    assert again.returncode == 0, again.stderr
    assert f"{other.catalog_url}/code" in again.stderr
    assert home.aws_config.read_text() == config
    assert fetch(home, other) == 0


def test_logout_of_a_shared_login_names_one_setup(standin: StandinCatalog, home: FakeHome) -> None:
    for profile in ("quilt", "second", "third"):
        login(standin, home, profile=profile)
    result = home.run("logout", "--profile", "second")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"Logged out of {standin.registry_url} (used by 3 profiles). "
        "To log in again: quilt-credproc setup --profile second\n"
    )


def test_logout_forgets_every_secret(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    assert home.run("logout").returncode == 0
    stored = "".join(path.read_text() for path in home.data_dir.glob("*.login"))
    assert not [secret for secret in standin.issued_secrets() if secret in stored]
    assert standin.catalog_url in stored, "the catalog is remembered for setup"


@pytest.mark.parametrize("how", ["--all", "--registry"])
def test_logout_by_registry_or_all(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome, how: str
) -> None:
    login(standin, home)
    login(other, home, profile="work")
    args = ["--all"] if how == "--all" else ["--registry", other.registry_url + "/"]
    assert home.run("logout", *args).returncode == 0
    assert fetch(home, other) == 3
    assert fetch(home, standin) == (3 if how == "--all" else 0)
    again = home.run("logout", *args)
    assert again.returncode == 0
    assert "nothing to forget" in again.stderr


def test_logout_of_a_profile_that_is_not_ours(home: FakeHome) -> None:
    home.aws_config.parent.mkdir()
    home.aws_config.write_text("[profile plain]\nregion = us-east-1\n")
    result = home.run("logout", "--profile", "plain")
    assert result.returncode == 2
    assert "does not get its credentials from quilt-credproc" in result.stderr
    assert result.stderr.count("\n") == 1


def test_each_registry_has_its_own_lock(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome
) -> None:
    standin.configure(credentials_ttl=60)
    other.configure(credentials_ttl=60)
    login(standin, home)
    login(other, home, profile="work")
    assert fetch(home, standin) == 0 and fetch(home, other) == 0
    locks = sorted(path.name for path in home.data_dir.glob("http_*.lock"))
    assert len(locks) == 2, locks


@pytest.mark.parametrize("command", [["status"], ["logout", "--all"]])
def test_verbose_logs_the_steps(
    standin: StandinCatalog, home: FakeHome, command: list[str]
) -> None:
    login(standin, home)
    result = home.run(*command, "--verbose")
    assert result.returncode == 0
    assert "credproc." in result.stderr, "a step was logged"
    assert not [s for s in standin.issued_secrets() if s in result.stdout + result.stderr]


def test_the_fix_command_names_the_profile_in_use(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome
) -> None:
    # Two profiles share one registry, a third ("quilt") uses another: a bare `setup` would
    # point "quilt" at the wrong catalog, so the command always names a profile of this login.
    login(standin, home)
    login(other, home, profile="work")
    login(other, home, profile="play")
    assert home.run("logout", "--all").returncode == 0
    named = home.run("exec", "--profile", "play", "--", "true")
    assert named.returncode == 3
    assert f"run: quilt-credproc setup --profile play --catalog {other.catalog_url}" in (
        named.stderr
    )
    unnamed = home.run("--registry", other.registry_url)
    assert f"run: quilt-credproc setup --profile work --catalog {other.catalog_url}" in (
        unnamed.stderr
    )


def test_the_fix_command_for_a_registry_no_profile_uses(
    standin: StandinCatalog, other: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)  # "quilt" is taken by another login
    result = home.run("--registry", other.registry_url)
    assert result.returncode == 3
    port = other.registry_url.rsplit(":", 1)[1]
    fix = f"quilt-credproc setup --profile quilt-127-0-0-1-{port} --registry {other.registry_url}"
    assert result.stderr.rstrip().endswith(fix)


def test_status_shows_a_login_the_registry_refused(standin: StandinCatalog, home: FakeHome) -> None:
    standin.configure(credentials_ttl=3)
    login(standin, home)
    standin.revoke_all()
    standin.expire_access_tokens()
    assert fetch(home, standin) == 3
    (row,) = status(home)
    assert row["login"] == "refused"
    assert "the registry refused its refresh token at " in str(row["problem"])


def test_logout_all_with_nothing_stored(home: FakeHome) -> None:
    result = home.run("logout", "--all")
    assert result.returncode == 0
    assert "Nothing is stored" in result.stderr


def test_logout_all_names_a_record_it_cannot_read(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    stray = home.data_dir / "https_elsewhere.example.com.login"
    stray.write_text("garbage\n")
    result = home.run("logout", "--all")
    assert result.returncode == 1
    assert f"Logged out of {standin.registry_url}" in result.stderr
    assert f"cannot read {stray}" in result.stderr
    assert [row["login"] for row in status(home)] == ["logged out", "damaged"]
