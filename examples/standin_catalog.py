"""A stand-in Quilt catalog and registry, served over real HTTP on 127.0.0.1.

It speaks the protocol quilt-credproc relies on, with faults that can be switched on per
endpoint, so the tests, the demo and the benchmark can drive the real client against it.

The catalog and the registry listen on separate ports, as they do in a real deployment:

    catalog   GET  /config.json                 {"registryUrl": "<registry>/", "region": ...}
              GET  /code                        HTML page with a fresh code (= refresh token)
    registry  GET  /login                       302 to <catalog>/code
              POST /api/token                   form refresh_token=... -> rotated tokens
              GET  /api/auth/get_credentials    Bearer access token -> AWS session credentials
              /_standin/...                     control API, for when it runs as a process

Run it as a process with `python examples/standin_catalog.py --help`. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import ssl
import string
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Callable, ClassVar, cast
from urllib.parse import parse_qs, urlsplit

ENDPOINTS = ("config", "token", "credentials")
FAULTS = (
    "html500",
    "html502",
    "badjson",
    "missing",
    "wrongtype",
    "401",
    "403",
    "hang",
    "drop",
    "lost",
    "partial",
    "trickle",
    "notcatalog",
    "httpregistry",
    "html200",
)
# "hang" waits before doing anything; "lost" does the work (a token is rotated, credentials are
# minted) and then never answers, like a server whose reply is lost on the way back. "partial"
# rotates the token but answers with only the new refresh token and a wrong access token.
# "trickle" sends the right answer one byte every TRICKLE_SECONDS.
# "slow:<seconds>" and "trickle:<seconds a byte>" are accepted too; they are parsed, not listed.
EXPIRATION_FORMATS = ("+00:00", "Z", "+02:00", "fractional")
STAT_KEYS = (
    "config_requests",
    "code_requests",
    "login_requests",
    "token_requests",
    "credentials_requests",
    "reused_refresh_tokens",
    "rejected_refresh_tokens",
    "rejected_access_tokens",
)
# A hung request must end on its own even if nobody calls stop(), so that a forgotten
# stand-in cannot keep a client waiting for ever.
HANG_LIMIT_SECONDS = 120.0
MAX_BODY_BYTES = 64 * 1024
TRICKLE_SECONDS = 0.2
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"

# Answers for the "missing" and "wrongtype" faults: well-formed JSON that a careful client
# must still refuse.
_MISSING_FIELDS: dict[str, dict[str, Any]] = {
    "config": {"region": "us-east-1"},
    "token": {"access_token": "at-incomplete"},
    "credentials": {"AccessKeyId": "ASIAINCOMPLETE00000"},
}
_WRONG_TYPES: dict[str, dict[str, Any]] = {
    "config": {"registryUrl": 42, "region": ["us-east-1"]},
    "token": {"refresh_token": 12345, "access_token": ["at"], "expires_at": "soon"},
    "credentials": {
        "AccessKeyId": 1234,
        "SecretAccessKey": ["secret"],
        "SessionToken": {"token": "x"},
        "Expiration": 1780000000,
    },
}
_ERROR_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
_FOREIGN_PAGE = "<!doctype html><html><head><title>Welcome</title></head><body>Hello</body></html>"
_CODE_PAGE = (
    "<!doctype html><html><head><title>Quilt: your code</title></head><body>"
    "<p>Paste this code into the tool that asked for it:</p>"
    '<pre id="code">{code}</pre></body></html>'
)


def _canned_answer(endpoint: str, fault: str) -> tuple[int, str, bytes]:
    """The status, content type and body a fault answers with instead of the real reply."""
    if fault in ("missing", "wrongtype"):
        table = _MISSING_FIELDS if fault == "missing" else _WRONG_TYPES
        return 200, _JSON, json.dumps(table[endpoint]).encode()
    if fault in ("html500", "html502"):
        return int(fault[4:]), _HTML, _ERROR_PAGE.format(status=fault[4:]).encode()
    if fault in ("401", "403"):
        return int(fault), _JSON, json.dumps({"message": f"Fault injected: {fault}"}).encode()
    if fault == "notcatalog":
        return 200, _JSON, json.dumps({"name": "not a Quilt catalog", "version": 3}).encode()
    if fault == "httpregistry":
        config = {"registryUrl": "http://registry.example.com/", "region": "us-east-1"}
        return 200, _JSON, json.dumps(config).encode()
    if fault == "html200":
        return 200, _HTML, _FOREIGN_PAGE.encode()
    return 200, _JSON, b'{"registryUrl": <not json'  # badjson


def _random_key_id() -> str:
    return "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def _format_expiration(moment: datetime, style: str) -> str:
    if style == "Z":
        return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if style == "+02:00":
        return moment.replace(microsecond=0).astimezone(timezone(timedelta(hours=2))).isoformat()
    if style == "fractional":
        return moment.isoformat(timespec="microseconds")
    return moment.replace(microsecond=0).isoformat()


def _check_fault(endpoint: str, fault: str | None, times: int | None) -> None:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive integer or None, not {times!r}")
    if fault is None or fault in FAULTS:
        if fault in ("notcatalog", "httpregistry") and endpoint != "config":
            raise ValueError(f"the {fault} fault only applies to the config endpoint")
        return
    kind, _, value = fault.partition(":")
    if kind in ("slow", "trickle"):
        try:
            delay = float(value)
        except ValueError:
            delay = -1.0
        if delay >= 0:
            return
    raise ValueError(
        f"unknown fault {fault!r}; expected one of {FAULTS}, slow:<seconds> or trickle:<seconds>"
    )


class StandinCatalog:
    """A catalog and a registry sharing one token state, each on its own loopback port."""

    def __init__(
        self,
        *,
        access_token_ttl: int = 3600,
        credentials_ttl: int = 3600,
        region: str = "us-east-1",
        expiration_format: str = "+00:00",
        port: int = 0,
        registry_port: int = 0,
        verbose: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.region = region
        self.tls = tls
        self.verbose = verbose
        self._ports = (port, registry_port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._access_token_ttl = access_token_ttl
        self._credentials_ttl = credentials_ttl
        self._expiration_format = "+00:00"
        self._live_refresh: set[str] = set()
        # Tokens spent by a rotation; presenting one again is the bug the tests hunt for.
        self._spent_refresh: set[str] = set()
        self._access_expiry: dict[str, float] = {}
        self._faults: dict[str, tuple[str, int | None]] = {}
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        # Every secret handed out, so that a test can look for any of them where none belongs.
        self._issued: list[str] = []
        self.configure(expiration_format=expiration_format)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> StandinCatalog:
        if self._servers:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        catalog = _Server(("127.0.0.1", self._ports[0]), _CatalogHandler, self)
        try:
            registry = _Server(("127.0.0.1", self._ports[1]), _RegistryHandler, self)
        except OSError:
            catalog.server_close()
            raise
        self._servers = [catalog, registry]
        # A restart after stop() comes back on the same ports, as a recovered server would.
        self._ports = (catalog.server_address[1], registry.server_address[1])
        for server in self._servers:
            if self.tls is not None:
                server.socket = self.tls.wrap_socket(server.socket, server_side=True)
            # A short poll keeps stop() fast; the cost is a few idle wake-ups a second.
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers; hung and slow requests are woken and end without an answer."""
        self._stopping.set()
        # Each shutdown() waits out one poll interval; waiting for both at once halves it.
        closers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for closer in closers:
            closer.start()
        for thread in closers + self._threads:
            thread.join()
        for server in self._servers:
            server.server_close()
        self._servers = []
        self._threads = []

    def __enter__(self) -> StandinCatalog:
        return self if self._servers else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def catalog_url(self) -> str:
        return self._url(0)

    @property
    def registry_url(self) -> str:
        return self._url(1)

    def _url(self, index: int) -> str:
        if not self._servers:
            raise RuntimeError("the stand-in is not running; call start() first")
        port = self._servers[index].server_address[1]
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{port}"

    # -- knobs for tests -------------------------------------------------------------------

    def configure(
        self,
        *,
        access_token_ttl: int | None = None,
        credentials_ttl: int | None = None,
        expiration_format: str | None = None,
    ) -> None:
        """Change lifetimes or the Expiration style; applies to tokens issued from now on."""
        if expiration_format is not None and expiration_format not in EXPIRATION_FORMATS:
            raise ValueError(
                f"unknown expiration_format {expiration_format!r}; "
                f"expected one of {EXPIRATION_FORMATS}"
            )
        with self._lock:
            if access_token_ttl is not None:
                self._access_token_ttl = int(access_token_ttl)
            if credentials_ttl is not None:
                self._credentials_ttl = int(credentials_ttl)
            if expiration_format is not None:
                self._expiration_format = expiration_format

    def issue_code(self) -> str:
        """Mint a valid refresh token, as a visit to the catalog's /code page does."""
        code = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._live_refresh.add(code)
            self._issued.append(code)
        return code

    def issued_secrets(self) -> list[str]:
        """Every code, refresh token, access token, secret key and session token handed out."""
        with self._lock:
            return list(self._issued)

    def revoke_all(self) -> None:
        """Make every refresh token invalid, as a logout elsewhere would.

        Access tokens already issued keep working until they expire; call
        expire_access_tokens() too to force the client through a new login at once.
        """
        with self._lock:
            self._live_refresh.clear()

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access_expiry = dict.fromkeys(self._access_expiry, 0.0)

    def set_fault(self, endpoint: str, fault: str | None, *, times: int | None = None) -> None:
        """Make `endpoint` misbehave for the next `times` requests (None: until cleared)."""
        _check_fault(endpoint, fault, times)
        with self._lock:
            if fault is None:
                self._faults.pop(endpoint, None)
            else:
                self._faults[endpoint] = (fault, times)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = dict.fromkeys(STAT_KEYS, 0)

    # -- what the handlers call ------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    def _take_fault(self, endpoint: str) -> str | None:
        with self._lock:
            entry = self._faults.get(endpoint)
            if entry is None:
                return None
            fault, remaining = entry
            if remaining is not None:
                if remaining <= 1:
                    del self._faults[endpoint]
                else:
                    self._faults[endpoint] = (fault, remaining - 1)
            return fault

    def _rotate(self, refresh_token: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if refresh_token in self._spent_refresh:
                self._stats["reused_refresh_tokens"] += 1
                return 401, {"message": "Refresh token has already been used"}
            if refresh_token not in self._live_refresh:
                self._stats["rejected_refresh_tokens"] += 1
                return 401, {"message": "Invalid refresh token"}
            self._live_refresh.remove(refresh_token)
            self._spent_refresh.add(refresh_token)
            new_refresh = "rt-" + secrets.token_urlsafe(24)
            access = "at-" + secrets.token_urlsafe(24)
            expires_at = int(time.time()) + self._access_token_ttl
            self._live_refresh.add(new_refresh)
            self._access_expiry[access] = float(expires_at)
            self._issued += [new_refresh, access]
        return 200, {"refresh_token": new_refresh, "access_token": access, "expires_at": expires_at}

    def _credentials(self, access_token: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            expiry = self._access_expiry.get(access_token)
            if expiry is None or expiry <= time.time():
                self._stats["rejected_access_tokens"] += 1
                return 401, {"message": "Invalid or expired access token"}
            ttl = self._credentials_ttl
            style = self._expiration_format
        expiration = datetime.now(timezone.utc) + timedelta(seconds=ttl)
        secret_key, session_token = secrets.token_urlsafe(30), secrets.token_urlsafe(180)
        with self._lock:
            self._issued += [secret_key, session_token]
        return 200, {
            "AccessKeyId": _random_key_id(),
            "SecretAccessKey": secret_key,
            "SessionToken": session_token,
            "Expiration": _format_expiration(expiration, style),
        }

    def _config(self) -> dict[str, Any]:
        # Real catalogs send many more keys; a few extra ones keep clients honest about
        # ignoring what they do not need.
        return {
            "registryUrl": self.registry_url + "/",
            "region": self.region,
            "mode": "PRODUCT",
            "alwaysRequiresAuth": True,
            "s3Proxy": self.registry_url + "/s3-proxy",
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of 100 client processes must queue, not be refused.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        standin: StandinCatalog,
    ) -> None:
        super().__init__(address, handler)
        self.standin = standin

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-answer are part of the tests, not news.
        if self.standin.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no keep-alive bookkeeping is needed.
    protocol_version = "HTTP/1.0"
    server_version = "StandinQuilt/1"
    # Set per request by the "lost", "partial" and "trickle" faults.
    _lose_answer = False
    _partial_answer = False
    _trickle_seconds = 0.0
    routes: ClassVar[dict[tuple[str, str], Callable[[Any], None]]] = {}

    @property
    def standin(self) -> StandinCatalog:
        return cast(_Server, self.server).standin

    def log_message(self, format: str, *args: Any) -> None:
        if self.standin.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        route = self.routes.get((method, path))
        if route is None:
            self._send_json(404, {"message": f"no route for {method} {path}"})
            return
        route(self)

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(min(max(length, 0), MAX_BODY_BYTES))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        if self._lose_answer:
            self.standin._stopping.wait(HANG_LIMIT_SECONDS)
            return
        if self._trickle_seconds:
            head = (
                f"HTTP/1.0 {status} {self.responses[status][0]}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            for byte in head.encode() + body:
                if self.standin._stopping.wait(self._trickle_seconds):
                    return
                self.wfile.write(bytes([byte]))
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, _JSON, json.dumps(payload).encode())

    def _send_html(self, status: int, page: str) -> None:
        self._send(status, _HTML, page.encode())

    def _fault_answered(self, endpoint: str) -> bool:
        """Apply the pending fault for `endpoint`; True if it took the place of the answer."""
        fault = self.standin._take_fault(endpoint)
        if fault is None:
            return False
        if fault == "lost":
            self._lose_answer = True
            return False
        if fault == "partial":
            self._partial_answer = True
            return False
        if fault.partition(":")[0] == "trickle":
            self._trickle_seconds = float(fault.partition(":")[2] or TRICKLE_SECONDS)
            return False
        if fault.startswith("slow:"):
            delay = float(fault[len("slow:") :])
            self.standin._stopping.wait(min(delay, HANG_LIMIT_SECONDS))
            return self.standin._stopping.is_set()
        if fault == "hang":
            self.standin._stopping.wait(HANG_LIMIT_SECONDS)
        elif fault != "drop":
            self._send(*_canned_answer(endpoint, fault))
        # "drop" and a finished "hang" write nothing: the server closes the socket.
        return True


class _CatalogHandler(_Handler):
    def _config_json(self) -> None:
        self.standin._count("config_requests")
        if not self._fault_answered("config"):
            self._send_json(200, self.standin._config())

    def _code_page(self) -> None:
        self.standin._count("code_requests")
        self._send_html(200, _CODE_PAGE.format(code=self.standin.issue_code()))

    def _index(self) -> None:
        self._send_html(200, "<!doctype html><html><body>Stand-in Quilt catalog</body></html>")

    routes: ClassVar[dict[tuple[str, str], Callable[[Any], None]]] = {
        ("GET", "/"): _index,
        ("GET", "/config.json"): _config_json,
        ("GET", "/code"): _code_page,
    }


class _RegistryHandler(_Handler):
    def _login(self) -> None:
        self.standin._count("login_requests")
        self.send_response(302)
        self.send_header("Location", self.standin.catalog_url + "/code")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self) -> None:
        self.standin._count("token_requests")
        # Read the body first so that a "drop" closes a connection the client finished
        # writing to, as a crashed server would.
        body = self._read_body()
        if self._fault_answered("token"):
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            self._send_json(400, {"message": "expected a form-encoded body"})
            return
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        refresh_token = fields.get("refresh_token", [""])[0]
        if not refresh_token:
            self._send_json(400, {"message": "missing refresh_token"})
            return
        status, answer = self.standin._rotate(refresh_token)
        if self._partial_answer and status == 200:
            answer = {"refresh_token": answer["refresh_token"], "access_token": 12345}
        self._send_json(status, answer)

    def _get_credentials(self) -> None:
        self.standin._count("credentials_requests")
        if self._fault_answered("credentials"):
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._send_json(401, {"message": "missing bearer token"})
            return
        self._send_json(*self.standin._credentials(token.strip()))

    def _control(self) -> None:
        action = urlsplit(self.path).path[len("/_standin/") :]
        try:
            args = json.loads(self._read_body() or b"{}")
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
            self._send_json(200, _control_action(self.standin, action, args))
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"message": str(exc)})

    routes: ClassVar[dict[tuple[str, str], Callable[[Any], None]]] = {
        ("GET", "/login"): _login,
        ("POST", "/api/token"): _token,
        ("GET", "/api/auth/get_credentials"): _get_credentials,
        ("POST", "/_standin/code"): _control,
        ("GET", "/_standin/stats"): _control,
        ("POST", "/_standin/reset_stats"): _control,
        ("POST", "/_standin/fault"): _control,
        ("POST", "/_standin/revoke"): _control,
        ("POST", "/_standin/expire_access_tokens"): _control,
        ("POST", "/_standin/configure"): _control,
    }


