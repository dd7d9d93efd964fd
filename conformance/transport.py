"""HTTP plumbing shared by everything that listens or sends: a uvicorn server on a background thread, and
a signed POST that measures its reply.

A server binds its socket first, so its URL is known (and connections queue) before uvicorn runs.
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.requests import ClientDisconnect, Request

from conformance.errors import ConfigError
from conformance.messages import MAX_MESSAGE_BYTES, decode_json, dig


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


def uvicorn_server(app: Any) -> uvicorn.Server:
    """How the harness's servers serve an ASGI app: quietly, with its lifespan, SHUTDOWN_GRACE and KEEP_ALIVE."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                         timeout_graceful_shutdown=SHUTDOWN_GRACE, timeout_keep_alive=KEEP_ALIVE))


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
        self._server = uvicorn_server(app)
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


LOOPBACK = ("all://127.0.0.1", "all://localhost", "all://[::1]")
"""Where the harness's own servers are (its listener, the reference network): never through a proxy."""


def client_options(ca_bundle: Path | None = None, *, sync: bool = False) -> dict[str, Any]:
    """How the harness's clients reach a target or a registry: through the proxy the environment names
    (HTTPS_PROXY, NO_PROXY), trusting the CAs it names (SSL_CERT_FILE) or `ca_bundle`, but straight to loopback,
    where a proxy from the environment is never right."""
    try:
        verify = _trusted(ca_bundle, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    except (OSError, ssl.SSLError) as exc:
        named = (f"--ca-bundle {ca_bundle}" if ca_bundle is not None else
                 f"SSL_CERT_FILE={os.environ.get('SSL_CERT_FILE')!r} / SSL_CERT_DIR={os.environ.get('SSL_CERT_DIR')!r}")
        raise ConfigError(f"{named}: not a readable bundle of PEM certificates ({exc})") from None
    direct = httpx.HTTPTransport if sync else httpx.AsyncHTTPTransport
    return {"trust_env": True, "verify": verify, "mounts": {pattern: direct(verify=verify) for pattern in LOOPBACK}}


@lru_cache(maxsize=8)
def _trusted(ca_bundle: Path | None, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """One TLS context per trust setting (the environment's, as httpx reads it, or `ca_bundle`), shared by every
    client: building one loads a whole CA bundle (tens of ms of CPU), and each client has four transports, so a
    run of probes spent most of its time here. The environment's values are the key, so that a change is seen."""
    if ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle))
    return httpx.create_ssl_context(verify=True, trust_env=True)


class Sender:
    """POSTs exact bytes and measures the reply, with one deadline for the whole of it.

    httpx's timeouts bound each read, not the reply: a target that trickles its headers or body a byte a second
    would hold a sync client for good. So the request runs on an event loop of the sender's own, under
    `asyncio.timeout`, which cancels it wherever it is. A reply body over MAX_MESSAGE_BYTES is not read past the
    limit. One Sender per thread (a scenario, a probe): its loop is not shared."""

    def __init__(self, timeout: float, ca_bundle: Path | None = None) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), **client_options(ca_bundle))

    def __enter__(self) -> "Sender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._client.aclose())
        finally:
            self._loop.close()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        """Never raises for what the far side does (refusing, trickling, hanging, answering garbage)."""
        return self._loop.run_until_complete(self._post(url, body, headers))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("POST", url, content=body,
                                               headers={"Content-Type": "application/json", **headers}) as response:
                    content = await _bounded(response)
        except (TimeoutError, httpx.TimeoutException) as exc:
            return Reply(None, None, None, f"timeout: no whole reply within {self.timeout:g}s ({type(exc).__name__})")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL (a bpp_uri from the target) is no HTTPError
            return Reply(None, None, None, f"unreachable: {type(exc).__name__}: {exc}")
        latency = time.perf_counter() - started
        decoded, error = decode_json(content)
        if error is not None:
            decoded = content.decode("utf-8", "replace")[:MAX_REPLY_SHOWN]
        return Reply(response.status_code, decoded, latency, challenge=response.headers.get("WWW-Authenticate"))


MAX_REPLY_SHOWN = 64 * 1024
"""Characters of a reply that is not JSON kept for the report (an HTML error page, say)."""


async def _bounded(response: httpx.Response) -> bytes:
    """The body, read no further than MAX_MESSAGE_BYTES (what is over is not a Beckn reply: decode_json says so)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            break
    return b"".join(chunks)


BODY_TIMEOUT = 10.0
"""Seconds a server of the harness or the reference network gives a sender to finish a request body."""


async def read_body(request: Request, timeout: float = BODY_TIMEOUT) -> tuple[bytes, str | None]:
    """A request's body, read within `timeout` and no further than MAX_MESSAGE_BYTES; with why it is not whole
    (unfinished in time, cut off by the sender, over the limit), so that what arrived is still kept and
    reported. The bytes stay on the request, as Starlette keeps a body it read itself, for whoever reads next."""
    chunks: list[bytes] = []
    size, problem = 0, None
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_MESSAGE_BYTES:
                    problem = f"over {MAX_MESSAGE_BYTES} bytes: not read beyond"
                    break
                chunks.append(chunk)
    except TimeoutError:
        problem = f"unfinished: the body did not end within {timeout:g} s ({size} bytes came)"
    except ClientDisconnect:
        problem = f"unfinished: the sender closed the connection before the body ended ({size} bytes came)"
    raw = b"".join(chunks)
    request._body = raw  # noqa: SLF001 - Starlette's own cache of a body read once
    return raw, problem


def encode(doc: Any) -> bytes:
    return orjson.dumps(doc)
