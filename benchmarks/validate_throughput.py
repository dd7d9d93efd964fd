"""Offline validation throughput: messages per second through every rule, on one core.

Generates a JSON Lines transcript of many demand-flexibility transactions (the conformant fixture with
fresh ids, every action, some with deliberate faults so findings are produced too), then measures in
the same run:
  - baseline: bare schema validation (jsonschema-rs `iter_errors` on each body, core schemas only);
  - full check: `deg-conformance validate` on the file, in-process: decoding, grouping, every rule;
and reports both rates and their ratio. The target is at least 20,000 messages/s for the full check.

    .venv/bin/python benchmarks/validate_throughput.py [--transactions 5000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from conformance import Engine, load_transcript

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "demand-flexibility" / "conformant-transaction"
TARGET = 20_000


def generate(path: Path, transactions: int) -> int:
    """Write `transactions` copies of the canonical flow with fresh ids; every tenth one is broken."""
    template = [json.loads(p.read_text()) for p in sorted(FIXTURE.glob("*.json"))]
    count = 0
    with path.open("wb") as out:
        for t in range(transactions):
            txn = str(uuid.uuid4())
            ids: dict[str, str] = {}
            for body in copy.deepcopy(template):
                ctx = body["context"]
                ctx["transaction_id"] = txn
                ctx["message_id"] = ids.setdefault(ctx["message_id"], str(uuid.uuid4()))
                if t % 10 == 0 and ctx["action"] == "on_init":
                    body["message"]["order"]["items"][0]["id"] = "not-in-catalog"
                out.write(orjson.dumps(body) + b"\n")
                count += 1
    return count


def best_rate(n: int, run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5000, help="transactions to generate (12 messages each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transcript.jsonl"
        n = generate(path, args.transactions)
        engine = Engine()
        bodies = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        validators = {a: engine.schemas.validator(a) for a in {b["context"]["action"] for b in bodies}}

        def schema_only() -> None:
            for body in bodies:
                for _ in validators[body["context"]["action"]].iter_errors(body):
                    pass

        findings = []

        def full_check() -> None:
            report = engine.check(load_transcript([path]))
            findings.append(len(report.findings))

        baseline = best_rate(n, schema_only, args.repeat)
        full = best_rate(n, full_check, args.repeat)

    print(f"transcript: {n} messages in {args.transactions} transactions, {findings[-1]} findings per run")
    print(f"baseline  bare schema validation (jsonschema-rs): {baseline:>10,.0f} messages/s")
    print(f"full      decode + group + every rule:            {full:>10,.0f} messages/s")
    print(f"ratio     full / baseline:                        {full / baseline:>10.2f}")
    print(f"target    {TARGET:,} messages/s: {'met' if full >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
