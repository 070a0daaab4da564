"""The stand-in catalog speaks the Quilt protocol, and its faults do what they say."""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from standin_catalog import ENDPOINTS, EXPIRATION_FORMATS, StandinCatalog

STANDIN_SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "standin_catalog.py"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        # A proxy from the developer's shell must not see loopback traffic.
        session.trust_env = False
        yield session


def _post_token(
    http: requests.Session, standin: StandinCatalog, token: str, timeout: float = 5
) -> requests.Response:
    return http.post(
        f"{standin.registry_url}/api/token", data={"refresh_token": token}, timeout=timeout
    )


def _access_token(http: requests.Session, standin: StandinCatalog) -> str:
    response = _post_token(http, standin, standin.issue_code())
    assert response.status_code == 200
    return str(response.json()["access_token"])


def _get_credentials(
    http: requests.Session, standin: StandinCatalog, access_token: str, timeout: float = 5
) -> requests.Response:
    return http.get(
        f"{standin.registry_url}/api/auth/get_credentials",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=timeout,
    )


def _hit(
    http: requests.Session, standin: StandinCatalog, endpoint: str, timeout: float = 5
) -> requests.Response:
    """One ordinary, well-formed request to `endpoint`."""
    if endpoint == "config":
        return http.get(f"{standin.catalog_url}/config.json", timeout=timeout)
    if endpoint == "token":
        return http.post(
            f"{standin.registry_url}/api/token",
            data={"refresh_token": standin.issue_code()},
            timeout=timeout,
        )
    # Mint the access token before the fault can take this request's place.
    access_token = _access_token(http, standin)
    return _get_credentials(http, standin, access_token, timeout)


def _parse_expiration(text: str) -> datetime:
    # datetime.fromisoformat reads "Z" only from Python 3.11 on.
    return datetime.fromisoformat(re.sub(r"Z$", "+00:00", text))


def _is_valid_answer(endpoint: str, response: requests.Response) -> bool:
    try:
        body: Any = response.json()
    except ValueError:
        return False
    if response.status_code != 200 or not isinstance(body, dict):
        return False
    if endpoint == "config":
        url = body.get("registryUrl")
        return isinstance(url, str) and url.endswith("/") and isinstance(body.get("region"), str)
    if endpoint == "token":
        fields_ok = all(isinstance(body.get(key), str) for key in ("refresh_token", "access_token"))
        expires_at = body.get("expires_at")
        return fields_ok and isinstance(expires_at, int) and not isinstance(expires_at, bool)
    keys = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    return all(isinstance(body.get(key), str) for key in keys)


def test_config_names_a_separate_registry_with_a_trailing_slash(
    http: requests.Session, standin: StandinCatalog
) -> None:
    config = http.get(f"{standin.catalog_url}/config.json", timeout=5).json()
    assert config["registryUrl"] == standin.registry_url + "/"
    assert config["region"] == "us-east-1"
    assert standin.registry_url != standin.catalog_url
    assert not standin.catalog_url.endswith("/")


