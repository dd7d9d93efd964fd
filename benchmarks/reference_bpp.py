"""Reference network throughput on loopback: signed search -> cancel flows per second, against a baseline.

The reference network runs as `run` and `sandbox` run it, in a process of its own (NetworkProcess). The driver
plays a BAP as the harness does: its key is registered in the network's registry, it signs each request and
sends it straight to one reference BPP (search, init, confirm, status, support, cancel, each waiting for its
callback before the next), and its callback listener ACKs and verifies each callback's signature. The BPP
verifies every request's signature, validates it (schema, context, Layer 2), answers and signs its callback.

The baseline, measured in the same run and driven the same way (the same driver, requests and concurrency), is a
bare Starlette endpoint on the same uvicorn server in a process of its own, which ACKs each request and posts an
unsigned callback back: the HTTP round trips without any of the Beckn work. The figure to read is the ratio of the
two; rounds alternate between them and the medians are reported, for the machine is shared.

    .venv/bin/python benchmarks/reference_bpp.py [--flows 400] [--concurrency 32] [--rounds 3] [--smoke]

`--smoke` is a run of a few seconds that proves the benchmark works (tests/test_benchmarks.py), not a measure.
A flow that fails (a request not ACKed, a callback that does not come or is not signed right) stops the run with a
one-line error and exit code 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from conformance import signing
from conformance.network import NetworkConfig, NetworkProcess
from conformance.network.registry import Subscriber
from conformance.network.wire import LoopbackPool, loopback
from conformance.signing import KeyPair, SignatureError
from conformance.transport import bind, url_of

BPP = "sf-grid-loadflex"
ORDER = {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": "manual_optin_demand_flex"}],
         "fulfillments": [{"id": "manual_optin", "stops": [{"type": "END"}]}]}
ACK = b'{"message":{"ack":{"status":"ACK"}}}'
STEPS = ("search", "init", "confirm", "status", "support", "cancel")


class FlowFailed(Exception):
    """A flow could not go on: the figures would mean nothing."""


class Listener:
    """The driver's callback endpoint: a few lines of asyncio (HTTP/1.1, Content-Length bodies, keep-alive), so that
    the driver spends its time driving. Each callback is matched to the request it answers by message_id."""

    def __init__(self, keys: dict[str, str] | None) -> None:
        """`keys`: subscriber_id -> public key of whoever may call back, whose signature each callback must carry;
        None: callbacks are taken unsigned (the baseline's)."""
        self.keys = keys
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(": ", 1) for line in head[:-4].decode("latin-1").split("\r\n")[1:])
                body = await reader.readexactly(int(fields.get("Content-Length") or fields.get("content-length") or 0))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(ACK), ACK))
                self.take(body, fields.get("Authorization") or fields.get("authorization"))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):  # the driver is done
            writer.close()

    def take(self, body: bytes, authorization: str | None) -> None:
        doc = json.loads(body)
        waiter = self.waiting.pop(doc["context"]["message_id"], None)
        if waiter is None or waiter.done():
            return
        if self.keys is not None:
            try:
                signing.verify(body, authorization, lambda s, k: self.keys.get(s) if self.keys else None)
            except SignatureError as exc:
                waiter.set_exception(FlowFailed(f"a callback's signature does not hold: {exc.reason}"))
                return
        waiter.set_result(doc)


