"""Context rules: the envelope every Beckn message carries, field by field."""
from __future__ import annotations

from functools import lru_cache
from typing import Iterator
from urllib.parse import urlsplit

from conformance.findings import ABSENT, Severity, Violation
from conformance.messages import ACTIONS, Message, is_callback, is_uuid, parse_duration
from conformance.rules.registry import POSTED_TO, CheckContext, rule

CONTEXT = "Beckn core 1.1.0, Context"
VERSION = "1.1.0"
REQUIRED = ("domain", "action", "version", "bap_id", "bap_uri", "transaction_id", "message_id", "timestamp")
BPP_FIELDS = ("bpp_id", "bpp_uri")


@rule("CTX_MISSING", group="context", envelope=True,
      title="Every message has a context object", clause=f"{CONTEXT}: sent in every interaction",
      must="be an object")
def missing(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    if isinstance(msg.body, dict) and not isinstance(msg.body.get("context"), dict):
        yield Violation(("context",), "object", msg.body.get("context", ABSENT))


@rule("CTX_ACTION_UNKNOWN", group="context", envelope=True,
      title="context.action names a Beckn 1.1.0 action", clause=f"{CONTEXT}.action",
      must="name a Beckn 1.1.0 action")
def action_unknown(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    context = msg.body.get("context") if isinstance(msg.body, dict) else None
    if isinstance(context, dict) and msg.action is None:
        yield Violation(("context", "action"), sorted(ACTIONS), context.get("action", ABSENT))


def _blank(value: object) -> bool:
    return value is None or value is ABSENT or value == ""


@rule("CTX_REQUIRED", group="context",
      title="The context fields DEG relies on are present (bpp_id and bpp_uri on all but search)",
      clause="DEG implementation guide v1.0 examples; Beckn core 1.1.0 Context (addressing and ids)",
      must="be present and not empty")
def required(msg: Message, ctx: CheckContext) -> list[Violation]:
    context = msg.context
    return [Violation(("context", name), "a non-empty string", value)
            for name in (REQUIRED if msg.action == "search" else REQUIRED + BPP_FIELDS)
            if (value := context.get(name, ABSENT)) is ABSENT or value == ""]  # null, another type: SCH_TYPE says so


@rule("CTX_TIMESTAMP_FORMAT", group="context", title="context.timestamp is an RFC 3339 date-time",
      clause=f"{CONTEXT}.timestamp (format: date-time, RFC 3339 section 5.6)",
      must="be an RFC 3339 date-time with a time-zone offset, e.g. 2025-05-07T10:44:00Z",
      when=lambda msg, ctx: msg.timestamp is None)
def timestamp_format(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    value = msg.context.get("timestamp")
    if isinstance(value, str) and value:  # absent, empty or not a string: CTX_REQUIRED or SCH_TYPE say so
        yield Violation(("context", "timestamp"), "RFC 3339 date-time", value)


@rule("CTX_TTL_FORMAT", group="context", title="context.ttl, when present, is an ISO 8601 duration",
      clause=f"{CONTEXT}.ttl (ISO 8601 duration)", must="be an ISO 8601 duration, e.g. PT30S")
def ttl_format(msg: Message, ctx: CheckContext) -> list[Violation]:
    value = msg.context.get("ttl")
    if isinstance(value, str) and parse_duration(value) is None:  # not a string: SCH_TYPE says so
        return [Violation(("context", "ttl"), "ISO 8601 duration", value)]
    return []


@rule("CTX_ACTION_PATH_MISMATCH", group="context", title="context.action matches the endpoint it was sent to",
      clause=f"{CONTEXT}.action: the method being called at the receiver's endpoint",
      must="equal the last segment of the endpoint it was POSTed to",
      when=POSTED_TO)
def action_path(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    endpoint = (msg.endpoint or "").rstrip("/").rsplit("/", 1)[-1]
    if endpoint != msg.action:
        yield Violation(("context", "action"), endpoint, msg.action)


@rule("CTX_VERSION", group="context", title="context.version is the core version under test (1.1.0)",
      clause=f"{CONTEXT}.version; DEG networks run Beckn core {VERSION}", must=f"be {VERSION!r}")
def version(msg: Message, ctx: CheckContext) -> list[Violation]:
    value = msg.context.get("version", ABSENT)
    if not _blank(value) and value != VERSION:
        return [Violation(("context", "version"), VERSION, value)]
    return []


@rule("CTX_URI_FORMAT", group="context", title="bap_uri and bpp_uri are absolute http(s) URLs",
      clause=f"{CONTEXT}.bap_uri / bpp_uri (format: uri): where callbacks and requests are sent",
      must="be an absolute http or https URL")
def uri_format(msg: Message, ctx: CheckContext) -> list[Violation]:
    return [Violation(("context", name), "absolute http(s) URL", value) for name in ("bap_uri", "bpp_uri")
            if not _blank(value := msg.context.get(name, ABSENT)) and not (isinstance(value, str) and _is_http_url(value))]


@lru_cache(maxsize=1024)
def _is_http_url(value: str) -> bool:
    """Cached: a network has few participants, so the same URIs come back in every message."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _originates_transaction(msg: Message, ctx: CheckContext) -> bool:
    return ctx.txn.first is None


@rule("CTX_ID_NOT_UUID", group="context", severity=Severity.WARNING,
      title="Ids the sender creates are UUIDs: message_id on each request, transaction_id where it starts",
      clause=f"{CONTEXT}.transaction_id / message_id (format: uuid)", must="be a UUID",
      actions=[a for a in ACTIONS if not is_callback(a)])
def id_not_uuid(msg: Message, ctx: CheckContext) -> list[Violation]:
    context = msg.context
    names = ("transaction_id", "message_id") if _originates_transaction(msg, ctx) else ("message_id",)
    return [Violation(("context", name), "UUID (RFC 4122)", value) for name in names
            if not _blank(value := context.get(name, ABSENT)) and not is_uuid(value)]