def test_login_leads_to_a_code_that_is_a_refresh_token(
    http: requests.Session, standin: StandinCatalog
) -> None:
    redirect = http.get(f"{standin.registry_url}/login", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == f"{standin.catalog_url}/code"
    page = http.get(redirect.headers["Location"], timeout=5)
    match = re.search(r'<pre id="code">([^<]+)</pre>', page.text)
    assert page.headers["Content-Type"].startswith("text/html")
    assert match is not None
    assert _post_token(http, standin, match.group(1)).status_code == 200


def test_refresh_tokens_rotate_and_are_single_use(
    http: requests.Session, standin: StandinCatalog
) -> None:
    first = standin.issue_code()
    answer = _post_token(http, standin, first)
    assert _is_valid_answer("token", answer)
    second = answer.json()["refresh_token"]
    assert second != first
    reused = _post_token(http, standin, first)
    assert reused.status_code == 401
    assert "message" in reused.json()
    assert _post_token(http, standin, second).status_code == 200
    stats = standin.stats()
    assert stats["reused_refresh_tokens"] == 1
    assert stats["rejected_refresh_tokens"] == 0
    assert stats["token_requests"] == 3


@pytest.mark.parametrize("how", ["unknown", "revoked"])
def test_unknown_and_revoked_tokens_are_rejected(
    http: requests.Session, standin: StandinCatalog, how: str
) -> None:
    token = "rt-never-issued"
    if how == "revoked":
        token = standin.issue_code()
        standin.revoke_all()
    assert _post_token(http, standin, token).status_code == 401
    assert standin.stats()["rejected_refresh_tokens"] == 1
    assert standin.stats()["reused_refresh_tokens"] == 0


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"json": {"refresh_token": "rt-x"}}, "json body"),
        ({"data": {"token": "rt-x"}}, "no refresh_token field"),
        ({"data": {"refresh_token": ""}}, "empty refresh_token"),
    ],
    ids=["json-body", "missing-field", "empty-field"],
)
def test_token_endpoint_wants_a_form_with_a_refresh_token(
    http: requests.Session, standin: StandinCatalog, kwargs: dict[str, Any], why: str
) -> None:
    response = http.post(f"{standin.registry_url}/api/token", timeout=5, **kwargs)
    assert response.status_code == 400, why


def test_credentials_need_a_live_access_token(
    http: requests.Session, standin: StandinCatalog
) -> None:
    access_token = _access_token(http, standin)
    answer = _get_credentials(http, standin, access_token)
    assert _is_valid_answer("credentials", answer)
    assert answer.json()["AccessKeyId"].startswith("ASIA")
    assert _get_credentials(http, standin, "at-unknown").status_code == 401
    standin.expire_access_tokens()
    assert _get_credentials(http, standin, access_token).status_code == 401
    assert standin.stats()["rejected_access_tokens"] == 2


@pytest.mark.parametrize(
    ("style", "pattern"),
    [
        ("+00:00", r"T\d\d:\d\d:\d\d\+00:00$"),
        ("Z", r"T\d\d:\d\d:\d\dZ$"),
        ("+02:00", r"T\d\d:\d\d:\d\d\+02:00$"),
        ("fractional", r"T\d\d:\d\d:\d\d\.\d{6}\+00:00$"),
    ],
    ids=["utc-offset", "zulu", "plus-two", "fractional"],
)
def test_expiration_is_iso8601_credentials_ttl_ahead(
    http: requests.Session, standin: StandinCatalog, style: str, pattern: str
) -> None:
    assert style in EXPIRATION_FORMATS
    standin.configure(credentials_ttl=900, expiration_format=style)
    text = _get_credentials(http, standin, _access_token(http, standin)).json()["Expiration"]
    assert re.search(pattern, text), text
    ahead = _parse_expiration(text) - datetime.now(timezone.utc)
    assert timedelta(seconds=890) < ahead <= timedelta(seconds=901)


def test_expires_at_follows_the_access_token_ttl(
    http: requests.Session, standin: StandinCatalog
) -> None:
    standin.configure(access_token_ttl=120)
    expires_at = _post_token(http, standin, standin.issue_code()).json()["expires_at"]
    assert abs(expires_at - (time.time() + 120)) < 5


ANSWER_FAULTS = ("html500", "html502", "badjson", "missing", "wrongtype", "401", "403", "html200")


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [(endpoint, fault) for endpoint in ENDPOINTS for fault in ANSWER_FAULTS]
    + [("config", "notcatalog")],
    ids=lambda value: str(value),
)
def test_a_fault_spoils_the_next_answers_only(
    http: requests.Session, standin: StandinCatalog, endpoint: str, fault: str
) -> None:
    standin.set_fault(endpoint, fault, times=2)
    assert not _is_valid_answer(endpoint, _hit(http, standin, endpoint))
    assert not _is_valid_answer(endpoint, _hit(http, standin, endpoint))
    assert _is_valid_answer(endpoint, _hit(http, standin, endpoint))


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        ("html500", 500, "text/html"),
        ("html502", 502, "text/html"),
        ("401", 401, "application/json"),
        ("403", 403, "application/json"),
        ("html200", 200, "text/html"),
    ],
    ids=["html500", "html502", "401", "403", "html200"],
)
def test_fault_statuses(
    http: requests.Session, standin: StandinCatalog, fault: str, status: int, content_type: str
) -> None:
    standin.set_fault("config", fault)
    for _ in range(3):
        response = _hit(http, standin, "config")
        assert response.status_code == status
        assert response.headers["Content-Type"].startswith(content_type)
    standin.set_fault("config", None)
    assert _is_valid_answer("config", _hit(http, standin, "config"))