def _control_action(standin: StandinCatalog, action: str, args: dict[str, Any]) -> Any:
    if action == "code":
        return {"code": standin.issue_code()}
    if action == "stats":
        return standin.stats()
    if action == "fault":
        standin.set_fault(str(args.get("endpoint")), args.get("fault"), times=args.get("times"))
    elif action == "configure":
        standin.configure(**args)
    elif action == "reset_stats":
        standin.reset_stats()
    elif action == "revoke":
        standin.revoke_all()
    elif action == "expire_access_tokens":
        standin.expire_access_tokens()
    return {"ok": True}


# -- running as a process ------------------------------------------------------------------


class _StopRequested(Exception):
    """Raised from the signal handler so the main thread's sleep ends at once."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve a stand-in Quilt catalog and registry.")
    parser.add_argument("--port", type=int, default=0, help="catalog port (default: any free)")
    parser.add_argument("--registry-port", type=int, default=0, help="(default: any free)")
    parser.add_argument("--state-file", type=Path, help="also write the URLs here as JSON")
    parser.add_argument(
        "--lifetime", type=float, default=900.0, help="exit after this many seconds (900)"
    )
    parser.add_argument("--access-token-ttl", type=int, default=3600)
    parser.add_argument("--credentials-ttl", type=int, default=3600)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--expiration-format", choices=EXPIRATION_FORMATS, default="+00:00")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def _write_state(path: Path, line: str) -> None:
    # Readers poll for this file, so it must never be seen half written.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(line + "\n", encoding="utf-8")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    standin = StandinCatalog(
        access_token_ttl=args.access_token_ttl,
        credentials_ttl=args.credentials_ttl,
        region=args.region,
        expiration_format=args.expiration_format,
        port=args.port,
        registry_port=args.registry_port,
        verbose=args.verbose,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    standin.start()
    try:
        line = json.dumps(
            {"catalog_url": standin.catalog_url, "registry_url": standin.registry_url}
        )
        if args.state_file is not None:
            _write_state(args.state_file, line)
        print(line, flush=True)
        time.sleep(max(args.lifetime, 0.0))
    except _StopRequested:
        pass
    finally:
        # A second signal during shutdown must not abort the cleanup half-way.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
