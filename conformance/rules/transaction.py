"""Transaction rules: ids pair callbacks with requests, and the context stays put across the transaction."""
from __future__ import annotations

from typing import Any, Iterator

from conformance._types import PathPart
from conformance.findings import ABSENT, Violation
from conformance.messages import CALLBACK_ACTIONS, REQUEST_ACTIONS, Message, parse_duration, request_of
from conformance.rules.registry import CONTINUES, CheckContext, Condition, reported, rule

CONTEXT = "Beckn core 1.1.0, Context"


def _paired(kind: str) -> Condition:
    return lambda msg, ctx: ctx.txn.pairing is not None and ctx.txn.pairing.kind == kind


def _echoes(rule_id: str, field: str, kind: str, title: str, clause: str) -> None:
    """A rule that a callback's context.<field> equals its request's, for callbacks paired as `kind`."""
    def check(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
        yield Violation(("context", field), ctx.request.context.get(field), msg.context.get(field))

    rule(rule_id, group="transaction", actions=CALLBACK_ACTIONS, when=_paired(kind), title=title, clause=clause,
         must=f"equal the {field} of the request it answers")(check)


_echoes("TXN_CALLBACK_MESSAGE_ID", "message_id", "mismatch",
        "A callback carries the message_id of the request it answers",
        f"{CONTEXT}.message_id: the same for a request and its callback")
_echoes("TXN_CALLBACK_TRANSACTION_ID", "transaction_id", "foreign",
        "A callback carries the transaction_id of the request it answers",
        f"{CONTEXT}.transaction_id: one id from search to the end of the transaction")

REQUEST_TRANSACTION_ID = reported(
    "TXN_REQUEST_TRANSACTION_ID", group="transaction",
    title="A BAP's request continues the transaction its user is in",
    clause=f"{CONTEXT}.transaction_id: one id from search to the end of the transaction",
    must="carry the transaction_id of the transaction it continues (a capture shows only two transactions; "
         "the runner, which started the transaction, knows they are one)")


@rule("TXN_ORPHAN_CALLBACK", group="transaction", actions=CALLBACK_ACTIONS, when=_paired("orphan"),
      title="A callback answers a request that was made",
      clause="Beckn core 1.1.0: every on_<action> is the asynchronous answer to an <action> request",
      must="answer an earlier request of the same transaction")
def orphan_callback(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    yield Violation(("context", "message_id"), f"message_id of an earlier {request_of(msg.action or '')} request",
                    msg.message_id)


@rule("TXN_DUPLICATE_CALLBACK", group="transaction", actions=CALLBACK_ACTIONS, when=_paired("duplicate"),
      title="A request is answered once by each provider platform",
      clause="Beckn core 1.1.0: one callback per request and BPP (a gateway search fans out to several BPPs)",
      must="not repeat a callback already received for this request")
def duplicate_callback(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    yield Violation(("context", "message_id"), "one callback per request and BPP", msg.message_id)


@rule("TXN_MESSAGE_ID_REUSED", group="transaction", actions=REQUEST_ACTIONS,
      title="Each request has a fresh message_id",
      clause=f"{CONTEXT}.message_id: unique for every request",
      must="differ from the message_id of every earlier request",
      when=lambda msg, ctx: msg.message_id is not None)
def message_id_reused(msg: Message, ctx: CheckContext) -> list[Violation]:
    earlier = ctx.txn.earlier_request_with_id(msg)
    if earlier is not None:
        return [Violation(("context", "message_id"), f"a message_id not used by the earlier {earlier.action}",
                          msg.message_id)]
    return []


def changes(path: tuple[PathPart, ...], was: Any, now: Any) -> Iterator[Violation]:
    """The leaves where two JSON values differ, so a finding names `context.location.city.code`, not `location`."""
    if was == now:
        return
    if isinstance(was, dict) and isinstance(now, dict):
        for key in list(was) + [k for k in now if k not in was]:
            yield from changes(path + (key,), was.get(key, ABSENT), now.get(key, ABSENT))
    else:
        yield Violation(path, was, now)


def _unchanged(rule_id: str, fields: tuple[str, ...], title: str) -> None:
    def check(msg: Message, ctx: CheckContext) -> list[Violation]:
        first, now = ctx.first.context, msg.context
        moved = [name for name in fields if first.get(name, ABSENT) != now.get(name, ABSENT)]
        if not moved:  # nearly always
            return []
        # A callback echoes its request's context: where the request changed a field, the change is the request's
        # (reported there), and its sender, not the one that answered as asked, is to blame.
        echoed = ctx.request.context if _answers_request(msg, ctx) else None
        found: list[Violation] = []
        for name in moved:
            if echoed is None or echoed.get(name, ABSENT) != now.get(name, ABSENT):
                found.extend(changes(("context", name), first.get(name, ABSENT), now.get(name, ABSENT)))
        return found

    rule(rule_id, group="transaction", title=title,
         clause=f"{CONTEXT}: set by the BAP when the transaction starts and echoed in every later message",
         must="stay the same as in the transaction's first message",
         when=CONTINUES)(check)


_unchanged("TXN_DOMAIN_CHANGED", ("domain",), "context.domain stays the same throughout a transaction")
_unchanged("TXN_VERSION_CHANGED", ("version",), "context.version stays the same throughout a transaction")
_unchanged("TXN_LOCATION_CHANGED", ("location",), "context.location stays the same throughout a transaction")
_unchanged("TXN_BAP_CHANGED", ("bap_id", "bap_uri"), "bap_id and bap_uri stay the same throughout a transaction")


@rule("TXN_BPP_CHANGED", group="transaction",
      actions=[a for a in REQUEST_ACTIONS + CALLBACK_ACTIONS if a not in ("search", "on_search")],
      title="bpp_id and bpp_uri stay the same once the BAP has chosen a BPP",
      clause=f"{CONTEXT}.bpp_id / bpp_uri: after discovery the BAP talks to the chosen BPP only",
      must="stay the same as in the request that chose the BPP",
      when=lambda msg, ctx: ctx.txn.chosen_bpp is not None)
def bpp_changed(msg: Message, ctx: CheckContext) -> list[Violation]:
    chosen = ctx.txn.chosen_bpp.context if ctx.txn.chosen_bpp else {}
    found: list[Violation] = []
    for name in ("bpp_id", "bpp_uri"):
        was, now = chosen.get(name, ABSENT), msg.context.get(name, ABSENT)
        if was != now:
            found.extend(changes(("context", name), was, now))
    return found


def _answers_request(msg: Message, ctx: CheckContext) -> bool:
    pairing = ctx.txn.pairing
    return pairing is not None and pairing.kind in ("exact", "mismatch", "duplicate")


@rule("TXN_CALLBACK_BEFORE_REQUEST", group="transaction", actions=CALLBACK_ACTIONS, when=_answers_request,
      title="A callback's timestamp is not before its request's",
      clause=f"{CONTEXT}.timestamp: the time the message was sent",
      must="not be earlier than the timestamp of the request it answers")
def callback_before_request(msg: Message, ctx: CheckContext) -> list[Violation]:
    request = ctx.request
    sent, answered = request.timestamp, msg.timestamp
    if sent is not None and answered is not None and answered < sent:
        return [Violation(("context", "timestamp"), f">= {request.context.get('timestamp')}",
                          msg.context.get("timestamp"))]
    return []


@rule("TXN_CALLBACK_AFTER_TTL", group="transaction", actions=CALLBACK_ACTIONS,
      when=lambda msg, ctx: msg.received_at is not None and _answers_request(msg, ctx),
      title="A callback arrives within its request's ttl (when arrival times are known)",
      clause=f"{CONTEXT}.ttl: how long after its timestamp the request remains valid",
      must="arrive before the request's timestamp plus its ttl (default when absent: the harness setting)")
def callback_after_ttl(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    request = ctx.request
    sent = request.received_at or request.timestamp
    ttl = parse_duration(request.context.get("ttl"))
    if ttl is None:
        ttl = ctx.settings.default_ttl
    # Compared as a difference: `sent + ttl` overflows for a time near the year 9999 (a hostile capture).
    if sent is not None and msg.received_at is not None and msg.received_at - sent > ttl:
        yield Violation(("context", "timestamp"), f"arrival by {(sent + ttl).isoformat()}",
                        f"arrived {msg.received_at.isoformat()}")
