"""`quilt-credproc setup`, run as a user runs it, against the stand-in catalog."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FakeHome, credproc_executable, login
from standin_catalog import StandinCatalog


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_setup_writes_the_profile_and_a_private_store(
    standin: StandinCatalog, home: FakeHome
) -> None:
    result = login(standin, home)
    assert result.stdout == "", "stdout is reserved for credentials"
    assert f"{standin.catalog_url}/code" in result.stderr
    assert "aws --profile quilt s3 ls" in result.stderr
    config = home.aws_config.read_text()
    helper = credproc_executable()
    assert config == (
        "[profile quilt]\n"
        f"credential_process = {helper} --registry {standin.registry_url}\n"
        "region = us-east-1\n"
    )
    assert mode(home.aws_config) == 0o600
    assert mode(home.data_dir) == 0o700
    files = list(home.data_dir.iterdir())
    assert files, "the login is stored"
    assert all(mode(f) == 0o600 for f in files)


def test_setup_again_updates_the_same_section(standin: StandinCatalog, home: FakeHome) -> None:
    home.aws_config.parent.mkdir()
    home.aws_config.write_text("# mine\n[profile quilt]\nregion = eu-west-1\noutput = json\n")
    login(standin, home)
    login(standin, home)
    config = home.aws_config.read_text()
    assert config.count("[profile quilt]") == 1
    assert config.count("credential_process") == 1
    assert "region = eu-west-1" in config, "an existing region is kept"
    assert config.startswith("# mine\n") and "output = json\n" in config


def test_default_profile_is_the_default_section(standin: StandinCatalog, home: FakeHome) -> None:
    result = login(standin, home, profile="default")
    assert home.aws_config.read_text().startswith("[default]\n")
    assert "Try: aws s3 ls" in result.stderr


def test_no_catalog_asks_for_one(home: FakeHome) -> None:
    result = home.run("setup", "--no-browser")
    assert result.returncode == 2
    assert "--catalog" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not home.aws_config.exists()


def test_catalog_from_the_environment(standin: StandinCatalog, home: FakeHome) -> None:
    home.env["QUILT_CATALOG_URL"] = standin.catalog_url
    result = home.run("setup", "--no-browser", input=standin.issue_code())
    assert result.returncode == 0, result.stderr
    assert standin.registry_url in home.aws_config.read_text()


def test_the_command_line_comes_before_the_environment(
    standin: StandinCatalog, home: FakeHome
) -> None:
    home.env["QUILT_CATALOG_URL"] = "https://catalog.invalid"
    result = home.run(
        "setup", "--registry", standin.registry_url, "--no-browser", input=standin.issue_code()
    )
    assert result.returncode == 0, result.stderr
    empty = home.run("setup", "--catalog", "", "--no-browser")
    assert (empty.returncode, empty.stderr) == (2, "quilt-credproc: the catalog URL is empty\n")


def test_a_bad_catalog_from_the_environment_is_said_to_be_from_there(home: FakeHome) -> None:
    home.env["QUILT_CATALOG_URL"] = "ftp://catalog.example.com"
    result = home.run("setup", "--no-browser")
    assert result.returncode == 2
    assert result.stderr.startswith("quilt-credproc: QUILT_CATALOG_URL: ")
    assert result.stderr.count("\n") == 1


def test_setup_again_remembers_the_catalog_of_the_profile(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home, profile="work")
    result = home.run("setup", "--profile", "work", "--no-browser", input=standin.issue_code())
    assert result.returncode == 0, result.stderr
    assert f"{standin.catalog_url}/code" in result.stderr


def test_setup_with_only_a_registry_uses_its_login_page(
    standin: StandinCatalog, home: FakeHome
) -> None:
    result = home.run(
        "setup", "--registry", standin.registry_url, "--no-browser", input=standin.issue_code()
    )
    assert result.returncode == 0, result.stderr
    assert f"{standin.registry_url}/login" in result.stderr
    assert home.run("--registry", standin.registry_url).returncode == 0


def test_setup_through_the_registry_keeps_the_catalog_found_before(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    result = home.run(
        "setup",
        "--registry",
        standin.registry_url,
        "--profile",
        "other",
        "--no-browser",
        input=standin.issue_code(),
    )
    assert result.returncode == 0, result.stderr
    assert home.stored(standin.registry_url).catalog == standin.catalog_url
    assert home.run("logout", "--profile", "other").returncode == 0
    result = home.run("--registry", standin.registry_url)
    assert f"setup --profile quilt --catalog {standin.catalog_url}" in result.stderr


@pytest.mark.parametrize(
    "code",
    [pytest.param("", id="empty"), pytest.param("   \n", id="blank"), pytest.param(None, id="eof")],
)
def test_an_empty_code_is_refused_before_any_request(
    standin: StandinCatalog, home: FakeHome, code: str | None
) -> None:
    result = home.run("setup", "--catalog", standin.catalog_url, "--no-browser", input=code)
    assert result.returncode == 2
    assert "no code" in result.stderr
    assert standin.stats()["token_requests"] == 0
    assert not home.aws_config.exists()


def test_a_pasted_code_with_spaces_and_newlines_is_accepted(
    standin: StandinCatalog, home: FakeHome
) -> None:
    code = f"  {standin.issue_code()} \r\n"
    result = home.run("setup", "--catalog", standin.catalog_url, "--no-browser", input=code)
    assert result.returncode == 0, result.stderr


def test_a_rejected_code_writes_no_profile(standin: StandinCatalog, home: FakeHome) -> None:
    result = home.run(
        "setup", "--catalog", standin.catalog_url, "--no-browser", input="not-a-code\n"
    )
    assert result.returncode == 3
    assert "did not accept that code" in result.stderr
    assert "not-a-code" not in result.stderr
    assert not home.aws_config.exists()


@pytest.mark.parametrize(
    "suffix",
    [pytest.param("/", id="trailing-slash"), pytest.param("/b/bucket/tree?x=1", id="path")],
)
def test_catalog_urls_with_a_path_mean_the_catalog(
    standin: StandinCatalog, home: FakeHome, suffix: str
) -> None:
    result = home.run(
        "setup",
        "--catalog",
        standin.catalog_url + suffix,
        "--no-browser",
        input=standin.issue_code(),
    )
    assert result.returncode == 0, result.stderr
    stored = [json.loads(p.read_text().split("\n")[2]) for p in home.data_dir.glob("*.login")]
    assert [record["catalog"] for record in stored] == [standin.catalog_url]


@contextlib.contextmanager
def _protected(home: FakeHome, damage: str) -> Iterator[FakeHome]:
    """The AWS config made unwritable to setup one way or another, for as long as this lasts;
    the user to run setup as."""
    config, folder = home.aws_config, home.aws_config.parent
    if damage in ("unreadable-file", "read-only-folder"):  # bind only users without privileges
        target, mode = (config, 0o000) if damage == "unreadable-file" else (folder, 0o500)
        target.chmod(mode)
        try:
            yield home.without_privileges()
        finally:
            target.chmod(0o600 if target == config else 0o700)
        return
    flag = {"immutable": "i", "append-only": "a"}[damage]  # bind root too; a mode allows it
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    marked = subprocess.run(["chattr", f"+{flag}", str(config)], capture_output=True, check=False)
    if marked.returncode != 0:  # not root, or a file system without these attributes
        pytest.skip(f"chattr +{flag} is not possible here: {marked.stderr.decode().strip()}")
    try:
        yield home
    finally:
        subprocess.run(["chattr", f"-{flag}", str(config)], check=True)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("unreadable-file", "Permission denied"),
        ("read-only-folder", "no permission"),
        ("immutable", "Operation not permitted"),
        ("append-only", "Operation not permitted"),
    ],
)
def test_a_config_it_may_not_touch_is_refused_before_the_code(
    standin: StandinCatalog, home: FakeHome, damage: str, reason: str
) -> None:
    home.aws_config.parent.mkdir()
    home.aws_config.write_text("[default]\nregion = eu-west-1\n")
    with _protected(home, damage) as user:
        result = user.run(
            "setup", "--catalog", standin.catalog_url, "--no-browser", input=standin.issue_code()
        )
    assert result.returncode == 1
    line = result.stderr.splitlines()[-1]
    assert line.startswith("quilt-credproc: cannot ") and reason in line
    assert str(home.aws_config if damage != "read-only-folder" else home.aws_config.parent) in line
    assert home.aws_config.read_text() == "[default]\nregion = eu-west-1\n"
    assert standin.stats()["token_requests"] == 0, "the code was not spent"


@pytest.mark.parametrize("profile", ["", "two words", "-x", "a]b"])
def test_a_profile_name_the_config_cannot_hold_is_a_usage_error(
    standin: StandinCatalog, home: FakeHome, profile: str
) -> None:
    result = home.run(
        "setup", "--catalog", standin.catalog_url, f"--profile={profile}", "--no-browser", input="x"
    )
    assert result.returncode == 2, result.stderr
    assert "profile name" in result.stderr.splitlines()[-1]
    assert standin.stats()["token_requests"] == 0


def test_process_mode_never_waits_on_a_fifo_config(standin: StandinCatalog, home: FakeHome) -> None:
    home.aws_config.parent.mkdir()
    os.mkfifo(home.aws_config)
    result = home.run("--registry", standin.registry_url, timeout=20)
    assert result.returncode == 3
    assert (
        f"quilt-credproc setup --profile quilt --registry {standin.registry_url}" in result.stderr
    )


@pytest.mark.parametrize("profile", ["quilt", "default"])
def test_static_keys_for_the_same_profile_are_warned_of(
    standin: StandinCatalog, home: FakeHome, profile: str
) -> None:
    home.aws_credentials.parent.mkdir()
    home.aws_credentials.write_text(
        f"[other]\naws_access_key_id = AKIAOTHER\n[{profile}]\n"
        "aws_access_key_id = AKIASTATICKEY0000000\naws_secret_access_key = s3cr3tvalue\n"
    )
    result = login(standin, home, profile=profile)
    (warning,) = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert str(home.aws_credentials) in warning and f"[{profile}]" in warning
    assert "AKIASTATICKEY" not in result.stderr and "s3cr3tvalue" not in result.stderr


def test_static_keys_for_other_profiles_are_no_concern(
    standin: StandinCatalog, home: FakeHome
) -> None:
    home.aws_credentials.parent.mkdir()
    home.aws_credentials.write_text("[work]\naws_access_key_id = AKIAOTHER\n")
    assert "warning" not in login(standin, home).stderr


@pytest.mark.parametrize(
    ("section", "named"),
    [
        pytest.param("role_arn = arn:aws:iam::1:role/x\nsource_profile = default\n", "role_arn"),
        pytest.param("sso_session = corp\nsso_account_id = 1\n", "sso_session"),
        pytest.param("aws_access_key_id = AKIAX\naws_secret_access_key = hush\n", "aws_access"),
        pytest.param("credential_process = aws-vault export --format=json work\n", "another"),
    ],
    ids=["assume-role", "sso", "static-keys", "other-helper"],
)
def test_a_profile_that_gets_credentials_another_way_is_refused(
    standin: StandinCatalog, home: FakeHome, section: str, named: str
) -> None:
    home.aws_config.parent.mkdir()
    before = f"[profile quilt]\n{section}"
    home.aws_config.write_text(before)
    result = home.run("setup", "--catalog", standin.catalog_url, "--no-browser", input="x")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("quilt-credproc:")]
    assert "already gets its credentials another way" in line and named in line
    assert "hush" not in result.stderr
    assert home.aws_config.read_text() == before
    assert standin.stats()["token_requests"] == 0


def test_pointing_a_profile_at_another_catalog_is_said(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    with StandinCatalog() as other:
        result = login(other, home)
    assert f"warning: profile quilt used the login to {standin.registry_url} before" in (
        result.stderr
    )


@pytest.mark.parametrize(
    "pasted",
    [pytest.param('"{code}"\n', id="double-quotes"), pytest.param("\n\n {code}\n", id="blank")],
)
def test_a_code_pasted_in_quotes_or_after_blank_lines(
    standin: StandinCatalog, home: FakeHome, pasted: str
) -> None:
    code = pasted.format(code=standin.issue_code())
    result = home.run("setup", "--catalog", standin.catalog_url, "--no-browser", input=code)
    assert result.returncode == 0, result.stderr


def test_an_unusable_lock_file_is_found_before_the_code(
    standin: StandinCatalog, home: FakeHome
) -> None:
    login(standin, home)
    lock = Path(home.store.lock_path(standin.registry_url))
    lock.unlink()
    lock.mkdir()
    standin.reset_stats()
    result = home.run("setup", "--catalog", standin.catalog_url, "--no-browser", input="x")
    assert result.returncode == 1
    assert f"cannot use the lock file {lock}" in result.stderr
    assert standin.stats()["token_requests"] == 0, "no code was read or spent"


def test_a_store_folder_others_may_write_in_is_made_private(
    standin: StandinCatalog, home: FakeHome
) -> None:
    home.data_dir.mkdir(parents=True)
    home.data_dir.chmod(0o777)
    login(standin, home)
    assert mode(home.data_dir) == 0o700
