"""Active probes: one deliberately wrong, otherwise valid, signed message each, that a conformant target refuses.

A probe is data: the request it starts from, what it breaks, and what a conformant BPP answers. Where the rule
catalogue already knows what is wrong, the probes come from it: one per required context field
(rules/context.py), one per Layer-2 constraint that a request can break (found by trying the Layer-2 pack's
rules on every value of the request), so that a new rule brings its probe. The runner (runner/probe.py)
sends them and judges the replies.
"""
from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable

import orjson

from conformance import signing
from conformance.engine import Engine
from conformance.messages import Message
from conformance.rules import probe as rules
from conformance.rules.context import BPP_FIELDS, REQUIRED
from conformance.rules.registry import Rule
from conformance.signing import KeyPair

INVALID_REQUEST, ORDER_NOT_FOUND = "30000", "30010"
OUT_OF_TAXONOMY = "NOT_IN_THE_TAXONOMY"
UNKNOWN_ORDER = "order-the-target-never-confirmed"


@dataclass(frozen=True, slots=True)
class Sending:
    """One POST of a probe: to `/{action}`, these exact bytes and headers. `setup` sends are valid messages a
    probe needs first (the original of a replay); a conformant target ACKs them."""

    action: str
    raw: bytes
    headers: dict[str, str]
    setup: bool = False


Build = Callable[[dict[str, Any], KeyPair], list[Sending]]


@dataclass(frozen=True, slots=True)
class Probe:
    id: str
    """Stable and readable: `signature/missing-header`, `layer2/L2_STOP_TYPE`."""
    rule: Rule
    title: str
    """What a conformant target does with it."""
    action: str
    """The request the probe starts from (a valid one, from fixtures/<use case>/requests/)."""
    build: Build
    code: str | None = INVALID_REQUEST
    """The BECKN-005 code a conformant BPP NACKs with; None when any refusal will do."""
    unauthorised: bool = False
    """Refused with HTTP 401 and WWW-Authenticate (BECKN-006) rather than a plain NACK."""


def encode(doc: Any) -> bytes:
    return orjson.dumps(doc)


def _signed(change: Callable[[dict[str, Any]], None] | None = None, *, endpoint: str | None = None) -> Build:
    """The request, changed, then signed as it is: only the change is wrong."""
    def build(body: dict[str, Any], key: KeyPair) -> list[Sending]:
        doc = copy.deepcopy(body)
        if change is not None:
            change(doc)
        raw = encode(doc)
        return [Sending(endpoint or str(body["context"]["action"]), raw, {"Authorization": signing.sign(raw, key)})]
    return build


def _signature(header: Callable[[bytes, KeyPair], str | None], *, after: Callable[[bytes], bytes] | None = None) -> Build:
    """The valid request with a broken Authorization header (None: no header), or bytes changed after signing."""
    def build(body: dict[str, Any], key: KeyPair) -> list[Sending]:
        raw = encode(body)
        value = header(raw, key)
        sent = after(raw) if after is not None else raw
        return [Sending(str(body["context"]["action"]), sent, {} if value is None else {"Authorization": value})]
    return build


def _twice(fresh_signature: bool) -> Build:
    """The valid request, then again: the same bytes and header (a replay), or the same message_id freshly
    signed a second later (a reused id). The second is the probe."""
    def build(body: dict[str, Any], key: KeyPair) -> list[Sending]:
        raw = encode(body)
        first = Sending(str(body["context"]["action"]), raw, {"Authorization": signing.sign(raw, key)}, setup=True)
        if not fresh_signature:
            return [first, Sending(first.action, raw, first.headers)]
        again = copy.deepcopy(body)
        again["context"]["timestamp"] = _later(again["context"].get("timestamp"))
        raw2 = encode(again)
        return [first, Sending(first.action, raw2, {"Authorization": signing.sign(raw2, key, created=int(time.time()) + 1)})]
    return build


