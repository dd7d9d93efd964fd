"""Every rule of the catalogue fires on a clean transaction broken in one place, and stays silent otherwise.

Project standard: "A check that cannot fail is a defect. Every rule has a test where it fires and one where it
does not." The clean transaction is the guide's own (fixtures/demand-flexibility/guide-transaction) with its
known problems repaired (docs/guide-positions.md); `test_clean_transaction_has_no_findings` proves it clean.

- FIRING: one case per break. Each names the finding it must produce (rule, severity, message, JSON path,
  expected, found) and every other finding the same break causes, so a rule that fires too often fails too.
- SILENT: every catalogue rule on the clean transaction, bare (a folder of JSON files) and as a capture with
  arrival times, endpoints and ACKs (so the rules gated on those run too); plus NEAR_MISSES, inputs on which a
  naive rule would misfire.
- `test_every_rule_has_a_firing_case` fails when the catalogue gains a rule no firing case covers.

Cases marked `defect=` are strict xfails: how the rule should behave, where it does not (yet).
"""
from __future__ import annotations

import copy
import json
import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from conformance import Engine, Finding, Layer2, Message, SchemaSet, Severity, signing
from conformance.findings import ABSENT, Violation
from conformance.messages import ACTIONS, MAX_MESSAGE_BYTES, SignatureCheck, is_callback
from conformance.rules.signature import REASONS
from tests.conftest import FIXTURES, parent_of

GUIDE = FIXTURES / "guide-transaction"
E, W = Severity.ERROR, Severity.WARNING

# Positions of the twelve messages in the transaction (the guide's file order).
(SEARCH, ON_SEARCH, INIT, ON_INIT, CONFIRM, ON_CONFIRM,
 STATUS, ON_STATUS, SUPPORT, ON_SUPPORT, CANCEL, ON_CANCEL) = range(12)
APPENDED = 12
"""Position of a record a case appends after the twelve."""

ORDER_ID = "order-flex-001"
OTHER_UUID = "9b2f6c1e-7d4a-4e8b-a1c3-5f0e2d9c8b7a"
ACK = {"message": {"ack": {"status": "ACK"}}}
GPS_PATTERN = SchemaSet.builtin().root["$defs"]["Gps"]["pattern"]
FLEX_STATES = ["APPLICATION_SUBMITTED", "APPLICATION_PROCESSING", "APPLICATION_SUCCESSFUL", "APPLICATION_FAILED",
               "APPLICATION_CANCELLED"]


# --------------------------------------------------------------------------------------------------------------
# The clean transaction
# --------------------------------------------------------------------------------------------------------------

def _uuid(guide_id: str) -> str:
    """A UUID that keeps the guide's number visible: incentive-msg-2005 -> 00000000-0000-4000-8000-000000002005."""
    return f"00000000-0000-4000-8000-{int(guide_id.rsplit('-', 1)[1]):012d}"


def _repair(body: dict, path: str, was: Any, now: Any) -> None:
    """Replace one of the guide's documented problems, checking it is still there (else the fixture changed)."""
    parent, key = parent_of(body, path)
    assert parent[key] == was, f"{body['context']['action']} {path}: the guide has {parent[key]!r}, not {was!r}"
    parent[key] = now


def guide_bodies() -> list[dict]:
    """The guide's twelve messages, freshly read (each test mutates its own copy)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(GUIDE.glob("*.json"))]


def clean_bodies() -> list[dict]:
    """The guide's transaction with every problem docs/guide-positions.md reports repaired."""
    bodies = guide_bodies()
    assert [b["context"]["action"] for b in bodies] == [
        "search", "on_search", "init", "on_init", "confirm", "on_confirm",
        "status", "on_status", "support", "on_support", "cancel", "on_cancel"]
    for body in bodies:
        context = body["context"]
        context["transaction_id"] = _uuid(context["transaction_id"])           # guide-positions #4: ids are UUIDs
        context["message_id"] = _uuid(context["message_id"])
        for ful in body["message"].get("order", {}).get("fulfillments", []):  # guide-positions #6: stop type END
            _repair(ful, "stops[0].type", "end", "END")
    _repair(bodies[ON_SEARCH], "context.message_id",                          # guide-positions #3: echo search's id
            _uuid("incentive-msg-2001"), bodies[SEARCH]["context"]["message_id"])
    _repair(bodies[INIT], "context.domain", "deg:flexibility", "flexibility")  # guide-positions #1
    _repair(bodies[INIT], "context.location.city.code", "628", "NANP:628")    # guide-positions #2
    tags = "message.catalog.providers[{}].fulfillments[0].tags[0].list[0].value"
    _repair(bodies[ON_SEARCH], tags.format(0), "Manual via App Notification", "MANUAL_OPTIN")  # guide-positions #8
    _repair(bodies[ON_SEARCH], tags.format(1), "Automated via Device API", "AUTO_OPTIN")
    assert bodies[SUPPORT]["message"] == {"ref_id": ORDER_ID}                 # guide-positions #7: support.ref_id
    bodies[SUPPORT]["message"] = {"support": {"ref_id": ORDER_ID}}
    return bodies


TXN_ID = _uuid("incentive-txn-1001")
SEARCH_ID, STATUS_ID, CONFIRM_ID = _uuid("incentive-msg-2000"), _uuid("incentive-msg-2005"), _uuid("incentive-msg-2004")


def as_messages(bodies: Sequence[Any]) -> list[Message]:
    """Records as the engine gets them, numbered by position (the finding's `index` says which one broke)."""
    return [Message(body, source="test", index=i, seq=i) for i, body in enumerate(bodies)]


def captured(messages: list[Message]) -> None:
    """Add what a capture knows: arrival, the endpoint it was POSTed to, and the ACK it got.

    A request arrives 100 ms after its timestamp, its callback 500 ms after the request (well within the
    default ttl; the guide's on_search is timestamped a minute after its search, which has no ttl).
    """
    arrival: dict[str | None, datetime] = {}
    for msg in messages:
        assert msg.action is not None and msg.timestamp is not None
        if is_callback(msg.action):
            msg.received_at = arrival[msg.message_id] + timedelta(milliseconds=500)
        else:
            msg.received_at = arrival[msg.message_id] = msg.timestamp + timedelta(milliseconds=100)
        msg.endpoint = f"/{'bap' if is_callback(msg.action) else 'bpp'}/{msg.action}"
        msg.response = copy.deepcopy(ACK)


# --------------------------------------------------------------------------------------------------------------
# Breaks: edits of the bodies, and of what the capture recorded
# --------------------------------------------------------------------------------------------------------------

Edit = Callable[[list], None]
"""Changes the list of bodies (before they become Messages)."""
Capture = Callable[[list], None]
"""Changes the list of Messages (capture metadata, or a record replaced by an undecodable one)."""


def put(at: int, path: str, value: Any) -> Edit:
    def edit(bodies: list) -> None:
        parent, key = parent_of(bodies[at], path)
        parent[key] = copy.deepcopy(value)
    return edit


def drop(at: int, path: str) -> Edit:
    def edit(bodies: list) -> None:
        parent, key = parent_of(bodies[at], path)
        del parent[key]
    return edit


def put_all(path: str, value: Any, only: Callable[[str], bool] = lambda action: True) -> Edit:
    def edit(bodies: list) -> None:
        for i, body in enumerate(bodies):
            if only(body["context"]["action"]):
                put(i, path, value)(bodies)
    return edit


def remove(at: int) -> Edit:
    return lambda bodies: bodies.pop(at)


def append_copy(of: int, *changes: tuple[str, Any]) -> Edit:
    """Append a copy of a message (a retry, or a second BPP's answer), with some fields changed."""
    def edit(bodies: list) -> None:
        body = copy.deepcopy(bodies[of])
        for path, value in changes:
            parent, key = parent_of(body, path)
            parent[key] = value
        bodies.append(body)
    return edit


def record(at: int, body: Any = None, **fields: Any) -> Capture:
    """Replace a captured record, e.g. by one that did not decode."""
    def change(messages: list) -> None:
        messages[at] = Message(body, source="test", index=at, seq=at, **fields)
    return change


def endpoint(at: int, path: str) -> Capture:
    def change(messages: list) -> None:
        messages[at].endpoint = path
    return change


def response(at: int, body: Any) -> Capture:
    def change(messages: list) -> None:
        messages[at].response = copy.deepcopy(body)
    return change


def noted(at: int, *issues: Violation) -> Capture:
    """What the capture's record said beside the message that could not be used (a received_at that is no time)."""
    def change(messages: list) -> None:
        messages[at].capture_issues = issues
    return change


def signed(at: int, *checks: SignatureCheck) -> Capture:
    """What the live receiver recorded when it verified the message's signature headers."""
    def change(messages: list) -> None:
        messages[at].signatures = checks
    return change


def answered_after(at: int, seconds: float) -> Capture:
    """The synchronous ACK/NACK took this long (a live run measures it)."""
    def change(messages: list) -> None:
        messages[at].latency = seconds
    return change


T0 = datetime(2025, 5, 7, 10, 50, tzinfo=timezone.utc)


def arrived(seconds_after_t0: dict[int, float]) -> Capture:
    """Arrival times by position, e.g. arrived({STATUS: 0, ON_STATUS: 31}); the others stay unknown."""
    def change(messages: list) -> None:
        for at, seconds in seconds_after_t0.items():
            messages[at].received_at = T0 + timedelta(seconds=seconds)
    return change


def in_capture_order(messages: list) -> None:
    """Every record arrives one second after the previous one, in list order."""
    for msg in messages:
        msg.received_at = T0 + timedelta(seconds=msg.seq)


def overlay_engine(tmp_path: Path) -> Engine:
    """A network's own Layer-2 file whose constraint has no x-rule: its violations are L2_CONSTRAINT."""
    path = tmp_path / "flexibility_1.1.0.yaml"
    path.write_text(textwrap.dedent("""\
        info: {version: 1.1.0}
        x-conformance: {domains: [flexibility]}
        components: {schemas: {Descriptor: {properties: {name: {maxLength: 40}}}}}
    """), encoding="utf-8")
    return Engine(layer2=Layer2(SchemaSet.builtin(), file=path))


def no_packs_engine(tmp_path: Path) -> Engine:
    return Engine(layer2=Layer2(SchemaSet.builtin(), builtin=False))


def breaking(*edits: Edit, capture: Sequence[Capture] = (), engine: Engine) -> tuple[list[Message], list[Finding]]:
    """The clean transaction with the edits applied, and what the engine finds in it."""
    bodies = clean_bodies()
    for edit in edits:
        edit(bodies)
    messages = as_messages(bodies)
    for change in capture:
        change(messages)
    return messages, engine.check(messages).findings


# --------------------------------------------------------------------------------------------------------------
# FIRING: one break, its finding, and every other finding it causes
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    rule: str
    severity: Severity
    at: int
    """Position of the message the finding is attached to."""
    path: str
    expected: Any
    found: Any
    mentions: str | None = None
    """Text the finding's sentence (must) or expected value must contain, where the rule tailors it."""


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[Edit, ...]
    expect: Expect
    also: tuple[tuple[str, int, str], ...] = ()
    """(rule, position, path) of every other finding the break causes."""
    capture: tuple[Capture, ...] = ()
    engine: Callable[[Path], Engine] | None = None
    defect: str | None = None
    """Set when the rule does not behave as the case says: a strict xfail, for the code owner."""


def _several(one_or_more: Edit | Sequence[Edit]) -> tuple[Edit, ...]:
    return (one_or_more,) if callable(one_or_more) else tuple(one_or_more)


def case(name: str, edits: Edit | Sequence[Edit], expect: Expect, *, also: Sequence[tuple[str, int, str]] = (),
         capture: Capture | Sequence[Capture] = (), engine: Callable[[Path], Engine] | None = None,
         defect: str | None = None) -> Case:
    return Case(name, _several(edits), expect, tuple(also), _several(capture), engine, defect)


