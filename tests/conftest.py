"""Shared test helpers: where the reference material lives, and a cached engine (schemas compile once)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance import Engine

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
EXAMPLES = REFERENCE / "deg" / "beckn-missions" / "DEG2.0" / "examples"
GUIDE = SHARED / "seeds" / "000_3a459897f506f47e.txt"
UPSTREAM_CORE = REFERENCE / "beckn-core-1.1.0" / "transaction.yaml"
FIXTURES = ROOT / "fixtures" / "demand-flexibility"

needs_shared = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/reference is not beside the checkout")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine()


def guide_blocks() -> list[dict]:
    """The JSON examples of the guide itself, in the order the guide gives them."""
    text = GUIDE.read_text(encoding="utf-8")
    return [json.loads(m.group(1)) for m in re.finditer(r"```\n(.*?)\n```", text, re.S)]


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parent_of(body: Any, path: str) -> tuple[Any, str | int]:
    """The object or list holding the value at `path` (a finding's path without `$.`, e.g.
    `message.order.items[0].id`), and the key or index of the value in it: where a test breaks a message."""
    *head, last = [int(index) if index else key for key, index in _STEP.findall(path)]
    for step in head:
        body = body[step]
    return body, last
