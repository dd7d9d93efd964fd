"""The transaction so far: what every rule may know about the messages before the one it checks.

The engine walks a transaction's messages in order. Before the rules see a message, `enter` pairs it
with its request (for a callback); after they ran, `absorb` records what it established (catalog,
chosen BPP, order id). Rules therefore see exactly the past, never the future, as a live run would.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from conformance._types import JSONObject
from conformance.messages import FLOW_ORDER, Message, dig, is_callback, objects, request_of


@dataclass(frozen=True, slots=True)
class Pairing:
    """How a callback relates to the requests before it."""

    request: Message | None
    kind: str
    """'exact' (same message_id), 'mismatch' (answers the one pending request of its action, with another
    message_id), 'duplicate' (its request was already answered by the same sender), 'foreign' (the request
    is in another transaction), 'orphan' (no request at all)."""


ForeignLookup = Callable[[str, str], Message | None]


@dataclass(slots=True, eq=False)
class Transaction:
    """One transaction_id's messages, and the state accumulated while walking them."""

    id: str | None
    messages: list[Message]
    foreign: ForeignLookup = lambda action, message_id: None
    first: Message | None = None
    requests: list[Message] = field(default_factory=list)
    answered: dict[int, list[Message]] = field(default_factory=dict)
    """Request seq -> callbacks that answered it so far."""
    providers: dict[str, JSONObject] = field(default_factory=dict)
    """Every provider published by an on_search so far, by id (a later catalog replaces an earlier one)."""
    chosen_bpp: Message | None = None
    """The first request after discovery that names a BPP: from then on bpp_id and bpp_uri must not change."""
    order_id: str | None = None
    order_seen_in: Message | None = None
    cancelled_in: Message | None = None
    """The on_cancel that answered a cancel with the order (not an error): from then on the order is cancelled."""
    pairing: Pairing | None = None
    """The current message's pairing (callbacks only)."""
    domains: set[tuple[Any, Any]] = field(default_factory=set)
    """`domain_key` of every message so far."""
    position: dict[int, int] = field(default_factory=dict)
    """id() of each message absorbed so far -> its place in the transaction: which of two came first."""

    def enter(self, msg: Message) -> None:
        self.pairing = self._pair(msg) if is_callback(msg.action or "") else None

    def absorb(self, msg: Message) -> None:
        self.position[id(msg)] = len(self.position)
        action = msg.action or ""
        if self.first is None:
            self.first = msg
        self.domains.add(domain_key(msg))
        if not is_callback(action):
            self.requests.append(msg)
            if self.chosen_bpp is None and action != "search" and msg.context.get("bpp_id") is not None:
                self.chosen_bpp = msg
        elif self.pairing is not None and self.pairing.request is not None and self.pairing.kind != "foreign":
            self.answered.setdefault(self.pairing.request.seq, []).append(msg)
        if action == "on_search":
            for _, provider in objects(dig(msg.message, "catalog", "providers")):
                if isinstance(provider.get("id"), str):
                    self.providers[provider["id"]] = provider
        elif action == "on_confirm":
            order_id = dig(msg.message, "order", "id")
            if isinstance(order_id, str) and order_id:
                self.order_id, self.order_seen_in = order_id, msg
        elif action == "on_cancel" and isinstance(dig(msg.message, "order"), dict) and self.cancelled_in is None:
            if not (isinstance(msg.body, dict) and msg.body.get("error") is not None):
                self.cancelled_in = msg

    def earlier_request_with_id(self, msg: Message) -> Message | None:
        return next((r for r in self.requests if r.message_id == msg.message_id), None)

    def _pair(self, msg: Message) -> Pairing:
        wanted = request_of(msg.action or "")
        same_action = [r for r in self.requests if r.action == wanted]
        exact = next((r for r in reversed(same_action) if r.message_id == msg.message_id), None)
        if exact is not None:
            sender = msg.context.get("bpp_id")
            previous = self.answered.get(exact.seq, [])
            # A gateway fans a search out: one on_search per BPP is expected, two from the same BPP are not.
            if any(wanted != "search" or p.context.get("bpp_id") == sender for p in previous):
                return Pairing(exact, "duplicate")
            return Pairing(exact, "exact")
        if msg.message_id is not None:
            elsewhere = self.foreign(wanted, msg.message_id)
            if elsewhere is not None:
                return Pairing(elsewhere, "foreign")
        pending = [r for r in same_action if r.seq not in self.answered]
        if len(pending) == 1:
            return Pairing(pending[0], "mismatch")
        return Pairing(None, "orphan")


def domain_key(msg: Message) -> tuple[Any, Any]:
    """(domain, version) of a message, as a set can hold them: a list or object there (a broken message, which
    the schema rules report) stands as its repr."""
    domain, version = msg.context.get("domain"), msg.context.get("version")
    if isinstance(domain, str) and isinstance(version, str):  # nearly always: once per message, so kept cheap
        return domain, version
    return _hashable(domain), _hashable(version)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def order_key(messages: list[Message]) -> Callable[[Message], Any]:
    """Sort by capture time when every message has one, else by context timestamp, else keep input order.

    Without capture times a callback is never put before the request it answers (same message_id): a
    callback timestamped before its request is a finding about that timestamp, not about the order the
    messages travelled in. Ties (the guide gives a request and its callback the same second) go request
    first, in flow order.
    """
    def rank(m: Message) -> tuple[int, int]:
        action = m.action or ""
        return FLOW_ORDER.get(request_of(action) if is_callback(action) else action, 99), int(is_callback(action))

    if all(m.received_at is not None for m in messages):
        return lambda m: (m.received_at, rank(m), m.seq)
    if not all(m.timestamp is not None for m in messages):
        return lambda m: m.seq
    sent = {(m.action, m.message_id): m.timestamp for m in messages if not is_callback(m.action or "")}

    def when(m: Message) -> datetime | None:
        own = m.timestamp
        request = sent.get((request_of(m.action or ""), m.message_id)) if is_callback(m.action or "") else None
        return max(own, request) if own is not None and request is not None else own

    return lambda m: (when(m), rank(m), m.seq)


def group(messages: list[Message]) -> list[Transaction]:
    """Split usable messages into transactions (by transaction_id, in first-seen order), each sorted."""
    by_id: dict[str | None, list[Message]] = {}
    loose: list[list[Message]] = []
    for msg in messages:
        tid = msg.transaction_id
        if tid is None:
            loose.append([msg])
        else:
            by_id.setdefault(tid, []).append(msg)
    index: dict[tuple[str, str], Message] = {}
    for msg in messages:
        key = request_key(msg)
        if key is not None:
            index.setdefault(key, msg)
    out = []
    for tid, msgs in list(by_id.items()) + [(None, m) for m in loose]:
        def foreign(action: str, message_id: str, tid: str | None = tid) -> Message | None:
            found = index.get((action, message_id))
            return found if found is not None and found.transaction_id != tid else None
        out.append(transaction(tid, msgs, foreign))
    return out


def request_key(msg: Message) -> tuple[str, str] | None:
    """(action, message_id) of a request, by which a callback in another transaction finds it; None for a
    callback, or a request without a message_id."""
    if msg.action and not is_callback(msg.action) and msg.message_id is not None:
        return msg.action, msg.message_id
    return None


def transaction(tid: str | None, messages: list[Message], foreign: ForeignLookup) -> Transaction:
    """One transaction's messages, sorted (in place) into the order they are checked in."""
    messages.sort(key=order_key(messages))
    return Transaction(tid, messages, foreign)
