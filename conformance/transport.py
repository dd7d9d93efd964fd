"""HTTP plumbing shared by everything that listens or sends: a uvicorn server on a background thread, and
a signed POST that measures its reply.

A server binds its socket first, so its URL is known (and connections queue) before uvicorn runs.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn

from conformance.errors import ConfigError
from conformance.messages import dig


SHUTDOWN_GRACE = 2
"""Seconds a stopping server gives requests and background tasks (pending callbacks) before cancelling them."""
KEEP_ALIVE = 30
"""Seconds a server keeps an idle connection open: far beyond the 5 s after which httpx stops reusing one, so that
a client never sends on a connection the server is closing that moment (a ReadError for a request never read),
even when a busy event loop reads requests late."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: a free port); a ConfigError when that is impossible.

    Listening at once queues connections made before the server runs, instead of refusing them.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, a response's header and body writes meet the
        # peer's delayed ACK and every exchange costs 40 ms on loopback.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class BackgroundServer:
    """An ASGI app served by uvicorn on its own thread, on a socket bound beforehand (so its URL is known
    first). A stopped server cannot be started again."""

    def __init__(self, sock: socket.socket, *, name: str) -> None:
        self.sock = sock
        self.url = url_of(sock)
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.stopped = False

    def start(self, app: Any) -> None:
        """Serve `app`; returns once it accepts requests. Starting a running server does nothing."""
        if self.stopped:
            raise RuntimeError(f"this {self.name} has been stopped; make a new one")
        if self._server is not None:
            return
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                timeout_graceful_shutdown=SHUTDOWN_GRACE, timeout_keep_alive=KEEP_ALIVE)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, args=(self._server,), daemon=True,
                                        name=f"uvicorn {self.url}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.005)

    def _serve(self, server: uvicorn.Server) -> None:
        try:
            server.run(sockets=[self.sock])
        except SystemExit:  # uvicorn exits when the application's startup fails; start() reports it
            pass

    def stop(self) -> None:
        """Stop serving and release the port; what is still running gets SHUTDOWN_GRACE seconds."""
        self.stopped = True
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=SHUTDOWN_GRACE + 3)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=2)
        self.sock.close()


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from one POST: the status and decoded body, how long it took, or why nothing came."""

    status: int | None
    body: Any
    """Decoded JSON, or the text when it is not JSON, or None when there was no reply."""
    latency: float | None
    error: str | None = None
    """'unreachable: ...' or 'timeout: ...' when no reply came."""
    challenge: str | None = None
    """The WWW-Authenticate header of a 401: what BECKN-006 asks a refused signature to be answered with."""

    def describe(self) -> str:
        """The reply in one line, for a finding: status, ACK/NACK, error code, a 401's challenge; or why none came."""
        if self.error is not None:
            return self.error
        code = f", error {self.error_code}" if self.error_code else ""
        challenge = ", WWW-Authenticate" if self.challenge else ""
        return f"HTTP {self.status}, {self.ack or 'neither ACK nor NACK'}{code}{challenge}"

    @property
    def ack(self) -> str | None:
        """'ACK' or 'NACK' when the body says so, else None."""
        value = dig(self.body, "message", "ack", "status")
        return value if value in ("ACK", "NACK") else None

    @property
    def error_code(self) -> str | None:
        code = dig(self.body, "error", "code")
        return code if isinstance(code, str) else None


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> Reply:
    """POST exact bytes; never raises for what the far side does (refusing, hanging, answering garbage)."""
    started = time.perf_counter()
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.TimeoutException as exc:
        return Reply(None, None, None, f"timeout: no reply within {client.timeout.read}s ({type(exc).__name__})")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL (a bpp_uri from the target) is no HTTPError
        return Reply(None, None, None, f"unreachable: {type(exc).__name__}: {exc}")
    latency = time.perf_counter() - started
    try:
        decoded: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        decoded = response.text
    return Reply(response.status_code, decoded, latency, challenge=response.headers.get("WWW-Authenticate"))


def encode(doc: Any) -> bytes:
    return orjson.dumps(doc)
