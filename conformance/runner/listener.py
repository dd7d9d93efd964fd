"""The harness's callback endpoint: receives whatever the target sends, verifies it, and keeps all of it.

Nothing is dropped here: a body that is not JSON, a callback for a transaction no scenario started, a
second copy of a callback. Scenarios take what they expect from the inbox; the rest is reported as
unexpected. Signatures are verified on arrival against the exact bytes, while the registry's keys are
the ones in force.
"""
from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance import signing
from conformance.findings import ABSENT
from conformance.messages import UNCHECKABLE, Message, SignatureCheck, decode_json, dig
from conformance.network.participant import INVALID_REQUEST, ack, nack
from conformance.network.registry import RegistryClient, registry_client
from conformance.signing import SignatureError
from conformance.transport import BODY_TIMEOUT, Reply, client_options, read_body

SIGNATURE_MODES = ("required", "optional", "off")


@dataclass(slots=True)
class Received:
    """One POST between the target and the harness, exactly as it crossed: received, or sent as a callback."""

    received_at: datetime
    path: str
    raw: bytes
    doc: Any
    """Decoded JSON, or None (then `decode_error` says why)."""
    decode_error: str | None
    headers: dict[str, str]
    signatures: tuple[SignatureCheck, ...]
    claimed: bool = False
    """Taken by a scenario step; unclaimed messages are reported as unexpected."""
    party: str | None = None
    """As BPP: the subscriber id of the harness's BPP that received or sent it."""
    reply: Reply | None = None
    """What the other side answered this POST with: the harness's ACK/NACK to a request it received as BPP,
    or the target's to a callback the harness sent (then `path` is the URL it went to)."""

    def message(self, source: str, seq: int, direction: str = "in") -> Message:
        """As the rule engine and the reports take it: the body, where it went, its signature checks, and the
        reply it got (the response rules judge the replier)."""
        reply = self.reply
        return Message(self.doc, source, seq, seq=seq, received_at=self.received_at, direction=direction,
                       endpoint=self.path, signatures=self.signatures, decode_error=self.decode_error,
                       size=len(self.raw), raw=self.raw if self.decode_error is not None else None,
                       response=reply.body if reply is not None and reply.status is not None else ABSENT,
                       latency=reply.latency if reply is not None else None)

    def relays(self, other: "Received") -> bool:
        """The same search as `other`, relayed by the harness's own gateway to another of its BPPs: one request,
        not the BAP sending it twice (a duplicate callback, the same bytes again to the same party, is not)."""
        return self is not other and self.action == "search" and self.raw == other.raw and self.party != other.party

    @property
    def action(self) -> str | None:
        value = dig(self.doc, "context", "action")
        return value if isinstance(value, str) else None

    @property
    def transaction_id(self) -> str | None:
        value = dig(self.doc, "context", "transaction_id")
        return value if isinstance(value, str) else None

    @property
    def message_id(self) -> str | None:
        value = dig(self.doc, "context", "message_id")
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class Inbox:
    """Everything received, by transaction_id, with a way to wait for what a step expects.

    Lossless at the edges: `close()` turns new messages away (the sender gets a 503, not an ACK) and waits for
    those being received to be filed, so that what is collected after it is everything the harness ACKed."""

    by_transaction: dict[str | None, list[Received]] = field(default_factory=dict)
    closed: bool = False
    interrupted: bool = False
    """Every wait ends at once (Ctrl-C): the run reports what it has."""
    _busy: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, received: Received) -> None:
        with self._cond:
            self.by_transaction.setdefault(received.transaction_id, []).append(received)
            self._cond.notify_all()

    @contextmanager
    def receiving(self) -> Iterator[bool]:
        """Whether a message may be taken now; while the block runs, `close()` waits for it to be filed."""
        with self._cond:
            taken = not self.closed
            self._busy += taken
        try:
            yield taken
        finally:
            with self._cond:
                self._busy -= taken
                self._cond.notify_all()

    def close(self, deadline: float) -> None:
        """Take no more; wait (until the monotonic deadline) for the messages being received to be filed."""
        with self._cond:
            self.closed = True
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(timeout=left)

    def reopen(self) -> None:
        with self._cond:
            self.closed = False

    def interrupt(self) -> None:
        with self._cond:
            self.interrupted = True
            self._cond.notify_all()

    def wait(self, transaction_id: str, ready: Callable[[list[Received]], bool], deadline: float) -> list[Received]:
        """Block until `ready(messages of the transaction)`, the monotonic deadline, or an interruption; return
        those messages."""
        with self._cond:
            while True:
                messages = list(self.by_transaction.get(transaction_id, []))
                left = deadline - time.monotonic()
                if ready(messages) or left <= 0 or self.interrupted:
                    return messages
                self._cond.wait(timeout=left)

    def collect(self, transaction_id: str, action: str, since: datetime, count: int | None,
                deadline: float, *, senders: int | None = None,
                sender: Callable[[Received], Any] = lambda r: dig(r.doc, "context", "bpp_id")) -> list[Received]:
        """The unclaimed `action` messages of the transaction that arrived since `since`: the first `count`,
        as soon as that many are in, or (`count` None) every one by the monotonic deadline, or as soon as
        `senders` different senders have sent one, when the harness knows how many can. A sender is told by
        `sender` (default context.bpp_id: who answered a search)."""
        def wanted(r: Received) -> bool:
            return r.action == action and not r.claimed and r.received_at >= since

        def ready(msgs: list[Received]) -> bool:
            mine = [r for r in msgs if wanted(r)]
            if count is not None:
                return len(mine) >= count
            return senders is not None and len({sender(r) for r in mine}) >= senders

        arrived = [r for r in self.wait(transaction_id, ready, deadline) if wanted(r)]
        return arrived if count is None else arrived[:count]

    def forget(self, transaction_id: str) -> None:
        """Drop a judged transaction's messages, so that a long run (`deg-conformance load`) holds only the
        transactions under way; what comes for it later is filed anew, a stray (late)."""
        with self._cond:
            self.by_transaction.pop(transaction_id, None)

    def messages(self, transaction_id: str | None) -> list[Received]:
        with self._cond:
            return list(self.by_transaction.get(transaction_id, []))

    def answering(self, message_ids: set[str | None], transaction_id: str) -> list[Received]:
        """Messages filed under another transaction that answer one of these requests (a callback with the
        wrong transaction_id): they belong in the report of the scenario that sent the request."""
        with self._cond:
            return [r for tid, msgs in self.by_transaction.items() if tid != transaction_id
                    for r in msgs if r.message_id in message_ids]

    def wait_for(self, message_id: str | None, action: str, party: str | None, deadline: float) -> Received | None:
        """The first `action` carrying `message_id` sent or received by `party`, in whatever transaction,
        waiting until the monotonic deadline."""
        with self._cond:
            while True:
                found = next((r for msgs in self.by_transaction.values() for r in msgs
                              if r.message_id == message_id and r.action == action and r.party == party), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0 or self.interrupted:
                    return found
                self._cond.wait(timeout=left)

    def adopt(self, action: str, since: datetime, known: set[str]) -> Received | None:
        """The first unclaimed `action` received since `since` under a transaction no scenario started: the
        request a step asked for, sent with the wrong transaction_id. Claimed here, so no two steps take it."""
        with self._cond:
            for tid, msgs in self.by_transaction.items():
                if tid in known:
                    continue
                for r in msgs:
                    if r.action == action and not r.claimed and r.received_at >= since:
                        r.claimed = True
                        return r
        return None

    def strays(self) -> list[Received]:
        """Messages no scenario took: for transactions none started, or late for one already judged. Reported
        at run level, never lost."""
        with self._cond:
            return [r for msgs in self.by_transaction.values() for r in msgs if not r.claimed]


class Verifier:
    """Checks the signature headers of what the target sent against the registry's keys, at arrival. Shared by
    the callback listener (the harness as BAP) and the harness's BPPs (the harness as BPP)."""

    LOOKUP_TIMEOUT = 5.0
    """Seconds a key lookup may take, whole; a registry slower than that cannot be asked (a set-up problem)."""

    def __init__(self, registry_url: str | None, *, signatures: str = "required", skew: int = 5,
                 sender: str = "bpp_id", registry_type: str = "beckn", registry_name: str | None = None) -> None:
        self.registry_url = registry_url
        self.registry_type, self.registry_name = registry_type, registry_name
        """How keys are looked up (see conformance.network.registry.registry_client)."""
        self.mode = signatures if registry_url is not None else "off"
        self.skew = skew
        self.sender = sender
        """The context field naming who signs Authorization: bpp_id on callbacks, bap_id on requests."""
        self._registry: RegistryClient | None = None

    def attach(self, http: httpx.AsyncClient) -> None:
        if self.registry_url is not None:
            self._registry = registry_client(self.registry_url, http, kind=self.registry_type, name=self.registry_name)

    async def verify(self, raw: bytes, doc: Any, headers: dict[str, str]) -> tuple[SignatureCheck, ...]:
        if self.mode == "off" or self._registry is None:
            return ()
        checks = []
        authorization = headers.get("authorization")
        if authorization is not None or self.mode == "required":
            sender = dig(doc, "context", self.sender)
            checks.append(await self._check("Authorization", raw, authorization, sender if isinstance(sender, str) else None))
        gateway = headers.get("x-gateway-authorization")
        if gateway is not None:  # BECKN-006: the key must be a gateway's (a subscriber of type BG)
            checks.append(await self._check("X-Gateway-Authorization", raw, gateway, None, role="BG"))
        return tuple(checks)

    async def _check(self, name: str, raw: bytes, header: str | None, sender: str | None,
                     role: str | None = None) -> SignatureCheck:
        assert self._registry is not None
        try:
            params = signing.parse(header)
            try:
                async with asyncio.timeout(self.LOOKUP_TIMEOUT):
                    public = await self._registry.public_key(params.subscriber_id, params.unique_key_id, type=role)
            except (httpx.HTTPError, ValueError, TimeoutError) as exc:  # not the sender's fault: set-up reports it
                return SignatureCheck(name, UNCHECKABLE, f"the registry at {self.registry_url} could not be asked "
                                                         f"for {params.subscriber_id}|{params.unique_key_id} "
                                                         f"({type(exc).__name__}: {exc})")
            if public is None and role is not None:
                return SignatureCheck(name, "SIG_KEY_UNKNOWN", f"the registry has no key {params.unique_key_id!r} "
                                                               f"for a {role} named {params.subscriber_id!r}")
            signing.verify(raw, header, lambda s, k: public, skew=self.skew, subscriber_id=sender)
        except SignatureError as exc:
            return SignatureCheck(name, exc.reason, exc.detail)
        return SignatureCheck(name, None)


class Listener:
    """The Starlette app behind the harness's callback URL. Any path is accepted (`{bap_uri}/on_search`)."""

    def __init__(self, inbox: Inbox, verifier: Verifier, *, realm: str = "deg-conformance",
                 body_timeout: float = BODY_TIMEOUT, ca_bundle: Path | None = None) -> None:
        self.inbox = inbox
        self.verifier = verifier
        self.realm = realm
        self.body_timeout = body_timeout
        self.ca_bundle = ca_bundle
        """What the registry's certificates are checked against (it may be remote)."""

    def app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(timeout=Verifier.LOOKUP_TIMEOUT, **client_options(self.ca_bundle)) as http:
                self.verifier.attach(http)
                yield

        return Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])], lifespan=lifespan)

    async def receive(self, request: Request) -> JSONResponse:
        with self.inbox.receiving() as taken:
            if not taken:
                return closed()
            received_at = datetime.now(timezone.utc)
            raw, unfinished = await read_body(request, self.body_timeout)
            doc, error = decode_json(raw) if unfinished is None else (None, unfinished)
            headers = {k: v for k, v in request.headers.items()}
            checks = await self.verifier.verify(raw, doc, headers) if unfinished is None else ()
            self.inbox.add(Received(received_at, request.url.path, raw, doc, error, headers, checks))
        if error is not None or not isinstance(doc, dict) or not isinstance(doc.get("context"), dict):
            return nack(INVALID_REQUEST, "the body is not a Beckn message ({context, message})")
        failed = next((c for c in checks if c.reason not in (None, UNCHECKABLE)), None)
        if failed is not None:
            return nack(INVALID_REQUEST, f"{failed.reason}: {failed.detail}", status=401, realm=self.realm)
        return ack()


def closed() -> JSONResponse:
    """What a message gets once the run has stopped listening: not an ACK, so nothing ACKed is missing from the
    report."""
    return JSONResponse({"error": "the conformance run has ended: this message was not taken"}, status_code=503)
