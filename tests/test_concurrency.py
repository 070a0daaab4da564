"""Many `quilt-credproc` processes at once, as a parallel build or `aws s3 sync` starts them."""

from __future__ import annotations

import json
import threading
import time

import filelock
import pytest
from helpers import (
    STALE_TTL,
    FakeHome,
    assert_clean_success,
    finish,
    login,
    set_credentials_expiry,
)
from standin_catalog import StandinCatalog

from credproc.errors import StoreError

BURST = 32
SETUPS = 5


@pytest.mark.parametrize(
    ("access_token_ttl", "token_requests"),
    [
        pytest.param(30, 1, id="access-token-within-60-s-too"),
        pytest.param(3600, 0, id="only-credentials-stale"),
    ],
)
def test_a_burst_of_calls_makes_one_refresh(
    standin: StandinCatalog, home: FakeHome, access_token_ttl: int, token_requests: int
) -> None:
    standin.configure(credentials_ttl=STALE_TTL, access_token_ttl=access_token_ttl)
    login(standin, home)
    stale = home.stored(standin.registry_url).credentials
    standin.configure(credentials_ttl=3600, access_token_ttl=3600)
    standin.reset_stats()
    # The first refresh holds the lock long enough for every other process to queue behind it.
    standin.set_fault("credentials", "slow:0.5", times=1)
    processes = [home.start("--registry", standin.registry_url) for _ in range(BURST)]
    results = [finish(process) for process in processes]
    for result in results:
        assert_clean_success(result)
    answers = {result.stdout for result in results}
    assert len(answers) == 1, "every process prints the same credentials"
    (answer,) = answers
    assert stale is not None and json.loads(answer)["AccessKeyId"] != stale.access_key_id
    stats = standin.stats()
    assert (stats["token_requests"], stats["credentials_requests"]) == (token_requests, 1)
    assert stats["reused_refresh_tokens"] == 0


@pytest.mark.parametrize(
    ("seconds_left", "returncode"),
    [
        pytest.param(-60, 1, id="expired-fails"),
        pytest.param(STALE_TTL, 0, id="stale-but-unexpired-falls-back"),
    ],
)
def test_the_wait_for_a_held_lock_is_bounded(
    standin: StandinCatalog, home: FakeHome, seconds_left: int, returncode: int
) -> None:
    login(standin, home)
    stored = set_credentials_expiry(home, standin.registry_url, seconds_left)
    lock_path = home.store.lock_path(standin.registry_url)
    home.env["QUILT_CREDPROC_TIMEOUT"] = "2"
    standin.reset_stats()
    with filelock.FileLock(lock_path, timeout=0):
        started = time.monotonic()
        result = home.run("--registry", standin.registry_url)
        waited = time.monotonic() - started
    assert 1.9 < waited < 6, f"it gave up after {waited:.1f} s"
    assert result.returncode == returncode, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert lock_path in result.stderr
    assert stored.credentials is not None
    expected = stored.credentials.process_answer() + "\n" if returncode == 0 else ""
    assert result.stdout == expected
    if returncode == 0:
        assert result.stderr.startswith("quilt-credproc: warning: ")
    assert standin.stats()["token_requests"] == standin.stats()["credentials_requests"] == 0


def test_setup_during_a_stream_of_refreshes_loses_nothing(
    standin: StandinCatalog, home: FakeHome
) -> None:
    # Every call refreshes both tokens, so each setup lands among rotations.
    standin.configure(credentials_ttl=STALE_TTL, access_token_ttl=30)
    login(standin, home)
    standin.reset_stats()
    # A reader beside the writers sees one whole version of the file or the next, never a part.
    torn: list[StoreError] = []
    done = threading.Event()

    def read_all_along() -> None:
        while not done.wait(0.001):
            try:
                home.store.load(standin.registry_url)
            except StoreError as exc:
                torn.append(exc)

    reader = threading.Thread(target=read_all_along)
    reader.start()
    processes = []
    try:
        for _ in range(SETUPS):
            processes += [home.start("--registry", standin.registry_url) for _ in range(5)]
            login(standin, home)
        results = [finish(process) for process in processes]
    finally:
        done.set()
        reader.join()
    assert torn == []
    for result in results:
        assert_clean_success(result)
    assert standin.stats()["token_requests"] > 2 * SETUPS, "setups and refreshes interleaved"
    # The login that survived still refreshes: force both tokens through the registry again.
    standin.expire_access_tokens()
    result = home.run("--registry", standin.registry_url)
    assert_clean_success(result)
    stats = standin.stats()
    assert (stats["reused_refresh_tokens"], stats["rejected_refresh_tokens"]) == (0, 0)
    assert home.aws_config.read_text().count("[profile quilt]") == 1
