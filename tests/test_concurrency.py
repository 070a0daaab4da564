"""Many `quilt-credproc` processes at once, as a parallel build or `aws s3 sync` starts them."""

from __future__ import annotations

import contextlib
import json
import subprocess
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
    ("access_token_ttl", "credentials_ttl", "token_requests"),
    [
        pytest.param(30, 3600, 1, id="access-token-within-60-s-too"),
        pytest.param(3600, 3600, 0, id="only-credentials-stale"),
        # Each new answer is as short as the last: a waiter takes another's, never asks again.
        pytest.param(3600, 60, 0, id="registry-issues-only-short-lived-ones"),
    ],
)
def test_a_burst_of_calls_makes_one_refresh(
    standin: StandinCatalog,
    home: FakeHome,
    access_token_ttl: int,
    credentials_ttl: int,
    token_requests: int,
) -> None:
    standin.configure(credentials_ttl=STALE_TTL, access_token_ttl=access_token_ttl)
    login(standin, home)
    stale = home.stored(standin.registry_url).credentials
    standin.configure(credentials_ttl=credentials_ttl, access_token_ttl=3600)
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


def test_verbose_says_when_it_waits_for_the_lock(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    set_credentials_expiry(home, standin.registry_url, STALE_TTL)
    lock_path = home.store.lock_path(standin.registry_url)
    home.env["QUILT_CREDPROC_TIMEOUT"] = "1"
    with filelock.FileLock(lock_path, timeout=0):
        result = home.run("--verbose", "--registry", standin.registry_url)
    assert result.returncode == 0, result.stderr
    assert f"waiting for {lock_path}: another process holds it" in result.stderr


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


def test_setups_for_different_profiles_at_once_keep_every_profile(home: FakeHome) -> None:
    # Each setup reads the AWS config, adds its section and writes the file back: unguarded,
    # one would write back a file without the section another just added. Each has a catalog
    # of its own, so that no registry lock lines them up by chance.
    home.aws_config.parent.mkdir()
    home.aws_config.write_text("# mine\n[default]\nregion = eu-west-1\n")
    with contextlib.ExitStack() as stack:
        catalogs = [stack.enter_context(StandinCatalog()) for _ in range(SETUPS * 2)]
        setups = []
        for number, catalog in enumerate(catalogs):
            command = ["setup", "--catalog", catalog.catalog_url, "--no-browser"]
            setup = subprocess.Popen(
                home.command(*command, "--profile", f"p{number}"),
                env=home.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            setups.append((setup, catalog.issue_code()))
        for setup, code in setups:  # all codes first: then every setup runs at once
            assert setup.stdin is not None
            setup.stdin.write(code + "\n")
            setup.stdin.close()
        for setup, _ in setups:
            with setup:  # closes its pipes
                assert setup.wait(timeout=60) == 0, setup.stderr and setup.stderr.read()
    config = home.aws_config.read_text()
    assert config.startswith("# mine\n[default]\nregion = eu-west-1\n")
    missing = [n for n in range(len(catalogs)) if config.count(f"[profile p{n}]") != 1]
    assert missing == []
