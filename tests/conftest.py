"""Fixtures: a stand-in catalog on 127.0.0.1 and a fake user environment in tmp_path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
# The stand-in is an example script, not part of the package; helpers.py must import the same
# way whether or not tests/ is a package.
for _folder in (_TESTS.parent / "examples", _TESTS):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from helpers import FakeHome, make_home  # noqa: E402
from standin_catalog import StandinCatalog  # noqa: E402


@pytest.fixture
def standin() -> Iterator[StandinCatalog]:
    with StandinCatalog() as catalog:
        yield catalog


@pytest.fixture
def home(tmp_path: Path) -> FakeHome:
    return make_home(tmp_path)
