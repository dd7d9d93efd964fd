"""transcript.jsonl: every Beckn message a run sent and received, in the JSON Lines form `validate` reads.

What a run saw can then be checked again, offline, by anyone: `deg-conformance validate transcript.jsonl` gives the
rule findings the run's own end-of-run check gave. Each line is a wrapped record: the capture time, the direction
(in: the target's, out: the harness's), the endpoint, the body (the raw text when it did not decode), the
synchronous reply and its latency, and the verdict of each signature header as the harness checked it on arrival.
Requests the harness asked a BAP's client endpoint for (role bpp triggers) are not Beckn messages: not here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import orjson

from conformance.findings import ABSENT
from conformance.messages import Message
from conformance.runner.results import RunResult

NAME = "transcript.jsonl"


def messages(run: RunResult) -> list[Message]:
    """Every Beckn message of the run, once each, in the order they crossed."""
    seen = {id(msg): msg for scenario in run.scenarios for msg in scenario.messages()}
    return sorted(seen.values(), key=lambda m: (m.received_at is None, m.received_at or 0))


def record(msg: Message, scenario: str | None = None) -> dict[str, Any]:
    body: Any = msg.body
    if msg.decode_error is not None:
        body = msg.raw.decode("utf-8", "replace") if msg.raw is not None else None
    out: dict[str, Any] = {"received_at": msg.received_at.isoformat() if msg.received_at else None,
                           "direction": msg.direction, "endpoint": msg.endpoint, "body": body}
    if msg.response is not ABSENT:
        out["response"] = msg.response
    if msg.latency is not None:
        out["latency"] = round(msg.latency, 6)
    if msg.signatures:
        out["signatures"] = [{"header": c.header, "reason": c.reason, "detail": c.detail} for c in msg.signatures]
    return out


def lines(run: RunResult) -> Iterator[bytes]:
    for msg in messages(run):
        yield orjson.dumps(record(msg)) + b"\n"


def write(run: RunResult, directory: Path) -> Path:
    path = directory / NAME
    with path.open("wb") as out:
        out.writelines(lines(run))
    return path
