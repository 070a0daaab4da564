"""A misbehaving registry or catalog, and what the user sees for it.

Every fault ends in one short stderr line that names the endpoint and what went wrong, a named
exit code, empty stdout, and a stored login that works again once the server recovers. Each
scenario also runs at `--verbose`, where no secret the stand-in ever issued may show up in the
output or in any file but the login store.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from helpers import FakeHome
from standin_catalog import StandinCatalog

from credproc.process import FALLBACK_WAIT
from credproc.store import Login, Store

# fault -> words the one stderr line must hold
ANSWER_FAULTS = {
    "html500": "HTTP 500 Internal Server Error",
    "html502": "HTTP 502 Bad Gateway",
    "badjson": "the answer is not valid JSON (application/json)",
    "html200": "the answer is not valid JSON (text/html)",
    "missing": "the answer has no ",
    "wrongtype": "is not of the expected type",
    "403": "HTTP 403 Forbidden",
    "hang": "no answer in time",
    "drop": "the server closed the connection without answering",
}
REFRESH_ENDPOINTS = ("token", "credentials")
# A hung server costs each test this long, not the minute a real command may wait. It counts
# from the command's start, so it must leave room for starting up on a loaded machine.
HANG_TIMEOUT = "2.5"
# Long enough that a fresh answer is never "already expired", short enough to be no fallback.
UNUSABLE_TTL = 3
STALE_TTL = 600  # inside the helper's 20-minute margin, far from expiry


def endpoint_name(standin: StandinCatalog, endpoint: str) -> str:
    return {
        "config": f"GET {standin.catalog_url}/config.json",
        "token": f"POST {standin.registry_url}/api/token",
        "credentials": f"GET {standin.registry_url}/api/auth/get_credentials",
    }[endpoint]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes; lock files are left out (they hold nothing)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix != ".lock"
    }


Result = subprocess.CompletedProcess[str]


class User:
    """A user of the stand-in who runs each failing command twice: quietly and at --verbose.

    Both runs must end in the same exit code and the same line; no run may show a secret.
    """

    def __init__(self, standin: StandinCatalog, home: FakeHome) -> None:
        self.standin = standin
        self.home = home

    def run(self, *args: str, verbose: bool = True) -> Result:
        flags = ["--verbose"] if verbose else []
        code = None
        if args and args[0] == "setup":
            args = ("setup", *flags, *args[1:], "--no-browser")
            code = self.standin.issue_code()
        else:
            args = (*flags, *args)
        result = self.home.run(*args, input=code)
        assert "Traceback" not in result.stderr
        self.check_no_secrets(result)
        return result

    def inject(self, endpoint: str, fault: str | None) -> None:
        """Make `endpoint` misbehave until cleared; a hang is waited out for a short time."""
        self.standin.set_fault(endpoint, fault)
        if fault == "hang":
            self.home.env["QUILT_CREDPROC_TIMEOUT"] = HANG_TIMEOUT
        else:
            self.home.env.pop("QUILT_CREDPROC_TIMEOUT", None)

    def fetch(self, verbose: bool = True) -> Result:
        return self.run("--registry", self.standin.registry_url, verbose=verbose)

    def fails(self, *args: str, exit_code: int) -> str:
        """The one line the command prints, quietly and as the last line at --verbose."""
        quiet, loud = self.run(*args, verbose=False), self.run(*args)
        for result in (quiet, loud):
            assert (result.returncode, result.stdout) == (exit_code, ""), result.stderr
        line = self.tool_line(quiet)
        assert loud.stderr.splitlines()[-1] == line
        return line

    def falls_back(self) -> tuple[Result, str]:
        """A call that must succeed on the stored credentials with one warning line.

        The second (verbose) run does not ask the registry again so soon: it says when the
        first one failed, and falls back in the same words.
        """
        quiet, loud = self.fetch(verbose=False), self.fetch()
        for result in (quiet, loud):
            assert result.returncode == 0, result.stderr
        line = self.tool_line(quiet)
        tail = line[line.rindex("; using the stored credentials") :]
        warnings = [text for text in loud.stderr.splitlines() if text.endswith(tail)]
        assert len(warnings) == 1 and warnings[0].startswith("quilt-credproc: warning: ")
        return quiet, line

    @staticmethod
    def tool_line(result: Result) -> str:
        lines = [line for line in result.stderr.splitlines() if line.startswith("quilt-credproc: ")]
        assert len(lines) == 1, result.stderr
        return lines[0]

    def check_no_secrets(self, result: Result) -> None:
        secrets = self.standin.issued_secrets()
        leaked = [s for s in secrets if s in result.stderr]
        assert not leaked, "a secret reached stderr"
        if result.stdout:
            answer = json.loads(result.stdout)
            del answer["SecretAccessKey"], answer["SessionToken"]
            assert not [s for s in secrets if s in json.dumps(answer)], "a secret left the JSON"
        for name, data in snapshot(self.home.root).items():
            if name.endswith(".login"):
                continue  # the store is where secrets belong
            text = data.decode("utf-8", "replace")
            assert not [s for s in secrets if s in text], f"a secret reached {name}"


@pytest.fixture
def user(standin: StandinCatalog, home: FakeHome) -> User:
    return User(standin, home)


def logged_in(user: User, *, credentials_ttl: int, access_token_ttl: int = 3600) -> None:
    user.standin.configure(credentials_ttl=credentials_ttl, access_token_ttl=access_token_ttl)
    result = user.run("setup", "--catalog", user.standin.catalog_url)
    assert result.returncode == 0, result.stderr


def assert_recovers(user: User) -> None:
    user.standin.configure(credentials_ttl=3600)
    result = user.fetch()
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr, "new credentials, not the stored ones"
    assert json.loads(result.stdout)["Version"] == 1
    assert user.standin.stats()["reused_refresh_tokens"] == 0


def pause_over(user: User) -> None:
    """Let the pause after a failed refresh pass, as a minute (or five, after a refused token)
    would; until then, the helper does not ask the registry again."""
    store = user.home.store
    login = store.load(user.standin.registry_url)
    assert login is not None and (login.rejected_at or login.failed_at), "the failure was noted"
    store.save(dataclasses.replace(login, rejected_at=0.0, failed_at=0.0))


# -- process mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(ANSWER_FAULTS))
@pytest.mark.parametrize("endpoint", REFRESH_ENDPOINTS)
def test_a_bad_answer_with_expired_credentials_fails_in_one_line(
    user: User, endpoint: str, fault: str
) -> None:
    # A token fault needs a call that renews the access token; a credentials fault one that
    # does not, so the fault is the only thing that happens.
    token_ttl = 30 if endpoint == "token" else 3600
    logged_in(user, credentials_ttl=UNUSABLE_TTL, access_token_ttl=token_ttl)
    store = snapshot(user.home.data_dir)
    user.inject(endpoint, fault)
    line = user.fails("--registry", user.standin.registry_url, exit_code=1)
    assert line.startswith(f"quilt-credproc: {endpoint_name(user.standin, endpoint)}: "), line
    assert ANSWER_FAULTS[fault] in line
    assert "<" not in line, "no HTML in the message"
    assert snapshot(user.home.data_dir) == store, "the stored login is untouched"
    user.inject(endpoint, None)
    assert_recovers(user)


@pytest.mark.parametrize("fault", [*ANSWER_FAULTS, "401"])
@pytest.mark.parametrize("endpoint", REFRESH_ENDPOINTS)
def test_an_outage_falls_back_on_unexpired_credentials(
    user: User, endpoint: str, fault: str
) -> None:
    logged_in(user, credentials_ttl=STALE_TTL, access_token_ttl=30 if endpoint == "token" else 3600)
    stored = Store(str(user.home.data_dir)).load(user.standin.registry_url)
    assert stored is not None and stored.credentials is not None
    user.inject(endpoint, fault)
    during, line = user.falls_back()
    pause_over(user)
    assert during.stdout == stored.credentials.process_answer() + "\n", "the stored ones"
    assert line.startswith("quilt-credproc: warning: "), line
    expiry = stored.credentials.expiration_rfc3339
    assert line.endswith(f"; using the stored credentials, which expire at {expiry}"), line
    user.inject(endpoint, None)
    assert_recovers(user)


def test_after_a_failure_the_registry_is_left_alone_a_while(user: User) -> None:
    # botocore runs the helper before every request once credentials near expiry; a failing
    # registry must not be asked, nor waited for, each time.
    logged_in(user, credentials_ttl=STALE_TTL)
    user.inject("credentials", "html500")
    user.standin.reset_stats()
    first = user.fetch()
    assert first.returncode == 0 and "HTTP 500" in first.stderr
    second = user.fetch()
    assert second.returncode == 0 and "next try after" in second.stderr
    assert user.standin.stats()["credentials_requests"] == 1, "asked once, not twice"
    user.inject("credentials", None)
    pause_over(user)
    assert_recovers(user)


def test_running_out_of_time_before_asking_is_no_failure_of_the_registry(user: User) -> None:
    logged_in(user, credentials_ttl=STALE_TTL)
    user.standin.reset_stats()
    user.home.env["QUILT_CREDPROC_TIMEOUT"] = "0.001"  # gone before a request can be sent
    for _ in range(2):
        result = user.fetch(verbose=False)
        assert result.returncode == 0, result.stderr
        assert "not tried: the time allowed for this command ran out" in result.stderr
    del user.home.env["QUILT_CREDPROC_TIMEOUT"]
    assert user.standin.stats()["credentials_requests"] == 0
    assert_recovers(user)  # at once: no pause after a failure that was not the registry's


def test_with_credentials_to_fall_back_on_a_hung_registry_costs_seconds(user: User) -> None:
    logged_in(user, credentials_ttl=STALE_TTL)
    user.standin.set_fault("credentials", "hang")  # and the default time budget, 55 s
    started = time.monotonic()
    result = user.fetch(verbose=False)
    waited = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert FALLBACK_WAIT - 1 < waited < FALLBACK_WAIT + 5, f"waited {waited:.1f} s"


def test_a_slow_token_renewal_is_waited_for_even_with_credentials_to_fall_back_on(
    user: User,
) -> None:
    # Given up on, the registry would rotate the refresh token anyway and the login would die.
    logged_in(user, credentials_ttl=STALE_TTL, access_token_ttl=30)
    user.standin.configure(credentials_ttl=3600)
    user.standin.set_fault("token", f"slow:{FALLBACK_WAIT + 1.5}", times=1)
    result = user.fetch(verbose=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "new credentials, not a fallback"
    assert_recovers(user)


def test_a_refused_refresh_token_means_login_required(user: User) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL, access_token_ttl=30)
    user.standin.reset_stats()
    user.inject("token", "401")
    line = user.fails("--registry", user.standin.registry_url, exit_code=3)
    fix = f"quilt-credproc setup --profile quilt --catalog {user.standin.catalog_url}"
    assert line == f"quilt-credproc: the registry no longer accepts this login; run: {fix}"
    # Both runs (quiet, then verbose) say so, but only the first sent the token.
    assert user.standin.stats()["token_requests"] == 1
    user.inject("token", None)
    assert user.fails("--registry", user.standin.registry_url, exit_code=3) == line
    assert user.standin.stats()["token_requests"] == 1, "not sent again during the pause"
    pause_over(user)
    assert_recovers(user)


def test_a_spoiled_token_answer_keeps_its_new_refresh_token(user: User) -> None:
    # The registry rotated the token but the rest of its answer is of no use: the new refresh
    # token, perhaps the only one it still takes, must be stored all the same.
    logged_in(user, credentials_ttl=UNUSABLE_TTL, access_token_ttl=30)
    user.inject("token", "partial")
    line = user.fails("--registry", user.standin.registry_url, exit_code=1)
    assert line.endswith("api/token: the answer's access_token is not of the expected type")
    user.inject("token", None)
    assert_recovers(user)


def test_a_trickling_answer_is_cut_off_at_the_deadline(user: User) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    user.inject("credentials", "trickle")
    user.home.env["QUILT_CREDPROC_TIMEOUT"] = "2"
    started = time.monotonic()
    result = user.run("--registry", user.standin.registry_url, verbose=False)
    assert time.monotonic() - started < 10, "bounded by the whole command's time"
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.endswith("get_credentials: no answer in time\n")


def test_a_stale_access_token_is_renewed_once_and_retried(user: User) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    user.standin.reset_stats()
    user.standin.set_fault("credentials", "401", times=1)
    result = user.fetch()
    assert result.returncode == 0, result.stderr
    stats = user.standin.stats()
    assert (stats["token_requests"], stats["credentials_requests"]) == (1, 2)


def test_an_access_token_refused_twice_gives_up(user: User) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    user.standin.reset_stats()
    user.inject("credentials", "401")
    line = user.fails("--registry", user.standin.registry_url, exit_code=1)
    assert endpoint_name(user.standin, "credentials") in line
    assert "HTTP 401" in line
    stats = user.standin.stats()
    # Two runs (quiet and verbose), each one renewal and one retry.
    assert (stats["token_requests"], stats["credentials_requests"]) == (2, 4), "one retry only"
    user.inject("credentials", None)
    assert_recovers(user)


def test_a_registry_that_is_down(user: User) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    store = snapshot(user.home.data_dir)
    endpoint = endpoint_name(user.standin, "credentials")
    registry = user.standin.registry_url
    user.standin.stop()
    try:
        line = user.fails("--registry", registry, exit_code=1)
    finally:
        user.standin.start()
    assert line == f"quilt-credproc: {endpoint}: connection refused"
    assert snapshot(user.home.data_dir) == store
    assert_recovers(user)


def test_a_registry_whose_name_does_not_resolve(user: User) -> None:
    registry = "https://registry.invalid"
    Store(str(user.home.data_dir)).save(
        Login(registry=registry, refresh_token=user.standin.issue_code(), access_token=None)
    )
    store = snapshot(user.home.data_dir)
    line = user.fails("--registry", registry, exit_code=1)
    assert line == f"quilt-credproc: POST {registry}/api/token: the host name does not resolve"
    assert snapshot(user.home.data_dir) == store


@pytest.fixture
def tls_standin(tmp_path: Path) -> Iterator[tuple[StandinCatalog, Path]]:
    """A stand-in behind TLS with a private CA, and that CA's bundle."""
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "private-ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with StandinCatalog(tls=context) as standin:
        yield standin, bundle


