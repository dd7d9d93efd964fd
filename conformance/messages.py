"""Beckn messages as the harness sees them: a body plus where and when it was captured.

A `Message` is deliberately forgiving: captured traffic may hold anything (broken JSON, a list, an
object with no context), and every such record must still reach the report as a finding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import isodate
import orjson

from conformance._types import JSONObject
from conformance.findings import ABSENT, Violation

REQUEST_ACTIONS: tuple[str, ...] = (
    "search", "select", "init", "confirm", "status", "track", "cancel", "update", "rating", "support",
)
CALLBACK_ACTIONS: tuple[str, ...] = tuple(f"on_{a}" for a in REQUEST_ACTIONS)
ACTIONS: frozenset[str] = frozenset(REQUEST_ACTIONS + CALLBACK_ACTIONS)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Records larger than this are reported, not decoded: no Beckn message comes close."""
MAX_DEPTH = 64
"""How deeply a message may nest. Beckn messages stay under 15 levels; far deeper JSON is reported, not decoded,
before anything recursive (schema validation, deepcopy, writing it back out) can hit a recursion limit."""
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
"""The decode error of a message over MAX_DEPTH (SCH_TOO_DEEP)."""

FLOW_ORDER: dict[str, int] = {a: i for i, a in enumerate(REQUEST_ACTIONS)}
"""Position of each request in the Beckn flow: breaks timestamp ties when ordering a transcript."""


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}


def decode_json(raw: bytes) -> tuple[Any, str | None]:
    """The JSON value of a body, or None and why not: the one way every message enters the harness (listener,
    replies, captures, the reference network), so that the same limits hold everywhere. A body over
    MAX_MESSAGE_BYTES is not decoded at all; one nested deeper than MAX_DEPTH is decoded (orjson does not
    recurse) and then refused, whole, as TOO_DEEP."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return None, f"over {MAX_MESSAGE_BYTES} bytes ({len(raw)})"
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # orjson stops at 1024 levels: that is too deep, not malformed
        return None, TOO_DEEP if str(exc).startswith("depth limit exceeded") else (str(exc) or "not JSON")
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return doc, None  # each level opens a container: this few cannot nest deeper (most messages, cheaply)
    level, todo = 0, [doc]
    while todo:
        level += 1
        if level > MAX_DEPTH:
            return None, TOO_DEEP
        todo = [v for node in todo if isinstance(node, (dict, list))
                for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, (dict, list))]
    return doc, None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, as schemas and findings speak of it."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def is_callback(action: str) -> bool:
    return action.startswith("on_")


def request_of(callback: str) -> str:
    """The request a callback answers: `on_search` answers `search`."""
    return callback[3:]


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime for an RFC 3339 date-time, else None (the format rule reports why).

    The regex enforces RFC 3339's shape (datetime.fromisoformat alone also takes `+0530` or no offset);
    fromisoformat then rejects impossible dates such as month 13.
    """
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


def format_timestamp(moment: datetime | None = None) -> str:
    """An aware datetime (default now) as Beckn writes timestamps: UTC, milliseconds, `Z` (what parse_timestamp
    reads back)."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def parse_duration(value: Any) -> timedelta | None:
    """A timedelta for an ISO 8601 duration such as `PT30S` or `P1D`, else None.

    isodate also takes `PT` (no element) and `-PT5S` (a sign ISO 8601 does not have); both are refused.
    Calendar units (years, months) are measured from a fixed day, which is close enough for a ttl.
    A network uses a handful of ttl values, hence the cache: isodate's parser is slow.
    """
    return _parse_duration(value) if isinstance(value, str) else None


@lru_cache(maxsize=256)
def _parse_duration(value: str) -> timedelta | None:
    if not value.startswith("P") or not any(c.isdigit() for c in value):
        return None
    try:
        parsed = isodate.parse_duration(value)
        # Years and months are added to a date: past year 9999 that is a ValueError (`P9999Y`), not a duration.
        return parsed.totimedelta(start=_EPOCH) if isinstance(parsed, isodate.Duration) else parsed
    except (isodate.ISO8601Error, ValueError, OverflowError):
        return None


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _UUID.match(value) is not None


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """How the receiver's verification of one signature header went. Only a live run has these: a capture
    keeps neither the exact bytes nor the registry's keys at the time."""

    header: str
    """`Authorization` or `X-Gateway-Authorization`."""
    reason: str | None
    """None when it verified; else the stable reason (SIG_MISSING, SIG_EXPIRED, ...), or UNCHECKABLE."""
    detail: str = ""


