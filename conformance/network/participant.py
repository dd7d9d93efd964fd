"""What every reference participant shares: signed sending, verified receiving, ACK/NACK answers, faults, variations."""
from __future__ import annotations

import asyncio
import logging
from typing import AbstractSet, Any, Callable, Coroutine
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from conformance import signing
from conformance.engine import Engine
from conformance.findings import Severity
from conformance.messages import Message, decode_json, format_timestamp
from conformance.network.registry import RegistryClient
from conformance.network.wire import LoopbackPool, loopback
from conformance.signing import KeyPair, SignatureError
from conformance.transport import read_body

# BECKN-005 codes the reference network answers with.
INVALID_REQUEST = "30000"
PROVIDER_NOT_FOUND = "30001"
ITEM_NOT_FOUND = "30004"
ORDER_NOT_FOUND = "30010"
INVALID_UPDATE_TARGET = "30012"
ACTION_NOT_APPLICABLE = "40001"
TRACKING_NOT_SUPPORTED = "40005"

BPP_FAULTS: dict[str, str] = {
    "wrong-callback-message-id": "callbacks carry a fresh message_id instead of the request's",
    "wrong-callback-transaction-id": "callbacks carry a fresh transaction_id",
    "enum-out-of-range": "fulfillment states outside the DEG taxonomy (SMS)",
    "no-callback": "requests are ACKed but never answered",
    "late-callback": "callbacks are sent after the request's ttl has passed",
    "duplicate-callback": "every callback is sent twice",
    "forget-cancellation": "a status after the order was cancelled shows it as it was before the cancellation",
    "invent-orders": "status, cancel and support of an order it never confirmed are answered as if it existed",
}
"""Faults of a BPP's callbacks: the gateway only relays callbacks and the BAP sends none."""
SHARED_FAULTS: dict[str, str] = {
    "bad-signature": "requests and callbacks are signed with a key the registry does not have",
    "unsigned": "requests and callbacks are sent without an Authorization header",
    "no-signature-check": "incoming signatures are not verified",
    "no-validation": "incoming messages are not validated: whatever has a context is ACKed, and what a BPP "
                     "cannot serve is answered by a callback carrying the error",
    "nack-everything": "every incoming message is NACKed (for the BAP: every callback, valid or not)",
}
"""Faults of how any participant signs what it sends and takes what it receives."""
BAP_FAULTS: dict[str, str] = {
    "fresh-transaction-id": "every request but search carries a fresh transaction_id, not the given one",
    "reused-message-id": "every request reuses the message_id of its previous request in the transaction",
    "unknown-item": "select, init and confirm order an item id no catalog has",
    "wrong-order-id": "status, cancel and support name a made-up order, not the given one",
    "ignore-error-callback": "after an on_select or on_init that carries an error, it still sends the init or "
                             "confirm its client asks for",
}
"""Faults of a BAP's requests: the BPPs send only callbacks, and the gateway relays the BAP's search as it is."""
FAULTS: dict[str, str] = {**{name: f"BPP only: {what}" for name, what in BPP_FAULTS.items()}, **SHARED_FAULTS,
                          **{name: f"BAP only: {what}" for name, what in BAP_FAULTS.items()}}
"""The named ways a participant can be told to misbehave, for the harness's own tests; each description says
which participants have it (`deg-conformance sandbox --list-faults` prints them)."""
BPP_ONLY = frozenset(BPP_FAULTS)
BAP_ONLY = frozenset(BAP_FAULTS)

BPP_VARIATIONS: dict[str, str] = {
    "support-ticket": "on_support answers support.ref_id with a fresh support ticket id, as the guide's example "
                      "does, instead of the order id",
    "other-first-state": "a new order is in the other state its use case allows there (demand flexibility: "
                         "APPLICATION_PROCESSING, not APPLICATION_SUBMITTED); status still moves it on",
    "other-ids": "the catalog is published with every id (providers, items, categories, fulfillments, locations and "
                 "the references between them) replaced, consistently, by another",
    "no-tracking": "track is declined with BECKN-005 40005 (Tracking not supported), as a BPP that does not track "
                   "its orders may",
}
"""How a BPP may differ from the guide's examples and the reference BPP, and still conform."""
BAP_VARIATIONS: dict[str, str] = {
    "thin-client": "its client endpoint forwards whatever it is told, as a protocol server's thin BAP client adapter "
                   "does: an init or confirm after an error callback too (on the wire, the ignore-error-callback "
                   "fault)",
}
"""How a BAP may differ from the reference BAP, and still conform."""
VARIATIONS: dict[str, str] = {**{name: f"BPP only: {what}" for name, what in BPP_VARIATIONS.items()},
                              **{name: f"BAP only: {what}" for name, what in BAP_VARIATIONS.items()}}
