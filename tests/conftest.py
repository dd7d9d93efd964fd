"""Shared test helpers: where the reference material lives, and a cached engine (schemas compile once)."""
from __future__ import annotations

import copy
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


class _Delete:
    def __repr__(self) -> str:  # a stable test id, the same in every xdist worker
        return "deleted"


DELETE = _Delete()
"""In a change: remove the key."""


def changed(doc: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of a JSON document with the value at path replaced (DELETE: removed); path () replaces it all."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc
