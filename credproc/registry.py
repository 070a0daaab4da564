"""The HTTP side: a catalog's config.json and the registry's token and credentials endpoints.

Every failure is translated here, where the request is made, into one short message that
names the endpoint and what went wrong. No token, code or key goes into a message or a log.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests

from credproc import __version__
from credproc.deadline import Deadline
from credproc.errors import (
    IncompleteTokensError,
    NotACatalogError,
    OutOfTimeError,
    ServerError,
    StaleAccessTokenError,
    TokenRejectedError,
)
from credproc.store import Credentials

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
REQUEST_TIMEOUT = 25.0  # the whole of one request, answer included
USER_AGENT = f"quilt-credproc/{__version__}"
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")


@dataclasses.dataclass(frozen=True)
class CatalogConfig:
    registry: str
    region: str | None


@dataclasses.dataclass(frozen=True)
class Tokens:
    refresh_token: str
    access_token: str
    expires_at: float

    def __repr__(self) -> str:
        return f"Tokens(expires_at={self.expires_at})"


class Client:
    """Talks to one catalog and its registry over a `requests` session."""

    def __init__(self, deadline: Deadline, session: requests.Session | None = None) -> None:
        self.deadline = deadline
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def within(self, deadline: Deadline) -> Client:
        """The same session, bound by another deadline."""
        return Client(deadline, self.session)

    def catalog_config(self, catalog: str) -> CatalogConfig:
        endpoint = f"GET {catalog}/config.json"
        try:
            data = self._json(self._send("GET", f"{catalog}/config.json", endpoint), endpoint)
        except ServerError as exc:
            if exc.problem.startswith(("HTTP 404", "the answer is not valid JSON")):
                raise _not_a_catalog(catalog, endpoint, exc.problem) from exc
            raise
        registry = data.get("registryUrl")
        if not isinstance(registry, str) or not registry.strip():
            raise _not_a_catalog(catalog, endpoint, "the answer has no registryUrl")
        region = data.get("region")
        if region is not None and not (isinstance(region, str) and _REGION.fullmatch(region)):
            # A region is a convenience: a strange one is dropped, never written to the config.
            log.warning("%s: ignoring its region, which is not an AWS region name", endpoint)
            region = None
        return CatalogConfig(registry, region)

    def refresh(self, registry: str, refresh_token: str) -> Tokens:
        """Trade a refresh token (or a code from /code) for new tokens."""
        endpoint = f"POST {registry}/api/token"
        response = self._send(
            "POST", f"{registry}/api/token", endpoint, data={"refresh_token": refresh_token}
        )
        if response.status_code == 401:
            raise TokenRejectedError(endpoint, "HTTP 401: the refresh token was not accepted")
        data = self._json(response, endpoint)
        new_refresh_token = _field(data, "refresh_token", str, endpoint)
        try:
            return Tokens(
                refresh_token=new_refresh_token,
                access_token=_field(data, "access_token", str, endpoint),
                expires_at=_field(data, "expires_at", (int, float), endpoint),
            )
        except ServerError as exc:
            # The registry may have retired the old refresh token already: the new one must
            # reach the store even though the rest of the answer is of no use.
            raise IncompleteTokensError(exc.endpoint, exc.problem, new_refresh_token) from exc

    def credentials(self, registry: str, access_token: str) -> Credentials:
        endpoint = f"GET {registry}/api/auth/get_credentials"
        response = self._send(
            "GET",
            f"{registry}/api/auth/get_credentials",
            endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if response.status_code == 401:
            raise StaleAccessTokenError(endpoint, "HTTP 401: the access token was not accepted")
        data = self._json(response, endpoint)
        expiration = _field(data, "Expiration", str, endpoint)
        try:
            expires = parse_expiration(expiration)
        except ValueError as exc:
            raise ServerError(endpoint, "Expiration is not an ISO 8601 time") from exc
        if expires <= time.time():
            problem = f"the credentials expired at {expiration} (is this machine's clock right?)"
            raise ServerError(endpoint, problem)
        return Credentials(
            access_key_id=_field(data, "AccessKeyId", str, endpoint),
            secret_access_key=_field(data, "SecretAccessKey", str, endpoint),
            session_token=_field(data, "SessionToken", str, endpoint),
            expiration=expires,
        )

    def _send(self, method: str, url: str, endpoint: str, **kwargs: Any) -> requests.Response:
        left = min(self.deadline.remaining(), REQUEST_TIMEOUT)
        if left <= 0:
            raise OutOfTimeError(endpoint, "not tried: the time allowed for this command ran out")
        started = time.monotonic()
        timeout = (min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left))
        outcome: list[requests.Response | requests.RequestException] = []

        def send() -> None:
            try:
                outcome.append(
                    self.session.request(
                        method, url, timeout=timeout, allow_redirects=False, **kwargs
                    )
                )
            except requests.RequestException as exc:
                outcome.append(exc)

        # requests' timeouts bound each wait for a byte, not the whole answer: a server that
        # trickles one byte at a time would hold the AWS command for ever. So the request runs
        # in a thread that is abandoned, and dies with the process, once the time is up.
        worker = threading.Thread(target=send, name=endpoint, daemon=True)
        worker.start()
        worker.join(left)
        if not outcome:
            raise ServerError(endpoint, "no answer in time")
        response = outcome[0]
        if isinstance(response, requests.RequestException):
            raise ServerError(endpoint, _network_problem(response)) from response
        log.debug(
            "%s -> HTTP %s in %.3f s", endpoint, response.status_code, time.monotonic() - started
        )
        if response.status_code >= 400 and response.status_code != 401:
            raise ServerError(endpoint, _status(response))
        return response

    def _json(self, response: requests.Response, endpoint: str) -> Mapping[str, Any]:
        if response.status_code != 200:
            raise ServerError(endpoint, _status(response))
        try:
            data = response.json()
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ServerError(endpoint, f"the answer is not valid JSON ({kind})") from exc
        if not isinstance(data, dict):
            raise ServerError(endpoint, "the answer is not a JSON object")
        return data


def parse_expiration(text: str) -> int:
    """ISO 8601 to epoch seconds: `Z` or any offset, any fraction; no offset means UTC."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    date, sep, clock = value.partition("T")
    if sep and "." in clock:
        # Python before 3.11 takes only 3 or 6 fraction digits.
        whole, _, rest = clock.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        clock = f"{whole}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
        value = f"{date}T{clock}"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return math.floor(moment.timestamp())


def _field(data: Mapping[str, Any], name: str, kind: Any, endpoint: str) -> Any:
    value = data.get(name)
    if value is None:
        raise ServerError(endpoint, f"the answer has no {name}")
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise ServerError(endpoint, f"the answer's {name} is not of the expected type")
    return value


def _status(response: requests.Response) -> str:
    reason = response.reason or ""
    return f"HTTP {response.status_code} {reason}".strip()


def _not_a_catalog(catalog: str, endpoint: str, problem: str) -> NotACatalogError:
    return NotACatalogError(endpoint, f"{problem}; {catalog} is probably not a Quilt catalog URL")


def _network_problem(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            "TLS failed (the server's certificate is not trusted, or it does not speak TLS); "
            "for a private CA set REQUESTS_CA_BUNDLE"
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused the connection (check HTTPS_PROXY)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "could not connect in time"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "NameResolution" in text or "Name or service not known" in text:
            return "the host name does not resolve"
        if "Connection refused" in text:
            return "connection refused"
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return "the server closed the connection without answering"
        return "could not connect"
    return f"request failed ({type(exc).__name__})"
