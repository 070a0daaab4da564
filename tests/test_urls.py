from __future__ import annotations

import pytest

from credproc import urls
from credproc.errors import InvalidURLError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("catalog.example.com", "https://catalog.example.com", id="no-scheme"),
        pytest.param("https://Catalog.Example.com/", "https://catalog.example.com", id="slash"),
        pytest.param("https://c.example.com/b/x/tree?q=1#f", "https://c.example.com", id="path"),
        pytest.param("https://c.example.com:443", "https://c.example.com", id="default-port"),
        pytest.param("https://c.example.com:8443", "https://c.example.com:8443", id="port"),
        pytest.param("http://127.0.0.1:8000/", "http://127.0.0.1:8000", id="loopback-http"),
        pytest.param("http://localhost:8000", "http://localhost:8000", id="localhost-http"),
        pytest.param("http://[::1]:8000", "http://[::1]:8000", id="ipv6-loopback"),
        pytest.param("  https://c.example.com \n", "https://c.example.com", id="whitespace"),
    ],
)
def test_catalog_urls_are_normalised(raw: str, expected: str) -> None:
    assert urls.catalog(raw) == expected


def test_a_registry_keeps_its_path() -> None:
    assert urls.registry("https://r.example.com/api-root/") == "https://r.example.com/api-root"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("http://catalog.example.com", "https://", id="plain-http"),
        pytest.param("http://10.0.0.1", "https://", id="private-http"),
        pytest.param("file:///etc/passwd", "https://", id="file"),
        pytest.param("ftp://c.example.com", "https://", id="ftp"),
        pytest.param("", "empty", id="empty"),
        pytest.param("https://", "no host", id="no-host"),
        pytest.param("https://c.example.com:99999", "not valid", id="bad-port"),
    ],
)
def test_bad_urls_are_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidURLError, match=message):
        urls.catalog(raw)