PROVIDER0 = "message.catalog.providers[0]"
STATE = "message.order.fulfillments[0].state.descriptor.code"
STOP = "message.order.fulfillments[0].stops[0].type"
CALLBACKS = tuple(i for i in range(12) if i % 2 == 1)
EVERY_CALLBACK = [("TXN_DOMAIN_CHANGED", i, "$.context.domain") for i in CALLBACKS]

STATUS_AFTER_CANCEL_ID = "00000000-0000-4000-8000-000000002010"
STATUS_AFTER_CANCEL = (
    append_copy(STATUS, ("context.message_id", STATUS_AFTER_CANCEL_ID), ("context.timestamp", "2025-05-07T10:56:00Z")),
    append_copy(ON_STATUS, ("context.message_id", STATUS_AFTER_CANCEL_ID), ("context.timestamp", "2025-05-07T10:56:00Z")))
"""A second status, after the cancellation, answered as the first was (the order still running)."""

FIRING: list[Case] = [
    # ---- schema -------------------------------------------------------------------------------------------
    case("on_status nested 70 levels deep", [],
         Expect("SCH_TOO_DEEP", E, ON_STATUS, "$", "<= 64 levels", "nested deeper than 64 levels"),
         capture=record(ON_STATUS, None, decode_error="nested deeper than 64 levels", size=500)),
    case("on_cancel record over the size limit", [],
         Expect("SCH_TOO_LARGE", E, ON_CANCEL, "$", f"<= {MAX_MESSAGE_BYTES} bytes", f"{MAX_MESSAGE_BYTES + 1} bytes"),
         capture=record(ON_CANCEL, None, size=MAX_MESSAGE_BYTES + 1)),
    case("on_cancel record is not JSON", [],
         Expect("SCH_NOT_JSON", E, ON_CANCEL, "$", "a JSON document", "unexpected character: line 1 column 1"),
         capture=record(ON_CANCEL, None, decode_error="unexpected character: line 1 column 1", size=10)),
    case("on_cancel record is JSON null", [],
         Expect("SCH_NOT_OBJECT", E, ON_CANCEL, "$", "object", "null"),
         capture=record(ON_CANCEL, None, size=4)),
    case("on_cancel record is a JSON array", [],
         Expect("SCH_NOT_OBJECT", E, ON_CANCEL, "$", "object", "array"),
         capture=record(ON_CANCEL, [], size=2)),
    case("status without message.order_id", drop(STATUS, "message.order_id"),
         Expect("SCH_REQUIRED", E, STATUS, "$.message.order_id", "present", ABSENT)),
    case("on_search item name is a number", put(ON_SEARCH, f"{PROVIDER0}.items[0].descriptor.name", 123),
         Expect("SCH_TYPE", E, ON_SEARCH, f"$.{PROVIDER0}.items[0].descriptor.name", "string", "integer")),
    case("on_status order.status outside the core enum", put(ON_STATUS, "message.order.status", "DONE"),
         Expect("SCH_ENUM", E, ON_STATUS, "$.message.order.status", ["ACTIVE", "COMPLETE", "CANCELLED"], "DONE")),
    # The guide's table spells PRE_FULFILLMENT: the core refuses it, and it is reported once (not as L2 too).
    case("confirm payment type with underscore", put(CONFIRM, "message.order.payments", [{"type": "PRE_FULFILLMENT"}]),
         Expect("SCH_ENUM", E, CONFIRM, "$.message.order.payments[0].type",
                ["PRE-ORDER", "PRE-FULFILLMENT", "ON-FULFILLMENT", "POST-FULFILLMENT"], "PRE_FULFILLMENT")),
    case("on_search location gps is not 'lat, lon'", put(ON_SEARCH, f"{PROVIDER0}.locations[0].gps", "north pole"),
         Expect("SCH_PATTERN", E, ON_SEARCH, f"$.{PROVIDER0}.locations[0].gps", f"a string matching {GPS_PATTERN}",
                "north pole")),
    case("on_search provider ttl below -1", put(ON_SEARCH, f"{PROVIDER0}.ttl", -5),
         Expect("SCH_CONSTRAINT", E, ON_SEARCH, f"$.{PROVIDER0}.ttl", "minimum (limit=-1)", -5,
                mentions="minimum of -1")),
    case("on_cancel record of keys no capture format has", [],
         Expect("SCH_CAPTURE_RECORD", E, ON_CANCEL, "$", "a Beckn message or a capture wrapper", ["payload", "ts"]),
         capture=record(ON_CANCEL, None, size=30,
                        capture_error=Violation((), "a Beckn message or a capture wrapper", ["payload", "ts"]))),
    # A warning: the message is checked all the same, only without its capture time.
    case("on_status captured with a received_at that is no time", [],
         Expect("SCH_CAPTURE_FIELD", W, ON_STATUS, "$.received_at", "an RFC 3339 date-time", True,
                mentions="the capture time is unknown"),
         capture=noted(ON_STATUS, Violation(("received_at",), "an RFC 3339 date-time", True,
                                            "be a capture time (the capture time is unknown)"))),
    case("init answered with ACK status 'OK'", [],
         Expect("SCH_ACK_RESPONSE", E, INIT, "$.message.ack.status", ["ACK", "NACK"], "OK",
                mentions="synchronous ACK/NACK response"),
         capture=response(INIT, {"message": {"ack": {"status": "OK"}}})),
    # ---- signature and timing (what a live receiver recorded) -----------------------------------------------
    *[case(f"on_confirm signature check failed: {reason}", [],
           Expect(reason, E, ON_CONFIRM, "$", "a verified signature", f"{reason} detail",
                  mentions="(HTTP header Authorization)"),
           capture=signed(ON_CONFIRM, SignatureCheck("Authorization", reason, f"{reason} detail")))
      for reason in REASONS],
    case("on_search relayed with a gateway signature that expired", [],
         Expect("SIG_GATEWAY_INVALID", E, ON_SEARCH, "$", "a verified gateway signature", "SIG_EXPIRED: expired at 1"),
         capture=signed(ON_SEARCH, SignatureCheck("Authorization", None),
                        SignatureCheck("X-Gateway-Authorization", "SIG_EXPIRED", "expired at 1"))),
    case("init acknowledged after 2.5 s", [],
         Expect("TIM_ACK_LATENCY", W, INIT, "$", "an ACK/NACK within 1 s", "2.500 s"),
         capture=answered_after(INIT, 2.5)),
    # ---- context ------------------------------------------------------------------------------------------
    case("on_cancel without context", drop(ON_CANCEL, "context"),
         Expect("CTX_MISSING", E, ON_CANCEL, "$.context", "object", ABSENT)),
    case("on_cancel action not a Beckn action", put(ON_CANCEL, "context.action", "on_discover"),
         Expect("CTX_ACTION_UNKNOWN", E, ON_CANCEL, "$.context.action", sorted(ACTIONS), "on_discover")),
    case("on_support without timestamp", drop(ON_SUPPORT, "context.timestamp"),
         Expect("CTX_REQUIRED", E, ON_SUPPORT, "$.context.timestamp", "a non-empty string", ABSENT)),
    case("status timestamp without T and offset", put(STATUS, "context.timestamp", "2025-05-07 10:50:00"),
         Expect("CTX_TIMESTAMP_FORMAT", E, STATUS, "$.context.timestamp", "RFC 3339 date-time", "2025-05-07 10:50:00")),
    case("status ttl '30s'", put(STATUS, "context.ttl", "30s"),
         Expect("CTX_TTL_FORMAT", E, STATUS, "$.context.ttl", "ISO 8601 duration", "30s")),
    case("init POSTed to /select", [],
         Expect("CTX_ACTION_PATH_MISMATCH", E, INIT, "$.context.action", "select", "init"),
         capture=endpoint(INIT, "/bpp/select")),
    case("whole transaction on version 1.0.0", put_all("context.version", "1.0.0"),
         Expect("CTX_VERSION", E, SEARCH, "$.context.version", "1.1.0", "1.0.0"),
         also=[("CTX_VERSION", i, "$.context.version") for i in range(1, 12)]
         + [("L2_PACK_MISSING", SEARCH, "$.context.domain")]),  # no pack for flexibility 1.0.0
    case("on_search bpp_uri without scheme", put(ON_SEARCH, "context.bpp_uri", "energy-incentive-bpp.example.com"),
         Expect("CTX_URI_FORMAT", E, ON_SEARCH, "$.context.bpp_uri", "absolute http(s) URL",
                "energy-incentive-bpp.example.com")),
    # Blamed once, on the message that starts the transaction, not on the eleven that echo it.
    case("transaction_id not a UUID", put_all("context.transaction_id", "incentive-txn-1001"),
         Expect("CTX_ID_NOT_UUID", W, SEARCH, "$.context.transaction_id", "UUID (RFC 4122)", "incentive-txn-1001")),
    # Blamed on the request that created it, not on the callback that echoes it.
    case("status message_id not a UUID",
         [put(STATUS, "context.message_id", "incentive-msg-2005"), put(ON_STATUS, "context.message_id", "incentive-msg-2005")],
         Expect("CTX_ID_NOT_UUID", W, STATUS, "$.context.message_id", "UUID (RFC 4122)", "incentive-msg-2005")),
    # ---- transaction --------------------------------------------------------------------------------------
    # Paired with the one unanswered status and reported once: not also an orphan.
    case("on_status with another message_id", put(ON_STATUS, "context.message_id", OTHER_UUID),
         Expect("TXN_CALLBACK_MESSAGE_ID", E, ON_STATUS, "$.context.message_id", STATUS_ID, OTHER_UUID)),
    case("on_status with another transaction_id", put(ON_STATUS, "context.transaction_id", OTHER_UUID),
         Expect("TXN_CALLBACK_TRANSACTION_ID", E, ON_STATUS, "$.context.transaction_id", TXN_ID, OTHER_UUID)),
    case("on_status without its status request", remove(STATUS),
         Expect("TXN_ORPHAN_CALLBACK", E, STATUS, "$.context.message_id",  # on_status moved up to STATUS
                "message_id of an earlier status request", STATUS_ID)),
    case("on_status sent twice", append_copy(ON_STATUS),
         Expect("TXN_DUPLICATE_CALLBACK", E, APPENDED, "$.context.message_id", "one callback per request and BPP",
                STATUS_ID)),
    case("on_search sent twice by the same BPP", append_copy(ON_SEARCH),
         Expect("TXN_DUPLICATE_CALLBACK", E, APPENDED, "$.context.message_id", "one callback per request and BPP",
                SEARCH_ID)),
    case("status reuses confirm's message_id",
         [put(STATUS, "context.message_id", CONFIRM_ID), put(ON_STATUS, "context.message_id", CONFIRM_ID)],
         Expect("TXN_MESSAGE_ID_REUSED", E, STATUS, "$.context.message_id",
                "a message_id not used by the earlier confirm", CONFIRM_ID)),
    case("init domain deg:flexibility (the guide's)", put(INIT, "context.domain", "deg:flexibility"),
         Expect("TXN_DOMAIN_CHANGED", E, INIT, "$.context.domain", "flexibility", "deg:flexibility")),
    case("on_cancel version 1.0.0", put(ON_CANCEL, "context.version", "1.0.0"),
         Expect("TXN_VERSION_CHANGED", E, ON_CANCEL, "$.context.version", "1.1.0", "1.0.0"),
         also=[("CTX_VERSION", ON_CANCEL, "$.context.version"), ("L2_PACK_MISSING", ON_CANCEL, "$.context.domain")]),
    case("init city code 628 (the guide's)", put(INIT, "context.location.city.code", "628"),
         Expect("TXN_LOCATION_CHANGED", E, INIT, "$.context.location.city.code", "NANP:628", "628")),
    case("init city code 628, echoed by on_init: the change is init's alone",
         [put(INIT, "context.location.city.code", "628"), put(ON_INIT, "context.location.city.code", "628")],
         Expect("TXN_LOCATION_CHANGED", E, INIT, "$.context.location.city.code", "NANP:628", "628")),
    case("on_init city code 628, its init's NANP:628", put(ON_INIT, "context.location.city.code", "628"),
         Expect("TXN_LOCATION_CHANGED", E, ON_INIT, "$.context.location.city.code", "NANP:628", "628")),
    case("on_status to another bap_uri", put(ON_STATUS, "context.bap_uri", "https://other-bap.example.com"),
         Expect("TXN_BAP_CHANGED", E, ON_STATUS, "$.context.bap_uri", "https://energy-bap-network.example.com",
                "https://other-bap.example.com")),
    case("on_status from another bpp_id", put(ON_STATUS, "context.bpp_id", "other-bpp.example.com"),
         Expect("TXN_BPP_CHANGED", E, ON_STATUS, "$.context.bpp_id", "energy-incentive-bpp.example.com",
                "other-bpp.example.com")),
    case("on_status timestamped 1 s before status, captured after it",
         put(ON_STATUS, "context.timestamp", "2025-05-07T10:49:59Z"),
         Expect("TXN_CALLBACK_BEFORE_REQUEST", E, ON_STATUS, "$.context.timestamp", ">= 2025-05-07T10:50:00Z",
                "2025-05-07T10:49:59Z"),
         capture=in_capture_order),
    case("on_status timestamped 1 s before status, no capture times",
         put(ON_STATUS, "context.timestamp", "2025-05-07T10:49:59Z"),
         Expect("TXN_CALLBACK_BEFORE_REQUEST", E, ON_STATUS, "$.context.timestamp", ">= 2025-05-07T10:50:00Z",
                "2025-05-07T10:49:59Z")),
    case("on_status 31 s after status, no ttl (default 30 s)", [],
         Expect("TXN_CALLBACK_AFTER_TTL", E, ON_STATUS, "$.context.timestamp", "arrival by 2025-05-07T10:50:30+00:00",
                "arrived 2025-05-07T10:50:31+00:00"),
         capture=arrived({STATUS: 0, ON_STATUS: 31})),
    case("on_status 11 s after status, ttl PT10S", put(STATUS, "context.ttl", "PT10S"),
         Expect("TXN_CALLBACK_AFTER_TTL", E, ON_STATUS, "$.context.timestamp", "arrival by 2025-05-07T10:50:10+00:00",
                "arrived 2025-05-07T10:50:11+00:00"),
         capture=arrived({STATUS: 0, ON_STATUS: 11})),
    # ---- order --------------------------------------------------------------------------------------------
    case("init orders from an unpublished provider (on_init echoes it)",
         [put(INIT, "message.order.provider.id", "provider_unknown"),
          put(ON_INIT, "message.order.provider.id", "provider_unknown")],
         Expect("ORD_PROVIDER_UNKNOWN", E, INIT, "$.message.order.provider.id",
                ["provider_demand_flex_001", "provider_flex_aggregator_001"], "provider_unknown")),
    case("init orders another provider's item (on_init echoes it)",
         [put(INIT, "message.order.items[0].id", "aggregator_optin_flex"),
          put(ON_INIT, "message.order.items[0].id", "aggregator_optin_flex")],
         Expect("ORD_ITEM_UNKNOWN", E, INIT, "$.message.order.items[0].id", ["manual_optin_demand_flex"],
                "aggregator_optin_flex")),
    case("init names another provider's fulfillment", put(INIT, "message.order.fulfillments[0].id", "automated_control"),
         Expect("ORD_FULFILLMENT_UNKNOWN", E, INIT, "$.message.order.fulfillments[0].id", ["manual_optin"],
                "automated_control")),
    case("on_confirm answers for another provider",
         put(ON_CONFIRM, "message.order.provider.id", "provider_flex_aggregator_001"),
         Expect("ORD_CALLBACK_PROVIDER", E, ON_CONFIRM, "$.message.order.provider.id", "provider_demand_flex_001",
                "provider_flex_aggregator_001")),
    case("on_init without provider", drop(ON_INIT, "message.order.provider"),
         Expect("ORD_CALLBACK_PROVIDER", E, ON_INIT, "$.message.order.provider.id", "provider_demand_flex_001", ABSENT)),
    case("on_confirm answers for another item", put(ON_CONFIRM, "message.order.items[0].id", "aggregator_optin_flex"),
         Expect("ORD_CALLBACK_ITEMS", E, ON_CONFIRM, "$.message.order.items", ["manual_optin_demand_flex"],
                ["aggregator_optin_flex"])),
    # Without an order id nothing later can be checked against it: no ORD_*_ORDER_ID findings follow.
    case("on_confirm without order.id", drop(ON_CONFIRM, "message.order.id"),
         Expect("ORD_ID_MISSING", E, ON_CONFIRM, "$.message.order.id", "the new order's id", ABSENT)),
    case("status about another order", put(STATUS, "message.order_id", "order-flex-999"),
         Expect("ORD_REQUEST_ORDER_ID", E, STATUS, "$.message.order_id", ORDER_ID, "order-flex-999")),
    case("update about another order (message.order.id)",
         append_copy(STATUS, ("context.action", "update"), ("context.message_id", OTHER_UUID),
                     ("context.timestamp", "2025-05-07T10:55:00Z"),
                     ("message", {"update_target": "order.fulfillments", "order": {"id": "order-flex-999"}})),
         Expect("ORD_REQUEST_ORDER_ID", E, APPENDED, "$.message.order.id", ORDER_ID, "order-flex-999")),
    case("on_status carries another order id", put(ON_STATUS, "message.order.id", "order-flex-999"),
         Expect("ORD_CALLBACK_ORDER_ID", E, ON_STATUS, "$.message.order.id", ORDER_ID, "order-flex-999")),
    case("on_cancel without order.id", drop(ON_CANCEL, "message.order.id"),
         Expect("ORD_CALLBACK_ORDER_ID", E, ON_CANCEL, "$.message.order.id", ORDER_ID, ABSENT)),
    case("support puts the order id at message.ref_id (the guide's)", put(SUPPORT, "message", {"ref_id": ORDER_ID}),
         Expect("ORD_SUPPORT_REF_ID", E, SUPPORT, "$.message.support.ref_id", ORDER_ID, ABSENT,
                mentions="found at $.message.ref_id")),
    case("support about another order", put(SUPPORT, "message.support.ref_id", "order-flex-999"),
         Expect("ORD_SUPPORT_REF_ID", E, SUPPORT, "$.message.support.ref_id", ORDER_ID, "order-flex-999")),
    case("on_cancel shows the application successful", put(ON_CANCEL, STATE, "APPLICATION_SUCCESSFUL"),
         Expect("ORD_NOT_CANCELLED", E, ON_CANCEL, "$.message.order", "status CANCELLED or a cancelled fulfillment state",
                {"status": None, "fulfillment_states": ["APPLICATION_SUCCESSFUL"]})),
    case("on_cancel shows the cancellation rejected", put(ON_CANCEL, STATE, "CANCELLATION_REJECTED"),
         Expect("ORD_NOT_CANCELLED", E, ON_CANCEL, "$.message.order", "status CANCELLED or a cancelled fulfillment state",
                {"status": None, "fulfillment_states": ["CANCELLATION_REJECTED"]}),
         also=[("L2_FULFILLMENT_STATE", ON_CANCEL, f"$.{STATE}")]),
    case("status after the cancellation shows the order still running", STATUS_AFTER_CANCEL,
         Expect("ORD_STATUS_AFTER_CANCEL", E, APPENDED + 1, "$.message.order",
                "status CANCELLED or a cancelled fulfillment state",
                {"status": None, "fulfillment_states": ["APPLICATION_SUCCESSFUL"]})),
    # ---- catalog ------------------------------------------------------------------------------------------
    case("on_search item in an undefined category", put(ON_SEARCH, f"{PROVIDER0}.items[0].category_ids[0]", "flex_hybrid"),
         Expect("CAT_REF_UNRESOLVED", E, ON_SEARCH, f"$.{PROVIDER0}.items[0].category_ids[0]",
                ["flex_auto", "flex_manual"], "flex_hybrid")),
    case("on_search item names another provider's fulfillment",
         put(ON_SEARCH, f"{PROVIDER0}.items[0].fulfillment_ids[0]", "automated_control"),
         Expect("CAT_REF_UNRESOLVED", E, ON_SEARCH, f"$.{PROVIDER0}.items[0].fulfillment_ids[0]", ["manual_optin"],
                "automated_control")),
    case("on_search provider has two categories flex_manual", put(ON_SEARCH, f"{PROVIDER0}.categories[1].id", "flex_manual"),
         Expect("CAT_DUPLICATE_ID", E, ON_SEARCH, f"$.{PROVIDER0}.categories[1].id", "an id not already used at index 0",
                "flex_manual")),
    # ---- layer 2 ------------------------------------------------------------------------------------------
    case("search intent name over the network's 40 characters",
         put(SEARCH, "message.intent.descriptor.name", "Energy incentives for homes in the Bay Area"),
         Expect("L2_CONSTRAINT", E, SEARCH, "$.message.intent.descriptor.name", "maxlength (limit=40)",
                "Energy incentives for homes in the Bay Area", mentions="40"),
         engine=overlay_engine),
    case("domain energy:unknown throughout", put_all("context.domain", "energy:unknown"),
         Expect("L2_PACK_MISSING", W, SEARCH, "$.context.domain", "a domain with a Layer-2 pack", "energy:unknown")),
    case("no Layer-2 packs loaded", [],
         Expect("L2_PACK_MISSING", W, SEARCH, "$.context.domain", "a domain with a Layer-2 pack", "flexibility"),
         engine=no_packs_engine),
    case("every callback in domain energy:unknown", put_all("context.domain", "energy:unknown", only=is_callback),
         Expect("L2_PACK_MISSING", W, ON_SEARCH, "$.context.domain", "a domain with a Layer-2 pack", "energy:unknown"),
         also=EVERY_CALLBACK),
    case("on_search category code MANUAL", put(ON_SEARCH, f"{PROVIDER0}.categories[0].descriptor.code", "MANUAL"),
         Expect("L2_CATEGORY_CODE", E, ON_SEARCH, f"$.{PROVIDER0}.categories[0].descriptor.code",
                ["MANUAL_FLEX", "AUTO_FLEX", "HYBRID_FLEX"], "MANUAL")),
    case("on_search acceptance_type in prose (the guide's)",
         put(ON_SEARCH, f"{PROVIDER0}.fulfillments[0].tags[0].list[0].value", "Manual via App Notification"),
         Expect("L2_ACCEPTANCE_TYPE", E, ON_SEARCH, f"$.{PROVIDER0}.fulfillments[0].tags[0].list[0].value",
                ["MANUAL_OPTIN", "AUTO_OPTIN", "SCHEDULED"], "Manual via App Notification")),
    case("on_search fulfillment type PHYSICAL", put(ON_SEARCH, f"{PROVIDER0}.fulfillments[0].type", "PHYSICAL"),
         Expect("L2_FULFILLMENT_TYPE", E, ON_SEARCH, f"$.{PROVIDER0}.fulfillments[0].type", ["DIGITAL"], "PHYSICAL")),
    case("on_status state APPROVED", put(ON_STATUS, STATE, "APPROVED"),
         Expect("L2_FULFILLMENT_STATE", E, ON_STATUS, f"$.{STATE}", FLEX_STATES, "APPROVED")),
    case("init stop type end (the guide's)", put(INIT, STOP, "end"),
         Expect("L2_STOP_TYPE", E, INIT, f"$.{STOP}", ["START", "END"], "end")),
    case("confirm payment ON-FULFILLMENT (core allows it, the taxonomy not)",
         put(CONFIRM, "message.order.payments", [{"type": "ON-FULFILLMENT"}]),
         Expect("L2_PAYMENT_TYPE", E, CONFIRM, "$.message.order.payments[0].type", ["PRE-FULFILLMENT", "POST-FULFILLMENT"],
                "ON-FULFILLMENT")),
    case("confirm payment collected by GATEWAY", put(CONFIRM, "message.order.payments", [{"collected_by": "GATEWAY"}]),
         Expect("L2_PAYMENT_COLLECTED_BY", E, CONFIRM, "$.message.order.payments[0].collected_by", ["BAP", "BPP", "AGENT"],
                "GATEWAY")),
]


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=f"{c.expect.rule}: {c.name}",
                         marks=[pytest.mark.xfail(strict=True, reason=c.defect)] if c.defect else [])
            for c in cases]


