"""Reference BPP throughput on loopback: full signed search -> cancel flows per second.

Starts the reference network, then runs flows straight at one BPP (no gateway), each request signed by
the harness as the BAP and each callback verified by the reference BAP: search, init, confirm, status,
support, cancel, waiting for every callback before the next step. In the same run it measures the
per-message cost of signing and of verifying an on_search-sized body, the baseline the network's
throughput is compared against. The driver and the network share one Python process (and its GIL), so
the figure is a floor for what a BPP on its own process sustains. The requests are sent in the reference BAP's
name, so it adopts each transaction (it refuses callbacks for transactions it did not start).

    .venv/bin/python benchmarks/reference_bpp.py [--flows 200] [--concurrency 8] [--smoke]

`--smoke` is a run of a few seconds that proves the benchmark works (tests/test_benchmarks.py), not a measure.
A flow that fails (a request not ACKed, a callback that does not come) stops the run with a one-line error and
exit code 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from conformance import signing
from conformance.network import Network, NetworkConfig

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "demand-flexibility" / "conformant-transaction"
ORDER = {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": "manual_optin_demand_flex"}],
         "fulfillments": [{"id": "manual_optin", "stops": [{"type": "END"}]}]}


def crypto_costs(repeat: int = 2000) -> tuple[float, float]:
    """Microseconds to sign and to verify one on_search body."""
    body = (FIXTURE / "02-on_search.json").read_bytes()
    key = signing.KeyPair.generate("bench.example.com", "k")
    started = time.perf_counter()
    for _ in range(repeat):
        header = signing.sign(body, key)
    sign_us = (time.perf_counter() - started) / repeat * 1e6
    started = time.perf_counter()
    for _ in range(repeat):
        signing.verify(body, header, lambda s, k: key.public_key)
    return sign_us, (time.perf_counter() - started) / repeat * 1e6


class FlowFailed(Exception):
    """A flow could not go on: the figures would mean nothing."""


async def flow(client: httpx.AsyncClient, net: Network, callbacks: Callbacks, bpp_name: str) -> int:
    bpp = net.bpps[bpp_name]
    txn = str(uuid.uuid4())
    net.bap.adopt(txn)
    context: dict[str, Any] = {"domain": "flexibility", "version": "1.1.0", "transaction_id": txn, "ttl": "PT30S",
                               "bap_id": net.bap.key.subscriber_id, "bap_uri": net.bap_url,
                               "bpp_id": bpp.key.subscriber_id, "bpp_uri": bpp.url,
                               "location": {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}}
    order_id = None
    steps: list[tuple[str, dict[str, Any]]] = [("search", {"intent": {"descriptor": {"name": "flex"}}}),
                                               ("init", {"order": ORDER}), ("confirm", {"order": ORDER})]
    sent = 0
    for action, message in steps + [("status", {}), ("support", {}), ("cancel", {})]:
        if action in ("status", "cancel"):
            message = {"order_id": order_id}
        elif action == "support":
            message = {"support": {"ref_id": order_id}}
        msg_id = str(uuid.uuid4())
        body = json.dumps({"context": {**context, "action": action, "message_id": msg_id,
                                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                           "message": message}).encode()
        response = await client.post(f"{bpp.url}/{action}", content=body, headers={
            "Content-Type": "application/json", "Authorization": signing.sign(body, net.bap.key)})
        if response.status_code != 200:
            raise FlowFailed(f"{action} answered HTTP {response.status_code}: {response.text[:200]}")
        callback = await callbacks.wait_for(msg_id)
        if action == "confirm":
            order_id = callback["message"]["order"]["id"]
        sent += 2
    return sent


class Callbacks:
    """The reference BAP's inbox indexed by message_id, read incrementally: scanning the whole inbox on every
    poll made the driver's own cost grow with the run and starve the network it measures."""

    def __init__(self, net: Network) -> None:
        self.inbox = net.bap.inbox
        self.seen = 0
        self.by_id: dict[str, dict[str, Any]] = {}

    async def wait_for(self, message_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.inbox[self.seen:]:
                self.by_id[entry["body"]["context"]["message_id"]] = entry["body"]
            self.seen = len(self.inbox)
            if message_id in self.by_id:
                return self.by_id.pop(message_id)
            await asyncio.sleep(0.001)
        raise FlowFailed(f"no callback for message {message_id} within {timeout:g} s")


async def run(net: Network, flows: int, concurrency: int) -> tuple[float, int]:
    limit = asyncio.Semaphore(concurrency)
    callbacks = Callbacks(net)

    async def one(client: httpx.AsyncClient) -> int:
        async with limit:
            return await flow(client, net, callbacks, "sf-grid-loadflex")

    async with httpx.AsyncClient(timeout=10) as client:
        await one(client)  # warm-up: connections, compiled schemas
        started = time.perf_counter()
        counts = await asyncio.gather(*(one(client) for _ in range(flows)))
        return time.perf_counter() - started, sum(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, help="flows to run (default 200; 20 with --smoke)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="a run of seconds: 20 flows, fewer crypto repeats")
    args = parser.parse_args()
    args.flows = args.flows or (20 if args.smoke else 200)
    sign_us, verify_us = crypto_costs(200 if args.smoke else 2000)
    try:
        with Network(NetworkConfig()) as net:
            elapsed, messages = asyncio.run(run(net, args.flows, args.concurrency))
    except FlowFailed as exc:
        print(f"reference_bpp: a flow failed, no figures: {exc}", file=sys.stderr)
        return 1
    per_message_us = elapsed / messages * 1e6
    print(f"flows: {args.flows} full search->cancel flows, {messages} signed messages, concurrency {args.concurrency}")
    print(f"network   {args.flows / elapsed:>9,.1f} flows/s  {messages / elapsed:>9,.0f} messages/s  "
          f"({per_message_us:,.0f} us per message)")
    print(f"baseline  sign {sign_us:,.0f} us + verify {verify_us:,.0f} us per message")
    print(f"ratio     signing and verifying are {(sign_us + verify_us) / per_message_us:.1%} of a message's cost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
