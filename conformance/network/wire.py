"""Long-lived HTTP/1.1 connections from the reference network to loopback addresses: its traffic with itself and
with the harness, which is nearly all of it.

Measured on the project's 2-core machine (a POST of a small message to a Starlette ACK endpoint in another
process, 8 at a time): httpx's AsyncClient costs about 1,200 us of CPU a request, a kept-alive connection written
and read directly about 80 us. httpx (with httpcore's pool) was 80% of the network's time, and a network that
spends its core on its HTTP client cannot keep up with a harness at `-n 64`. So a POST to a loopback address goes
over one of a few connections kept open per address; everything else (https, other hosts, which may need the
environment's proxy or CAs) still goes through the httpx client the network was given.

It speaks just what the reference network sends and what an HTTP/1.1 server may answer it with: a POST with a
Content-Length body, answered with a Content-Length, chunked or read-to-close body. A connection the server
closed while it was idle is found before the request is written, or by the request meeting a closed connection
before any byte of the answer: the request then goes once more on a fresh connection (the server never read it).
"""
from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from conformance.messages import MAX_MESSAGE_BYTES

IDLE_EXPIRY = 2.0
"""Seconds a connection may sit idle and still be used: well inside the 5 s after which common servers (uvicorn's
default) close an idle connection, so that a request never races the server closing it."""
HEAD_LIMIT = 64 * 1024
"""Bytes an answer's status line and headers may take."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where a loopback URL points: the connection's host and port, the request target and its Host header."""

    host: str
    port: int
    target: str
    authority: str


def loopback(url: str) -> Address | None:
    """The Address of a plain-http URL on a loopback host (127.0.0.0/8, ::1, localhost), or None for any other URL
    (those go through httpx)."""
    if not url.startswith("http://") or not url.isascii() or any(c in url for c in " \r\n\t"):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 80
    except ValueError:
        return None
    if host is None or parts.username is not None or parts.password is not None:
        return None
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Address(host, port, target, parts.netloc)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        return (not self.reader.at_eof() and not self.writer.is_closing()
                and time.monotonic() - self.idle_since < IDLE_EXPIRY)

    def close(self) -> None:
        self.writer.close()


class Stale(Exception):
    """A kept-alive connection turned out closed before any byte of the answer: the request was not read."""


class LoopbackPool:
    """Idle keep-alive connections by (host, port). How many are open to one address is bounded by whoever sends
    (the participants' Turns), not here: a send takes an idle connection or opens one, and gives it back after a
    whole answer."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._closed = False

    async def post(self, address: Address, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST `body` with `headers` (and Content-Type/Length, Host); the answer as an httpx.Response. Failures are
        httpx errors: ConnectError, RemoteProtocolError, LocalProtocolError (a header that cannot be sent)."""
        lines = [f"POST {address.target} HTTP/1.1", f"Host: {address.authority}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n"):
                raise httpx.LocalProtocolError(f"the header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        key = (address.host, address.port)
        connection = self._take(key)
        if connection is not None:
            try:
                return await self._exchange(key, connection, request)
            except Stale:
                pass  # the server had closed it: not read, so sent again below, once
        return await self._exchange(key, await self._open(address), request, fresh=True)

    async def aclose(self) -> None:
        """Close every idle connection; connections in use are closed when their send ends."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _open(self, address: Address) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(address.host, address.port, limit=HEAD_LIMIT)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {address.authority}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, key: tuple[str, int], connection: _Connection, request: bytes, *,
                        fresh: bool = False) -> httpx.Response:
        keep = False
        try:
            try:
                connection.writer.write(request)
                await connection.writer.drain()
                head = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial and not fresh:
                    raise Stale() from None
                raise httpx.RemoteProtocolError("the server closed the connection without a whole answer") from None
            except ConnectionError as exc:
                if not fresh:
                    raise Stale() from None
                raise httpx.RemoteProtocolError(f"the connection broke: {exc}") from None
            except asyncio.LimitOverrunError:
                raise httpx.RemoteProtocolError(f"an answer's headers over {HEAD_LIMIT} bytes") from None
            status, fields, persistent = _parse_head(head)
            while 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
                status, fields, persistent = _parse_head(await connection.reader.readuntil(b"\r\n\r\n"))
            if status in (204, 304):  # never a body
                content, keep = b"", persistent
            else:
                content, keep = await _read_body(connection.reader, fields, persistent)
            return httpx.Response(status, headers=fields, content=content)
        finally:
            if keep and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(key, []).append(connection)
            else:
                connection.close()


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]], bool]:
    """The status, the header fields, and whether the connection may carry another request (HTTP/1.1 unless it
    says `Connection: close`; HTTP/1.0 only when it says `Connection: keep-alive`)."""
    status_line, *rest = head[:-4].decode("latin-1").split("\r\n")
    version, _, tail = status_line.partition(" ")
    code = tail[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
    fields = []
    for line in rest:
        name, colon, value = line.partition(":")
        if not colon:
            raise httpx.RemoteProtocolError(f"not a header line: {line[:80]!r}")
        fields.append((name.strip(), value.strip()))
    connection = ",".join(value for name, value in fields if name.lower() == "connection").lower()
    persistent = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return int(code), fields, persistent


async def _read_body(reader: asyncio.StreamReader, fields: list[tuple[str, str]],
                     keep: bool) -> tuple[bytes, bool]:
    """The answer's body, and whether the connection may carry another request (`keep`, unless the body ends
    with the connection)."""
    named = {name.lower(): value for name, value in fields}
    try:
        if "chunked" in named.get("transfer-encoding", "").lower():
            return await _read_chunks(reader), keep
        if "content-length" in named:
            length = int(named["content-length"])
            if not 0 <= length <= MAX_MESSAGE_BYTES:
                raise httpx.RemoteProtocolError(f"an answer of {length} bytes")
            return await reader.readexactly(length), keep
        content = await reader.read(MAX_MESSAGE_BYTES + 1)  # neither: the body ends when the connection does
        while len(content) <= MAX_MESSAGE_BYTES and (more := await reader.read(MAX_MESSAGE_BYTES + 1 - len(content))):
            content += more
        if len(content) > MAX_MESSAGE_BYTES:
            raise httpx.RemoteProtocolError(f"an answer over {MAX_MESSAGE_BYTES} bytes")
        return content, False
    except asyncio.IncompleteReadError:
        raise httpx.RemoteProtocolError("the server closed the connection in the middle of an answer") from None
    except asyncio.LimitOverrunError:
        raise httpx.RemoteProtocolError(f"an answer's chunk header over {HEAD_LIMIT} bytes") from None
    except ValueError:
        raise httpx.RemoteProtocolError("an answer's Content-Length or chunk size is not a number") from None


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    content = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return bytes(content)
        if len(content) + size > MAX_MESSAGE_BYTES:
            raise httpx.RemoteProtocolError(f"an answer over {MAX_MESSAGE_BYTES} bytes")
        content += await reader.readexactly(size)
        await reader.readexactly(2)