def _action(msg: Message) -> str | None:
    action = msg.context.get("action")
    return action if isinstance(action, str) else None


@pytest.mark.parametrize("case", _params(FIRING))
def test_rule_fires(case: Case, engine: Engine, tmp_path: Path) -> None:
    messages, findings = breaking(*case.edits, capture=case.capture,
                                  engine=case.engine(tmp_path) if case.engine else engine)
    want = case.expect
    hits = [f for f in findings if (f.rule_id, f.index, f.path) == (want.rule, want.at, want.path)]
    assert len(hits) == 1, "\n\n".join(f.text() for f in findings) or "no findings"
    finding, broken = hits[0], messages[want.at]
    assert finding.severity is want.severity
    assert finding.expected == want.expected
    assert finding.found == want.found
    assert (finding.source, finding.action, finding.transaction_id, finding.message_id) == (
        "test", _action(broken), broken.transaction_id, broken.message_id)
    if want.mentions is not None:
        assert want.mentions in finding.must or want.mentions in str(finding.expected), finding.text()
    # Precision: the break causes these findings and no other, of either severity.
    assert Counter((f.rule_id, f.index, f.path) for f in findings) == Counter(
        [(want.rule, want.at, want.path), *case.also])


# --------------------------------------------------------------------------------------------------------------
# SILENT: the clean transaction, bare and captured, and the near misses
# --------------------------------------------------------------------------------------------------------------

