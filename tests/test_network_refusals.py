"""What the reference network refuses, and how: every NACK path of a BPP (HTTP status, BECKN-005 code, no
callback), every signature failure (401 with WWW-Authenticate, or Proxy-Authenticate for a gateway's, and the
SIG_* reason), input that must never crash a server (HTTP 500), the registry API, and the observable effect of
each fault switch.

Requests are sent straight to a BPP (not through the BAP client) so that every byte and header is under the
test's control; they are signed with the reference BAP's key, so the BPP's callbacks land in `net.bap.inbox`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance import ConfigError, signing
from conformance.network import FAULTS, Network, NetworkConfig, start
from conformance.network.participant import BAP_ONLY, Participant
from conformance.pytest_plugin import NetworkFactory
from conformance.signing import KeyPair
from tests._live import bpps_of, serve
from tests.conftest import FIXTURES

TRANSACTION = FIXTURES / "conformant-transaction"
BPP = "sf-grid-loadflex"
OTHER_BPP = "flexigrid-aggregator"
SILENCE = 0.5
"""Seconds to wait before concluding no callback is coming (a clean callback takes a few milliseconds)."""
POLL = 0.02

ACK = {"message": {"ack": {"status": "ACK"}}}


# ---- helpers --------------------------------------------------------------------------------------------------

def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_body(net: Network, name: str, *, bpp: str = BPP, **context: Any) -> dict[str, Any]:
    """A fixture message from the reference BAP to a reference BPP, with fresh ids and a current timestamp."""
    body: dict[str, Any] = json.loads((TRANSACTION / name).read_text(encoding="utf-8"))
    target = net.bpps[bpp]
    body["context"].update({"bap_id": net.bap.key.subscriber_id, "bap_uri": net.bap_url,
                            "bpp_id": target.key.subscriber_id, "bpp_uri": target.url,
                            "transaction_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4()),
                            "timestamp": now_rfc3339(), **context})
    net.bap.adopt(body["context"]["transaction_id"])  # sent in the BAP's name, so its callbacks are the BAP's
    return body


def confirmable(net: Network) -> dict[str, Any]:
    """A confirm for a transaction whose init the BPP has served (a reference BPP refuses confirm before init)."""
    init = request_body(net, "03-init.json")
    assert to_bpp(net, "init", init).json() == ACK
    wait_for(net, transaction_id=init["context"]["transaction_id"], action="on_init")
    return request_body(net, "05-confirm.json", transaction_id=init["context"]["transaction_id"])


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def post_raw(url: str, raw: bytes, authorization: str | None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if authorization is not None:
        sent["Authorization"] = authorization
    return httpx.post(url, content=raw, headers=sent, timeout=5)


def post_signed(url: str, body: dict[str, Any], key: KeyPair) -> httpx.Response:
    raw = encode(body)
    return post_raw(url, raw, signing.sign(raw, key))


def to_bpp(net: Network, action: str, body: dict[str, Any], *, bpp: str = BPP) -> httpx.Response:
    """POST a request signed by the reference BAP straight to a BPP's endpoint."""
    return post_signed(f"{net.bpps[bpp].url}/{action}", body, net.bap.key)


def arrived(net: Network, *, transaction_id: str | None = None, message_id: str | None = None,
            action: str | None = None) -> list[dict[str, Any]]:
    """The callbacks in the BAP's inbox matching every given field."""
    return [m for m in list(net.bap.inbox)
            if (transaction_id is None or m["body"]["context"].get("transaction_id") == transaction_id)
            and (message_id is None or m["body"]["context"].get("message_id") == message_id)
            and (action is None or m["action"] == action)]


def wait_for(net: Network, count: int = 1, timeout: float = 3.0, **match: Any) -> list[dict[str, Any]]:
    """Poll the inbox every 20 ms until `count` matching callbacks are there or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = arrived(net, **match)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(POLL)


def silent(net: Network, body: dict[str, Any], wait: float = SILENCE) -> list[dict[str, Any]]:
    """Whatever reached the BAP within `wait` seconds for this request's transaction or message id."""
    context = body.get("context") or {}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(POLL)
    return (arrived(net, transaction_id=context.get("transaction_id"))
            + arrived(net, message_id=context.get("message_id")))


