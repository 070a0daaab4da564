"""The cached path loads no network, lock or parsing module; the refresh path does.

Structure, not timing: each test reads the `-X importtime` trace of a real run of the installed
console script. A module that a bare start of the same interpreter already loads is left out,
since the trace only shows a module the first time it is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import filelock
import pytest
from helpers import FakeHome, credproc_executable, login
from standin_catalog import StandinCatalog

import credproc

# What the refresh path needs and the cached path must not pay for.
NETWORK_AND_LOCK = ("requests", "urllib3", "ssl", "http.client", "filelock")
# Each of these imports `re` or costs about as much as the interpreter's own start-up.
PARSERS_AND_FRAMEWORKS = ("json", "re", "typing", "argparse", "pathlib", "platformdirs", "logging")
TRACE_PREFIX = "import time:"


def import_tree(stderr: str) -> dict[str, str | None]:
    """Each module the trace shows being loaded, mapped to the module whose import loaded it.

    The trace lists a module after everything it loaded, two spaces deeper per level.
    """
    importer: dict[str, str | None] = {}
    waiting: dict[int, list[str]] = {}
    for line in stderr.splitlines():
        if not line.startswith(TRACE_PREFIX) or "imported package" in line:
            continue
        field = line.rsplit("|", 1)[1]
        name = field.strip()
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        for child in waiting.pop(depth + 1, []):
            importer[child] = name
        importer.setdefault(name, None)
        waiting.setdefault(depth, []).append(name)
    return importer


def chain(module: str, importer: dict[str, str | None]) -> str:
    """`re <- typing <- credproc.cli`: who pulled a module in."""
    links = [module]
    while (parent := importer.get(links[-1])) is not None:
        links.append(parent)
    return " <- ".join(links)


def traced(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        cwd=env["HOME"],  # not the project folder, which `python -c` would import from
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded_beyond_bare_start(
    argv: list[str], env: dict[str, str], flags: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], dict[str, str | None]]:
    """The run, and the modules it loaded that `python -c pass` (same flags) does not."""
    bare = import_tree(traced([sys.executable, *flags, "-c", "pass"], env).stderr)
    result = traced(argv, env)
    tree = import_tree(result.stderr)
    return result, {name: parent for name, parent in tree.items() if name not in bare}


def offenders(loaded: dict[str, str | None], banned: tuple[str, ...]) -> list[str]:
    """The banned modules that were loaded, each with its import chain.

    A submodule is named only when its package was not loaded too (`http.client` alone).
    """
    hits = [
        name
        for name in loaded
        if name in banned or (name.split(".")[0] in banned and name.split(".")[0] not in loaded)
    ]
    return sorted(chain(name, loaded) for name in hits)


def check_answer(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    other = [line for line in result.stderr.splitlines() if not line.startswith(TRACE_PREFIX)]
    assert other == [], "the helper wrote to stderr"
    answer = json.loads(result.stdout)
    assert answer["Version"] == 1
    assert str(answer["AccessKeyId"]).startswith("ASIA")


@pytest.mark.parametrize(
    "spelling",
    [pytest.param("separate", id="--registry-URL"), pytest.param("joined", id="--registry=URL")],
)
def test_cached_answer_loads_no_network_lock_or_parser(
    standin: StandinCatalog, home: FakeHome, spelling: str
) -> None:
    login(standin, home)
    standin.reset_stats()
    url = standin.registry_url
    args = ["--registry", url] if spelling == "separate" else [f"--registry={url}"]
    result, loaded = loaded_beyond_bare_start([str(credproc_executable()), *args], home.env)
    check_answer(result)
    assert "credproc.fastpath" in loaded, "the trace did not cover quilt-credproc's own imports"
    found = offenders(loaded, NETWORK_AND_LOCK + PARSERS_AND_FRAMEWORKS)
    assert not found, f"the cached path loads {found}"
    assert standin.stats()["credentials_requests"] == 0


def test_cached_answer_from_a_clean_start_loads_no_parser(
    standin: StandinCatalog, home: FakeHome
) -> None:
    # Without site, nothing a .pth file runs (a setuptools editable install's finder loads
    # `re` and pathlib) can hide what the launcher and the cached path load themselves.
    login(standin, home)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(credproc.__file__)))
    env = {**home.env, "PYTHONPATH": package_parent}
    argv = [sys.executable, "-S", str(credproc_executable()), "--registry", standin.registry_url]
    result, loaded = loaded_beyond_bare_start(argv, env, flags=("-S",))
    check_answer(result)
    assert "credproc.fastpath" in loaded
    found = offenders(loaded, NETWORK_AND_LOCK + PARSERS_AND_FRAMEWORKS)
    assert not found, f"the cached path loads {found}"


def test_refresh_loads_the_network_stack(standin: StandinCatalog, home: FakeHome) -> None:
    # The counter-check: the same trace does show these modules when they are loaded.
    standin.configure(credentials_ttl=60)  # within the helper's 20-minute margin: stale
    login(standin, home)
    standin.reset_stats()
    argv = [str(credproc_executable()), "--registry", standin.registry_url]
    result, loaded = loaded_beyond_bare_start(argv, home.env)
    check_answer(result)
    assert standin.stats()["credentials_requests"] == 1
    assert {name.split(".")[0] for name in loaded} >= {"requests", "urllib3"}
    assert {"ssl", "http.client", "json"} <= set(loaded)


def test_waiting_for_another_process_refresh_loads_nothing_heavy(
    standin: StandinCatalog, home: FakeHome
) -> None:
    # Many commands at once: one refreshes, the rest wait for its answer at the cost of an
    # interpreter start. Here the test plays the refreshing process.
    standin.configure(credentials_ttl=60)
    login(standin, home)
    standin.configure(credentials_ttl=3600)
    store = home.store
    bare = import_tree(traced([sys.executable, "-c", "pass"], home.env).stderr)
    with filelock.FileLock(store.lock_path(standin.registry_url)):
        waiter = subprocess.Popen(
            [str(credproc_executable()), "--registry", standin.registry_url],
            env={**home.env, "PYTHONPROFILEIMPORTTIME": "1"},
            cwd=home.env["HOME"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        assert waiter.poll() is None, "it waits while the lock is held and the answer stale"
        stale = home.stored(standin.registry_url)
        assert stale.credentials is not None
        fresh = dataclasses.replace(
            stale.credentials,
            access_key_id="ASIAFRESHFROMANOTHER",
            expiration=int(time.time()) + 3600,
        )
        store.save(dataclasses.replace(stale, credentials=fresh))
        stdout, stderr = waiter.communicate(timeout=30)
    result = subprocess.CompletedProcess(waiter.args, waiter.returncode, stdout, stderr)
    check_answer(result)
    assert json.loads(stdout)["AccessKeyId"] == "ASIAFRESHFROMANOTHER"
    loaded = {name: parent for name, parent in import_tree(stderr).items() if name not in bare}
    found = offenders(loaded, NETWORK_AND_LOCK + PARSERS_AND_FRAMEWORKS)
    assert not found, f"the waiting process loads {found}"