def test_an_untrusted_certificate(tls_standin: tuple[StandinCatalog, Path], home: FakeHome) -> None:
    standin, bundle = tls_standin
    user = User(standin, home)
    line = user.fails("setup", "--catalog", user.standin.catalog_url, exit_code=1)
    assert line.startswith(f"quilt-credproc: {endpoint_name(standin, 'config')}: TLS failed")
    assert "REQUESTS_CA_BUNDLE" in line
    assert not home.aws_config.exists()
    home.env["REQUESTS_CA_BUNDLE"] = str(bundle)
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    del home.env["REQUESTS_CA_BUNDLE"]
    line = user.fails("--registry", user.standin.registry_url, exit_code=1)
    assert line.startswith(f"quilt-credproc: {endpoint_name(standin, 'credentials')}: TLS failed")
    home.env["REQUESTS_CA_BUNDLE"] = str(bundle)
    assert_recovers(user)


# -- setup ------------------------------------------------------------------------------------

NOT_A_CATALOG = "is probably not a Quilt catalog URL"
CONFIG_FAULTS = {
    **ANSWER_FAULTS,
    "badjson": NOT_A_CATALOG,
    "html200": NOT_A_CATALOG,
    "missing": "the answer has no registryUrl",
    "wrongtype": "the answer has no registryUrl",
    "notcatalog": "the answer has no registryUrl",
    "401": "HTTP 401 Unauthorized",
    "httpregistry": "its registryUrl: the registry URL must use https://",
}


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_setup_with_a_bad_config_json(user: User, fault: str) -> None:
    config = "# mine\r\n[profile quilt]\r\noutput = json"
    user.home.aws_config.parent.mkdir()
    user.home.aws_config.write_text(config, newline="")
    user.inject("config", fault)
    line = user.fails("setup", "--catalog", user.standin.catalog_url, exit_code=1)
    assert line.startswith(f"quilt-credproc: {endpoint_name(user.standin, 'config')}: "), line
    assert CONFIG_FAULTS[fault] in line
    if fault in ("badjson", "html200", "missing", "wrongtype", "notcatalog"):
        assert line.endswith(f"{user.standin.catalog_url} {NOT_A_CATALOG}")
    assert user.home.aws_config.read_bytes() == config.encode(), "not a byte changed"
    assert user.standin.stats()["token_requests"] == 0, "no code was asked for or spent"
    assert not user.home.data_dir.exists()