CATALOGUE = [r.id for r in Engine().rules]


def test_clean_transaction_has_no_findings(engine: Engine) -> None:
    report = engine.check(as_messages(clean_bodies()))
    assert report.findings == [], "\n\n".join(f.text() for f in report.findings)
    assert (report.messages, report.transactions) == (12, 1)


def test_captured_clean_transaction_has_no_findings(engine: Engine) -> None:
    messages = as_messages(clean_bodies())
    captured(messages)
    report = engine.check(messages)
    assert report.findings == [], "\n\n".join(f.text() for f in report.findings)


@pytest.fixture(scope="module")
def clean_findings() -> dict[str, tuple[Finding, ...]]:
    engine = Engine()
    bare = as_messages(clean_bodies())
    capture = as_messages(clean_bodies())
    captured(capture)
    return {"bare": tuple(engine.check(bare).findings), "captured": tuple(engine.check(capture).findings)}


@pytest.mark.parametrize("variant", ["bare", "captured"])
@pytest.mark.parametrize("rule_id", CATALOGUE)
def test_rule_silent_on_clean_transaction(rule_id: str, variant: str,
                                          clean_findings: dict[str, tuple[Finding, ...]]) -> None:
    assert [f.text() for f in clean_findings[variant] if f.rule_id == rule_id] == []


