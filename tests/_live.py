"""Helpers for the live-run tests: tiny targets on loopback, scenario files, and faulty reference networks.

Every server here binds 127.0.0.1 on a free port and is stopped by the test that started it.
"""
from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import httpx
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from conformance import signing, usecases
from conformance.network import MountableNetwork, Network
from conformance.network.bpp import ReferenceBPP
from conformance.network.participant import now_rfc3339
from conformance.signing import KeyPair
from conformance.transport import BackgroundServer, bind

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "scenarios" / "demand-flexibility"
ACK = {"message": {"ack": {"status": "ACK"}}}


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port for the duration of the block; yields its base URL."""
    server = BackgroundServer(bind("127.0.0.1", 0), name="test target")
    server.start(app)
    try:
        yield server.url
    finally:
        server.stop()


def closed_port_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago and is closed again)."""
    return f"http://127.0.0.1:{free_port()}"


def write(directory: Path, name: str, text: str) -> Path:
    """Write a file (a scenario, a fixture) under `directory`, dedented; returns its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


ONE_SEARCH = """
    name: one search
    steps:
      - {name: discover, send: search}
"""


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class TinyBPP:
    """A hand-made target: counts what it receives, answers each action as told.

    `replies` maps an action to what to do: "ack" (ACK and call back with `callbacks[action]`), "ack-only"
    (ACK, never call back), "nack:<code>", "nack-then-callback" (NACK, and call back all the same), "text" (a
    502 HTML page), "slow" (ACK after `slow_for` seconds, or as soon as `release` is set, so that stopping the
    server need not wait), "401" (a signature it cannot verify). Callbacks are signed with `key` when given.
    """

    replies: dict[str, str] = field(default_factory=dict)
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    slow_for: float = 1.0
    received: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    key: KeyPair | None = None
    gateway_key: KeyPair | None = None
    """When given, callbacks also carry an X-Gateway-Authorization signed with it (as if a gateway relayed them)."""
    bodies: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    """action -> what to POST as its callback instead of JSON, given the callback's context: bytes, or an async
    iterator of bytes (a body sent in chunks, or one that never ends)."""
    delay: float = 0.0
    """Seconds between the ACK and the callback."""
    ack_after: float = 0.0
    """Seconds before any synchronous answer (a slow ACK)."""
    statuses: list[int | str] = field(default_factory=list)
    """The harness's HTTP status for each callback sent (or why none came)."""
    repeat_after: float | None = None
    """When given, each callback is sent again, the same bytes and headers, this many seconds after the first."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{action}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        action = request.path_params["action"]
        doc = orjson.loads(await request.body())
        self.received.append(doc)
        what = self.replies.get(action, "ack-only")
        if self.ack_after:
            await asyncio.sleep(self.ack_after)
        if what == "text":
            return PlainTextResponse("<html><body>502 Bad Gateway</body></html>", status_code=502)
        if what == "401":
            return JSONResponse({"message": {"ack": {"status": "NACK"}},
                                 "error": {"code": "30000", "message": "SIG_KEY_UNKNOWN: no such key here"}},
                                status_code=401, headers={"WWW-Authenticate": 'Signature realm="tiny"'})
        if what == "slow":
            until = time.monotonic() + self.slow_for
            while time.monotonic() < until and not self.release.is_set():
                await asyncio.sleep(0.02)
            return JSONResponse(ACK)
        if what.startswith("nack:"):
            return JSONResponse({"message": {"ack": {"status": "NACK"}},
                                 "error": {"code": what[5:], "message": "refused by the test target"}},
                                status_code=400)
        if what == "ack":
            return JSONResponse(ACK, background=BackgroundTask(self.call_back, action, doc))
        if what == "nack-then-callback":
            return JSONResponse({"message": {"ack": {"status": "NACK"}}, "error": {"code": "30000", "message": "no"}},
                                status_code=400, background=BackgroundTask(self.call_back, action, doc))
        return JSONResponse(ACK)

    async def call_back(self, action: str, request: dict[str, Any]) -> None:
        context = {**request["context"], "action": f"on_{action}",
                   "bpp_id": self.key.subscriber_id if self.key else "tiny.bpp.test",
                   "bpp_uri": "http://127.0.0.1:9/tiny", "timestamp": now_rfc3339()}
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = orjson.dumps({"context": context, **self.callbacks.get(action, {"message": {}})})
        content = self.bodies[action](context) if action in self.bodies else raw
        headers = {"Content-Type": "application/json"}
        if self.key is not None and isinstance(content, bytes):
            headers["Authorization"] = signing.sign(content, self.key)
        if self.gateway_key is not None and isinstance(content, bytes):
            headers["X-Gateway-Authorization"] = signing.sign(content, self.gateway_key)
        for wait in [0.0] if self.repeat_after is None else [0.0, self.repeat_after]:
            await asyncio.sleep(wait)
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                    answer = await client.post(f"{context['bap_uri']}/on_{action}", content=content, headers=headers)
                self.statuses.append(answer.status_code)
            except httpx.HTTPError as exc:  # a hostile sender's own trouble: noted, never raised in the server
                self.statuses.append(type(exc).__name__)


class Crashing:
    """A target at the socket level: answers its first `answers` POSTs (with a NACK, or with what `upstream`, a
    real BPP, answers them), then reads the next one and closes the connection without a response; with `die`,
    it also stops listening (a process that crashed), else it carries on answering (one dropped request)."""

    def __init__(self, answers: int, *, die: bool = True, upstream: str | None = None) -> None:
        self.answers, self.die, self.upstream = answers, die, upstream
        self.seen = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True, name="crashing target")

    def __enter__(self) -> "Crashing":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed: the target is gone
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                self.seen += 1
                if self.seen <= self.answers:
                    conn.sendall(self._answer(lines[0].split(" ")[1], headers, rest))
                    continue
                if self.die:
                    # The request that brought it down: first nobody listens any more, then the connection closes
                    # without a word, so that a client which sees the drop finds the port closed already.
                    self.sock.close()
            if self.die:
                return

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if self.upstream is None:
            status, content = 400, orjson.dumps({"message": {"ack": {"status": "NACK"}},
                                                 "error": {"code": "30000", "message": "refused by the test target"}})
        else:
            kept = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
            answer = httpx.post(f"{self.upstream}{path}", content=body, headers=kept, trust_env=False)
            status, content = answer.status_code, answer.content
        return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n"
                f"Content-Length: {len(content)}\r\n\r\n").encode() + content


def signed_search(net: Network, key: KeyPair, bpp: str, *, gateway_key: KeyPair | None = None) -> httpx.Response:
    """A search from `key`'s subscriber (its bap_id), signed with that key (and with `gateway_key` as a relaying
    gateway's), straight to one of the network's BPPs: what a subscriber the registry may or may not know sends."""
    body: dict[str, Any] = orjson.loads((ROOT / "fixtures/demand-flexibility/conformant-transaction/01-search.json")
                                        .read_bytes())
    body["context"].update({"bap_id": key.subscriber_id, "bap_uri": closed_port_url(),
                            "transaction_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4()),
                            "timestamp": now_rfc3339()})
    raw = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "Authorization": signing.sign(raw, key)}
    if gateway_key is not None:
        headers["X-Gateway-Authorization"] = signing.sign(raw, gateway_key)
    return httpx.post(f"{net.bpps[bpp].url}/search", content=raw, headers=headers, timeout=5)


def bpps_of(net: MountableNetwork, use_case: str = usecases.DEFAULT) -> list[ReferenceBPP]:
    """The network's BPPs that serve a use case's catalogs: those its gateway reaches with a search of the use case's
    domain (the reference network serves every shipped use case at once)."""
    names = {path.stem for path in usecases.named(use_case).catalogs}
    return [bpp for name, bpp in net.bpps.items() if name in names]


def free_port() -> int:
    """A loopback port free a moment ago: for a test that must name the port before the server starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Trickling:
    """A target at the socket level that answers every POST with an ACK, one byte every `every` seconds: its
    headers (`part="headers"`) or, after whole headers, its body (`part="body"`). Per-read timeouts never fire on
    it; only a deadline for the whole reply does."""

    def __init__(self, part: str, every: float = 0.5) -> None:
        self.part, self.every = part, every
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="trickling target")

    def __enter__(self) -> "Trickling":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        body = orjson.dumps(ACK)
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn, head, body), daemon=True).start()

    def _answer(self, conn: socket.socket, head: bytes, body: bytes) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.part == "body":
                    conn.sendall(head)
                for byte in head if self.part == "headers" else body:
                    if self.stop.wait(self.every):
                        return
                    conn.sendall(bytes([byte]))
                if self.part == "headers":
                    conn.sendall(body)
            except OSError:
                return