async def flow(pool: LoopbackPool, listener: Listener, key: KeyPair, bpp: tuple[str, str], callback_url: str) -> None:
    """One search -> cancel flow, each request waiting for its callback."""
    bpp_id, bpp_url = bpp
    context: dict[str, Any] = {"domain": "flexibility", "version": "1.1.0", "transaction_id": str(uuid.uuid4()),
                               "ttl": "PT30S", "bap_id": key.subscriber_id, "bap_uri": callback_url,
                               "bpp_id": bpp_id, "bpp_uri": bpp_url,
                               "location": {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}}
    order_id = None
    for action in STEPS:
        message: Any = {"search": {"intent": {"descriptor": {"name": "flex"}}}, "init": {"order": ORDER},
                                   "confirm": {"order": ORDER},
                                   "support": {"support": {"ref_id": order_id}}}.get(action, {"order_id": order_id})
        message_id = str(uuid.uuid4())
        body = json.dumps({"context": {**context, "action": action, "message_id": message_id,
                                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                           "message": message}).encode()
        waiter = listener.waiting[message_id] = asyncio.get_running_loop().create_future()
        address = loopback(f"{bpp_url}/{action}")
        assert address is not None
        response = await pool.post(address, body, {"Authorization": signing.sign(body, key)})
        if response.status_code != 200:
            raise FlowFailed(f"{action} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            async with asyncio.timeout(10):
                callback = await waiter
        except TimeoutError:
            raise FlowFailed(f"no on_{action} within 10 s") from None
        if action == "confirm":
            order_id = callback["message"]["order"]["id"]


def cpu_seconds(pid: int) -> float:
    """CPU time a process has taken so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def rounds(targets: dict[str, tuple[Listener, tuple[str, str]]], key: KeyPair,
                 sockets: dict[str, socket.socket], pids: dict[str, int], flows: int, concurrency: int,
                 count: int) -> dict[str, list[tuple[float, float]]]:
    """(flows per second, ms of the target process's CPU per flow) of each target, `count` rounds each,
    alternating."""
    pool = LoopbackPool()
    servers = {name: await asyncio.start_server(listener.serve, sock=sockets[name])
               for name, (listener, _) in targets.items()}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    try:
        for name, (listener, bpp) in targets.items():  # warm-up: connections, compiled schemas
            await flow(pool, listener, key, bpp, url_of(sockets[name]))
        for _ in range(count):
            for name, (listener, bpp) in targets.items():
                limit = asyncio.Semaphore(concurrency)

                async def one(play: Callable[[], Awaitable[None]]) -> None:
                    async with limit:
                        await play()

                started, cpu = time.perf_counter(), cpu_seconds(pids[name])
                await asyncio.gather(*(one(lambda: flow(pool, listener, key, bpp, url_of(sockets[name])))
                                       for _ in range(flows)))
                figures[name].append((flows / (time.perf_counter() - started),
                                      (cpu_seconds(pids[name]) - cpu) / flows * 1000))
    finally:
        await pool.aclose()
        for server in servers.values():
            server.close()
    return figures


def baseline_server() -> int:
    """The baseline's process: a bare Starlette endpoint that ACKs each request, then posts its callback."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    pool = LoopbackPool()

    async def call_back(doc: dict[str, Any]) -> None:
        context = {**doc["context"], "action": f"on_{doc['context']['action']}"}
        body = json.dumps({"context": context, "message": {"order": {"id": "order-1"}}}).encode()
        address = loopback(f"{context['bap_uri']}/{context['action']}")
        assert address is not None
        await pool.post(address, body, {})

    async def endpoint(request: Request) -> Response:
        doc = json.loads(await request.body())
        return Response(ACK, media_type="application/json", background=BackgroundTask(call_back, doc))

    sock = bind("127.0.0.1", 0)
    print(url_of(sock), flush=True)
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/{action}", endpoint, methods=["POST"])]),
                                           log_level="warning", access_log=False))

    async def serve() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        await asyncio.to_thread(sys.stdin.read)  # until the driver closes it
        server.should_exit = True
        await serving

    asyncio.run(serve())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--flows", type=int, help="flows per round and target (default 400; 20 with --smoke)")
    parser.add_argument("--concurrency", type=int, help="flows under way at once (default 32; 8 with --smoke)")
    parser.add_argument("--rounds", type=int, help="rounds per target, alternating (default 3; 1 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="a run of seconds: 20 flows, one round")
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        return baseline_server()
    flows = args.flows or (20 if args.smoke else 400)
    concurrency = args.concurrency or (8 if args.smoke else 32)
    count = args.rounds or (1 if args.smoke else 3)
    key = KeyPair.generate("bench-bap.example.com", "bench-key-1")
    sockets = {"network": bind("127.0.0.1", 0), "baseline": bind("127.0.0.1", 0)}
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline-server"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert baseline.stdout is not None
        baseline_url = baseline.stdout.readline().strip()
        with NetworkProcess(NetworkConfig()) as net:
            net.add_subscriber(Subscriber.for_key(key, url=url_of(sockets["network"]), type="BAP",
                                                  domain="flexibility"))
            endpoint = next(e for e in net.endpoints() if e.name == BPP)
            targets = {"network": (Listener({endpoint.subscriber_id: endpoint.public_key}),
                                   (endpoint.subscriber_id, endpoint.url)),
                       "baseline": (Listener(None), ("baseline.example.com", baseline_url))}
            assert net.pid is not None
            figures = asyncio.run(rounds(targets, key, sockets, {"network": net.pid, "baseline": baseline.pid},
                                         flows, concurrency, count))
    except FlowFailed as exc:
        print(f"reference_bpp: a flow failed, no figures: {exc}", file=sys.stderr)
        return 1
    finally:
        baseline.communicate(timeout=10)
    (network, network_cpu), (floor, floor_cpu) = (
        tuple(statistics.median(f[i] for f in figures[name]) for i in (0, 1)) for name in ("network", "baseline"))
    messages = flows * len(STEPS) * 2
    print(f"flows: {flows} full search->cancel flows, {messages} signed messages, concurrency {concurrency}, "
          f"{count} round(s) each, medians")
    print(f"network   {network:>9,.1f} flows/s  {network * len(STEPS) * 2:>9,.0f} messages/s  "
          f"{network_cpu:5.2f} ms of its CPU per flow")
    print(f"baseline  {floor:>9,.1f} flows/s  {floor * len(STEPS) * 2:>9,.0f} messages/s  "
          f"{floor_cpu:5.2f} ms of its CPU per flow (an ACK-only Starlette endpoint, unsigned callbacks)")
    print(f"ratio     {network / floor:.2f} of the baseline's flows/s; {network_cpu / floor_cpu:.2f} times its CPU "
          f"per flow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
