"""A reference BAP: receives callbacks at its network endpoint, and sends requests for whoever drives its client.

The client endpoint takes `POST /{action}` with `{context, message}`, as the Beckn protocol-server's BAP
client does: it fills in the BAP's own context fields, signs, and sends the request into the network (a
search to the gateway unless it names a BPP; everything else to context.bpp_uri).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.messages import CALLBACK_ACTIONS, REQUEST_ACTIONS
from conformance.engine import Engine
from conformance.network.participant import INVALID_REQUEST, Participant, ack, join, nack, now_rfc3339, read_json
from conformance.signing import KeyPair


class ReferenceBAP(Participant):
    def __init__(self, key: KeyPair, *, url: str, gateway_url: str, domain: str, engine: Engine,
                 faults: frozenset[str] = frozenset(), skew: int = 5) -> None:
        super().__init__(key, engine=engine, faults=faults, skew=skew)
        self.url = url
        self.gateway_url = gateway_url
        self.domain = domain
        self.inbox: list[dict[str, Any]] = []
        """Every callback received, in arrival order: {received_at, action, body, headers}."""
        self.outbox: list[dict[str, Any]] = []
        """Every request sent, in order: {sent_at, action, body, url, status_code, response}."""

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
        admitted = await self.admit(request, action, "bpp_id")
        if isinstance(admitted, JSONResponse):
            return admitted
        _, doc = admitted
        self.inbox.append({"received_at": received, "action": action, "body": doc,
                           "headers": {k: v for k, v in request.headers.items()
                                       if k.lower() in ("authorization", "x-gateway-authorization")}})
        return ack()

    async def read_inbox(self, request: Request) -> JSONResponse:
        txn = request.query_params.get("transaction_id")
        return JSONResponse([m for m in self.inbox if txn is None or m["body"]["context"].get("transaction_id") == txn])

    async def send(self, request: Request) -> JSONResponse:
        action = request.path_params["action"]
        _, doc = await read_json(request)
        if action not in REQUEST_ACTIONS or not isinstance(doc, dict):
            return JSONResponse({"error": f"POST /{{action}} with {{context, message}}; {action!r} is not a request"},
                                status_code=400)
        context = {"domain": self.domain, "version": "1.1.0", "ttl": "PT30S", **(doc.get("context") or {}),
                   "action": action, "bap_id": self.key.subscriber_id, "bap_uri": self.url,
                   "timestamp": now_rfc3339()}
        context.setdefault("transaction_id", str(uuid.uuid4()))
        context.setdefault("message_id", str(uuid.uuid4()))
        target = context.get("bpp_uri") if (action != "search" or context.get("bpp_uri")) else self.gateway_url
        if not isinstance(target, str):
            return JSONResponse({"error": "context.bpp_uri is needed for every action but search"}, status_code=400)
        payload = {"context": context, "message": doc.get("message") or {}}
        sent_at = time.time()
        response = await self.post(join(target, action), payload)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        self.outbox.append({"sent_at": sent_at, "action": action, "body": payload, "url": join(target, action),
                            "status_code": response.status_code, "response": answer})
        return JSONResponse({"context": context, "status_code": response.status_code, "response": answer})

    def transcript(self, transaction_id: str) -> list[dict[str, Any]]:
        """The transaction as this BAP saw it, as wrapped JSON Lines records (`deg-conformance validate` reads them)."""
        records = [{"received_at": m["sent_at"], "direction": "out", "url": m["url"], "response": m["response"],
                    "body": m["body"]} for m in self.outbox if m["body"]["context"]["transaction_id"] == transaction_id]
        records += [{"received_at": m["received_at"], "direction": "in", "url": join(self.url, m["action"]),
                     "body": m["body"]} for m in self.inbox
                    if m["body"]["context"].get("transaction_id") == transaction_id]
        return sorted(records, key=lambda r: r["received_at"])
