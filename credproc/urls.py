"""Checking and normalising the catalog and registry URLs users type."""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from credproc.errors import InvalidURLError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize(raw: str, what: str, *, keep_path: bool) -> str:
    """`scheme://host[:port][/path]` with no trailing slash, query or fragment.

    A missing scheme means https; plain http is allowed only to this machine, since tokens and
    keys travel in every exchange.
    """
    text = raw.strip()
    if not text:
        raise InvalidURLError(f"the {what} URL is empty")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"the {what} URL {raw.strip()!r} is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURLError(f"the {what} URL must start with https://, not {scheme}://")
    if not host:
        raise InvalidURLError(f"the {what} URL {raw.strip()!r} has no host name")
    if scheme == "http" and not is_loopback(host):
        raise InvalidURLError(
            f"the {what} URL must use https:// (plain http is allowed only to this machine)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = parts.path.rstrip("/") if keep_path else ""
    if (not keep_path and parts.path.strip("/")) or parts.query or parts.fragment:
        log.info("using %s://%s as the %s URL", scheme, netloc + path, what)
    return f"{scheme}://{netloc}{path}"


def host(url: str) -> str:
    """The host of a normalised URL, port included: `r.example.com:8443`."""
    return urlsplit(url).netloc


def catalog(raw: str) -> str:
    """A catalog is served at the root of its host: any path pasted with it is dropped."""
    return normalize(raw, "catalog", keep_path=False)


def registry(raw: str) -> str:
    return normalize(raw, "registry", keep_path=True)
