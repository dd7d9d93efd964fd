"""A reference BAP: receives callbacks at its network endpoint, and sends requests for whoever drives its client.

The client endpoint takes `POST /{action}` with `{context, message}`, as the Beckn protocol-server's BAP
client does: it fills in the BAP's own context fields, signs, and sends the request into the network (a
search to the gateway unless it names a BPP; everything else to context.bpp_uri).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.messages import CALLBACK_ACTIONS, REQUEST_ACTIONS, dig, objects
from conformance.engine import Engine
from conformance.network.participant import (
    BAP_ONLY, BAP_VARIATIONS, INVALID_REQUEST, Participant, ack, join, nack, now_rfc3339, read_json,
)
from conformance.signing import KeyPair


BUILDS_ON = {"on_select": "init", "on_init": "confirm"}
"""A callback, and the request that goes on from it: after an error in the callback, a BAP does not send it."""


class ReferenceBAP(Participant):
    own_faults = BAP_ONLY
    own_variations = frozenset(BAP_VARIATIONS)

    def __init__(self, key: KeyPair, *, url: str, gateway_url: str, domain: str, engine: Engine,
                 faults: frozenset[str] = frozenset(), variations: frozenset[str] = frozenset(), skew: int = 5) -> None:
        super().__init__(key, engine=engine, faults=faults, variations=variations, skew=skew)
        self.forwards_all = "ignore-error-callback" in faults or "thin-client" in variations
        """Its client sends an init or confirm after an error callback too. The same on the wire whether it is a
        fault (this BAP should have stopped) or a variation (a thin adapter; stopping is the app's decision)."""
        self.url = url
        self.gateway_url = gateway_url
        self.domain = domain
        self.inbox: list[dict[str, Any]] = []
        """Every callback received, in arrival order: {received_at, action, body, headers}."""
        self.outbox: list[dict[str, Any]] = []
        """Every request sent, in order: {sent_at, action, body, url, status_code, response}."""
        self._last_message_id: dict[str, str] = {}
        """The message_id of the last request sent in each transaction this BAP started (its callbacks are
        taken; any other is refused), for the reused-message-id fault too."""
        self._refused: dict[tuple[str, str], str] = {}
        """(transaction_id, the request that would build on a refused step) -> the error code the BPP gave."""
        self._signatures_seen: set[str] = set()
        """The Authorization header of every callback taken: the same one again is a replay."""

    def network_app(self) -> Starlette:
        return Starlette(routes=[Route("/{action}", self.receive, methods=["POST"])])

    def client_app(self) -> Starlette:
        return Starlette(routes=[Route("/inbox", self.read_inbox, methods=["GET"]),
                                 Route("/{action}", self.send, methods=["POST"])])

    async def receive(self, request: Request) -> JSONResponse:
        action = request.path_params["action"]
        received = time.time()
        if action not in CALLBACK_ACTIONS:
            return nack(INVALID_REQUEST, f"/{action} is not a BAP callback endpoint")
        admitted = await self.admit(request, action, "bpp_id", "bap_id")
        if isinstance(admitted, JSONResponse):
            return admitted
        _, doc = admitted
        if "no-validation" not in self.faults:
            if doc["context"].get("transaction_id") not in self._last_message_id:
                return nack(INVALID_REQUEST, "a callback for a transaction this BAP never started",
                            paths="$.context.transaction_id")
            signature = request.headers.get("Authorization")
            if signature in self._signatures_seen:
                return nack(INVALID_REQUEST, "a replay: this exact callback, under this signature, came already")
            if signature:
                self._signatures_seen.add(signature)
        code = dig(doc, "error", "code")
        if action in BUILDS_ON and code is not None:
            self._refused[(str(doc["context"].get("transaction_id")), BUILDS_ON[action])] = str(code)
        self.inbox.append({"received_at": received, "action": action, "body": doc,
                           "headers": {k: v for k, v in request.headers.items()
                                       if k.lower() in ("authorization", "x-gateway-authorization")}})
        return ack()

    async def read_inbox(self, request: Request) -> JSONResponse:
        txn = request.query_params.get("transaction_id")
        return JSONResponse([m for m in self.inbox if txn is None or m["body"]["context"].get("transaction_id") == txn])

    async def send(self, request: Request) -> JSONResponse:
        """Answers what the target answered; 400 for a request this client cannot send, 502 when the target
        cannot be reached (both with a JSON `error`)."""
        action = request.path_params["action"]
        try:
            doc = read_json(await request.body())
        except ValueError as exc:
            return _client_error(400, str(exc))
        if action not in REQUEST_ACTIONS or not isinstance(doc, dict):
            return _client_error(400, f"POST /{{action}} with {{context, message}}; {action!r} is not a request")
        given = doc.get("context")
        if not isinstance(given, (dict, type(None))):
            return _client_error(400, f"context must be an object, not {type(given).__name__}")
        context = {"domain": self.domain, "version": "1.1.0", "ttl": "PT30S", **(given or {}),
                   "action": action, "bap_id": self.key.subscriber_id, "bap_uri": self.url,
                   "timestamp": now_rfc3339()}
        context.setdefault("transaction_id", str(uuid.uuid4()))
        context.setdefault("message_id", str(uuid.uuid4()))
        refused = self._refused.get((str(context["transaction_id"]), action))
        if refused is not None and not self.forwards_all:
            return _client_error(409, f"the BPP refused the step {action} builds on in this transaction (error "
                                      f"{refused}): not sending {action}", context)
        target = context.get("bpp_uri") if (action != "search" or context.get("bpp_uri")) else self.gateway_url
        if not isinstance(target, str):
            return _client_error(400, "context.bpp_uri is needed for every action but search")
        payload = self._misbehave(action, {"context": context, "message": doc.get("message") or {}})
        context = payload["context"]
        url = join(target, action)
        sent_at = time.time()
        try:
            response = await self.post(url, payload)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _client_error(400, f"context.bpp_uri {target!r} is not a URL: {exc}", context)
        except httpx.HTTPError as exc:
            return _client_error(502, f"{url} could not be reached: {type(exc).__name__}: {exc}", context)
        try:
            answer: Any = read_json(response.content)
        except ValueError:
            answer = response.text
        self.outbox.append({"sent_at": sent_at, "action": action, "body": payload, "url": url,
                            "status_code": response.status_code, "response": answer})
        return JSONResponse({"context": context, "status_code": response.status_code, "response": answer})

    def adopt(self, transaction_id: str) -> None:
        """Take callbacks for a transaction whose requests someone else sent in this BAP's name (a test that
        signs with this BAP's key and posts to a BPP itself): a BAP refuses callbacks for transactions it
        never started."""
        self._last_message_id.setdefault(transaction_id, "")

    def _misbehave(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The request as this BAP's faults bend it (unchanged without faults); remembers its message_id."""
        context, message = payload["context"], payload["message"]
        transaction = str(context.get("transaction_id"))
        if "fresh-transaction-id" in self.faults and action != "search":
            context["transaction_id"] = str(uuid.uuid4())
        if "reused-message-id" in self.faults and self._last_message_id.get(transaction):  # "": adopted, none sent
            context["message_id"] = self._last_message_id[transaction]
        self._last_message_id[transaction] = str(context["message_id"])
        self._last_message_id.setdefault(str(context["transaction_id"]), "")  # a fresh one is this BAP's too
        if "unknown-item" in self.faults and action in ("select", "init", "confirm"):
            for _, item in objects(dig(message, "order", "items")):
                item["id"] = "item-not-in-any-catalog"
        if "wrong-order-id" in self.faults:
            made_up = f"order-{uuid.uuid4()}"
            if action in ("status", "cancel") and isinstance(message, dict):
                message["order_id"] = made_up
            elif action == "support" and isinstance(dig(message, "support"), dict):
                message["support"]["ref_id"] = made_up
        return payload

    def transcript(self, transaction_id: str) -> list[dict[str, Any]]:
        """The transaction as this BAP saw it, as wrapped JSON Lines records (`deg-conformance validate` reads them)."""
        records = [{"received_at": m["sent_at"], "direction": "out", "url": m["url"], "response": m["response"],
                    "body": m["body"]} for m in self.outbox if m["body"]["context"]["transaction_id"] == transaction_id]
        records += [{"received_at": m["received_at"], "direction": "in", "url": join(self.url, m["action"]),
                     "body": m["body"]} for m in self.inbox
                    if m["body"]["context"].get("transaction_id") == transaction_id]
        return sorted(records, key=lambda r: r["received_at"])


def _client_error(status: int, message: str, context: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, **({"context": context} if context else {})}, status_code=status)
