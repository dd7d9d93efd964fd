"""The reference network end to end: every message signed and verified, and the rule engine finds nothing."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conformance import Engine, load_transcript
from conformance.network import Network, start

LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
SF_GRID = {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": "manual_optin_demand_flex"}],
           "fulfillments": [{"id": "manual_optin", "customer": {"person": {"name": "Alex Morgan"}},
                             "stops": [{"type": "END", "location": {"address": "der://ssf.meter/98765456"}}]}]}


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with start() as net:
        yield net


def drive(net: Network, action: str, context: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{net.bap_client_url}/{action}", json={"context": context, "message": message}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def callbacks(net: Network, txn: str, action: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [m["body"] for m in net.bap.inbox
                 if m["action"] == action and m["body"]["context"]["transaction_id"] == txn]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_full_flow_through_the_gateway_is_conformant(network: Network, tmp_path: Path) -> None:
    sent = drive(network, "search", {"location": LOCATION}, {"intent": {"descriptor": {"name": "Energy Incentives"}}})
    assert sent["response"] == {"message": {"ack": {"status": "ACK"}}}
    txn = sent["context"]["transaction_id"]
    catalogs = callbacks(network, txn, "on_search", count=2)
    providers = {c["context"]["bpp_id"]: c["message"]["catalog"]["providers"][0]["id"] for c in catalogs}
    assert set(providers.values()) == {"provider_demand_flex_001", "provider_flex_aggregator_001"}
    chosen = next(c["context"] for c in catalogs if c["message"]["catalog"]["providers"][0]["id"] == "provider_demand_flex_001")
    base = {"transaction_id": txn, "location": LOCATION, "bpp_id": chosen["bpp_id"], "bpp_uri": chosen["bpp_uri"]}

    drive(network, "init", base, {"order": SF_GRID})
    assert callbacks(network, txn, "on_init")
    drive(network, "confirm", base, {"order": SF_GRID})
    order_id = callbacks(network, txn, "on_confirm")[0]["message"]["order"]["id"]
    drive(network, "status", base, {"order_id": order_id})
    status = callbacks(network, txn, "on_status")[0]["message"]["order"]
    assert status["fulfillments"][0]["state"]["descriptor"]["code"] == "APPLICATION_SUCCESSFUL"
    drive(network, "support", base, {"support": {"ref_id": order_id}})
    assert callbacks(network, txn, "on_support")
    drive(network, "cancel", base, {"order_id": order_id})
    cancelled = callbacks(network, txn, "on_cancel")[0]["message"]["order"]
    assert cancelled["fulfillments"][0]["state"]["descriptor"]["code"] == "APPLICATION_CANCELLED"

    signed = [m for m in network.bap.inbox if m["body"]["context"]["transaction_id"] == txn]
    assert all(m["headers"].get("authorization", "").startswith("Signature keyId=") for m in signed)
    assert all("x-gateway-authorization" in m["headers"] for m in signed if m["action"] == "on_search")

    capture = tmp_path / "capture.jsonl"
    capture.write_text("\n".join(json.dumps(r) for r in network.bap.transcript(txn)))
    report = Engine().check(load_transcript([capture]))
    assert report.messages == 13
    assert [f.text() for f in report.findings if f.severity.value == "error"] == []
