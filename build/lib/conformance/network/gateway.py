"""A reference gateway (BG): fans a search out to every BPP subscribed for its domain, relays on_search back."""
from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.messages import dig
from conformance.network.participant import INVALID_REQUEST, Participant, join, log_failure, nack
from conformance.network.registry import Registry
from conformance.signing import KeyPair


class ReferenceGateway(Participant):
    def __init__(self, key: KeyPair, *, directory: Registry, **kwargs: Any) -> None:
        super().__init__(key, **kwargs)
        self.directory = directory
        """The network's registry, read in process to find the BPPs of a search: a DeDi registry answers one key
        at a time and cannot list the BPPs of a domain, and the gateway runs beside the registry anyway."""
        self.searches: set[tuple[Any, Any]] = set()
        """(transaction_id, message_id) of every search relayed: a second one is a replay or a reused id."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/search", self.search, methods=["POST"]),
                                 Route("/on_search", self.on_search, methods=["POST"])])

    async def search(self, request: Request) -> JSONResponse:
        accepted = await self.admit(request, "search", "bap_id")
        if isinstance(accepted, JSONResponse):
            return accepted
        body, doc = accepted
        search = (doc["context"].get("transaction_id"), doc["context"].get("message_id"))
        if search in self.searches and "no-validation" not in self.faults:
            return nack(INVALID_REQUEST, "this message_id was already used in this transaction (a replay, or a "
                                         "reused id)", paths="$.context.message_id")
        self.searches.add(search)
        return JSONResponse({"message": {"ack": {"status": "ACK"}}},
                            background=self.after_response(self._fan_out, body, doc,
                                                           request.headers.get("Authorization")))

    async def _fan_out(self, body: bytes, doc: dict[str, Any], authorization: str | None) -> None:
        context = doc["context"]
        city = dig(context, "location", "city", "code")
        bpps = self.directory.lookup({"type": "BPP", "domain": context.get("domain"),
                                      **({"city": city} if isinstance(city, str) else {})})
        for bpp in bpps:
            await self._relay(join(bpp.url, "search"), body, authorization)

    async def on_search(self, request: Request) -> JSONResponse:
        accepted = await self.admit(request, "on_search", "bpp_id")
        if isinstance(accepted, JSONResponse):
            return accepted
        body, doc = accepted
        bap_uri = doc["context"].get("bap_uri")
        if not isinstance(bap_uri, str):
            return nack(INVALID_REQUEST, "context.bap_uri is missing", paths="$.context.bap_uri")
        return JSONResponse({"message": {"ack": {"status": "ACK"}}},
                            background=self.after_response(self._relay, join(bap_uri, "on_search"), body,
                                                           request.headers.get("Authorization")))

    async def _relay(self, url: str, body: bytes, authorization: str | None) -> None:
        """Forward the exact bytes, keeping the sender's signature and adding the gateway's own."""
        headers = self.sign_headers(body, "X-Gateway-Authorization")
        if authorization:
            headers["Authorization"] = authorization
        try:
            await self.forward(url, body, headers)
        except Exception as exc:  # noqa: BLE001 - one unreachable subscriber must not stop the fan-out
            log_failure(f"{self.key.subscriber_id}: relaying to {url}", exc)