@dataclass(frozen=True)
class NearMiss:
    name: str
    naive: str
    """The rule a naive implementation would fire here."""
    edits: tuple[Edit, ...] = ()
    capture: tuple[Capture, ...] = ()


def near(name: str, naive: str, *edits: Edit, capture: Capture | Sequence[Capture] = ()) -> NearMiss:
    return NearMiss(name, naive, edits, _several(capture))


OTHER_BPP = (("context.bpp_id", "flex-aggregator-bpp.example.com"),
             ("context.bpp_uri", "https://flex-aggregator-bpp.example.com"))

NEAR_MISSES: list[NearMiss] = [
    near("both signature headers verified", "SIG_INVALID",
         capture=signed(ON_SEARCH, SignatureCheck("Authorization", None), SignatureCheck("X-Gateway-Authorization", None))),
    near("an ACK after 0.9 s", "TIM_ACK_LATENCY", capture=answered_after(INIT, 0.9)),
    near("a gateway search answered by two different BPPs", "TXN_DUPLICATE_CALLBACK",
         append_copy(ON_SEARCH, *OTHER_BPP)),
    near("the same BPP answering a second search", "TXN_DUPLICATE_CALLBACK",
         append_copy(SEARCH, ("context.message_id", OTHER_UUID), ("context.timestamp", "2025-05-07T10:46:00Z")),
         append_copy(ON_SEARCH, ("context.message_id", OTHER_UUID), ("context.timestamp", "2025-05-07T10:46:00Z"))),
    near("a callback with the same timestamp as its request", "TXN_CALLBACK_BEFORE_REQUEST",
         put(ON_STATUS, "context.timestamp", "2025-05-07T10:50:00Z")),
    near("the same instant written with another offset", "TXN_CALLBACK_BEFORE_REQUEST",
         put(STATUS, "context.timestamp", "2025-05-07T12:50:00+02:00")),
    near("a lower-case, fractional RFC 3339 timestamp", "CTX_TIMESTAMP_FORMAT",
         put(ON_STATUS, "context.timestamp", "2025-05-07t10:50:00.250z")),
    near("ttl absent, the callback on the 30 s default's last instant", "TXN_CALLBACK_AFTER_TTL",
         capture=arrived({STATUS: 0, ON_STATUS: 30})),
    near("ttl PT1M, the callback after 45 s", "TXN_CALLBACK_AFTER_TTL",
         put(STATUS, "context.ttl", "PT1M"), capture=arrived({STATUS: 0, ON_STATUS: 45})),
    near("ttl a valid ISO 8601 duration", "CTX_TTL_FORMAT", put(STATUS, "context.ttl", "P1DT2H")),
    near("search without bpp_id and bpp_uri", "CTX_REQUIRED"),
    near("an endpoint with a base path and a trailing slash", "CTX_ACTION_PATH_MISMATCH",
         capture=endpoint(INIT, "/beckn/bpp/init/")),
    near("a NACK with an error", "SCH_ACK_RESPONSE",
         capture=response(INIT, {"message": {"ack": {"status": "NACK"}},
                                 "error": {"code": "30004", "message": "Item not found"}})),
    near("support without any ref_id", "ORD_SUPPORT_REF_ID", put(SUPPORT, "message", {"support": {}})),
    near("on_cancel with order.status CANCELLED and no fulfillment state", "ORD_NOT_CANCELLED",
         put(ON_CANCEL, "message.order.status", "CANCELLED"), drop(ON_CANCEL, "message.order.fulfillments[0].state")),
    near("status after the cancellation shows it cancelled", "ORD_STATUS_AFTER_CANCEL", *STATUS_AFTER_CANCEL,
         put(APPENDED + 1, STATE, "APPLICATION_CANCELLED")),
    near("an on_status that comes after the cancellation, answering a status asked before it", "ORD_STATUS_AFTER_CANCEL",
         put(ON_STATUS, "context.timestamp", "2025-05-07T10:56:00Z"), put(STATUS, "context.ttl", "PT10M")),
    near("status after a cancellation the BPP refused (an error callback)", "ORD_STATUS_AFTER_CANCEL",
         *STATUS_AFTER_CANCEL, drop(ON_CANCEL, "message"),
         put(ON_CANCEL, "error", {"code": "30010", "message": "Order not found"})),
    near("ordering from the catalog's second provider", "ORD_ITEM_UNKNOWN",
         *[put(i, "message.order.provider.id", "provider_flex_aggregator_001") for i in (INIT, ON_INIT, CONFIRM, ON_CONFIRM)],
         *[put(i, "message.order.items[0].id", "aggregator_optin_flex") for i in (INIT, ON_INIT, CONFIRM, ON_CONFIRM)],
         *[put(i, "message.order.fulfillments[0].id", "automated_control") for i in (INIT, ON_INIT, CONFIRM, ON_CONFIRM)]),
    near("on_init refusing the order with an error (no order to echo)", "ORD_CALLBACK_PROVIDER",
         drop(ON_INIT, "message"), put(ON_INIT, "error", {"code": "30004", "message": "Item not found"})),
    near("on_confirm refusing the order with an error (no order to number)", "ORD_ID_MISSING",
         drop(ON_CONFIRM, "message"), put(ON_CONFIRM, "error", {"code": "30004", "message": "Item not found"})),
    near("location id '1' in each of two providers", "CAT_DUPLICATE_ID"),
    near("context.location with its members in another order", "TXN_LOCATION_CHANGED",
         put(ON_INIT, "context.location", {"city": {"code": "NANP:628"}, "country": {"code": "USA"}})),
    near("domain deg:flexibility throughout (the pack covers both spellings)", "L2_PACK_MISSING",
         put_all("context.domain", "deg:flexibility")),
    near("a free-text tag beside acceptance_type in the participation_mode group", "L2_ACCEPTANCE_TYPE",
         put(ON_SEARCH, f"{PROVIDER0}.fulfillments[0].tags[0].list",
             [{"descriptor": {"code": "acceptance_type"}, "value": "MANUAL_OPTIN"},
              {"descriptor": {"code": "notice_period"}, "value": "24 hours before each event"}])),
]