def nacked(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a BECKN-005 NACK with this HTTP status and error code; return the error object."""
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["message"] == {"ack": {"status": "NACK"}}, doc
    assert doc["error"]["code"] == code, doc
    error: dict[str, Any] = doc["error"]
    assert isinstance(error["message"], str) and error["message"], doc
    return error


def refused_signature(response: httpx.Response, realm: str, reason: str,
                      challenge: str = "WWW-Authenticate") -> dict[str, Any]:
    """Assert the 401 a signature failure gets: NACK, the challenge header naming the realm (WWW-Authenticate for
    the sender's signature, Proxy-Authenticate for a gateway's), the SIG_* reason. Returns the error object."""
    error = nacked(response, 401, "30000")
    assert error["message"].startswith(f"{reason}:"), error
    assert response.headers[challenge] == f'Signature realm="{realm}",headers="(created) (expires) digest"'
    other = {"WWW-Authenticate": "Proxy-Authenticate", "Proxy-Authenticate": "WWW-Authenticate"}[challenge]
    assert other not in response.headers
    return error


def record_sends(participant: Participant, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every message the participant sends (url, headers, the receiver's answer): its callbacks'
    fate is otherwise invisible, since a BPP ignores the BAP's answer."""
    sent: list[dict[str, Any]] = []
    original = participant.forward

    async def forward(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        response = await original(url, body, headers)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        sent.append({"url": url, "headers": dict(headers), "status": response.status_code, "answer": answer})
        return response

    monkeypatch.setattr(participant, "forward", forward)
    return sent


# ---- networks -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    """A clean network shared by the tests that only send (they never change the registry)."""
    with start() as network:
        yield network


@pytest.fixture
def networks(deg_network_factory: NetworkFactory) -> Callable[..., Network]:
    """Start a network per call, faults by participant (`make(sf_grid_loadflex={"no-callback"}, bap=...)`, `_` for
    `-`); the plugin's factory stops every one after the test."""
    def make(**faults: set[str]) -> Network:
        return deg_network_factory(faults={p.replace("_", "-"): frozenset(f) for p, f in faults.items()})
    return make


@pytest.fixture
def crashing_networks(monkeypatch: pytest.MonkeyPatch, networks: Callable[..., Network]) -> Callable[..., Network]:
    """`networks` for the tests that make a server crash (HTTP 500), with uvicorn's error log off until they have
    stopped. Python 3.11 formats a traceback with ast.parse, which is not thread-safe: uvicorn logging one in the
    server thread while pytest formats the test's failure in the main thread can raise "SystemError: AST
    constructor recursion depth mismatch" inside pytest and crash the xdist worker."""
    monkeypatch.setattr(logging.getLogger("uvicorn.error"), "disabled", True)
    return networks


def faulty(networks: Callable[..., Network], *faults: str) -> Network:
    return networks(sf_grid_loadflex=set(faults))


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL whose port refuses connections (bound, not listening) for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# ---- the baseline the refusals are measured against ---------------------------------------------------------

def test_a_valid_request_is_acked_and_answered_within_the_silence_window(net: Network) -> None:
    body = request_body(net, "03-init.json")
    sent = time.monotonic()
    response = to_bpp(net, "init", body)
    assert (response.status_code, response.json()) == (200, ACK)
    got = wait_for(net, transaction_id=body["context"]["transaction_id"], timeout=SILENCE)
    assert time.monotonic() - sent < SILENCE
    assert [m["action"] for m in got] == ["on_init"]
    assert got[0]["body"]["context"]["message_id"] == body["context"]["message_id"]
    assert got[0]["body"]["message"]["order"]["provider"]["id"] == "provider_demand_flex_001"


def test_status_and_cancel_of_a_known_order_are_answered(net: Network) -> None:
    confirm = confirmable(net)
    txn = confirm["context"]["transaction_id"]
    assert to_bpp(net, "confirm", confirm).json() == ACK
    order_id = wait_for(net, transaction_id=txn, action="on_confirm")[0]["body"]["message"]["order"]["id"]
    assert order_id in net.bpps[BPP].orders
    for name, action, state in (("07-status.json", "status", "APPLICATION_SUCCESSFUL"),
                                ("11-cancel.json", "cancel", "APPLICATION_CANCELLED")):
        body = request_body(net, name, transaction_id=txn)
        body["message"]["order_id"] = order_id
        assert to_bpp(net, action, body).json() == ACK
        answer = wait_for(net, transaction_id=txn, action=f"on_{action}")
        assert answer[0]["body"]["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"] == state


def test_an_update_to_a_state_the_bpp_does_not_make_is_refused_30012(net: Network) -> None:
    """Invalid update_target (BECKN-005 30012), not 40001: that code is for an endpoint a BPP does not implement,
    and the BPP implements update. Demand flexibility's use case makes no update, so even a state of its taxonomy is
    refused; the order stays as it was."""
    confirm = confirmable(net)
    txn = confirm["context"]["transaction_id"]
    assert to_bpp(net, "confirm", confirm).json() == ACK
    order_id = wait_for(net, transaction_id=txn, action="on_confirm")[0]["body"]["message"]["order"]["id"]
    before = json.dumps(net.bpps[BPP].orders[order_id], sort_keys=True)
    body = request_body(net, "07-status.json", transaction_id=txn, action="update")
    state = {"descriptor": {"code": "APPLICATION_SUCCESSFUL"}}
    body["message"] = {"update_target": "order.fulfillments[0].state",
                       "order": {"id": order_id, "fulfillments": [{"state": state}]}}
    error = nacked(to_bpp(net, "update", body), 400, "30012")
    assert error.get("paths") == "$.message.order.fulfillments[0].state.descriptor.code"
    assert json.dumps(net.bpps[BPP].orders[order_id], sort_keys=True) == before


# ---- 1. every NACK path of a reference BPP --------------------------------------------------------------------

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = body
        for step in head:
            node = node[int(step)] if step.isdigit() else node[step]
        node[last] = value
    return apply


@pytest.mark.parametrize("fixture, endpoint, change, code, paths", [
    pytest.param("03-init.json", "init", _set("message.order", "not an order"), "30000", "$.message.order",
                 id="schema-order-is-a-string"),
    pytest.param("03-init.json", "init", _set("message.order.provider.id", "provider_nobody_publishes"), "30001",
                 "$.message.order.provider.id", id="unknown-provider-at-init"),
    pytest.param("05-confirm.json", "confirm", _set("message.order.provider.id", "provider_nobody_publishes"),
                 "30001", "$.message.order.provider.id", id="unknown-provider-at-confirm"),
    pytest.param("03-init.json", "init", _set("message.order.items.0.id", "item_nobody_publishes"), "30004",
                 "$.message.order.items[0].id", id="unknown-item-at-init"),
    pytest.param("05-confirm.json", "confirm", _set("message.order.items.0.id", "item_nobody_publishes"), "30004",
                 "$.message.order.items[0].id", id="unknown-item-at-confirm"),
    pytest.param("07-status.json", "status", _set("message.order_id", "order-nobody-made"), "30010",
                 "$.message.order_id", id="status-of-unknown-order"),
    pytest.param("11-cancel.json", "cancel", _set("message.order_id", "order-nobody-made"), "30010",
                 "$.message.order_id", id="cancel-of-unknown-order"),
    pytest.param("03-init.json", "init", _set("context.action", "confirm"), "30000", "$.context.action",
                 id="action-differs-from-endpoint"),
    pytest.param("03-init.json", "get_rating_categories", _set("context.action", "get_rating_categories"), "40001", None,
                 id="action-not-offered"),
])
def test_bpp_nacks_with_the_beckn_005_code_and_sends_no_callback(
        net: Network, fixture: str, endpoint: str, change: Callable[[dict[str, Any]], None], code: str,
        paths: str | None) -> None:
    body = request_body(net, fixture)
    change(body)
    orders_before = dict(net.bpps[BPP].orders)
    error = nacked(to_bpp(net, endpoint, body), 400, code)
    assert error.get("paths") == paths
    assert net.bpps[BPP].orders == orders_before, "a refused request must not create or change an order"
    assert silent(net, body) == []


def test_bpp_nacks_a_body_that_is_not_json(net: Network) -> None:
    raw = b'{"context": {"action": "init"'
    error = nacked(post_raw(f"{net.bpps[BPP].url}/init", raw, signing.sign(raw, net.bap.key)), 400, "30000")
    assert "JSON" in error["message"]
    assert "paths" not in error


def test_bpp_nacks_json_that_is_not_an_object(net: Network) -> None:
    raw = b'["context", "message"]'
    error = nacked(post_raw(f"{net.bpps[BPP].url}/init", raw, signing.sign(raw, net.bap.key)), 400, "30000")
    assert "JSON object" in error["message"]


def test_the_refusal_names_the_rule_that_failed(net: Network) -> None:
    body = request_body(net, "03-init.json", action="confirm")
    assert nacked(to_bpp(net, "init", body), 400, "30000")["message"].startswith("CTX_ACTION_PATH_MISMATCH")
    body = request_body(net, "03-init.json")
    body["message"]["order"] = "not an order"
    assert nacked(to_bpp(net, "init", body), 400, "30000")["message"].startswith("SCH_TYPE")


# ---- 2. signature failures ------------------------------------------------------------------------------------

def _header(how: str, net: Network, signed: bytes) -> str | None:
    """The Authorization header for `signed` (the bytes sent), broken in the named way."""
    bap, now = net.bap.key, int(time.time())
    if how == "missing":
        return None
    if how == "tampered":
        return signing.sign(signed.replace(b"Alex Morgan", b"Eve Mallory"), bap)
    if how == "wrong-key":
        return signing.sign(signed, KeyPair.generate(bap.subscriber_id, bap.unique_key_id))
    if how == "unknown-key-id":
        return signing.sign(signed, KeyPair.generate(bap.subscriber_id, "no-such-key"))
    if how == "expired":
        return signing.sign(signed, bap, created=now - 600, validity=300)
    if how == "created-in-future":
        return signing.sign(signed, bap, created=now + 60)
    if how == "another-participants-key":
        return signing.sign(signed, net.gateway.key)
    if how == "malformed":
        return 'Signature keyId="only-one-part"'
    if how == "wrong-algorithm":
        return signing.sign(signed, bap).replace('|ed25519"', '|rsa"').replace('"ed25519"', '"rsa"')
    raise AssertionError(how)


@pytest.mark.parametrize("how, reason", [
    ("missing", "SIG_MISSING"),
    ("tampered", "SIG_INVALID"),
    ("wrong-key", "SIG_INVALID"),
    ("unknown-key-id", "SIG_KEY_UNKNOWN"),
    ("expired", "SIG_EXPIRED"),
    ("created-in-future", "SIG_CREATED_IN_FUTURE"),
    ("another-participants-key", "SIG_SUBSCRIBER_MISMATCH"),
    ("malformed", "SIG_MALFORMED"),
    ("wrong-algorithm", "SIG_ALGORITHM"),
])
def test_bpp_refuses_a_bad_signature_with_401(net: Network, how: str, reason: str) -> None:
    body = request_body(net, "03-init.json")
    raw = encode(body)
    assert b"Alex Morgan" in raw
    response = post_raw(f"{net.bpps[BPP].url}/init", raw, _header(how, net, raw))
    refused_signature(response, net.bpps[BPP].key.subscriber_id, reason)
    assert silent(net, body) == []


def test_signature_skew_is_tolerated_within_the_configured_seconds(net: Network) -> None:
    """The counterpart of the two clock failures: 3 s of difference either way is within the 5 s skew."""
    now = int(time.time())
    for created, validity in ((now + 3, 300), (now - 302, 300)):
        body = request_body(net, "03-init.json")
        raw = encode(body)
        response = post_raw(f"{net.bpps[BPP].url}/init", raw,
                            signing.sign(raw, net.bap.key, created=created, validity=validity))
        assert response.json() == ACK, (created, response.text)


def test_bpp_refuses_a_bad_gateway_signature(net: Network) -> None:
    body = request_body(net, "03-init.json")
    raw = encode(body)
    response = post_raw(f"{net.bpps[BPP].url}/init", raw, signing.sign(raw, net.bap.key),
                        **{"X-Gateway-Authorization": signing.sign(raw + b" ", net.gateway.key)})
    refused_signature(response, net.bpps[BPP].key.subscriber_id, "SIG_INVALID", challenge="Proxy-Authenticate")
    assert silent(net, body) == []


def test_bpp_refuses_a_gateway_signature_by_a_subscriber_that_is_not_a_gateway(net: Network) -> None:
    """A good signature in X-Gateway-Authorization is not enough: its key must be registered to a BG."""
    body = request_body(net, "01-search.json")
    raw = encode(body)
    for impostor in (net.bap.key, net.bpps[OTHER_BPP].key):
        response = post_raw(f"{net.bpps[BPP].url}/search", raw, signing.sign(raw, net.bap.key),
                            **{"X-Gateway-Authorization": signing.sign(raw, impostor)})
        error = refused_signature(response, net.bpps[BPP].key.subscriber_id, "SIG_KEY_UNKNOWN",
                                  challenge="Proxy-Authenticate")
        assert f"BG named {impostor.subscriber_id!r}" in error["message"]
    assert silent(net, body) == []
    # Signed by the gateway itself, the same search is answered (through the gateway, which relays on_search).
    response = post_raw(f"{net.bpps[BPP].url}/search", raw, signing.sign(raw, net.bap.key),
                        **{"X-Gateway-Authorization": signing.sign(raw, net.gateway.key)})
    assert response.json() == ACK
    assert len(wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_search")) == 1


def test_gateway_search_refuses_a_bad_signature(net: Network) -> None:
    body = request_body(net, "01-search.json")
    for field in ("bpp_id", "bpp_uri"):
        del body["context"][field]
    raw = encode(body)
    tampered = raw.replace(b"Energy Incentives", b"Free Energy")
    response = post_raw(f"{net.gateway_url}/search", tampered, signing.sign(raw, net.bap.key))
    refused_signature(response, net.gateway.key.subscriber_id, "SIG_INVALID")
    assert silent(net, body) == []

    # The same bytes, correctly signed, are fanned out and answered by both BPPs.
    assert post_raw(f"{net.gateway_url}/search", raw, signing.sign(raw, net.bap.key)).json() == ACK
    catalogs = wait_for(net, count=2, transaction_id=body["context"]["transaction_id"], action="on_search")
    assert {m["body"]["context"]["bpp_id"] for m in catalogs} == {b.key.subscriber_id for b in bpps_of(net)}


def test_gateway_search_refuses_an_unsigned_request(net: Network) -> None:
    body = request_body(net, "01-search.json")
    response = post_raw(f"{net.gateway_url}/search", encode(body), None)
    refused_signature(response, net.gateway.key.subscriber_id, "SIG_MISSING")


def test_bap_callback_endpoint_refuses_a_bad_signature(net: Network) -> None:
    bpp = net.bpps[BPP]
    body = request_body(net, "08-on_status.json")
    raw = encode(body)
    impostor = KeyPair.generate(bpp.key.subscriber_id, bpp.key.unique_key_id)
    for header, reason in ((signing.sign(raw, impostor), "SIG_INVALID"), (None, "SIG_MISSING"),
                           (signing.sign(raw, net.bap.key), "SIG_SUBSCRIBER_MISMATCH")):
        response = post_raw(f"{net.bap_url}/on_status", raw, header)
        refused_signature(response, net.bap.key.subscriber_id, reason)
    assert arrived(net, transaction_id=body["context"]["transaction_id"]) == []

    # Signed by the BPP whose id the context gives, the same callback is accepted and kept.
    assert post_raw(f"{net.bap_url}/on_status", raw, signing.sign(raw, bpp.key)).json() == ACK
    assert [m["action"] for m in arrived(net, transaction_id=body["context"]["transaction_id"])] == ["on_status"]


def test_bap_refuses_a_request_action_at_its_callback_endpoint(net: Network) -> None:
    body = request_body(net, "07-status.json")
    raw = encode(body)
    error = nacked(post_raw(f"{net.bap_url}/status", raw, signing.sign(raw, net.bpps[BPP].key)), 400, "30000")
    assert "not a BAP callback endpoint" in error["message"]


def test_bpp_nacks_a_request_addressed_to_another_bpp(net: Network) -> None:
    other = net.bpps[OTHER_BPP].key.subscriber_id
    body = request_body(net, "03-init.json", bpp_id=other)
    error = nacked(to_bpp(net, "init", body), 400, "30000")
    assert (error["message"].startswith(f"context.bpp_id {other!r} is not this participant"),
            error["paths"]) == (True, "$.context.bpp_id")
    assert silent(net, body) == []


def test_bap_nacks_a_callback_addressed_to_another_bap(net: Network) -> None:
    body = request_body(net, "08-on_status.json", bap_id="another-bap.example.com")
    raw = encode(body)
    error = nacked(post_raw(f"{net.bap_url}/on_status", raw, signing.sign(raw, net.bpps[BPP].key)), 400, "30000")
    assert error["message"].startswith("context.bap_id 'another-bap.example.com' is not this participant")
    assert error["paths"] == "$.context.bap_id"
    assert arrived(net, transaction_id=body["context"]["transaction_id"]) == []


def test_a_key_id_without_a_unique_key_id_is_refused(net: Network) -> None:
    """An empty keyId part must not widen the registry lookup to every key of the subscriber."""
    bap = net.bap.key
    nameless = KeyPair(subscriber_id=bap.subscriber_id, unique_key_id="", seed=bap.seed)
    body = request_body(net, "03-init.json")
    response = post_signed(f"{net.bpps[BPP].url}/init", body, nameless)
    refused_signature(response, net.bpps[BPP].key.subscriber_id, "SIG_MALFORMED")
    assert silent(net, body) == []


def test_a_signature_that_expires_before_it_is_created_is_refused(net: Network) -> None:
    now = int(time.time())
    body = request_body(net, "03-init.json")
    raw = encode(body)
    response = post_raw(f"{net.bpps[BPP].url}/init", raw,
                        signing.sign(raw, net.bap.key, created=now + 1, expires=now))
    error = refused_signature(response, net.bpps[BPP].key.subscriber_id, "SIG_MALFORMED")
    assert "before created" in error["message"]


def test_a_registry_that_cannot_be_reached_gets_502_not_401(
        deg_network_factory: NetworkFactory, dead_url: str) -> None:
    """The signature may be good: a 401 would blame the sender for the receiver's registry. (Only a network that
    looks keys up the DeDi way asks its registry over HTTP; the others read it in process.)"""
    net = deg_network_factory(registry_type="dedi")
    registry = net.bpps[BPP].registry
    assert registry is not None
    registry.url = f"{dead_url}/registry"
    body = request_body(net, "03-init.json")
    error = nacked(to_bpp(net, "init", body), 502, "30000")
    assert error["message"].startswith("Authorization: the registry lookup of bap.deg-sandbox.local|bap-key-1 failed")
    assert silent(net, body) == []


# ---- 2b. input that must never crash a server (HTTP 500) -------------------------------------------------------

DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
"""Valid JSON too deep for Python's json module (RecursionError)."""


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"next": value}
    return value


def test_deeply_nested_json_is_refused_everywhere(crashing_networks: Callable[..., Network]) -> None:
    net = crashing_networks()
    for url in (f"{net.bpps[BPP].url}/init", f"{net.gateway_url}/search", f"{net.bap_url}/on_init"):
        error = nacked(post_raw(url, DEEP, signing.sign(DEEP, net.bap.key)), 400, "30000")
        assert error["message"].startswith("the body is not usable JSON"), (url, error)
    for url in (f"{net.registry_url}/lookup", f"{net.registry_url}/subscribe", f"{net.bap_client_url}/init"):
        response = post_raw(url, DEEP, None)
        assert response.status_code == 400 and "error" in response.json(), (url, response.text)
    # JSON that parses, but nests far deeper than any Beckn message, is refused before anything recurses on it.
    body = request_body(net, "03-init.json")
    body["message"]["order"]["tags"] = [nested(70)]
    error = nacked(to_bpp(net, "init", body), 400, "30000")
    assert error["message"] == "the body is not usable JSON: nested deeper than 64 levels"
    assert silent(net, body) == []


def test_bap_client_answers_400_or_502_with_a_json_error(crashing_networks: Callable[..., Network],
                                                         dead_url: str) -> None:
    net = crashing_networks()
    bpp = net.bpps[BPP]
    for doc, status, says in (
            ({"context": ["a", "list"], "message": {}}, 400, "context must be an object, not list"),
            ({"context": "a string"}, 400, "context must be an object, not str"),
            ({"context": {"bpp_uri": 42}}, 400, "context.bpp_uri is needed"),
            ({"context": {"bpp_id": bpp.key.subscriber_id, "bpp_uri": "not a url"}}, 400, "is not a URL"),
            ({"context": {"bpp_id": bpp.key.subscriber_id, "bpp_uri": dead_url}}, 502,
             f"{dead_url}/init could not be reached: ConnectError")):
        response = httpx.post(f"{net.bap_client_url}/init", json=doc, timeout=5)
        assert response.status_code == status, (doc, response.text)
        assert says in response.json()["error"], (doc, response.text)
    assert net.bap.outbox == []


def test_gateway_fans_out_a_search_whose_city_is_not_an_object(
        crashing_networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch) -> None:
    net = crashing_networks(gateway={"no-validation"})
    sends = record_sends(net.gateway, monkeypatch)
    body = request_body(net, "01-search.json")
    for field in ("bpp_id", "bpp_uri"):
        del body["context"][field]
    body["context"]["location"] = {"city": "San Francisco"}
    assert post_signed(f"{net.gateway_url}/search", body, net.bap.key).json() == ACK
    deadline = time.monotonic() + 3
    while len(sends) < 2 and time.monotonic() < deadline:
        time.sleep(POLL)
    assert sorted(s["url"] for s in sends) == sorted(f"{b.url}/search" for b in bpps_of(net))


def test_bpp_answers_directly_when_an_unchecked_gateway_header_cannot_be_read(
        crashing_networks: Callable[..., Network]) -> None:
    net = faulty(crashing_networks, "no-signature-check")
    body = request_body(net, "01-search.json")
    raw = encode(body)
    response = post_raw(f"{net.bpps[BPP].url}/search", raw, signing.sign(raw, net.bap.key),
                        **{"X-Gateway-Authorization": "Signature nonsense"})
    assert (response.status_code, response.json()) == (200, ACK)
    assert len(wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_search")) == 1


def test_a_callback_that_cannot_be_delivered_is_logged(net: Network, dead_url: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="conformance.network")
    body = request_body(net, "03-init.json", bap_uri=f"{dead_url}/bap")
    assert to_bpp(net, "init", body).json() == ACK
    wanted = f"sf-grid-loadflex.deg-sandbox.local: on_init to {dead_url}/bap: ConnectError"
    deadline = time.monotonic() + 3
    while not any(r.getMessage().startswith(wanted) for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(POLL)
    assert [(r.name, r.levelname) for r in caplog.records if r.getMessage().startswith(wanted)] == [
        ("conformance.network", "WARNING")]


def test_a_callback_past_its_deadline_is_given_up_and_logged(net: Network, caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A send may wait (for its turn, for the receiver): within a deadline, and never silently past it."""
    monkeypatch.setattr("conformance.network.participant.DELIVERY_DEADLINE", 0.2)
    caplog.set_level(logging.WARNING, logger="conformance.network")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(1)
        return JSONResponse(ACK)

    with serve(Starlette(routes=[Route("/{action}", slow, methods=["POST"])])) as receiver:
        body = request_body(net, "03-init.json", bap_uri=receiver)
        assert to_bpp(net, "init", body).json() == ACK
        wanted = f"sf-grid-loadflex.deg-sandbox.local: on_init to {receiver}: TimeoutException: no answer within 0.2 s"
        deadline = time.monotonic() + 3
        while not any(r.getMessage().startswith(wanted) for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(POLL)
    assert [r.levelname for r in caplog.records if r.getMessage().startswith(wanted)] == ["WARNING"]


# ---- 3. fault switches ----------------------------------------------------------------------------------------

def test_every_documented_fault_is_covered_here() -> None:
    covered = {"wrong-callback-message-id", "wrong-callback-transaction-id", "enum-out-of-range", "no-callback",
               "late-callback", "duplicate-callback", "bad-signature", "unsigned", "no-signature-check",
               "no-validation", "nack-everything", "forget-cancellation", "invent-orders"}
    assert set(FAULTS) - BAP_ONLY == covered  # the BAP's own faults are played in tests/test_runner_bpp.py


def _state(callback: dict[str, Any]) -> str:
    return str(callback["body"]["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"])


@pytest.mark.parametrize("fault, after_cancel", [(None, "APPLICATION_CANCELLED"),
                                                 ("forget-cancellation", "APPLICATION_SUCCESSFUL")])
def test_fault_forget_cancellation(networks: Callable[..., Network], fault: str | None, after_cancel: str) -> None:
    net = faulty(networks, fault) if fault else networks()
    confirm = confirmable(net)
    txn = confirm["context"]["transaction_id"]
    assert to_bpp(net, "confirm", confirm).json() == ACK
    order_id = wait_for(net, transaction_id=txn, action="on_confirm")[0]["body"]["message"]["order"]["id"]
    for name, action in (("11-cancel.json", "cancel"), ("07-status.json", "status")):
        body = request_body(net, name, transaction_id=txn)
        body["message"]["order_id"] = order_id
        assert to_bpp(net, action, body).json() == ACK
    assert _state(wait_for(net, transaction_id=txn, action="on_cancel")[0]) == "APPLICATION_CANCELLED"
    assert _state(wait_for(net, transaction_id=txn, action="on_status")[0]) == after_cancel


@pytest.mark.parametrize("fault", [None, "invent-orders"])
def test_fault_invent_orders(networks: Callable[..., Network], fault: str | None) -> None:
    net = faulty(networks, fault) if fault else networks()
    body = request_body(net, "07-status.json")
    body["message"]["order_id"] = "order-nobody-confirmed"
    answer = to_bpp(net, "status", body)
    if fault is None:
        nacked(answer, 400, "30010")
        return
    assert answer.json() == ACK
    [callback] = wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_status")
    assert callback["body"]["message"]["order"]["id"] == "order-nobody-confirmed"


def test_a_bap_only_fault_is_refused_for_a_bpp() -> None:
    with pytest.raises(ConfigError, match="unknown faults .'unknown-item'.; known here: "):
        start(NetworkConfig(faults={BPP: frozenset({"unknown-item"})}))


def test_an_unknown_fault_is_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigError, match="unknown faults"):
        start(NetworkConfig(faults={BPP: frozenset({"explode"})}))


def test_fault_wrong_callback_message_id(networks: Callable[..., Network]) -> None:
    net = faulty(networks, "wrong-callback-message-id")
    body = request_body(net, "03-init.json")
    assert to_bpp(net, "init", body).json() == ACK
    got = wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_init")
    assert len(got) == 1
    assert got[0]["body"]["context"]["message_id"] != body["context"]["message_id"]
    assert arrived(net, message_id=body["context"]["message_id"]) == []


def test_fault_wrong_callback_transaction_id(networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch) -> None:
    net = faulty(networks, "wrong-callback-transaction-id")
    sends = record_sends(net.bpps[BPP], monkeypatch)
    body = request_body(net, "03-init.json")
    assert to_bpp(net, "init", body).json() == ACK
    deadline = time.monotonic() + 3
    while not sends and time.monotonic() < deadline:
        time.sleep(POLL)
    # the callback names a transaction the BAP never started: the BAP refuses it, and keeps nothing
    assert [(s["url"], s["status"], s["answer"]["error"]["paths"]) for s in sends] == [
        (f"{net.bap_url}/on_init", 400, "$.context.transaction_id")]
    assert arrived(net, message_id=body["context"]["message_id"]) == []


def test_the_bap_refuses_a_callback_for_a_transaction_it_never_started(net: Network) -> None:
    body = request_body(net, "04-on_init.json")
    body["context"]["transaction_id"] = str(uuid.uuid4())  # not adopted: nobody sent a request in it
    response = post_signed(f"{net.bap_url}/on_init", body, net.bpps[BPP].key)
    assert nacked(response, 400, "30000")["paths"] == "$.context.transaction_id"


def test_fault_enum_out_of_range_puts_sms_in_on_confirm(networks: Callable[..., Network]) -> None:
    # The reference BAP would refuse the callback (see the next test); with its validation off it keeps it.
    net = networks(sf_grid_loadflex={"enum-out-of-range"}, bap={"no-validation"})
    body = confirmable(net)
    assert to_bpp(net, "confirm", body).json() == ACK
    got = wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_confirm")
    assert len(got) == 1
    states = [f["state"]["descriptor"]["code"] for f in got[0]["body"]["message"]["order"]["fulfillments"]]
    assert states == ["SMS"]


def test_fault_enum_out_of_range_callback_is_nacked_by_a_validating_bap(
        networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch) -> None:
    net = faulty(networks, "enum-out-of-range")
    body = confirmable(net)
    sends = record_sends(net.bpps[BPP], monkeypatch)
    assert to_bpp(net, "confirm", body).json() == ACK
    assert [m for m in silent(net, body) if m["action"] == "on_confirm"] == []
    assert [(s["url"], s["status"], s["answer"]["error"]["code"]) for s in sends] == [
        (f"{net.bap_url}/on_confirm", 400, "30000")]
    assert "fulfillments[0].state.descriptor.code" in sends[0]["answer"]["error"]["message"]


def test_fault_no_callback(networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch) -> None:
    net = faulty(networks, "no-callback")
    sends = record_sends(net.bpps[BPP], monkeypatch)
    body = request_body(net, "03-init.json")
    response = to_bpp(net, "init", body)
    assert (response.status_code, response.json()) == (200, ACK)
    assert silent(net, body) == []
    assert sends == []


def test_fault_late_callback_arrives_after_the_ttl(networks: Callable[..., Network]) -> None:
    net = faulty(networks, "late-callback")
    body = request_body(net, "03-init.json", ttl="PT1S")
    sent_at = time.time()
    assert to_bpp(net, "init", body).json() == ACK
    txn = body["context"]["transaction_id"]
    assert wait_for(net, transaction_id=txn, timeout=1.0) == [], "nothing may arrive within the ttl"
    got = wait_for(net, transaction_id=txn, action="on_init", timeout=3.0)
    assert len(got) == 1
    assert got[0]["received_at"] - sent_at > 1.0


def test_fault_duplicate_callback(networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch) -> None:
    net = faulty(networks, "duplicate-callback")
    sends = record_sends(net.bpps[BPP], monkeypatch)
    body = request_body(net, "03-init.json")
    assert to_bpp(net, "init", body).json() == ACK
    txn = body["context"]["transaction_id"]
    wait_for(net, transaction_id=txn)
    time.sleep(0.1)  # the second copy follows the first at once; a third would be here by now too
    # the same bytes under the same signature twice: the BAP takes the first and refuses the replay
    assert [(s["url"], s["status"]) for s in sends] == [(f"{net.bap_url}/on_init", 200),
                                                        (f"{net.bap_url}/on_init", 400)]
    assert sends[0]["headers"] == sends[1]["headers"]
    assert sends[1]["answer"]["error"]["message"].startswith("a replay")
    assert [m["body"]["context"]["message_id"] for m in arrived(net, transaction_id=txn)] == [
        body["context"]["message_id"]]


@pytest.mark.parametrize("fault, reason", [("bad-signature", "SIG_INVALID"), ("unsigned", "SIG_MISSING")])
def test_fault_badly_signed_callbacks_are_refused_by_the_bap(
        networks: Callable[..., Network], monkeypatch: pytest.MonkeyPatch, fault: str, reason: str) -> None:
    net = faulty(networks, fault)
    sends = record_sends(net.bpps[BPP], monkeypatch)
    body = request_body(net, "03-init.json")
    assert to_bpp(net, "init", body).json() == ACK
    assert silent(net, body) == []
    assert [(s["url"], s["status"]) for s in sends] == [(f"{net.bap_url}/on_init", 401)]
    assert sends[0]["answer"]["error"]["message"].startswith(f"{reason}:")
    assert ("Authorization" in sends[0]["headers"]) is (fault == "bad-signature")


def test_fault_no_signature_check_acks_a_tampered_request(networks: Callable[..., Network]) -> None:
    net = faulty(networks, "no-signature-check")
    body = request_body(net, "03-init.json")
    raw = encode(body)
    tampered = raw.replace(b"Alex Morgan", b"Eve Mallory")
    response = post_raw(f"{net.bpps[BPP].url}/init", tampered, signing.sign(raw, net.bap.key))
    assert (response.status_code, response.json()) == (200, ACK)
    got = wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_init")
    assert got[0]["body"]["message"]["order"]["fulfillments"][0]["customer"]["person"]["name"] == "Eve Mallory"
    # An unsigned request gets through as well.
    assert post_raw(f"{net.bpps[BPP].url}/init", encode(request_body(net, "03-init.json")), None).json() == ACK


def test_fault_no_validation_acks_a_schema_invalid_request(net: Network, networks: Callable[..., Network]) -> None:
    def invalid(network: Network) -> dict[str, Any]:
        # Invalid by schema/context rules only: the callback's context gets a fresh timestamp, so it is clean.
        return request_body(network, "03-init.json", timestamp="yesterday at noon")

    nacked(to_bpp(net, "init", invalid(net)), 400, "30000")  # the clean BPP refuses it
    lax = faulty(networks, "no-validation")
    body = invalid(lax)
    response = to_bpp(lax, "init", body)
    assert (response.status_code, response.json()) == (200, ACK)
    assert len(wait_for(lax, transaction_id=body["context"]["transaction_id"], action="on_init")) == 1


def test_fault_no_validation_acks_an_order_that_is_a_string(networks: Callable[..., Network]) -> None:
    """What a lax BPP cannot serve it ACKs all the same, and says so in the callback (BECKN-005 error)."""
    net = faulty(networks, "no-validation")
    body = request_body(net, "03-init.json")
    body["message"]["order"] = "not an order"
    assert to_bpp(net, "init", body).json() == ACK
    got = wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_init")
    assert [m["body"].get("error", {}).get("code") for m in got] == ["30001"]
    assert "message" not in got[0]["body"]


def test_faults_combine_no_signature_check_and_no_validation(networks: Callable[..., Network]) -> None:
    net = faulty(networks, "no-signature-check", "no-validation")
    body = request_body(net, "03-init.json", timestamp="yesterday at noon")
    response = post_raw(f"{net.bpps[BPP].url}/init", encode(body), None)
    assert (response.status_code, response.json()) == (200, ACK)
    assert len(wait_for(net, transaction_id=body["context"]["transaction_id"], action="on_init")) == 1


@pytest.mark.parametrize("action, fixture, change, status, code", [
    pytest.param("init", "03-init.json", lambda b: b.pop("context"), 400, None, id="no-context"),
    pytest.param("init", "03-init.json", _set("context", ["a", "list"]), 400, None, id="context-is-a-list"),
    pytest.param("init", "03-init.json", _set("message", "not a message"), 200, "30001", id="message-is-a-string"),
    pytest.param("confirm", "05-confirm.json", _set("message.order.items", [{"id": ["a"]}, "x"]), 200, "30004",
                 id="item-id-is-a-list"),
    pytest.param("init", "03-init.json", _set("message.order.fulfillments", "not a list"), 200, None,
                 id="fulfillments-is-a-string"),
    pytest.param("status", "07-status.json", _set("message.order_id", ["a", "list"]), 200, "30010",
                 id="order-id-is-a-list"),
])
def test_fault_no_validation_answers_malformed_bodies_without_crashing(
        crashing_networks: Callable[..., Network], action: str, fixture: str,
        change: Callable[[dict[str, Any]], Any], status: int, code: str | None) -> None:
    """Without validation a body can be any shape: a context that is not an object is still refused (nothing can
    be answered without one); everything else is ACKed, with an error callback for what cannot be served."""
    net = faulty(crashing_networks, "no-validation")
    body = request_body(net, fixture)
    context = body["context"]
    change(body)
    response = to_bpp(net, action, body)
    if status == 400:
        assert nacked(response, 400, "30000") == {"code": "30000", "message": "context must be an object",
                                                   "paths": "$.context"}
        return
    assert (response.status_code, response.json()) == (200, ACK)
    got = wait_for(net, transaction_id=context["transaction_id"], action=f"on_{action}")
    assert [m["body"].get("error", {}).get("code") for m in got] == [code]


def test_fault_nack_everything(networks: Callable[..., Network]) -> None:
    net = faulty(networks, "nack-everything")
    body = request_body(net, "03-init.json")
    error = nacked(to_bpp(net, "init", body), 400, "30000")
    assert "nack-everything" in error["message"]
    assert silent(net, body) == []
    # The other BPP of the same network is unaffected.
    other = request_body(net, "01-search.json", bpp=OTHER_BPP)
    assert to_bpp(net, "search", other, bpp=OTHER_BPP).json() == ACK
    assert len(wait_for(net, transaction_id=other["context"]["transaction_id"], action="on_search")) == 1


# ---- 4. the registry ------------------------------------------------------------------------------------------

def lookup(net: Network, query: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(f"{net.registry_url}/lookup", json=query, timeout=5)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def test_registry_lookup_by_type_and_domain_returns_both_bpps_with_their_keys(net: Network) -> None:
    found = lookup(net, {"type": "BPP", "domain": "flexibility"})
    assert {r["subscriber_id"]: r["signing_public_key"] for r in found} == {
        bpp.key.subscriber_id: bpp.key.public_key for bpp in bpps_of(net)}
    assert {r["url"] for r in found} == {bpp.url for bpp in bpps_of(net)}
    assert {(r["type"], r["domain"], r["status"]) for r in found} == {("BPP", "flexibility", "SUBSCRIBED")}
    assert lookup(net, {"type": "BPP", "domain": "mobility"}) == []


def test_registry_lookup_by_subscriber_and_key_id_returns_exactly_one(net: Network) -> None:
    bpp = net.bpps[BPP]
    found = lookup(net, {"subscriber_id": bpp.key.subscriber_id, "key_id": bpp.key.unique_key_id})
    assert len(found) == 1
    assert (found[0]["subscriber_id"], found[0]["key_id"], found[0]["signing_public_key"], found[0]["url"]) == (
        bpp.key.subscriber_id, bpp.key.unique_key_id, bpp.key.public_key, bpp.url)
    assert lookup(net, {"subscriber_id": bpp.key.subscriber_id, "key_id": "another-key"}) == []


def test_registry_subscribe_adds_an_entry_that_lookup_and_the_network_then_use(
        networks: Callable[..., Network]) -> None:
    net = networks()
    newcomer = KeyPair.generate("new-bap.example.com", "new-bap-key-1")
    entry = {"subscriber_id": newcomer.subscriber_id, "url": net.bap_url, "type": "BAP", "domain": "flexibility",
             "key_id": newcomer.unique_key_id, "signing_public_key": newcomer.public_key}
    response = httpx.post(f"{net.registry_url}/subscribe", json=entry, timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "UNDER_SUBSCRIPTION"})
    found = lookup(net, {"subscriber_id": newcomer.subscriber_id, "key_id": newcomer.unique_key_id})
    assert [(r["url"], r["type"], r["signing_public_key"]) for r in found] == [
        (net.bap_url, "BAP", newcomer.public_key)]
    # The BPP now verifies the newcomer's signature against the registered key.
    body = request_body(net, "03-init.json", bap_id=newcomer.subscriber_id)
    assert post_signed(f"{net.bpps[BPP].url}/init", body, newcomer).json() == ACK


def test_registry_refuses_a_subscription_missing_fields(net: Network) -> None:
    response = httpx.post(f"{net.registry_url}/subscribe", json={"subscriber_id": "half.example.com"}, timeout=5)
    assert response.status_code == 400
    assert "not a subscription" in response.json()["error"]
    assert lookup(net, {"subscriber_id": "half.example.com"}) == []


def test_registry_lookup_refuses_a_body_that_is_not_json(net: Network) -> None:
    response = httpx.post(f"{net.registry_url}/lookup", content=b"{type: BPP", timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "the body must be a JSON object"}
    response = httpx.post(f"{net.registry_url}/lookup", json=["BPP"], timeout=5)
    assert response.status_code == 400


def test_registry_lookup_refuses_a_malformed_location(crashing_networks: Callable[..., Network]) -> None:
    net = crashing_networks()
    response = httpx.post(f"{net.registry_url}/lookup", json={"location": {"city": "SF"}}, timeout=5)
    assert response.status_code == 400, response.text


def test_a_subscriber_refused_before_subscribing_is_accepted_after(networks: Callable[..., Network]) -> None:
    net = networks()
    newcomer = KeyPair.generate("late-bap.example.com", "late-bap-key-1")
    first = request_body(net, "03-init.json", bap_id=newcomer.subscriber_id)
    refused_signature(post_signed(f"{net.bpps[BPP].url}/init", first, newcomer),
                      net.bpps[BPP].key.subscriber_id, "SIG_KEY_UNKNOWN")
    entry = {"subscriber_id": newcomer.subscriber_id, "url": net.bap_url, "type": "BAP", "domain": "flexibility",
             "key_id": newcomer.unique_key_id, "signing_public_key": newcomer.public_key}
    assert httpx.post(f"{net.registry_url}/subscribe", json=entry, timeout=5).status_code == 200
    second = request_body(net, "03-init.json", bap_id=newcomer.subscriber_id)
    assert post_signed(f"{net.bpps[BPP].url}/init", second, newcomer).json() == ACK


def test_registry_subscribe_rotates_a_key_in_place_and_the_network_uses_the_new_one(
        networks: Callable[..., Network]) -> None:
    net = networks()
    bap, bpp = net.bap.key, net.bpps[BPP]
    assert to_bpp(net, "init", request_body(net, "03-init.json")).json() == ACK  # the BPP now has the key cached
    rotated = KeyPair.generate(bap.subscriber_id, bap.unique_key_id)
    entry = {"subscriber_id": bap.subscriber_id, "url": net.bap_url, "type": "BAP", "domain": "flexibility",
             "key_id": bap.unique_key_id, "signing_public_key": rotated.public_key}
    assert httpx.post(f"{net.registry_url}/subscribe", json=entry, timeout=5).status_code == 200
    found = lookup(net, {"subscriber_id": bap.subscriber_id})
    assert [(r["key_id"], r["signing_public_key"]) for r in found] == [(bap.unique_key_id, rotated.public_key)]
    assert post_signed(f"{bpp.url}/init", request_body(net, "03-init.json"), rotated).json() == ACK
    refused_signature(post_signed(f"{bpp.url}/init", request_body(net, "03-init.json"), bap),
                      bpp.key.subscriber_id, "SIG_INVALID")


@pytest.mark.parametrize("query", [{"location": "San Francisco"}, {"location": {"city": {"code": 94103}}},
                                   {"city": ["SF"]}])
def test_registry_lookup_refuses_other_malformed_cities(net: Network, query: dict[str, Any]) -> None:
    response = httpx.post(f"{net.registry_url}/lookup", json=query, timeout=5)
    assert response.status_code == 400, response.text
    assert "must be" in response.json()["error"]


def test_registry_refuses_a_subscription_whose_fields_are_not_strings(net: Network) -> None:
    entry = {"subscriber_id": "typed.example.com", "url": 80, "type": "BPP", "domain": "flexibility",
             "key_id": "", "signing_public_key": "AAAA"}
    response = httpx.post(f"{net.registry_url}/subscribe", json=entry, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "not a subscription: key_id, url must be non-empty strings"
    assert lookup(net, {"subscriber_id": "typed.example.com"}) == []
