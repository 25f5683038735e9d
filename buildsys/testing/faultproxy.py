"""A fault-injecting HTTP reverse proxy on 127.0.0.1, for testing registry clients.

Put it in front of a registry server started by the tests, point the client at
``proxy.address`` instead, and tell it which requests to break::

    with FaultProxy("127.0.0.1:5000") as proxy:
        proxy.fail("reset", times=2)                        # the next two requests: TCP reset
        proxy.fail("503", method="PUT", path="/manifests/")  # the next manifest PUT: 503
        ...
        assert proxy.injected == 3

Every other request is forwarded to the upstream unchanged (bodies streamed both ways), one
upstream connection per request. It only ever listens on and connects to loopback addresses.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 20
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rule:
    how: str  # "reset" (TCP RST, no answer), "503", "500", "429"
    times: int | None  # None: forever
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    retry_after: int = 0  # the Retry-After header of an error answer

    def matches(self, method: str, path: str) -> bool:
        return ((self.times is None or self.times > 0) and self.method in (None, method)
                and (self.path is None or re.search(self.path, path) is not None))


class FaultProxy:
    """Forwards HTTP/1.1 to ``upstream`` ("127.0.0.1:PORT"), breaking requests that match a rule."""

    def __init__(self, upstream: str):
        host = upstream.rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            raise ValueError(f"FaultProxy forwards to loopback addresses only, not {upstream}")
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, "forwarded" | how)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self._server is not None, "start the proxy first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def injected(self) -> int:
        return sum(1 for *_, outcome in self.log if outcome != "forwarded")

    def fail(self, how: str, times: int | None = 1, method: str | None = None, path: str | None = None,
             retry_after: int = 0) -> None:
        """Break the next ``times`` requests matching ``method`` and ``path`` (None: all of them);
        an error answer carries ``Retry-After: retry_after``."""
        if how not in ("reset", "503", "500", "429"):
            raise ValueError(f"unknown fault {how!r}")
        with self._lock:
            self.rules.append(Rule(how, times, method, path, retry_after))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _decide(self, method: str, path: str) -> tuple[str, int]:
        """(outcome, Retry-After) for one request."""
        with self._lock:
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            outcome = "forwarded"
            if rule is not None:
                if rule.times is not None:
                    rule.times -= 1
                outcome = rule.how
            self.log.append((method, path, outcome))
            return outcome, rule.retry_after if rule is not None else 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _handle(self) -> None:
        outcome, wait = self.owner._decide(self.command, self.path)
        if outcome == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        body = self._body()
        if outcome != "forwarded":
            for _ in body:  # read what the client sends before answering, as a server would
                pass
            self.send_response(int(outcome))
            self.send_header("Content-Length", "0")
            self.send_header("Retry-After", str(wait))
            self.end_headers()
            return
        self._forward(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return iter([self._read_chunked()])
        return self._read_exactly(length)

    def _read_exactly(self, length: int):
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            length -= len(chunk)
            yield chunk

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()

    def _forward(self, body) -> None:
        host, port = self.owner.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            payload = next(body) if chunked else body
            if chunked:
                headers["Content-Length"] = str(len(payload))
            upstream.request(self.command, self.path, body=payload, headers=headers,
                             encode_chunked=False)
            response = upstream.getresponse()
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response) -> None:
        length = response.getheader("Content-Length")
        data = None
        if length is None and self.command != "HEAD":
            data = response.read()  # chunked upstream answer: small JSON; send it with a length
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and not (data is not None and key.lower() == "content-length"):
                self.send_header(key, value)
        if data is not None:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if data is not None:
            self.wfile.write(data)
            return
        while chunk := response.read(CHUNK):
            self.wfile.write(chunk)
