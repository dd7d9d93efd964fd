"""The reference BAP's fault switches, seen on the wire: what the faulty BAP sends, and what a reference BPP
answers. The harness playing BPP is certified against these faults (tests/test_runner_bpp.py), so each must bend
exactly what it names, and nothing without its switch."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from conformance import ConfigError, signing
from conformance.cli import main
from conformance.network import Network, NetworkConfig
from conformance.network.participant import BAP_ONLY, BPP_ONLY, FAULTS, SHARED_FAULTS, now_rfc3339

BPP = "sf-grid-loadflex"
TRANSACTION = Path(__file__).resolve().parent.parent / "fixtures/demand-flexibility/conformant-transaction"
LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
ITEM = "manual_optin_demand_flex"
ORDER = {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": ITEM}],
         "fulfillments": [{"id": "manual_optin", "customer": {"person": {"name": "Alex Morgan"}},
                           "stops": [{"type": "END", "location": {"address": "der://ssf.meter/98765456"}}]}]}
FLOW = ("search", "select", "init", "confirm", "status", "support", "cancel")
PLAYED = ("fresh-transaction-id", "reused-message-id", "unknown-item", "wrong-order-id", "unsigned", "bad-signature")
"""The faults of the BAP's requests played through FLOW. nack-everything is about callbacks (tested apart);
ignore-error-callback needs a BPP that calls back with an error (tests/test_runner_bpp.py plays it)."""
ACK = {"message": {"ack": {"status": "ACK"}}}


@dataclass
class Played:
    """FLOW as one network's BAP client was asked to send it, and the requests the BAP sent (its outbox)."""

    transaction_id: str
    order_id: str
    sent: dict[str, dict[str, Any]]
    """action -> the outbox record: {body, url, status_code, response}."""

    def context(self, action: str, field: str) -> Any:
        return self.sent[action]["body"]["context"][field]


def play(net: Network) -> Played:
    """Drive FLOW through the BAP client in one transaction, naming the order the BPP confirmed in it (a made-up
    one when the BPP confirmed none). Callbacks are not waited for: the faults are in what the BAP sends."""
    bpp = net.bpps[BPP]
    first = client(net, "search", {"location": LOCATION}, {"intent": {"descriptor": {"name": "Energy Incentives"}}})
    base = {"transaction_id": first["context"]["transaction_id"], "location": LOCATION,
            "bpp_id": bpp.key.subscriber_id, "bpp_uri": bpp.url}
    for action in ("select", "init", "confirm"):
        client(net, action, base, {"order": ORDER})
    order_id = next(iter(bpp.orders), "order-the-bpp-never-confirmed")
    client(net, "status", base, {"order_id": order_id})
    client(net, "support", base, {"support": {"ref_id": order_id}})
    client(net, "cancel", base, {"order_id": order_id})
    assert [m["body"]["context"]["action"] for m in net.bap.outbox] == list(FLOW)
    return Played(base["transaction_id"], order_id, {m["body"]["context"]["action"]: m for m in net.bap.outbox})


