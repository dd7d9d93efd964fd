"""The reference network's kept-alive loopback connections (conformance.network.wire), against servers of the test's
own on 127.0.0.1 that answer as HTTP/1.1 servers may: with a length, chunked, to the close; keeping the connection,
closing it while idle, or breaking it."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import httpx
import pytest

from conformance.network.wire import LoopbackPool, loopback

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ACK = b'{"message":{"ack":{"status":"ACK"}}}'


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


def answering(answer: bytes, *, close_after: bool = False, seen: list[tuple[int, bytes]] | None = None) -> Handler:
    """A server that answers every request on a connection with `answer` (and closes it after the first one with
    `close_after`), noting (client port, request head) of each in `seen`."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, _ = await read_request(reader)
                if seen is not None:
                    seen.append((writer.get_extra_info("peername")[1], head))
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
    return handle


def post_twice(handler: Handler, headers: dict[str, str] | None = None,
               pause: float = 0.0) -> tuple[httpx.Response, httpx.Response]:
    async def go() -> tuple[httpx.Response, httpx.Response]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        address = loopback(f"http://127.0.0.1:{port}/bpp/x/on_search?a=1")
        assert address is not None
        pool = LoopbackPool()
        try:
            first = await pool.post(address, b'{"a":1}', headers or {})
            await asyncio.sleep(pause)
            return first, await pool.post(address, b'{"a":2}', headers or {})
        finally:
            await pool.aclose()
            server.close()
    return asyncio.run(go())


def with_length(body: bytes, *extra: bytes) -> bytes:
    headers = b"".join(e + b"\r\n" for e in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


def test_only_plain_http_urls_on_a_loopback_host_go_over_kept_connections() -> None:
    address = loopback("http://127.0.0.1:8080/bap/on_search?x=1")
    assert address is not None and (address.host, address.port, address.target, address.authority) == (
        "127.0.0.1", 8080, "/bap/on_search?x=1", "127.0.0.1:8080")
    assert loopback("http://localhost/x") is not None and loopback("http://[::1]:9/x") is not None
    for elsewhere in ("https://127.0.0.1/x", "http://example.com/x", "http://10.0.0.1/x", "http://u:p@127.0.0.1/x",
                      "http://127.0.0.1/caf\u00e9", "http://127.0.0.1/a b", "http://127.0.0.1:99999/x", "not a url"):
        assert loopback(elsewhere) is None, elsewhere


def test_a_connection_is_kept_and_used_again_and_the_request_is_what_was_asked() -> None:
    seen: list[tuple[int, bytes]] = []
    first, second = post_twice(answering(with_length(ACK, b"Content-Type: application/json"), seen=seen),
                               {"Authorization": "Signature keyId=\"a|b|ed25519\""})
    assert (first.status_code, first.content, first.headers["content-type"]) == (200, ACK, "application/json")
    assert second.json() == {"message": {"ack": {"status": "ACK"}}}
    assert len(seen) == 2 and seen[0][0] == seen[1][0]  # one connection, from one client port
    head = seen[0][1].decode()
    assert head.startswith("POST /bpp/x/on_search?a=1 HTTP/1.1\r\n")
    assert "Content-Length: 7\r\n" in head and 'Authorization: Signature keyId="a|b|ed25519"' in head


def test_an_answer_that_says_connection_close_is_not_used_again() -> None:
    seen: list[tuple[int, bytes]] = []
    post_twice(answering(with_length(ACK, b"Connection: close"), close_after=True, seen=seen))
    assert len(seen) == 2 and seen[0][0] != seen[1][0]


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_request_sent_once() -> None:
    """The server closes without saying so (as one does when its keep-alive time is up): the next request meets
    the closed connection before any answer and goes, once, on a fresh one."""
    seen: list[tuple[int, bytes]] = []
    first, second = post_twice(answering(with_length(ACK), close_after=True, seen=seen), pause=0.05)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(seen) == 2 and seen[0][0] != seen[1][0]


def test_chunked_and_read_to_close_answers_are_read_whole() -> None:
    chunked = (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;x=y\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nT: 1\r\n\r\n")
    first, second = post_twice(answering(chunked))
    assert (first.status_code, first.content, second.content) == (202, b'{"a": 1}', b'{"a": 1}')
    first, _ = post_twice(answering(b"HTTP/1.1 200 OK\r\n\r\nto the end", close_after=True))
    assert first.content == b"to the end"


def test_what_cannot_be_an_answer_is_a_protocol_error_not_a_hang() -> None:
    for broken in (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ntoo short",  # closed mid-body
                   b"SMTP ready\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                   b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n"):
        with pytest.raises(httpx.RemoteProtocolError):
            post_twice(answering(broken, close_after=True))


def test_a_closed_port_is_a_connect_error_and_a_header_with_a_line_break_is_never_sent() -> None:
    async def go(url: str, headers: dict[str, str]) -> None:
        address = loopback(url)
        assert address is not None
        await LoopbackPool().post(address, b"{}", headers)

    with pytest.raises(httpx.ConnectError):
        asyncio.run(go("http://127.0.0.1:1/x", {}))
    with pytest.raises(httpx.LocalProtocolError):
        asyncio.run(go("http://127.0.0.1:1/x", {"Authorization": "a\r\nX-Injected: 1"}))


def test_a_kept_connection_that_breaks_before_any_answer_byte_is_retried_once_on_a_fresh_one() -> None:
    """The race a kept-alive connection has: it looked open, the server closed it as the request went. The request
    goes again on a fresh connection; a fresh connection that breaks the same way is an error, not a loop."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername")[1])
        try:
            await read_request(reader)
            writer.write(with_length(ACK))
            await writer.drain()
            await read_request(reader)  # the second request on this connection: closed without a word
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    first, second = post_twice(handle)
    assert (first.status_code, second.status_code, len(connections)) == (200, 200, 2)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    with pytest.raises(httpx.RemoteProtocolError):
        post_twice(silent)


def test_answers_without_a_body_and_interim_answers_end_where_http_says_they_do() -> None:
    """A 204 has no body even without a Content-Length (reading to the close would wait for the deadline); an
    interim 100 Continue comes before the answer; an HTTP/1.0 answer keeps its connection only when it says so."""
    seen: list[tuple[int, bytes]] = []
    first, second = post_twice(answering(b"HTTP/1.1 204 No Content\r\n\r\n", seen=seen))
    assert (first.status_code, first.content, second.status_code) == (204, b"", 204)
    assert seen[0][0] == seen[1][0]
    first, _ = post_twice(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + with_length(ACK)))
    assert (first.status_code, first.content) == (200, ACK)
    for keep_alive, reused in ((b"Connection: keep-alive", True), (b"X-Other: 1", False)):
        seen = []
        post_twice(answering(with_length(ACK, keep_alive).replace(b"HTTP/1.1", b"HTTP/1.0", 1), seen=seen))
        assert (seen[0][0] == seen[1][0]) is reused
