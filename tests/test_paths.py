from __future__ import annotations

import os
import pathlib
import sys

import platformdirs
import pytest

from credproc import fastpath, paths


@pytest.mark.skipif(sys.platform != "linux", reason="the hand-made path is used on Linux only")
@pytest.mark.parametrize(
    "xdg",
    [pytest.param(None, id="unset"), pytest.param("", id="empty"), pytest.param("/x/d", id="set")],
)
def test_data_dir_matches_platformdirs(monkeypatch: pytest.MonkeyPatch, xdg: str | None) -> None:
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert paths.data_dir() == platformdirs.user_data_dir("quilt-credproc", appauthor=False)


@pytest.mark.skipif(sys.platform != "linux", reason="the hand-made path is used on Linux only")
def test_a_relative_xdg_data_home_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert paths.data_dir() == str(tmp_path / ".local" / "share" / "quilt-credproc")


def test_login_keys_are_distinct_and_safe() -> None:
    registries = [
        "https://r.example.com",
        "http://r.example.com",
        "https://r.example.com:8443",
        "https://r.example.com/a_b",
        "https://r.example.com/a/b",
        "https://r.example.com/a_2f_b",
        "https://r.example.com/ä",
    ]
    keys = [fastpath.login_key(r) for r in registries]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert key is not None
        assert os.sep not in key and not key.startswith(".")
    assert fastpath.login_key("https://r.example.com/") == fastpath.login_key(
        "https://r.example.com"
    )
    assert fastpath.login_key("no scheme") is None