@pytest.mark.parametrize("fault", [*ANSWER_FAULTS, "401"])
@pytest.mark.parametrize("endpoint", REFRESH_ENDPOINTS)
def test_a_failed_setup_keeps_the_earlier_login(user: User, endpoint: str, fault: str) -> None:
    logged_in(user, credentials_ttl=UNUSABLE_TTL)
    config, store = user.home.aws_config.read_bytes(), snapshot(user.home.data_dir)
    user.inject(endpoint, fault)
    setup = ("setup", "--catalog", user.standin.catalog_url)
    if (endpoint, fault) == ("token", "401"):
        line = user.fails(*setup, exit_code=3)
        assert "the registry did not accept that code (each code works once)" in line
        assert f"open {user.standin.catalog_url}/code for a new one" in line
    else:
        line = user.fails(*setup, exit_code=1)
        assert line.startswith(f"quilt-credproc: {endpoint_name(user.standin, endpoint)}: ")
        assert ANSWER_FAULTS.get(fault, "HTTP 401") in line
    assert user.home.aws_config.read_bytes() == config
    assert snapshot(user.home.data_dir) == store
    user.inject(endpoint, None)
    assert_recovers(user)


@pytest.mark.parametrize(
    ("catalog", "words"),
    [
        pytest.param(
            "https://catalog.invalid", "the host name does not resolve", id="no-such-host"
        ),
        pytest.param("https://127.0.0.1:1", "connection refused", id="refused"),
        pytest.param("http://catalog.example.com", "must use https://", id="plain-http"),
        pytest.param("file:///etc/passwd", "must start with https://", id="file"),
    ],
)
def test_setup_with_an_unreachable_or_refused_catalog(user: User, catalog: str, words: str) -> None:
    line = user.fails("setup", "--catalog", catalog, exit_code=2 if "https://" in words else 1)
    assert words in line
    assert not user.home.aws_config.exists()


def test_setup_via_plain_http_to_the_stand_in_port_is_a_tls_failure(user: User) -> None:
    port = user.standin.catalog_url.rsplit(":", 1)[1]
    line = user.fails("setup", "--catalog", f"https://127.0.0.1:{port}", exit_code=1)
    assert "TLS failed" in line
