"""Order rules: what the BAP orders exists in the catalog, and the BPP keeps to the order it confirmed."""
from __future__ import annotations

import re
from typing import Any, Iterator

from conformance.findings import ABSENT, Violation
from conformance.messages import Message, dig, objects
from conformance.rules.registry import CheckContext, rule

ORDER = "Beckn core 1.1.0, Order"
ORDERING = ("select", "init", "confirm")


def _catalog_known(msg: Message, ctx: CheckContext) -> bool:
    return bool(ctx.txn.providers)


def _provider_id(msg: Message) -> Any:
    return dig(msg.message, "order", "provider", "id")


@rule("ORD_PROVIDER_UNKNOWN", group="order", actions=ORDERING, when=_catalog_known,
      title="The provider ordered is one the on_search catalog published",
      clause=f"{ORDER}.provider.id: BECKN-005 30001 'Provider not found'",
      must="be the id of a provider in an earlier on_search catalog")
def provider_unknown(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    provider_id = _provider_id(msg)
    if isinstance(provider_id, str) and provider_id not in ctx.txn.providers:
        yield Violation(("message", "order", "provider", "id"), sorted(ctx.txn.providers), provider_id)


def _published(rule_id: str, member: str, title: str, clause: str) -> None:
    """A rule that each `order.<member>[].id` is one the ordered provider published (when it is known)."""
    def check(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
        provider = ctx.txn.providers.get(str(_provider_id(msg)))
        if provider is None:
            return  # unknown provider: ORD_PROVIDER_UNKNOWN says so
        known = sorted(o["id"] for _, o in objects(provider.get(member)) if isinstance(o.get("id"), str))
        for i, obj in objects(dig(msg.message, "order", member)):
            if isinstance(obj.get("id"), str) and obj["id"] not in known:
                yield Violation(("message", "order", member, i, "id"), known, obj["id"])

    rule(rule_id, group="order", actions=ORDERING, when=_catalog_known, title=title, clause=clause,
         must=f"be the id of one of the {member} the provider published in on_search")(check)


_published("ORD_ITEM_UNKNOWN", "items", "Every item ordered is one the chosen provider published",
           f"{ORDER}.items[].id: BECKN-005 30004 'Item not found'")
_published("ORD_FULFILLMENT_UNKNOWN", "fulfillments", "A fulfillment id in the order is one the chosen provider published",
           f"{ORDER}.fulfillments[].id: BECKN-005 30008 'Fulfillment unavailable'")


def _answers_order_request(msg: Message, ctx: CheckContext) -> bool:
    pairing = ctx.txn.pairing
    return (pairing is not None and pairing.request is not None and pairing.kind != "foreign"
            and not _refuses(msg, ctx))


def _refuses(msg: Message, ctx: CheckContext) -> bool:
    """A callback that carries an error refuses the request: it holds no order to echo or number."""
    return isinstance(msg.body, dict) and msg.body.get("error") is not None


@rule("ORD_CALLBACK_PROVIDER", group="order", actions=("on_select", "on_init", "on_confirm"),
      when=_answers_order_request,
      title="on_select/on_init/on_confirm echo the provider the request named",
      clause=f"{ORDER}.provider: the BPP answers for the order the BAP sent",
      must="equal the provider id of the request it answers")
def callback_provider(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    asked = _provider_id(ctx.request)
    answered = _provider_id(msg)
    if isinstance(asked, str) and answered != asked:
        yield Violation(("message", "order", "provider", "id"), asked, ABSENT if answered is None else answered)


def _item_ids(msg: Message) -> list[Any]:
    return [item.get("id") for _, item in objects(dig(msg.message, "order", "items"))]


@rule("ORD_CALLBACK_ITEMS", group="order", actions=("on_select", "on_init", "on_confirm"),
      when=_answers_order_request,
      title="on_select/on_init/on_confirm echo the items the request named",
      clause=f"{ORDER}.items: the BPP answers for the order the BAP sent",
      must="hold the same item ids as the request it answers")
def callback_items(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    asked = _item_ids(ctx.request)
    answered = _item_ids(msg)
    if asked and sorted(map(str, asked)) != sorted(map(str, answered)):
        yield Violation(("message", "order", "items"), asked, answered)


@rule("ORD_ID_MISSING", group="order", actions=("on_confirm",), when=lambda msg, ctx: not _refuses(msg, ctx),
      title="on_confirm assigns the order an id",
      clause=f"{ORDER}.id: assigned by the BPP when the order is confirmed",
      must="be a non-empty string")
def id_missing(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    order = dig(msg.message, "order")
    if isinstance(order, dict):
        order_id = order.get("id", ABSENT)
        if not isinstance(order_id, str) or not order_id:
            yield Violation(("message", "order", "id"), "the new order's id", order_id)


def _order_known(msg: Message, ctx: CheckContext) -> bool:
    return ctx.txn.order_id is not None


@rule("ORD_REQUEST_ORDER_ID", group="order", actions=("status", "cancel", "track", "update"), when=_order_known,
      title="status/track/cancel/update refer to the order on_confirm created",
      clause="Beckn core 1.1.0: status, track and cancel carry message.order_id; update carries message.order.id "
             "(BECKN-005 30010 'Order not found')",
      must="equal the order id that on_confirm assigned")
def request_order_id(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    path = ("message", "order", "id") if msg.action == "update" else ("message", "order_id")
    value = dig(msg.body, *path)
    if isinstance(value, str) and value != ctx.txn.order_id:
        yield Violation(path, ctx.txn.order_id, value)


@rule("ORD_CALLBACK_ORDER_ID", group="order", actions=("on_status", "on_cancel", "on_update"), when=_order_known,
      title="on_status/on_cancel/on_update carry the id of the confirmed order",
      clause=f"{ORDER}.id: the order is the one on_confirm created",
      must="equal the order id that on_confirm assigned")
def callback_order_id(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    order = dig(msg.message, "order")
    if isinstance(order, dict) and order.get("id", ABSENT) != ctx.txn.order_id:
        yield Violation(("message", "order", "id"), ctx.txn.order_id, order.get("id", ABSENT))


@rule("ORD_SUPPORT_REF_ID", group="order", actions=("support",), when=_order_known,
      title="support about the order names it at message.support.ref_id",
      clause="Beckn core 1.1.0, support: message.support (Support.ref_id); DEG guide v1.0 'support': "
             "specify the order_id in message->support->ref_id",
      must="be the confirmed order's id, at message.support.ref_id")
def support_ref_id(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    ref_id = dig(msg.message, "support", "ref_id")
    misplaced = msg.message.get("ref_id", ABSENT)
    if ref_id is None and misplaced is not ABSENT:
        yield Violation(("message", "support", "ref_id"), ctx.txn.order_id, ABSENT,
                        "hold the order id (found at $.message.ref_id, which core 1.1.0 does not define)")
    elif isinstance(ref_id, str) and ref_id != ctx.txn.order_id:
        yield Violation(("message", "support", "ref_id"), ctx.txn.order_id, ref_id)


_CANCELLED_WORD = re.compile(r"(^|[-_ ])CANCELL?ED$", re.IGNORECASE)


def _cancelled_state(code: Any, declared: frozenset[str]) -> bool:
    """A state the use case's pack lists as cancelled; without such a list, a code whose last word is
    CANCELLED (`APPLICATION_CANCELLED`, `Booking-cancelled`), the best a harness can do without a taxonomy."""
    if not isinstance(code, str):  # absent, or a list or object (SCH_TYPE): no state, and not hashable
        return False
    return code in declared if declared else _CANCELLED_WORD.search(code) is not None


def _cancelled(order: dict[str, Any], declared: frozenset[str]) -> bool:
    if order.get("status") == "CANCELLED":
        return True
    return any(_cancelled_state(dig(f, "state", "descriptor", "code"), declared)
               for _, f in objects(order.get("fulfillments")))


def _unless_cancelled(order: dict, ctx: CheckContext) -> Iterator[Violation]:
    """The one verdict both cancel rules give: an order that shows no cancelled state, with what it shows."""
    pack = ctx.outcome.pack
    if not _cancelled(order, pack.cancelled_states if pack else frozenset()):
        states = [dig(f, "state", "descriptor", "code") for _, f in objects(order.get("fulfillments"))]
        yield Violation(("message", "order"), "status CANCELLED or a cancelled fulfillment state",
                        {"status": order.get("status"), "fulfillment_states": states})


@rule("ORD_NOT_CANCELLED", group="order", actions=("on_cancel",),
      when=lambda msg, ctx: isinstance(dig(msg.message, "order"), dict),
      title="on_cancel shows the order cancelled",
      clause=f"{ORDER}.status CANCELLED, or a fulfillment state the use case's Layer-2 pack lists as cancelled "
             "(DEG demand flexibility: APPLICATION_CANCELLED; without a list, a code ending in the word CANCELLED)",
      must="show a cancelled state (order.status CANCELLED, or a cancelled fulfillment state of the use case)")
def not_cancelled(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    yield from _unless_cancelled(msg.message["order"], ctx)


def _asked_after_cancel(ctx: CheckContext) -> bool:
    """The status this on_status answers was asked after the on_cancel that cancelled the order. An answer to a
    status asked before it (a callback that comes late, or again) may show the order as it was when asked."""
    pairing = ctx.txn.pairing
    if pairing is None or pairing.request is None:
        return True  # answering no known request: judged by when it came
    position = ctx.txn.position
    return position.get(id(pairing.request), -1) > position.get(id(ctx.txn.cancelled_in), -1)


@rule("ORD_STATUS_AFTER_CANCEL", group="order", actions=("on_status",),
      when=lambda msg, ctx: ctx.txn.cancelled_in is not None and isinstance(dig(msg.message, "order"), dict)
      and not _refuses(msg, ctx) and _asked_after_cancel(ctx),
      title="on_status after the order was cancelled still shows it cancelled",
      clause=f"{ORDER}.status and fulfillment state: a cancelled order stays cancelled (the state on_cancel "
             "reported is the order's state from then on)",
      must="show a cancelled state (order.status CANCELLED, or a cancelled fulfillment state of the use case), "
           "since an earlier on_cancel cancelled the order")
def status_after_cancel(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    yield from _unless_cancelled(msg.message["order"], ctx)