"""The named ways a participant can be told to differ from the reference network while conforming, for the
harness's own tests: none of them may get a failure (`deg-conformance sandbox --list-variations` prints them)."""


log = logging.getLogger("conformance.network")
"""Where failures of background work (callbacks, relays, fan-out) are reported: nobody waits for them."""

SENDS_PER_ADDRESS = 8
"""Sends the participants sharing an HTTP client have under way at once to one address (scheme, host and port).
A send beyond them waits for its turn, with no time limit of its own (DELIVERY_DEADLINE bounds each send as a
whole): a burst queues rather than fails. Per address, so that a slow receiver holds up only the sends to it. They
also bound the kept connections to a loopback address (wire.LoopbackPool), which sets no limit of its own. Few,
and waited for in a semaphore rather than in the HTTP client's pool, for httpcore's pool scans all its connections
and queued requests whenever a request starts or ends: on 2 cores a burst of 2,000 requests took about 10 s with
8 (tests/test_network_burst.py's `measure`), and half as long again with 16, twice with 32."""
DELIVERY_DEADLINE = 60.0
"""Seconds one send (a callback, a relay, the BAP client's request) may take in all: waiting for its turn,
connecting, sending and the receiver's answer. Generous, for under a burst a send waits for its turn rather than
fail; past it, the send fails with a TimeoutException, which a callback's or relay's log line names (never
silently)."""


def now_rfc3339() -> str:
    return format_timestamp()


def ack() -> JSONResponse:
    return JSONResponse({"message": {"ack": {"status": "ACK"}}})


def error(code: str, message: str, paths: str | None = None) -> dict[str, str]:
    """A BECKN-005 error object, as a NACK or an error callback carries it."""
    found = {"code": code, "message": message}
    if paths:
        found["paths"] = paths
    return found


def nack(code: str, message: str, *, status: int = 400, paths: str | None = None, realm: str | None = None,
         challenge: str = "WWW-Authenticate") -> JSONResponse:
    """A NACK with a BECKN-005 error; with `realm`, the 401 a signature failure gets, whose `challenge` header is
    WWW-Authenticate (the sender's signature) or Proxy-Authenticate (a gateway's, BECKN-006)."""
    headers = {challenge: f'Signature realm="{realm}",headers="{signing.SIGNED_HEADERS}"'} if realm else None
    return JSONResponse({"message": {"ack": {"status": "NACK"}}, "error": error(code, message, paths)},
                        status_code=status, headers=headers)


def log_failure(what: str, exc: BaseException) -> None:
    """Report a failure nobody is waiting for. No traceback: formatting one in the server thread while the main
    thread formats another can crash Python 3.11 (its traceback formatter is not thread-safe)."""
    log.warning("%s: %s: %s", what, type(exc).__name__, exc)


class Turns:
    """Turns to send, SENDS_PER_ADDRESS at a time to each address, and the kept-alive connections to loopback
    addresses they send on (wire.LoopbackPool): one for all the participants that share an HTTP client."""

    def __init__(self) -> None:
        self._by_address: dict[str, asyncio.Semaphore] = {}
        self.loopback = LoopbackPool()

    def to(self, url: str) -> asyncio.Semaphore:
        """The turns of the address `url` names (one for anything not a URL: sending there fails at once)."""
        parts = urlsplit(url)
        address = f"{parts.scheme}://{parts.netloc}"
        turns = self._by_address.get(address)
        if turns is None:
            turns = self._by_address[address] = asyncio.Semaphore(SENDS_PER_ADDRESS)
        return turns


class RegistryUnavailable(Exception):
    """The registry could not be asked for a key: the signature is neither good nor bad, it cannot be checked."""