@pytest.mark.parametrize("miss", [pytest.param(m, id=f"{m.naive}: {m.name}") for m in NEAR_MISSES])
def test_near_miss_is_silent(miss: NearMiss, engine: Engine) -> None:
    assert miss.naive in CATALOGUE
    _, findings = breaking(*miss.edits, capture=miss.capture, engine=engine)
    assert findings == [], "\n\n".join(f.text() for f in findings)


# --------------------------------------------------------------------------------------------------------------
# Meta: the tables cover the catalogue
# --------------------------------------------------------------------------------------------------------------

def test_every_rule_has_a_firing_case() -> None:
    """A rule whose only firing case is a known defect does not count: it has no working check yet. Rules the
    live runner reports itself (no check function) are proved in the runner's tests; rules only other use cases'
    packs declare, on those use cases' transactions (tests/test_starter_kit_packs.py)."""
    covered = {c.expect.rule for c in FIRING if c.defect is None}
    packs = Engine().layer2.packs()
    flexibility = {r.id for p in packs if p.name == "demand-flexibility" for r in p.rules}
    elsewhere = {r.id for p in packs if p.name != "demand-flexibility" for r in p.rules} - flexibility
    checked = {r.id for r in Engine().rules if r.check is not None} - elsewhere
    assert sorted(checked - covered) == [], "rules without a firing case"
    assert sorted({c.expect.rule for c in FIRING} - set(CATALOGUE)) == [], "cases for rules not in the catalogue"


def test_every_rule_the_runner_reports_has_a_firing_test() -> None:
    """Rules without a check function fire in the live runner's tests, not in the tables above; each id must
    appear in one of them (and the shipped scenarios and probes, which pass cleanly, are where they stay
    silent)."""
    live = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py")
                   if p.name != Path(__file__).name)
    reported = [r.id for r in Engine().rules if r.check is None]
    assert reported and [rid for rid in reported if rid not in live] == []


def test_every_reason_a_signature_fails_for_is_a_rule() -> None:
    """signing.verify names why a header failed; the live runner reports that name as the rule id."""
    source = (Path(signing.__file__)).read_text(encoding="utf-8")
    raised = set(re.findall(r'SignatureError\(\s*"(SIG_[A-Z_]+)"', source))
    assert raised and sorted(raised - set(REASONS)) == []


def test_catalogue_is_the_built_in_rules_and_packs(engine: Engine) -> None:
    from conformance import catalogue
    assert CATALOGUE == [r.id for r in catalogue(engine.layer2.packs())]
    assert len(CATALOGUE) == len(set(CATALOGUE))