def client(net: Network, action: str, context: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """Ask the BAP client to send a request; it answers 200 with whatever the target answered."""
    response = httpx.post(f"{net.bap_client_url}/{action}", json={"context": context, "message": message}, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="module")
def networks() -> Iterator[dict[str, Network]]:
    """A network per fault of PLAYED and nack-everything, and one without faults (""), started at once."""
    faults = ("", *PLAYED, "nack-everything")
    with ExitStack() as stack:
        nets = {f: Network(NetworkConfig(faults={"bap": frozenset({f} - {""})})) for f in faults}
        for net in nets.values():
            stack.callback(net.stop)
        with ThreadPoolExecutor(max_workers=len(nets)) as pool:
            list(pool.map(Network.start, nets.values()))
        yield nets


@pytest.fixture(scope="module")
def played(networks: dict[str, Network]) -> dict[str, Played]:
    """FLOW played on the network without faults and on each of PLAYED, all at once."""
    faults = ("", *PLAYED)
    with ThreadPoolExecutor(max_workers=len(faults)) as pool:
        return dict(zip(faults, pool.map(lambda f: play(networks[f]), faults)))


def answered(played: Played, action: str) -> tuple[int, str | None]:
    """The HTTP status and BECKN-005 error code (None for an ACK) the target answered a request with."""
    record = played.sent[action]
    response = record["response"]
    return record["status_code"], response.get("error", {}).get("code") if isinstance(response, dict) else None


# ---- what each fault bends -------------------------------------------------------------------------------------

def fresh_transaction_ids(p: Played) -> bool:
    later = [p.context(a, "transaction_id") for a in FLOW[1:]]
    fresh = set(later) - {p.transaction_id}
    return p.context("search", "transaction_id") == p.transaction_id and len(fresh) == len(later)


def reused_message_ids(p: Played) -> bool:
    return {p.context(a, "message_id") for a in FLOW} == {p.context("search", "message_id")}


def unknown_items(p: Played) -> bool:
    return all([i["id"] for i in p.sent[a]["body"]["message"]["order"]["items"]] == ["item-not-in-any-catalog"]
               for a in ("select", "init", "confirm"))


def wrong_order_ids(p: Played) -> bool:
    named = [p.sent[a]["body"]["message"]["order_id"] for a in ("status", "cancel")]
    named.append(p.sent["support"]["body"]["message"]["support"]["ref_id"])
    return len(set(named) - {p.order_id}) == len(named)


def unsigned_refused(p: Played) -> bool:
    return refused_signatures(p, "SIG_MISSING")


def badly_signed_refused(p: Played) -> bool:
    return refused_signatures(p, "SIG_INVALID")


def refused_signatures(p: Played, reason: str) -> bool:
    """The gateway (search) and the BPP (the rest) refused every request with a 401 NACK for `reason`."""
    return all(answered(p, a) == (401, "30000") and p.sent[a]["response"]["error"]["message"].startswith(f"{reason}:")
               for a in FLOW)


FIRED: dict[str, Callable[[Played], bool]] = {
    "fresh-transaction-id": fresh_transaction_ids, "reused-message-id": reused_message_ids,
    "unknown-item": unknown_items, "wrong-order-id": wrong_order_ids,
    "unsigned": unsigned_refused, "bad-signature": badly_signed_refused}
"""Whether a fault shows in a played FLOW."""


@pytest.mark.parametrize("fault", PLAYED)
def test_the_fault_bends_what_the_bap_sends(played: dict[str, Played], fault: str) -> None:
    assert FIRED[fault](played[fault])


@pytest.mark.parametrize("fault", PLAYED)
def test_without_its_switch_the_fault_does_not_show(played: dict[str, Played], fault: str) -> None:
    assert not FIRED[fault](played[""])


def test_without_faults_every_request_is_acked_and_every_id_is_the_given_one(played: dict[str, Played]) -> None:
    p = played[""]
    assert [answered(p, a) for a in FLOW] == [(200, None)] * len(FLOW)
    assert {p.context(a, "transaction_id") for a in FLOW} == {p.transaction_id}
    assert len({p.context(a, "message_id") for a in FLOW}) == len(FLOW)
    assert p.order_id.startswith("order-") and p.order_id != "order-the-bpp-never-confirmed"


def test_every_fault_played_is_checked() -> None:
    assert set(FIRED) == set(PLAYED) == BAP_ONLY - {"ignore-error-callback"} | {"unsigned", "bad-signature"}


# ---- what the BPP makes of it ----------------------------------------------------------------------------------

def test_a_fresh_transaction_id_leaves_confirm_without_its_init(played: dict[str, Played]) -> None:
    p = played["fresh-transaction-id"]
    assert [answered(p, a) for a in ("select", "init", "confirm")] == [(200, None), (200, None), (400, "30000")]
    assert "confirm before init" in p.sent["confirm"]["response"]["error"]["message"]


def test_a_reused_message_id_is_refused_as_a_replay(played: dict[str, Played]) -> None:
    p = played["reused-message-id"]
    # From init on: select may reach the BPP before the gateway relays the search, and is then the first.
    for action in FLOW[2:]:
        assert answered(p, action) == (400, "30000")
        assert "already used" in p.sent[action]["response"]["error"]["message"]


def test_an_unknown_item_is_refused_with_30004(played: dict[str, Played]) -> None:
    p = played["unknown-item"]
    for action in ("select", "init", "confirm"):
        assert answered(p, action) == (400, "30004")
        assert p.sent[action]["response"]["error"]["paths"] == "$.message.order.items[0].id"


def test_a_wrong_order_id_is_refused_with_30010(played: dict[str, Played]) -> None:
    p = played["wrong-order-id"]
    assert [answered(p, a) for a in FLOW[:4]] == [(200, None)] * 4  # the order itself was confirmed
    assert [answered(p, a) for a in ("status", "support", "cancel")] == [(400, "30010")] * 3


@pytest.mark.parametrize("fault", ["unsigned", "bad-signature"])
def test_the_bpp_refuses_a_badly_signed_request_with_401(played: dict[str, Played], networks: dict[str, Network],
                                                         fault: str) -> None:
    p = played[fault]
    assert p.sent["init"]["url"] == f"{networks[fault].bpps[BPP].url}/init"
    assert p.sent["init"]["response"]["message"] == {"ack": {"status": "NACK"}}
    assert networks[fault].bpps[BPP].seen == set()  # nothing got past the signature check


# ---- nack-everything: the BAP's answer to callbacks --------------------------------------------------------------

def valid_on_init(net: Network, transaction_id: str) -> tuple[bytes, str]:
    """An on_init from the BPP in a transaction the BAP started, signed by the BPP: one a BAP must take."""
    body = json.loads((TRANSACTION / "04-on_init.json").read_text(encoding="utf-8"))
    bpp = net.bpps[BPP]
    body["context"].update({"bap_id": net.bap.key.subscriber_id, "bap_uri": net.bap_url,
                            "bpp_id": bpp.key.subscriber_id, "bpp_uri": bpp.url, "transaction_id": transaction_id,
                            "message_id": str(uuid.uuid4()), "timestamp": now_rfc3339()})
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw, signing.sign(raw, bpp.key)


@pytest.mark.parametrize("fault, status, answer", [
    ("", 200, ACK),
    ("nack-everything", 400, {"message": {"ack": {"status": "NACK"}}, "error": {
        "code": "30000", "message": "this participant refuses everything (fault: nack-everything)"}}),
])
def test_nack_everything_makes_the_bap_nack_a_valid_callback(networks: dict[str, Network], fault: str, status: int,
                                                             answer: dict[str, Any]) -> None:
    net = networks[fault]
    started = client(net, "search", {"location": LOCATION}, {"intent": {}})["context"]["transaction_id"]
    raw, signature = valid_on_init(net, started)
    response = httpx.post(f"{net.bap_url}/on_init", content=raw, timeout=5,
                          headers={"Content-Type": "application/json", "Authorization": signature})
    assert (response.status_code, response.json()) == (status, answer)


# ---- which participant has which fault ---------------------------------------------------------------------------

@pytest.mark.parametrize("participant, fault, whose", [("bap", "late-callback", "BPP"), (BPP, "wrong-order-id", "BAP"),
                                                       ("gateway", "no-callback", "BPP")])
def test_a_fault_of_another_participant_is_refused(participant: str, fault: str, whose: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{participant}: unknown faults \['{fault}'\]; known here: .*; "
                                          rf"only a {whose} has {fault}$") as refused:
        Network(NetworkConfig(faults={participant: frozenset({fault})}))
    known = str(refused.value).split("known here: ")[1].split(";")[0].split(", ")
    own = {"bap": BAP_ONLY, "gateway": frozenset()}.get(participant, BPP_ONLY)  # the gateway has none of its own
    assert set(known) == set(SHARED_FAULTS) | own


def test_list_faults_says_which_participants_have_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--list-faults"]) == 0
    listed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert listed.keys() == FAULTS.keys()
    assert {name for name, what in listed.items() if what.startswith("BAP only: ")} == BAP_ONLY
    assert {name for name, what in listed.items() if what.startswith("BPP only: ")} == BPP_ONLY