def test_a_401_fault_at_token_does_not_spend_the_token(
    http: requests.Session, standin: StandinCatalog
) -> None:
    token = standin.issue_code()
    standin.set_fault("token", "401", times=1)
    assert _post_token(http, standin, token).status_code == 401
    assert _post_token(http, standin, token).status_code == 200
    assert standin.stats()["reused_refresh_tokens"] == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_drop_closes_the_connection_without_an_answer(
    http: requests.Session, standin: StandinCatalog, endpoint: str
) -> None:
    standin.set_fault(endpoint, "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        _hit(http, standin, endpoint)
    assert _is_valid_answer(endpoint, _hit(http, standin, endpoint))


def test_hang_times_the_client_out_and_does_not_block_stop(
    http: requests.Session, standin: StandinCatalog
) -> None:
    standin.set_fault("token", "hang")
    with pytest.raises(requests.ReadTimeout):
        _hit(http, standin, "token", timeout=0.3)
    started = time.monotonic()
    standin.stop()
    assert time.monotonic() - started < 2


def test_lost_does_the_work_but_never_answers(
    http: requests.Session, standin: StandinCatalog
) -> None:
    code = standin.issue_code()
    standin.set_fault("token", "lost", times=1)
    with pytest.raises(requests.ReadTimeout):
        _post_token(http, standin, code, timeout=0.3)
    # The code was spent by the rotation whose answer never arrived.
    assert _post_token(http, standin, code).status_code == 401
    assert standin.stats()["reused_refresh_tokens"] == 1


def test_partial_rotates_and_spoils_the_rest(
    http: requests.Session, standin: StandinCatalog
) -> None:
    standin.set_fault("token", "partial", times=1)
    answer = _post_token(http, standin, standin.issue_code()).json()
    assert answer["access_token"] == 12345 and "expires_at" not in answer
    assert _post_token(http, standin, answer["refresh_token"]).status_code == 200, "it rotated"


def test_trickle_sends_the_answer_a_byte_at_a_time(
    http: requests.Session, standin: StandinCatalog
) -> None:
    standin.set_fault("config", "trickle:0.01", times=1)
    started = time.monotonic()
    # Each byte comes well within the read timeout, so requests waits for the whole answer.
    answer = http.get(f"{standin.catalog_url}/config.json", timeout=1)
    assert time.monotonic() - started > 100 * 0.01
    assert answer.json()["registryUrl"] == standin.registry_url + "/"


def test_a_restart_comes_back_on_the_same_ports(
    http: requests.Session, standin: StandinCatalog
) -> None:
    urls = (standin.catalog_url, standin.registry_url)
    code = standin.issue_code()
    standin.stop()
    with pytest.raises(requests.ConnectionError):
        http.get(f"{urls[0]}/config.json", timeout=2)
    standin.start()
    assert (standin.catalog_url, standin.registry_url) == urls
    assert _post_token(http, standin, code).status_code == 200, "tokens survive a restart"


def test_issued_secrets_lists_every_secret(http: requests.Session, standin: StandinCatalog) -> None:
    code = standin.issue_code()
    tokens = _post_token(http, standin, code).json()
    creds = _get_credentials(http, standin, tokens["access_token"]).json()
    issued = standin.issued_secrets()
    wanted = [code, tokens["refresh_token"], tokens["access_token"]]
    wanted += [creds["SecretAccessKey"], creds["SessionToken"]]
    assert all(secret in issued for secret in wanted)


def test_tls(tmp_path: Path) -> None:
    authority = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with StandinCatalog(tls=server_context) as standin, requests.Session() as http:
        http.trust_env = False
        assert standin.catalog_url.startswith("https://127.0.0.1:")
        with pytest.raises(requests.exceptions.SSLError):
            http.get(f"{standin.catalog_url}/config.json", timeout=5)
        answer = http.get(f"{standin.catalog_url}/config.json", timeout=5, verify=str(bundle))
        assert answer.json()["registryUrl"] == standin.registry_url + "/"


def test_slow_answers_correctly_after_the_delay(
    http: requests.Session, standin: StandinCatalog
) -> None:
    standin.set_fault("credentials", "slow:0.4", times=1)
    started = time.monotonic()
    response = _hit(http, standin, "credentials")
    assert time.monotonic() - started >= 0.4
    assert _is_valid_answer("credentials", response)


@pytest.mark.parametrize(
    ("endpoint", "fault", "times"),
    [
        ("code", "html500", None),
        ("config", "explode", None),
        ("token", "slow:soon", None),
        ("token", "notcatalog", None),
        ("config", "html500", 0),
    ],
    ids=["unknown-endpoint", "unknown-fault", "bad-delay", "notcatalog-off-config", "zero-times"],
)
def test_set_fault_refuses_what_it_cannot_do(
    standin: StandinCatalog, endpoint: str, fault: str, times: int | None
) -> None:
    with pytest.raises(ValueError):
        standin.set_fault(endpoint, fault, times=times)


def test_control_api_drives_a_standin_over_http(
    http: requests.Session, standin: StandinCatalog
) -> None:
    control = f"{standin.registry_url}/_standin"
    code = http.post(f"{control}/code", timeout=5).json()["code"]
    answer = _post_token(http, standin, code).json()
    fault = {"endpoint": "config", "fault": "html502", "times": 1}
    assert http.post(f"{control}/fault", json=fault, timeout=5).status_code == 200
    assert _hit(http, standin, "config").status_code == 502
    bad_fault = {"endpoint": "config", "fault": "explode"}
    assert http.post(f"{control}/fault", json=bad_fault, timeout=5).status_code == 400
    assert http.get(f"{control}/stats", timeout=5).json()["config_requests"] == 1
    assert http.post(f"{control}/reset_stats", timeout=5).status_code == 200
    assert http.get(f"{control}/stats", timeout=5).json()["config_requests"] == 0
    http.post(f"{control}/expire_access_tokens", timeout=5)
    assert _get_credentials(http, standin, answer["access_token"]).status_code == 401
    http.post(f"{control}/revoke", timeout=5)
    assert _post_token(http, standin, answer["refresh_token"]).status_code == 401


def test_a_burst_of_rotations_all_succeed(http: requests.Session, standin: StandinCatalog) -> None:
    codes = [standin.issue_code() for _ in range(100)]
    statuses: list[int] = []
    start = threading.Barrier(len(codes))

    def rotate(code: str) -> None:
        # One session per thread: requests.Session is not documented as thread-safe.
        with requests.Session() as session:
            session.trust_env = False
            start.wait()
            statuses.append(_post_token(session, standin, code).status_code)

    threads = [threading.Thread(target=rotate, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(codes)
    assert standin.stats()["token_requests"] == len(codes)


def test_the_script_announces_its_urls_and_stops_on_sigterm(
    http: requests.Session, tmp_path: Path
) -> None:
    state_file = tmp_path / "standin.json"
    command = [sys.executable, str(STANDIN_SCRIPT), "--state-file", str(state_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert json.loads(state_file.read_text(encoding="utf-8")) == announced
        config = http.get(f"{announced['catalog_url']}/config.json", timeout=5).json()
        assert config["registryUrl"] == announced["registry_url"] + "/"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_the_script_exits_by_itself_when_its_lifetime_ends() -> None:
    command = [sys.executable, str(STANDIN_SCRIPT), "--lifetime", "0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"catalog_url", "registry_url"}