class Participant:
    """A subscriber of the reference network: its key, its registry client, its faults."""

    own_faults: frozenset[str] = frozenset()
    """Faults only this kind of participant has, beside SHARED_FAULTS; any other is refused. A BPP declares
    its callbacks', the BAP its requests'; the gateway has none of its own."""
    own_variations: frozenset[str] = frozenset()
    """The variations this kind of participant has; any other is refused. The gateway has none."""

    def __init__(self, key: KeyPair, *, engine: Engine, faults: frozenset[str] = frozenset(),
                 variations: frozenset[str] = frozenset(), skew: int = 5) -> None:
        _refuse_unknown("faults", faults, SHARED_FAULTS.keys() | self.own_faults, bap=BAP_ONLY, bpp=BPP_ONLY)
        _refuse_unknown("variations", variations, self.own_variations, bap=BAP_VARIATIONS.keys(),
                        bpp=BPP_VARIATIONS.keys())
        self.key = key
        self.engine = engine
        self.faults = faults
        self.variations = variations
        self.skew = skew
        self.http: httpx.AsyncClient | None = None
        self.registry: RegistryClient | None = None
        self.shortcut: tuple[str, str] | None = None
        self.turns: Turns | None = None
        self._own_turns = False
        self._wrong_key = KeyPair.generate(key.subscriber_id, key.unique_key_id)
        self._deferred: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._dropped = 0
        """Work dropped because the network stopped, not yet said in the log."""

    def attach(self, http: httpx.AsyncClient, registry: RegistryClient, *,
               shortcut: tuple[str, str] | None = None, turns: Turns | None = None) -> None:
        """Called by the sandbox once its event loop runs: the shared HTTP client and registry. `shortcut` is the
        (public, local) base URL of the server this participant is served by: what it sends under the public one
        goes to the local one, for the public address may not be reachable from inside the server. `turns` are
        those of everyone sharing `http` (default: this participant's own)."""
        self.http, self.registry, self.shortcut = http, registry, shortcut
        self._own_turns = turns is None
        self.turns = turns or Turns()

    async def detach(self) -> None:
        """Called when the network stops, before its HTTP client closes: work not yet done (a callback not yet due,
        or still being sent) is dropped at once, and so is work that comes later; one log line (INFO) says how
        much."""
        self._stopping = True
        pending = list(self._deferred)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._dropped += sum(task.cancelled() for task in pending)
        if self._own_turns and self.turns is not None:
            await self.turns.loopback.aclose()
        if self._dropped:
            log.info("%s: stopped; %d callbacks or relays not yet delivered were dropped", self.key.subscriber_id,
                     self._dropped)
            self._dropped = 0

    def defer(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as this participant's own task, apart from any request: stopping the network drops it at
        once and quietly (detach), where a request's own work would hold the server's stop up for its grace and
        then be cancelled with a traceback in its log."""
        if self._stopping:
            work.close()  # never started, and never to be
            self._dropped += 1
            return
        task = asyncio.get_running_loop().create_task(work)
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    def after_response(self, work: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> BackgroundTask:
        """A response's background: `work(*args)` (a callback, a relay) starts once the response has been sent, so
        a callback never overtakes its ACK, and then runs deferred (see defer)."""
        async def start() -> None:
            self.defer(work(*args))
        return BackgroundTask(start)

    async def authenticate(self, request: Request, body: bytes, sender: Any) -> JSONResponse | None:
        """Verify the sender's signature, and a gateway's when one relayed the message; None if both hold.

        BECKN-006: a bad `Authorization` gets 401 with WWW-Authenticate, a bad `X-Gateway-Authorization` 401
        with Proxy-Authenticate, and the gateway's key must be registered to a subscriber of type BG.
        A registry that cannot be reached gets 502: the signature may well be good.
        """
        if "no-signature-check" in self.faults:
            return None
        checks: list[tuple[str, str, str | None, str | None]] = [
            ("Authorization", "WWW-Authenticate", sender if isinstance(sender, str) else None, None)]
        if "X-Gateway-Authorization" in request.headers:
            checks.append(("X-Gateway-Authorization", "Proxy-Authenticate", None, "BG"))
        for header, challenge, subscriber_id, role in checks:
            try:
                await self._verify(body, request.headers.get(header), subscriber_id, role)
            except SignatureError as exc:
                return nack(INVALID_REQUEST, f"{exc.reason}: {exc.detail}", status=401, realm=self.key.subscriber_id,
                            challenge=challenge)
            except RegistryUnavailable as exc:
                return nack(INVALID_REQUEST, f"{header}: {exc}", status=502)
        return None

    async def _verify(self, body: bytes, header: str | None, subscriber_id: str | None, role: str | None) -> None:
        """`role`, when given, is the registry type the key's subscriber must have (BG for a gateway)."""
        assert self.registry is not None, "the participant is not attached to a running network"
        params = signing.parse(header)
        try:
            public = await self.registry.public_key(params.subscriber_id, params.unique_key_id, type=role)
            if public is None and role is not None:
                raise SignatureError("SIG_KEY_UNKNOWN", f"the registry has no key {params.unique_key_id!r} for a "
                                                        f"{role} named {params.subscriber_id!r}")
            try:
                signing.verify(body, header, lambda s, k: public, skew=self.skew, subscriber_id=subscriber_id)
            except SignatureError as exc:
                if exc.reason != "SIG_INVALID":
                    raise
                # The key may have been rotated since it was cached: ask once more before refusing.
                fresh = await self.registry.public_key(params.subscriber_id, params.unique_key_id, type=role,
                                                       refresh=True)
                if fresh == public:
                    raise
                signing.verify(body, header, lambda s, k: fresh, skew=self.skew, subscriber_id=subscriber_id)
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: the registry answered with something not JSON
            what = f"the registry lookup of {params.subscriber_id}|{params.unique_key_id} failed"
            raise RegistryUnavailable(f"{what} ({type(exc).__name__}: {exc}), so the signature cannot be checked")

    async def admit(self, request: Request, action: str, sender_field: str,
                    addressee_field: str | None = None) -> tuple[bytes, dict[str, Any]] | JSONResponse:
        """The checks every incoming message gets, in order: faults that refuse all, JSON with an object context,
        signature, addressee (`addressee_field` of the context, when present, must name this participant), and
        the rule engine's schema, context and Layer-2 rules (a single message has no transaction to check).
        Returns the body and message, or the NACK to answer with."""
        if "nack-everything" in self.faults:
            return nack(INVALID_REQUEST, "this participant refuses everything (fault: nack-everything)")
        body, unfinished = await read_body(request)
        if unfinished is not None:
            return nack(INVALID_REQUEST, f"the body is not usable: {unfinished}")
        try:
            doc = read_json(body)
        except ValueError as exc:
            return nack(INVALID_REQUEST, str(exc))
        if not isinstance(doc, dict):
            return nack(INVALID_REQUEST, "the body is not a JSON object")
        context = doc.get("context")
        if not isinstance(context, dict):
            return nack(INVALID_REQUEST, "context must be an object", paths="$.context")
        refused = await self.authenticate(request, body, context.get(sender_field))
        if refused is not None:
            return refused
        addressee = context.get(addressee_field) if addressee_field else None
        if addressee is not None and addressee != self.key.subscriber_id:
            return nack(INVALID_REQUEST, f"context.{addressee_field} {addressee!r} is not this participant "
                                         f"({self.key.subscriber_id!r})", paths=f"$.context.{addressee_field}")
        if "no-validation" not in self.faults:
            findings = self.engine.check_alone(Message(doc, "received", None, endpoint=f"/{action}"))
            errors = [f for f in findings if f.severity is Severity.ERROR]
            if errors:
                return nack(INVALID_REQUEST, "; ".join(f"{f.rule_id} {f.path}" for f in errors[:5]),
                            paths=errors[0].path)
        return body, doc

    def sign_headers(self, body: bytes, header: str = "Authorization") -> dict[str, str]:
        """This participant's signature of `body` in `header`, as its faults allow (none, or a wrong key)."""
        if "unsigned" in self.faults:
            return {}
        key = self._wrong_key if "bad-signature" in self.faults else self.key
        return {header: signing.sign(body, key)}

    async def post(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        """POST a message signed by this participant."""
        raw = orjson.dumps(payload)
        return await self.forward(url, raw, self.sign_headers(raw))

    async def forward(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST exact bytes with the given signature headers (a gateway relays what it received), in its turn
        (`turns`) and within DELIVERY_DEADLINE as a whole: past it, an httpx.TimeoutException saying so."""
        assert self.http is not None and self.turns is not None, "the participant is not attached to a running network"
        if self.shortcut is not None:
            public, local = self.shortcut
            url = local + url[len(public):] if url.startswith(f"{public}/") else url
        address = loopback(url)
        try:
            async with asyncio.timeout(DELIVERY_DEADLINE), self.turns.to(url):
                if address is not None:
                    return await self.turns.loopback.post(address, body, headers)
                return await self.http.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        except TimeoutError:
            raise httpx.TimeoutException(f"no answer within {DELIVERY_DEADLINE:g} s, the wait for its turn "
                                         f"included") from None


def _refuse_unknown(kind: str, given: frozenset[str], known: AbstractSet[str], *, bap: AbstractSet[str],
                    bpp: AbstractSet[str]) -> None:
    """A ValueError naming the `kind` (faults, variations) a participant was given and does not have, the ones it
    has, and whose each stranger is (`bap`, `bpp`): a switch that would silently do nothing is refused."""
    unknown = given - known
    if unknown:
        hint = "".join(f"; only a {'BAP' if name in bap else 'BPP'} has {name}"
                       for name in sorted(unknown & (bap | bpp)))
        raise ValueError(f"unknown {kind} {sorted(unknown)}; known here: {', '.join(sorted(known)) or 'none'}{hint}")


def json_copy(value: Any) -> Any:
    """A deep copy of decoded JSON (an order, a catalog item): what copy.deepcopy gives, in a tenth of its time
    (37 us for an on_search catalog, against 324)."""
    return orjson.loads(orjson.dumps(value))


def read_json(body: bytes) -> Any:
    """The decoded JSON of a body, or a ValueError saying why it is not usable (messages.decode_json's limits)."""
    doc, error = decode_json(body)
    if error is not None:
        raise ValueError(f"the body is not usable JSON: {error}")
    return doc


def join(base: str, action: str) -> str:
    return f"{base.rstrip('/')}/{action}"
