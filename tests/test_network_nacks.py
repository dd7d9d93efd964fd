"""The reference network refuses what it must: NACK with the BECKN-005 code (401 for signatures), no callback."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from conformance import signing
from conformance.network import Network, NetworkConfig, start
from conformance.signing import KeyPair
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "conformant-transaction"
BPP = "sf-grid-loadflex"


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    with start() as network:
        yield network


def request_body(net: Network, name: str, **context: Any) -> dict[str, Any]:
    """A fixture request addressed from the reference BAP to a reference BPP, with fresh ids."""
    body = json.loads((CLEAN / name).read_text())
    bpp = net.bpps[BPP]
    body["context"].update(bap_id=net.bap.key.subscriber_id, bap_uri=net.bap_url, bpp_id=bpp.key.subscriber_id,
                           bpp_uri=bpp.url, transaction_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()),
                           timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
                           **context)
    return body


def post(url: str, raw: bytes, key: KeyPair | None, sign: Callable[[bytes, KeyPair], str] = signing.sign,
         signed_bytes: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = sign(signed_bytes if signed_bytes is not None else raw, key)
    return httpx.post(url, content=raw, headers=headers, timeout=5)


def nothing_arrives(net: Network, transaction_id: str, wait: float = 0.4) -> bool:
    time.sleep(wait)
    return not [m for m in net.bap.inbox if m["body"]["context"].get("transaction_id") == transaction_id]


def nacked(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["message"]["ack"]["status"] == "NACK"
    assert doc["error"]["code"] == code
    return doc["error"]


def test_a_valid_request_is_acked_and_answered(net: Network) -> None:
    body = request_body(net, "03-init.json")
    response = post(f"{net.bpps[BPP].url}/init", json.dumps(body).encode(), net.bap.key)
    assert response.json() == {"message": {"ack": {"status": "ACK"}}}
    assert not nothing_arrives(net, body["context"]["transaction_id"])


def _break(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node = body
        for step in head:
            node = node[int(step)] if step.isdigit() else node[step]
        node[last] = value
    return apply


@pytest.mark.parametrize("name, endpoint, mutate, code, paths", [
    ("03-init.json", "init", _break("message.order", "not an order"), "30000", "$.message.order"),
    ("03-init.json", "init", _break("message.order.provider.id", "provider_unknown"), "30001",
     "$.message.order.provider.id"),
    ("05-confirm.json", "confirm", _break("message.order.items.0.id", "item_unknown"), "30004",
     "$.message.order.items[0].id"),
    ("07-status.json", "status", _break("message.order_id", "order-nobody-made"), "30010", "$.message.order_id"),
    ("11-cancel.json", "cancel", _break("message.order_id", "order-nobody-made"), "30010", "$.message.order_id"),
    ("03-init.json", "confirm", _break("context.action", "init"), "30000", "$.context.action"),
    ("03-init.json", "update", _break("context.action", "update"), "40001", None),
])
def test_bad_requests_get_the_right_nack_and_no_callback(net: Network, name: str, endpoint: str,
                                                          mutate: Callable[[dict[str, Any]], None], code: str,
                                                          paths: str | None) -> None:
    body = request_body(net, name)
    mutate(body)
    error = nacked(post(f"{net.bpps[BPP].url}/{endpoint}", json.dumps(body).encode(), net.bap.key), 400, code)
    assert error.get("paths") == paths
    assert nothing_arrives(net, body["context"]["transaction_id"])


def test_a_body_that_is_not_json_is_refused(net: Network) -> None:
    nacked(post(f"{net.bpps[BPP].url}/init", b"{not json", net.bap.key), 400, "30000")


NOW = int(time.time())


@pytest.mark.parametrize("how, reason", [
    ("missing", "SIG_MISSING"),
    ("tampered", "SIG_INVALID"),
    ("unregistered key", "SIG_INVALID"),
    ("unknown key id", "SIG_KEY_UNKNOWN"),
    ("expired", "SIG_EXPIRED"),
    ("created in the future", "SIG_CREATED_IN_FUTURE"),
    ("someone else's key", "SIG_SUBSCRIBER_MISMATCH"),
])
def test_signature_failures_get_401_with_www_authenticate(net: Network, how: str, reason: str) -> None:
    body = request_body(net, "03-init.json")
    raw = json.dumps(body).encode()
    bap = net.bap.key
    key: KeyPair | None = {"missing": None, "unregistered key": KeyPair.generate(bap.subscriber_id, bap.unique_key_id),
                           "unknown key id": KeyPair.generate(bap.subscriber_id, "no-such-key"),
                           "someone else's key": net.gateway.key}.get(how, bap)
    created = {"expired": NOW - 600, "created in the future": NOW + 60}.get(how)
    response = post(f"{net.bpps[BPP].url}/init", raw, key,
                    sign=lambda b, k: signing.sign(b, k, created=created, validity=300),
                    signed_bytes=raw.replace(b"Alex Morgan", b"Eve") if how == "tampered" else None)
    error = nacked(response, 401, "30000")
    assert error["message"].startswith(reason)
    assert response.headers["WWW-Authenticate"].startswith(f'Signature realm="{net.bpps[BPP].key.subscriber_id}"')
    assert nothing_arrives(net, body["context"]["transaction_id"])


def test_gateway_and_bap_refuse_bad_signatures_too(net: Network) -> None:
    search = request_body(net, "01-search.json")
    raw = json.dumps(search).encode()
    response = post(f"{net.gateway_url}/search", raw, KeyPair.generate(net.bap.key.subscriber_id, net.bap.key.unique_key_id))
    nacked(response, 401, "30000")
    assert "WWW-Authenticate" in response.headers
    callback = request_body(net, "08-on_status.json")
    response = post(f"{net.bap_url}/on_status", json.dumps(callback).encode(), None)
    nacked(response, 401, "30000")
    assert nothing_arrives(net, callback["context"]["transaction_id"], wait=0)


def test_registry_lookup_returns_keys_and_subscribe_adds(net: Network) -> None:
    found = httpx.post(f"{net.registry_url}/lookup", json={"type": "BPP", "domain": "flexibility"}, timeout=5).json()
    assert {r["subscriber_id"]: r["signing_public_key"] for r in found} == {
        b.key.subscriber_id: b.key.public_key for b in net.bpps.values()}
    one = httpx.post(f"{net.registry_url}/lookup", json={"subscriber_id": net.bap.key.subscriber_id,
                                                          "key_id": net.bap.key.unique_key_id}, timeout=5).json()
    assert [r["url"] for r in one] == [net.bap_url]
    new = KeyPair.generate("new-bpp.example.com", "k1")
    entry = {"subscriber_id": new.subscriber_id, "url": "http://127.0.0.1:9/bpp", "type": "BPP", "domain": "flexibility",
             "key_id": new.unique_key_id, "signing_public_key": new.public_key}
    assert httpx.post(f"{net.registry_url}/subscribe", json=entry, timeout=5).json() == {"status": "UNDER_SUBSCRIPTION"}
    found = httpx.post(f"{net.registry_url}/lookup", json={"subscriber_id": new.subscriber_id}, timeout=5).json()
    assert [r["signing_public_key"] for r in found] == [new.public_key]
    assert httpx.post(f"{net.registry_url}/lookup", content=b"{oops", timeout=5).status_code == 400


# ---- fault switches: each one changes what the network does ------------------------------------------------

def _callbacks(net: Network, txn: str, action: str, wait: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.02)
    return [m["body"] for m in net.bap.inbox if m["action"] == action and m["body"]["context"].get("transaction_id") == txn]


@pytest.fixture
def faulty() -> Iterator[Callable[..., Network]]:
    started: list[Network] = []

    def make(*faults: str, participant: str = BPP) -> Network:
        network = start(NetworkConfig(faults={participant: frozenset(faults)}))
        started.append(network)
        return network

    yield make
    for network in started:
        network.stop()


def _init(net: Network, **context: Any) -> tuple[dict[str, Any], httpx.Response]:
    body = request_body(net, "03-init.json", **context)
    return body, post(f"{net.bpps[BPP].url}/init", json.dumps(body).encode(), net.bap.key)


def test_fault_wrong_callback_ids(faulty: Callable[..., Network]) -> None:
    net = faulty("wrong-callback-message-id")
    body, _ = _init(net)
    time.sleep(0.4)
    got = [m["body"] for m in net.bap.inbox if m["action"] == "on_init"]
    assert len(got) == 1 and got[0]["context"]["message_id"] != body["context"]["message_id"]
    net = faulty("wrong-callback-transaction-id")
    body, _ = _init(net)
    time.sleep(0.4)
    got = [m["body"] for m in net.bap.inbox if m["action"] == "on_init"]
    assert len(got) == 1 and got[0]["context"]["transaction_id"] != body["context"]["transaction_id"]


def test_fault_enum_out_of_range_is_refused_by_the_bap(faulty: Callable[..., Network]) -> None:
    net = faulty("enum-out-of-range")
    body = request_body(net, "05-confirm.json")
    post(f"{net.bpps[BPP].url}/confirm", json.dumps(body).encode(), net.bap.key)
    # The reference BAP validates callbacks: a state outside the taxonomy is NACKed, so nothing is kept.
    assert _callbacks(net, body["context"]["transaction_id"], "on_confirm", 0.4) == []
    clean = faulty()
    body = request_body(clean, "05-confirm.json")
    post(f"{clean.bpps[BPP].url}/confirm", json.dumps(body).encode(), clean.bap.key)
    assert len(_callbacks(clean, body["context"]["transaction_id"], "on_confirm", 0.4)) == 1


@pytest.mark.parametrize("fault", ["no-callback", "bad-signature", "unsigned"])
def test_faults_that_leave_the_bap_without_a_callback(faulty: Callable[..., Network], fault: str) -> None:
    net = faulty(fault)
    body, response = _init(net)
    assert response.json()["message"]["ack"]["status"] == "ACK"
    assert _callbacks(net, body["context"]["transaction_id"], "on_init", 0.4) == []


def test_fault_duplicate_callback(faulty: Callable[..., Network]) -> None:
    net = faulty("duplicate-callback")
    body, _ = _init(net)
    assert len(_callbacks(net, body["context"]["transaction_id"], "on_init", 0.4)) == 2


def test_fault_late_callback(faulty: Callable[..., Network]) -> None:
    net = faulty("late-callback")
    sent = time.time()
    body, _ = _init(net, ttl="PT1S")
    assert _callbacks(net, body["context"]["transaction_id"], "on_init", 0.5) == []
    arrived = _callbacks(net, body["context"]["transaction_id"], "on_init", 2.0)
    assert len(arrived) == 1
    received = next(m["received_at"] for m in net.bap.inbox if m["action"] == "on_init")
    assert received - sent > 1.0


def test_fault_no_signature_check_and_no_validation(faulty: Callable[..., Network]) -> None:
    net = faulty("no-signature-check", "no-validation")
    body = request_body(net, "03-init.json")
    body["message"]["order"] = "not an order"
    raw = json.dumps(body).encode()
    response = post(f"{net.bpps[BPP].url}/init", raw, None)
    assert response.status_code == 400 and response.json()["error"]["code"] == "30001"  # business check still runs
    body = request_body(net, "03-init.json")
    raw = json.dumps(body).encode()
    assert post(f"{net.bpps[BPP].url}/init", raw, None).json()["message"]["ack"]["status"] == "ACK"


def test_fault_nack_everything(faulty: Callable[..., Network]) -> None:
    net = faulty("nack-everything")
    body, response = _init(net)
    nacked(response, 400, "30000")
    assert nothing_arrives(net, body["context"]["transaction_id"])
