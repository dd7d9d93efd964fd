"""Wall time of the shipped suite against the reference network, serially and concurrently, and the
harness's own cost per message.

One run measures, each suite against a reference network started for it:
- the role-bap suite's wall time with 1 scenario at a time and with N at a time (ratio N/serial), and the
  role-bpp suite's (the harness as BPP against the reference BAP) serially;
- the time the suite spends waiting in collection windows (`expect.count: all` steps wait their whole
  window by design): the floor no harness speed-up can go below;
- the harness's own work per message (rule engine over each transaction, signing each request,
  verifying each callback), as a ratio to a bare signed POST round trip to a reference BPP, the loopback
  floor measured in the same run.

    .venv/bin/python benchmarks/run_suite.py [--concurrency 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import httpx

from conformance import scenario, signing
from conformance.engine import Engine
from conformance.network import Network, NetworkConfig
from conformance.runner import Harness, RunConfig, RunResult

SCENARIOS = scenario.SCENARIOS
SEARCH = Path(__file__).resolve().parents[1] / "fixtures" / "demand-flexibility" / "conformant-transaction" / "01-search.json"


def suite_once(concurrency: int, role: str = "bap") -> tuple[float, RunResult]:
    scenarios = [s for s in map(scenario.load, scenario.discover([SCENARIOS])) if s.role == role]
    with Harness(RunConfig(role=role, concurrency=concurrency)) as harness:
        started = time.perf_counter()
        result = harness.run(scenarios)
        elapsed = time.perf_counter() - started
    return elapsed, result


def windows(result: RunResult) -> list[float]:
    """Per scenario, the seconds its `count: all` steps wait by design (their whole window)."""
    return [sum(step.expect.within.total_seconds() for step in s.scenario.steps
                if step.expect.count is None and step.expect.within is not None) for s in result.scenarios]


def harness_costs(result: RunResult, repeat: int = 200) -> dict[str, float]:
    """Microseconds per message of the harness's own work, replayed on the run's real messages."""
    engine = Engine()
    transcripts = [[m for step in s.steps for m in ([step.request] if step.request else []) + step.callbacks]
                   for s in result.scenarios]
    messages = sum(len(t) for t in transcripts)
    started = time.perf_counter()
    for _ in range(repeat):
        for t in transcripts:
            engine.check(t)
    check_us = (time.perf_counter() - started) / (repeat * messages) * 1e6
    key = signing.KeyPair.generate("bench.example.com", "k")
    body = SEARCH.read_bytes()
    started = time.perf_counter()
    for _ in range(repeat * 10):
        header = signing.sign(body, key)
    sign_us = (time.perf_counter() - started) / (repeat * 10) * 1e6
    started = time.perf_counter()
    for _ in range(repeat * 10):
        signing.verify(body, header, lambda s, k: key.public_key)
    verify_us = (time.perf_counter() - started) / (repeat * 10) * 1e6
    return {"rule engine": check_us, "sign": sign_us, "verify": verify_us}


def round_trip_us(repeat: int = 300) -> float:
    """A signed search POSTed straight to a reference BPP (ACK only): the loopback floor per message."""
    with Network(NetworkConfig(faults={"sf-grid-loadflex": frozenset({"no-callback", "no-signature-check"})})) as net:
        url = f"{net.bpps['sf-grid-loadflex'].url}/search"
        key = signing.KeyPair.generate("bench.example.com", "k")
        doc = json.loads(SEARCH.read_bytes())
        # A fresh message_id each: a reference BPP refuses a message_id it has seen in the transaction.
        bodies = [json.dumps({**doc, "context": {**doc["context"], "message_id": str(uuid.uuid4())}}).encode()
                  for _ in range(repeat + 1)]
        with httpx.Client(trust_env=False) as client:
            client.post(url, content=bodies[0])
            started = time.perf_counter()
            for body in bodies[1:]:
                client.post(url, content=body, headers={"Authorization": signing.sign(body, key),
                                                        "Content-Type": "application/json"})
            return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="suite runs per setting (median reported)")
    args = parser.parse_args()

    serial = [suite_once(1) for _ in range(args.repeat)]
    parallel = [suite_once(args.concurrency) for _ in range(args.repeat)]
    as_bpp = [suite_once(1, role="bpp") for _ in range(args.repeat)]
    for label, runs in (("serial", serial), (f"-n {args.concurrency}", parallel), ("role bpp", as_bpp)):
        failed = [s.scenario.id for _, r in runs for s in r.scenarios if s.status != "passed"]
        if failed:
            raise SystemExit(f"{label}: scenarios failed against the reference network: {failed}")
    serial_s = statistics.median(t for t, _ in serial)
    parallel_s = statistics.median(t for t, _ in parallel)
    result = serial[0][1]
    messages = sum(1 + len(step.callbacks) for s in result.scenarios for step in s.steps)
    waits = windows(result)
    print(f"shipped suite: {len(result.scenarios)} scenarios, {messages} messages per run, median of {args.repeat}")
    print(f"  serial             {serial_s:6.2f} s   (of which {sum(waits):.1f} s in collection windows)")
    print(f"  -n {args.concurrency:<15} {parallel_s:6.2f} s   ratio to serial {parallel_s / serial_s:.2f}")
    bpp_s = statistics.median(t for t, _ in as_bpp)
    print(f"role bpp suite: {len(as_bpp[0][1].scenarios)} scenarios against the reference BAP, serial "
          f"{bpp_s:.2f} s (ratio to the role bap serial suite {bpp_s / serial_s:.2f})")
    floor = round_trip_us()
    costs = harness_costs(result)
    print(f"per message (baseline: a signed POST round trip to a reference BPP, {floor:.0f} µs)")
    for name, us in costs.items():
        print(f"  {name:12} {us:8.0f} µs   ratio to round trip {us / floor:.2f}")
    own = sum(costs.values())
    print(f"  {'harness total':12} {own:8.0f} µs   ratio {own / floor:.2f}; "
          f"{own * messages / 1e6 / serial_s:.1%} of the serial wall time")


if __name__ == "__main__":
    main()
