"""Fixtures: a stand-in catalog on 127.0.0.1 and a fake user environment in tmp_path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

_TESTS = Path(__file__).resolve().parent
# The stand-in is an example script, not part of the package; helpers.py must import the same
# way whether or not tests/ is a package.
for _folder in (_TESTS.parent / "examples", _TESTS):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from helpers import FakeHome, make_home  # noqa: E402
from standin_catalog import StandinCatalog  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once when the installed package lacks a module the source tree has.

    `make install` makes a strict editable install: links to each module, which follow edits
    but not a module added since. The tests drive the installed command, so they would fail
    all over with an ImportError.
    """
    where = subprocess.run(
        [sys.executable, "-c", "import credproc, os; print(os.path.dirname(credproc.__file__))"],
        cwd=_TESTS.anchor,  # not the project folder, whose credproc/ would be found first
        capture_output=True,
        text=True,
        check=False,
    )
    installed = Path(where.stdout.strip())
    missing = sorted(
        path.name
        for path in (_TESTS.parent / "credproc").glob("*.py")
        if not (installed / path.name).exists()
    )
    if where.returncode != 0 or missing:
        pytest.exit(
            f"the installed quilt-credproc ({installed}) lacks {', '.join(missing) or 'credproc'}: "
            "run `make install` (or `pip install -e . --config-settings editable_mode=strict`)",
            returncode=3,
        )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 (moto's server) on 127.0.0.1, for the consumers and the examples."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def standin() -> Iterator[StandinCatalog]:
    with StandinCatalog() as catalog:
        yield catalog


@pytest.fixture
def home(tmp_path: Path) -> FakeHome:
    return make_home(tmp_path)
