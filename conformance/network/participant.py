"""What every reference participant shares: signed sending, verified receiving, ACK/NACK answers, faults."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from conformance import signing
from conformance.engine import Engine
from conformance.findings import Severity
from conformance.messages import Message
from conformance.network.registry import RegistryClient
from conformance.signing import KeyPair, SignatureError

# BECKN-005 codes the reference network answers with.
INVALID_REQUEST = "30000"
PROVIDER_NOT_FOUND = "30001"
ITEM_NOT_FOUND = "30004"
ORDER_NOT_FOUND = "30010"
ACTION_NOT_APPLICABLE = "40001"

FAULTS: dict[str, str] = {
    "wrong-callback-message-id": "callbacks carry a fresh message_id instead of the request's",
    "wrong-callback-transaction-id": "callbacks carry a fresh transaction_id",
    "enum-out-of-range": "fulfillment states outside the DEG taxonomy (SMS)",
    "no-callback": "requests are ACKed but never answered",
    "late-callback": "callbacks are sent after the request's ttl has passed",
    "duplicate-callback": "every callback is sent twice",
    "bad-signature": "callbacks are signed with a key the registry does not have",
    "unsigned": "requests and callbacks are sent without an Authorization header",
    "no-signature-check": "incoming signatures are not verified",
    "no-validation": "incoming messages are not validated (everything is ACKed)",
    "nack-everything": "every incoming message is NACKed",
}
"""The named ways a participant can be told to misbehave, for the harness's own tests."""


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ack() -> JSONResponse:
    return JSONResponse({"message": {"ack": {"status": "ACK"}}})


def nack(code: str, message: str, *, status: int = 400, paths: str | None = None,
         realm: str | None = None) -> JSONResponse:
    """A NACK with a BECKN-005 error; with `realm`, the 401 a signature failure gets (WWW-Authenticate)."""
    error: dict[str, str] = {"code": code, "message": message}
    if paths:
        error["paths"] = paths
    headers = {"WWW-Authenticate": f'Signature realm="{realm}",headers="{signing.SIGNED_HEADERS}"'} if realm else None
    return JSONResponse({"message": {"ack": {"status": "NACK"}}, "error": error}, status_code=status, headers=headers)


class Participant:
    """A subscriber of the reference network: its key, its registry client, its faults."""

    def __init__(self, key: KeyPair, *, engine: Engine, faults: frozenset[str] = frozenset(), skew: int = 5) -> None:
        unknown = faults - FAULTS.keys()
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        self.key = key
        self.engine = engine
        self.faults = faults
        self.skew = skew
        self.http: httpx.AsyncClient | None = None
        self.registry: RegistryClient | None = None
        self._wrong_key = KeyPair.generate(key.subscriber_id, key.unique_key_id)

    def attach(self, http: httpx.AsyncClient, registry: RegistryClient) -> None:
        """Called by the sandbox once its event loop runs: the shared HTTP client and registry."""
        self.http, self.registry = http, registry

    async def authenticate(self, request: Request, body: bytes, sender: Any) -> None:
        """Verify the sender's signature (and a gateway's, when one relayed the message)."""
        if "no-signature-check" in self.faults:
            return
        await self._verify(body, request.headers.get("Authorization"), sender if isinstance(sender, str) else None)
        gateway = request.headers.get("X-Gateway-Authorization")
        if gateway is not None:
            await self._verify(body, gateway, None)

    async def _verify(self, body: bytes, header: str | None, subscriber_id: str | None) -> None:
        assert self.registry is not None, "the participant is not attached to a running network"
        params = signing.parse(header)
        public = await self.registry.public_key(params.subscriber_id, params.unique_key_id)
        signing.verify(body, header, lambda s, k: public, skew=self.skew, subscriber_id=subscriber_id)

    async def admit(self, request: Request, action: str, sender_field: str) -> tuple[bytes, dict[str, Any]] | JSONResponse:
        """The checks every incoming message gets, in order: faults that refuse all, JSON, signature, and the
        rule engine's schema, context and Layer-2 rules (a single message has no transaction to check).
        Returns the body and message, or the NACK to answer with."""
        if "nack-everything" in self.faults:
            return nack(INVALID_REQUEST, "this participant refuses everything (fault: nack-everything)")
        body, doc = await read_json(request)
        if not isinstance(doc, dict):
            return nack(INVALID_REQUEST, "the body is not a JSON object")
        raw_context = doc.get("context")
        context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
        try:
            await self.authenticate(request, body, context.get(sender_field))
        except SignatureError as exc:
            return self.auth_failure(exc)
        if "no-validation" not in self.faults:
            findings = self.engine.check_alone(Message(doc, "received", None, endpoint=f"/{action}"))
            errors = [f for f in findings if f.severity is Severity.ERROR]
            if errors:
                return nack(INVALID_REQUEST, "; ".join(f"{f.rule_id} {f.path}" for f in errors[:5]),
                            paths=errors[0].path)
        return body, doc

    def auth_failure(self, exc: SignatureError) -> JSONResponse:
        return nack(INVALID_REQUEST, f"{exc.reason}: {exc.detail}", status=401, realm=self.key.subscriber_id)

    def sign_headers(self, body: bytes, *, ttl_seconds: int = 300) -> dict[str, str]:
        if "unsigned" in self.faults:
            return {}
        key = self._wrong_key if "bad-signature" in self.faults else self.key
        return {"Authorization": signing.sign(body, key, validity=ttl_seconds)}

    async def post(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        """POST a message signed by this participant."""
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return await self.forward(url, raw, self.sign_headers(raw))

    async def forward(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST exact bytes with the given signature headers (a gateway relays what it received)."""
        assert self.http is not None, "the participant is not attached to a running network"
        return await self.http.post(url, content=body, headers={"Content-Type": "application/json", **headers})


async def read_json(request: Request) -> tuple[bytes, Any]:
    """The exact body bytes (the signature covers them) and their decoded JSON, or None if not JSON."""
    body = await request.body()
    try:
        return body, json.loads(body)
    except ValueError:
        return body, None


def join(base: str, action: str) -> str:
    return f"{base.rstrip('/')}/{action}"
