"""A reference BPP: publishes its catalog's providers and their programs, takes orders, answers each request with
its callback."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance import usecases
from conformance.engine import Engine
from conformance.messages import dig, objects, parse_duration
from conformance.network.catalog import providers_of, with_other_ids
from conformance.network.participant import (
    ACTION_NOT_APPLICABLE, BPP_ONLY, BPP_VARIATIONS, INVALID_REQUEST, INVALID_UPDATE_TARGET, ITEM_NOT_FOUND,
    ORDER_NOT_FOUND, PROVIDER_NOT_FOUND, TRACKING_NOT_SUPPORTED, Participant, ack, error, join, json_copy, log_failure,
    nack, now_rfc3339,
)
from conformance import signing
from conformance.signing import KeyPair, SignatureError
from conformance.usecases import Orders

SUPPORTED = ("search", "select", "init", "confirm", "status", "track", "cancel", "update", "rating", "support")


class Refusal(Exception):
    """A request the BPP cannot serve: answered with a NACK and this BECKN-005 code, and no callback (with the
    no-validation fault: an ACK, and a callback carrying the error)."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


class ReferenceBPP(Participant):
    own_faults = BPP_ONLY
    own_variations = frozenset(BPP_VARIATIONS)

    def __init__(self, key: KeyPair, *, url: str, catalog: dict[str, Any], engine: Engine,
                 faults: frozenset[str] = frozenset(), variations: frozenset[str] = frozenset(), skew: int = 5,
                 latency: float = 0.0, orders: Orders | None = None) -> None:
        """`catalog`: a catalog file's content, in either shape (see load_catalog); `orders`: how its use case
        moves an order through its fulfillment states (default: the default use case's)."""
        super().__init__(key, engine=engine, faults=faults, variations=variations, skew=skew)
        self.states = orders or usecases.named(usecases.DEFAULT).orders
        if "other-first-state" in variations and self.states.confirmed_otherwise is None:
            raise ValueError("other-first-state: this use case names no other state a new order may be in")
        self.url = url
        providers = providers_of(catalog)
        if "other-ids" in variations:
            providers = [with_other_ids(p) for p in providers]
        self.providers: dict[str, dict[str, Any]] = {p["id"]: p for p in providers}
        """By id, in the catalog's order."""
        self.catalog_descriptor = catalog.get("catalog_descriptor", {})
        self.first_state = (self.states.confirmed_otherwise if "other-first-state" in variations
                            else None) or self.states.confirmed
        """The fulfillment state of a confirmed order, until status moves it on."""
        self.latency = latency
        self.orders: dict[str, dict[str, Any]] = {}
        """Confirmed orders by id."""
        self.confirmed_in: dict[Any, str] = {}
        """transaction_id -> the id of the order confirmed in it: an update that names no order is about that one."""
        self.seen: set[tuple[Any, Any]] = set()
        """(transaction_id, message_id) of every request served: a second one is a replay or a reused id."""
        self.initialised: set[Any] = set()
        """Transactions whose order was readied for confirm: by an init, or by the request the use case confirms
        after instead (select, in energy finance)."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{action}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> JSONResponse:
        action = request.path_params["action"]
        if action not in SUPPORTED:
            return nack(ACTION_NOT_APPLICABLE, f"{action} is not offered by this BPP")
        admitted = await self.admit(request, action, "bap_id", "bpp_id")
        if isinstance(admitted, JSONResponse):
            return admitted
        _, doc = admitted
        context: dict[str, Any] = doc["context"]
        try:
            content = {"message": self.answer(action, doc)}
        except Refusal as refusal:
            if "no-validation" not in self.faults:
                return nack(refusal.code, refusal.message, paths=refusal.path)
            # A BPP that ACKs everything finds out later that it cannot serve: it says so in the callback.
            content = {"error": error(refusal.code, refusal.message, refusal.path)}
        if "no-callback" in self.faults:
            return ack()
        reply_to = context.get("bap_uri")
        gateway = request.headers.get("X-Gateway-Authorization")
        if action == "search" and gateway:
            reply_to = await self._gateway_url(gateway) or reply_to
        return JSONResponse({"message": {"ack": {"status": "ACK"}}},
                            background=self.after_response(self.call_back, action, context, content, reply_to))

    async def _gateway_url(self, header: str) -> str | None:
        """A search relayed by a gateway is answered through it (the gateway relays on_search to the BAP).
        None when the header names no registered gateway (possible only when signatures are not checked). The
        entry is the cached one the gateway's signature was just checked against: no lookup per relayed search."""
        assert self.registry is not None
        try:
            params = signing.parse(header)
            found = await self.registry.known_entry(params.subscriber_id, params.unique_key_id, type="BG")
        except SignatureError:
            return None
        except (httpx.HTTPError, ValueError) as exc:
            log_failure(f"{self.key.subscriber_id}: looking up the gateway of a search", exc)
            return None
        url = found.get("url") if found is not None else None
        return url if isinstance(url, str) else None

    def catalog(self) -> dict[str, Any]:
        """What on_search carries: every provider of this BPP's catalog."""
        return {"catalog": {"descriptor": self.catalog_descriptor, "providers": list(self.providers.values())}}

    def answer(self, action: str, doc: dict[str, Any]) -> dict[str, Any]:
        """The callback's message for a request, or a Refusal. Orders change state here.
        Reads the request defensively: with the no-validation fault, nothing about its shape is known."""
        message = _object(doc.get("message"))
        context = _object(doc.get("context"))
        request = (context.get("transaction_id"), context.get("message_id"))
        if request in self.seen:
            raise Refusal(INVALID_REQUEST, "this message_id was already used in this transaction (a replay, or "
                                           "a reused id)", "$.context.message_id")
        self.seen.add(request)
        if action == "search":
            return self.catalog()
        if action in ("select", "init", "confirm"):
            order = self._order_from(_object(message.get("order")))
            if action == "confirm" and context.get("transaction_id") not in self.initialised:
                raise Refusal(INVALID_REQUEST, f"confirm before {self.states.confirm_after}: this transaction has no "
                                               "initialised order", "$.context.transaction_id")
            if action in ("init", self.states.confirm_after):
                self.initialised.add(context.get("transaction_id"))
            if action == "confirm":
                order["id"] = f"order-{uuid.uuid4()}"
                self._set_state(order, self.first_state)
                self.orders[order["id"]] = order
                self.confirmed_in[context.get("transaction_id")] = order["id"]
            return {"order": json_copy(order)}
        if action == "support":  # like status: about an order of this BPP, so an unknown ref_id is refused
            ref = dig(message, "support", "ref_id")
            if "invent-orders" in self.faults and isinstance(ref, str):
                self.orders.setdefault(ref, self._invented(ref))
            if not isinstance(ref, str) or ref not in self.orders:
                raise Refusal(ORDER_NOT_FOUND, f"no order {ref!r} here to support", "$.message.support.ref_id")
            if "support-ticket" in self.variations:  # the support request gets a ticket of its own
                ref = f"support-{uuid.uuid4()}"
            return {"support": {"ref_id": ref, "phone": "+14155550123", "email": f"support@{self.key.subscriber_id}"}}
        if action == "rating":  # of an order, item, fulfillment or provider (ratings[].id): taken, nothing to answer
            if not any(True for _ in objects(message.get("ratings"))):
                raise Refusal(INVALID_REQUEST, "a rating names what it rates in message.ratings", "$.message.ratings")
            return {}
        return self._about_order(action, message, context.get("transaction_id"))

    def _about_order(self, action: str, message: dict[str, Any], transaction_id: Any) -> dict[str, Any]:
        """status, track, cancel and update: about an order this BPP confirmed (update names it at
        message.order.id, the others at message.order_id), moved on as the use case says. Core 1.1.0 does not
        require an update's order to carry its id (the UEI EV charging guide's updates carry none): an update
        without one is about the order confirmed in its transaction."""
        where = "$.message.order.id" if action == "update" else "$.message.order_id"
        order_id = dig(message, "order", "id") if action == "update" else message.get("order_id")
        if action == "update" and order_id is None:
            order_id = self.confirmed_in.get(transaction_id)
        if "invent-orders" in self.faults and isinstance(order_id, str):
            self.orders.setdefault(order_id, self._invented(order_id))
        order = self._known_order(order_id, where)
        state = dig(order, "fulfillments", 0, "state", "descriptor", "code")
        states = self.states
        if action == "track" and "no-tracking" in self.variations:
            raise Refusal(TRACKING_NOT_SUPPORTED, "Tracking not supported", "$.message.order_id")
        if action == "track":
            return {"tracking": {"id": order["id"], "url": f"{self.url}/tracking/{order['id']}", "status": "active"}}
        if action == "cancel":
            self._set_state(order, states.cancelled)
        elif action == "update":
            asked = next((code for _, f in objects(dig(message, "order", "fulfillments"))
                          if isinstance(code := dig(f, "state", "descriptor", "code"), str)), None)
            if not isinstance(asked, str) or asked not in states.updates:
                # 30012, not 40001: BECKN-005 keeps 40001 for an endpoint the BPP does not implement, and this BPP
                # implements update; what it cannot do is move the order to the state the update targets.
                raise Refusal(INVALID_UPDATE_TARGET, f"an update to {asked!r} is not one this BPP makes (it makes: "
                                                     f"{', '.join(states.updates) or 'none'})",
                              "$.message.order.fulfillments[0].state.descriptor.code")
            self._set_state(order, states.updates[asked])
        elif state == states.cancelled and "forget-cancellation" in self.faults:
            answer = json_copy(order)
            self._set_state(answer, states.after_status.get(self.first_state, self.first_state))
            return {"order": answer}
        elif isinstance(state, str) and state in states.after_status:
            self._set_state(order, states.after_status[state])
        return {"order": json_copy(order)}

    def _invented(self, order_id: str) -> dict[str, Any]:
        """The invent-orders fault: an order nobody confirmed, of this BPP's first item."""
        provider = next(iter(self.providers.values()))
        item: dict[str, Any] = next((json_copy(i) for _, i in objects(provider.get("items"))), {})
        order = {"id": order_id, "provider": {"id": provider.get("id")}, "items": [item], "fulfillments": []}
        self._set_state(order, self.first_state)
        return order

    def _order_from(self, requested: dict[str, Any]) -> dict[str, Any]:
        provider_id = dig(requested, "provider", "id")
        provider = self.providers.get(provider_id) if isinstance(provider_id, str) else None
        if provider is None:
            raise Refusal(PROVIDER_NOT_FOUND, f"provider {provider_id!r} is not published here",
                          "$.message.order.provider.id")
        items = {i["id"]: i for _, i in objects(provider.get("items")) if "id" in i}
        chosen = []
        for n, (_, item) in enumerate(objects(requested.get("items"))):
            if not isinstance(item.get("id"), str) or item["id"] not in items:
                raise Refusal(ITEM_NOT_FOUND, f"item {item.get('id')!r} is not one of {provider_id}'s",
                              f"$.message.order.items[{n}].id")
            full = json_copy(items[item["id"]])
            for field in ("location_ids", "category_ids", "fulfillment_ids"):
                full.pop(field, None)
            chosen.append(full)
        if not chosen:
            raise Refusal(ITEM_NOT_FOUND, "the order names no item", "$.message.order.items")
        descriptor = provider.get("descriptor", {})
        fulfillments = [json_copy(f) for _, f in objects(requested.get("fulfillments"))]
        return {"provider": {"id": provider_id, "descriptor": descriptor}, "items": chosen,
                "fulfillments": fulfillments}

    def _known_order(self, order_id: Any, where: str) -> dict[str, Any]:
        if not isinstance(order_id, str) or order_id not in self.orders:
            raise Refusal(ORDER_NOT_FOUND, f"no order {order_id!r} here", where)
        return self.orders[order_id]

    def _set_state(self, order: dict[str, Any], code: str) -> None:
        code = "SMS" if "enum-out-of-range" in self.faults else code
        fulfillments = order.setdefault("fulfillments", [])
        if not fulfillments:
            fulfillments.append({})
        for ful in fulfillments:
            ful["state"] = {"descriptor": {"code": code}}

    async def call_back(self, action: str, request_context: dict[str, Any], content: dict[str, Any],
                        reply_to: Any) -> None:
        """Send on_<action> (`content` is its message, or an error) to the BAP that asked, or the gateway that
        relayed its search, signed by this BPP: after `latency` seconds, and after the ttl too with the
        late-callback fault."""
        delay = self.latency
        if "late-callback" in self.faults:
            ttl = parse_duration(request_context.get("ttl"))
            delay += (ttl.total_seconds() if ttl is not None else 30.0) + 1.0
        if delay:
            await asyncio.sleep(delay)
        await self._send_callback(action, request_context, content, reply_to)

    async def _send_callback(self, action: str, request_context: dict[str, Any], content: dict[str, Any],
                             reply_to: Any) -> None:
        if not isinstance(reply_to, str):
            return
        context = {**request_context, "action": f"on_{action}", "bpp_id": self.key.subscriber_id,
                   "bpp_uri": self.url, "timestamp": now_rfc3339()}  # when it is sent, after any delay
        if "wrong-callback-message-id" in self.faults:
            context["message_id"] = str(uuid.uuid4())
        if "wrong-callback-transaction-id" in self.faults:
            context["transaction_id"] = str(uuid.uuid4())
        raw = orjson.dumps({"context": context, **content})
        headers = self.sign_headers(raw)
        for _ in range(2 if "duplicate-callback" in self.faults else 1):  # a duplicate: the same bytes and header
            try:
                await self.forward(join(reply_to, context["action"]), raw, headers)
            except Exception as exc:  # noqa: BLE001 - an unreachable BAP is the BAP's problem; the BPP carries on
                log_failure(f"{self.key.subscriber_id}: on_{action} to {reply_to}", exc)
                return


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