def _later(timestamp: Any) -> Any:
    """The same instant written differently, so that the second body's bytes differ from the first's."""
    return timestamp.replace("Z", "+00:00") if isinstance(timestamp, str) and timestamp.endswith("Z") else timestamp


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = doc
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _remove(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = doc
        for part in head:
            node = node[part]
        node.pop(last, None)
    return change


def for_bpp(engine: Engine, init_body: dict[str, Any]) -> list[Probe]:
    """Every probe of a BPP: the message probes on a search, the Layer-2 ones on an init, then the flow.
    `init_body` is a valid init, context included (the Layer-2 probes are found by breaking it, and a message
    without a usable context reaches no Layer-2 rule)."""
    probes = _message_probes("search", "bap_id") + [_replayed_search()]
    probes += layer2(engine, init_body)
    probes += [
        Probe("flow/confirm-before-init", rules.FLOW, "a confirm in a transaction with no init is refused",
              "confirm", _signed(), code=None),
        Probe("flow/status-unknown-order", rules.FLOW, "status of an order the BPP never confirmed is refused",
              "status", _signed(_set("message.order_id", UNKNOWN_ORDER)), code=ORDER_NOT_FOUND),
        Probe("flow/cancel-unknown-order", rules.FLOW, "cancel of an order the BPP never confirmed is refused",
              "cancel", _signed(_set("message.order_id", UNKNOWN_ORDER)), code=ORDER_NOT_FOUND),
        Probe("flow/support-unknown-order", rules.FLOW, "support about an order the BPP never confirmed is refused",
              "support", _signed(_set("message.support.ref_id", UNKNOWN_ORDER)), code=ORDER_NOT_FOUND),
        _reused_message_id(),
    ]
    return probes


def _replayed_search() -> Probe:
    return Probe("signature/replay", rules.SIGNATURE, "a replay of an earlier search (the same bytes and header) "
                 "is refused", "search", _twice(fresh_signature=False), code=None)


def _reused_message_id() -> Probe:
    return Probe("flow/message-id-reused", rules.FLOW, "a second request with an earlier request's message_id is "
                 "refused", "search", _twice(fresh_signature=True), code=None)


def for_gateway() -> list[Probe]:
    """Every probe of a gateway: all it takes is search, so the message probes on a search and the two that
    send one twice."""
    return _message_probes("search", "bap_id") + [_replayed_search(), _reused_message_id()]


def for_bap(engine: Engine, on_search_body: dict[str, Any]) -> list[Probe]:
    """Every probe of a BAP's callback endpoint: the message probes on an on_search answering a search the BAP
    sent, the Layer-2 ones found by breaking that on_search, a replay and a foreign transaction. A BAP refuses
    with any NACK: BECKN-005 lists codes for BPPs only. Several on_search with one message_id are normal (one
    per BPP), so a replay is the same bytes under the same signature, not a reused message_id."""
    probes = _message_probes("on_search", "bpp_id") + layer2(engine, on_search_body)
    probes += [
        Probe("signature/replay", rules.SIGNATURE, "a replay of an earlier callback (the same bytes and header) is "
              "refused", "on_search", _twice(fresh_signature=False)),
        Probe("flow/unknown-transaction", rules.FLOW, "a callback for a transaction the BAP never started is "
              "refused", "on_search", _signed(_fresh_transaction)),
    ]
    return [replace(p, code=None) for p in probes]


def _fresh_transaction(doc: dict[str, Any]) -> None:
    doc["context"]["transaction_id"] = str(uuid.uuid4())


def _message_probes(action: str, sender: str) -> list[Probe]:
    """What any receiver refuses in any message: a signature that does not hold, a context that is wrong."""
    now = int(time.time())
    what = "a request" if not action.startswith("on_") else "a callback"
    probes = [
        Probe("signature/missing-header", rules.SIGNATURE, f"{what} without an Authorization header is refused",
              action, _signature(lambda raw, key: None), unauthorised=True),
        Probe("signature/unregistered-key", rules.SIGNATURE, f"{what} signed with a key the registry does not "
              "have for its subscriber is refused", action,
              _signature(lambda raw, key: signing.sign(raw, KeyPair.generate(key.subscriber_id, key.unique_key_id))),
              unauthorised=True),
        Probe("signature/body-changed", rules.SIGNATURE, f"{what} changed after it was signed is refused", action,
              _signature(lambda raw, key: signing.sign(raw, key), after=lambda raw: raw + b" "), unauthorised=True),
        Probe("signature/expired", rules.SIGNATURE, f"{what} whose signature has expired is refused", action,
              _signature(lambda raw, key: signing.sign(raw, key, created=now - 600, validity=300)), unauthorised=True),
        Probe("signature/created-in-future", rules.SIGNATURE, f"{what} signed in the future (beyond any clock "
              "skew) is refused", action, _signature(lambda raw, key: signing.sign(raw, key, created=now + 600)),
              unauthorised=True),
        Probe("signature/subscriber-mismatch", rules.SIGNATURE, f"{what} whose keyId names another subscriber than "
              f"its context.{sender} is refused", action,
              _signed(_set(f"context.{sender}", "someone-else.deg-conformance.local")), unauthorised=True),
    ]
    required = REQUIRED if action == "search" else REQUIRED + BPP_FIELDS
    probes += [Probe(f"context/missing-{name}", rules.CONTEXT, f"{what} without context.{name} is refused",
                     action, _signed(_remove(f"context.{name}"), endpoint=action))
               for name in required]
    probes += [
        Probe("schema/wrong-type", rules.SCHEMA, f"{what} with a value of the wrong type (context.ttl a number) "
              "is refused", action, _signed(_set("context.ttl", 30))),
        Probe("context/action-not-the-endpoint", rules.CONTEXT, f"{what} whose context.action is not the "
              "endpoint it is posted to is refused", action,
              _signed(_set("context.action", "confirm" if action == "search" else "on_confirm"), endpoint=action)),
        Probe("context/unsupported-version", rules.CONTEXT, f"{what} for an unsupported core version is refused",
              action, _signed(_set("context.version", "0.9.4"))),
        Probe("context/timestamp-not-rfc3339", rules.CONTEXT, f"{what} whose timestamp is not RFC 3339 is refused",
              action, _signed(_set("context.timestamp", "yesterday at noon"))),
        Probe("context/ttl-not-iso8601", rules.CONTEXT, f"{what} whose ttl is not an ISO 8601 duration is refused",
              action, _signed(_set("context.ttl", "30 seconds"))),
    ]
    return probes


def layer2(engine: Engine, body: dict[str, Any]) -> list[Probe]:
    """One probe per Layer-2 rule that some value of a valid message can break: each string value is replaced
    in turn by one outside every taxonomy, and the first value that breaks one Layer-2 rule (and nothing else
    the valid message did not already break) is that rule's probe."""
    action = str(body["context"]["action"])

    def fired(doc: dict[str, Any]) -> set[str]:
        return {f.rule_id for f in engine.check_alone(Message(doc, "probe", 0, endpoint=f"/{action}"))}

    already = fired(body)
    found: dict[str, str] = {}
    for path in _string_paths(body, ""):
        doc = copy.deepcopy(body)
        _set(path, OUT_OF_TAXONOMY)(doc)
        new = fired(doc) - already
        if len(new) == 1 and (rule := next(iter(new))).startswith("L2_"):
            found.setdefault(rule, path)
    return [Probe(f"layer2/{rule}", rules.LAYER2, f"an {action} with {path} "
                  f"outside the taxonomy ({rule}) is refused", action, _signed(_set(path, OUT_OF_TAXONOMY)))
            for rule, path in sorted(found.items())]


def _string_paths(value: Any, at: str) -> list[str]:
    """Dotted paths (list indexes as numbers) of every string in the message part of a body."""
    if isinstance(value, dict):
        return [p for k, v in value.items() if at or k == "message" for p in _string_paths(v, f"{at}.{k}" if at else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, f"{at}.{i}")]
    return [at] if isinstance(value, str) else []