UNCHECKABLE = "UNCHECKABLE"
"""The reason of a signature check the registry could not be asked for: neither good nor bad. No rule fires on
it; the run reports it as a set-up problem."""


@dataclass(slots=True, eq=False)
class Message:
    """One captured record: the decoded body (or why it could not be decoded) and its capture metadata.

    The context fields every rule reads (action, ids, timestamp) are extracted once, when the record is
    made: rules read them tens of times per message. The body is treated as immutable from then on.
    """

    body: Any
    source: str
    index: int | None
    """Line (JSON Lines) or entry (HAR) number, 1-based; None for a file that holds one message."""
    seq: int = 0
    """Position in the whole input, the last tie-breaker when ordering."""
    received_at: datetime | None = None
    direction: str | None = None
    endpoint: str | None = None
    """The URL path the body was POSTed to, when the capture says (HAR, wrapped JSONL)."""
    response: Any = ABSENT
    """The synchronous reply (ACK/NACK body) when the capture has it."""
    latency: float | None = None
    """Seconds from sending a request to its synchronous reply (live runs)."""
    signatures: tuple[SignatureCheck, ...] = ()
    """The receiver's verification of each signature header (live runs)."""
    decode_error: str | None = None
    size: int = 0
    raw: bytes | None = None
    """The bytes as they crossed, kept when they did not decode (so a transcript can hold them)."""
    capture_issues: tuple[Violation, ...] = ()
    """What the capture's record says beside the message that the harness cannot use (a `received_at` that is no
    time, a HAR response that is a string), each with its path into the record: SCH_CAPTURE_FIELD. The message is
    checked without what the field would have told."""
    capture_error: Violation | None = None
    """Why the capture's record holds no message at all (a JSON Lines object of keys no capture format has, a HAR
    entry that is not an object), with its path into the record: SCH_CAPTURE_RECORD. The body is then None."""
    context: JSONObject = field(init=False)
    """The body's context object, or an empty one (CTX_MISSING reports that)."""
    message: JSONObject = field(init=False)
    """The body's `message` member, or an empty object: rules then report what is missing."""
    action: str | None = field(init=False)
    """context.action when it names a Beckn action, else None (the record is then not usable)."""
    transaction_id: str | None = field(init=False)
    message_id: str | None = field(init=False)
    timestamp: datetime | None = field(init=False)
    """context.timestamp parsed, when it is RFC 3339."""

    def __post_init__(self) -> None:
        body = self.body
        ctx = body.get("context") if isinstance(body, dict) else None
        self.context = ctx if isinstance(ctx, dict) else {}
        msg = body.get("message") if isinstance(body, dict) else None
        self.message = msg if isinstance(msg, dict) else {}
        action = self.context.get("action")
        self.action = action if isinstance(action, str) and action in ACTIONS else None
        self.transaction_id = _text(self.context.get("transaction_id"))
        self.message_id = _text(self.context.get("message_id"))
        self.timestamp = parse_timestamp(self.context.get("timestamp"))

    @property
    def usable(self) -> bool:
        """Whether the record is a Beckn message the rules can reason about (object, context, known action)."""
        return self.action is not None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def dig(obj: Any, *path: str | int) -> Any:
    """Follow keys and indexes into decoded JSON; None as soon as a step is missing or of the wrong kind."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        else:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(step)
    return obj


def objects(value: Any) -> list[tuple[int, JSONObject]]:
    """(index, object) for each object in a JSON array; anything else yields nothing (the schema rule says why)."""
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]
