"""The reference network differing from the guide in ways the specs allow: catalogs of several providers, the
conformant variations, callbacks that take their time, a network mounted in another server. Each is driven through
the reference BAP's client endpoint and read back from its inbox, as a harness would; each must show, and the rule
engine must find nothing wrong."""
from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from conformance import ConfigError, Engine, Message, Severity, load_transcript
from conformance.cli import main
from conformance.network import FAULTS, VARIATIONS, MountableNetwork, Network, NetworkConfig
from conformance.network.bpp import ReferenceBPP
from conformance.network.catalog import CATALOGS, load_catalog
from conformance.network.participant import BAP_VARIATIONS, BPP_VARIATIONS
from conformance.network.registry import Subscriber
from conformance.signing import KeyPair
from conformance.transport import BackgroundServer, bind
from tests._live import bpps_of

LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
SEARCH = {"intent": {"descriptor": {"name": "Energy Incentives"}}}
CUSTOMER = {"customer": {"person": {"name": "Alex Morgan"}},
            "stops": [{"type": "END", "location": {"address": "der://ssf.meter/98765456"}}]}
ACK = {"message": {"ack": {"status": "ACK"}}}


def reach(net: MountableNetwork, url: str) -> str:
    """Where the test reaches one of the network's URLs: at the address its server listens on (a mounted
    network's public URL may not be reachable at all)."""
    return net.local_url + url.removeprefix(net.base_url)


def client(net: MountableNetwork, action: str, context: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """Ask the BAP client to send a request: {context (as sent), status_code, response (the target's)}."""
    response = httpx.post(f"{reach(net, net.bap_client_url)}/{action}", json={"context": context, "message": message},
                          timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def inbox(net: MountableNetwork, transaction_id: str, action: str, count: int = 1,
          timeout: float = 5.0) -> list[dict[str, Any]]:
    """The callbacks of `action` the BAP took in the transaction, once `count` came (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        taken = httpx.get(f"{reach(net, net.bap_client_url)}/inbox", params={"transaction_id": transaction_id},
                          timeout=5).json()
        found = [m["body"] for m in taken if m["action"] == action]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@dataclass
class Flow:
    """One transaction played through the BAP client: search, then enrolment with one provider of on_search."""

    transaction_id: str
    catalogs: list[dict[str, Any]]
    """The on_search messages."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """action -> what the BAP client answered (the target's synchronous reply under `response`)."""
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """on_<action> -> the callback the BAP took."""

    @property
    def order_id(self) -> str:
        found: str = self.callbacks["on_confirm"]["message"]["order"]["id"]
        return found


def search(net: MountableNetwork, bpps: int) -> Flow:
    """A search through the gateway, and the on_search of each of the `bpps` BPPs."""
    sent = client(net, "search", {"location": LOCATION}, SEARCH)
    assert sent["response"] == ACK
    transaction_id = sent["context"]["transaction_id"]
    catalogs = inbox(net, transaction_id, "on_search", count=bpps)
    assert len(catalogs) == bpps
    return Flow(transaction_id, catalogs)


def order_from(on_search: dict[str, Any], provider: int = 0) -> dict[str, Any]:
    """An order for the first item of a provider, with its fulfillment: every id as on_search gave it."""
    chosen = on_search["message"]["catalog"]["providers"][provider]
    item = chosen["items"][0]
    return {"provider": {"id": chosen["id"]}, "items": [{"id": item["id"]}],
            "fulfillments": [{"id": item["fulfillment_ids"][0], **CUSTOMER}]}


def towards(transaction_id: str, on_search: dict[str, Any]) -> dict[str, Any]:
    """The context of a request, in the transaction, to the BPP that sent `on_search`."""
    return {"transaction_id": transaction_id, "location": LOCATION, "bpp_id": on_search["context"]["bpp_id"],
            "bpp_uri": on_search["context"]["bpp_uri"]}


def enrol(net: MountableNetwork, flow: Flow, on_search: dict[str, Any], provider: int = 0,
          actions: tuple[str, ...] = ("init", "confirm", "status", "support", "cancel")) -> Flow:
    """Go on from the search with one provider of one on_search, each request once its predecessor's callback came."""
    context = towards(flow.transaction_id, on_search)
    order = order_from(on_search, provider)
    for action in actions:
        message: dict[str, Any] = {"order": order}
        if action in ("status", "cancel"):
            message = {"order_id": flow.order_id}
        elif action == "support":
            message = {"support": {"ref_id": flow.order_id}}
        flow.answers[action] = client(net, action, context, message)
        if flow.answers[action]["response"] == ACK:
            flow.callbacks[f"on_{action}"] = inbox(net, flow.transaction_id, f"on_{action}")[0]
    return flow


def errors(net: MountableNetwork, flow: Flow, tmp_path: Path) -> list[str]:
    """The rule engine's errors over the whole transaction, as the BAP captured it."""
    capture = tmp_path / f"{flow.transaction_id}.jsonl"
    capture.write_text("\n".join(json.dumps(r) for r in net.bap.transcript(flow.transaction_id)))
    report = Engine().check(load_transcript([capture]))
    return [f.text() for f in report.findings if f.severity is Severity.ERROR]


def state(callback: dict[str, Any]) -> str:
    code: str = callback["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"]
    return code


# ---- a catalog of several providers ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def both_providers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One catalog file publishing both of the guide's providers, as the guide's on_search does; made of the two
    shipped files."""
    shipped = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CATALOGS.glob("*.json"))]
    path = tmp_path_factory.mktemp("catalogs") / "energy-incentives.json"
    path.write_text(json.dumps({"catalog_descriptor": shipped[0]["catalog_descriptor"],
                                "providers": [c["provider"] for c in shipped]}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_bpp(both_providers: Path) -> Iterator[Network]:
    with Network(NetworkConfig(catalogs=(both_providers,))) as net:
        yield net


def test_a_catalog_file_of_several_providers_publishes_them_all_in_one_on_search(one_bpp: Network) -> None:
    [on_search] = search(one_bpp, bpps=1).catalogs
    assert [p["descriptor"]["name"] for p in on_search["message"]["catalog"]["providers"]] == [
        "FlexiGrid Aggregator", "SF Grid LoadFlex"]
    assert list(one_bpp.bpps) == ["energy-incentives"]


@pytest.mark.parametrize("provider", [0, 1])
def test_each_provider_of_a_catalog_takes_orders(one_bpp: Network, provider: int, tmp_path: Path) -> None:
    flow = search(one_bpp, bpps=1)
    on_search = flow.catalogs[0]
    enrol(one_bpp, flow, on_search, provider)
    published = on_search["message"]["catalog"]["providers"][provider]
    assert flow.callbacks["on_confirm"]["message"]["order"]["provider"]["id"] == published["id"]
    assert flow.callbacks["on_confirm"]["message"]["order"]["items"][0]["id"] == published["items"][0]["id"]
    assert state(flow.callbacks["on_cancel"]) == "APPLICATION_CANCELLED"
    assert errors(one_bpp, flow, tmp_path) == []


@pytest.mark.parametrize("change, code, path", [
    ({"provider": {"id": "provider_nobody_publishes"}}, "30001", "$.message.order.provider.id"),
    ({"provider": {}}, "30001", "$.message.order.provider.id"),
    ({"items": [{"id": "aggregator_optin_flex"}]}, "30004", "$.message.order.items[0].id"),  # the other provider's
])
def test_an_order_is_served_by_the_provider_it_names_only(one_bpp: Network, change: dict[str, Any], code: str,
                                                          path: str) -> None:
    flow = search(one_bpp, bpps=1)
    on_search = flow.catalogs[0]
    sf_grid = [p["id"] for p in on_search["message"]["catalog"]["providers"]].index("provider_demand_flex_001")
    answer = client(one_bpp, "init", towards(flow.transaction_id, on_search),
                    {"order": {**order_from(on_search, sf_grid), **change}})["response"]
    assert (answer["error"]["code"], answer["error"]["paths"]) == (code, path)


@pytest.mark.parametrize("text, reason", [
    ('{"catalog_descriptor": {}}', "it needs 'provider' or 'providers'"),
    ('{"provider": {"id": "a"}, "providers": [{"id": "b"}]}', "it needs 'provider' or 'providers'"),
    ('{"providers": []}', "'providers' must be a non-empty list"),
    ('{"providers": {"id": "a"}}', "'providers' must be a non-empty list"),
    ('{"providers": [{"id": "a"}, {"descriptor": {}}]}', "provider 1 needs an 'id' string"),
    ('{"providers": [{"id": "a"}, {"id": "a"}]}', "provider id 'a' appears twice"),
    ('{"provider": {"id": "a"}, "catalog_descriptor": "Energy"}', "'catalog_descriptor' must be an object"),
    ('["a list"]', "a JSON object is needed, not list"),
    ("{not json", "Expecting property name"),
])
def test_a_file_that_is_no_catalog_is_a_one_line_error_naming_it(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "mine.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_catalog(path)
    assert str(refused.value).startswith(f"{path}: not a catalog file (")
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_both_shapes_load_alike(both_providers: Path) -> None:
    one = load_catalog(CATALOGS / "sf-grid-loadflex.json")
    assert [p["id"] for p in one["providers"]] == ["provider_demand_flex_001"]
    assert [p["id"] for p in load_catalog(both_providers)["providers"]] == [
        "provider_flex_aggregator_001", "provider_demand_flex_001"]
    assert one["catalog_descriptor"] == {"name": "Energy Incentives and Subsidies"}



# ---- conformant variations ---------------------------------------------------------------------------------------

BPP = "sf-grid-loadflex"
SF_GRID = "provider_demand_flex_001"
NETWORKS: dict[str, NetworkConfig] = {
    "": NetworkConfig(),
    "support-ticket": NetworkConfig(variations={BPP: frozenset({"support-ticket"})}),
    "other-first-state": NetworkConfig(variations={BPP: frozenset({"other-first-state"})}),
    "other-ids": NetworkConfig(variations={name: frozenset({"other-ids"}) for name in (BPP, "flexigrid-aggregator")}),
    "thin-client": NetworkConfig(variations={"bap": frozenset({"thin-client"})},
                                 faults={BPP: frozenset({"no-validation"})}),
    "no-validation": NetworkConfig(faults={BPP: frozenset({"no-validation"})}),
}
"""A network per variation, and the ones without it to compare with: "" for the BPP variations, no-validation for
thin-client (a BPP that calls back with an error, which the BAP must see before it matters whether it stops)."""
ENROLLED = ("", "support-ticket", "other-first-state", "other-ids")


@pytest.fixture(scope="module")
def networks() -> Iterator[dict[str, Network]]:
    with ExitStack() as stack:
        nets = {name: Network(config) for name, config in NETWORKS.items()}
        for net in nets.values():
            stack.callback(net.stop)
        with ThreadPoolExecutor(max_workers=len(nets)) as pool:
            list(pool.map(Network.start, nets.values()))
        yield nets


def sf_grid(flow: Flow, net: Network) -> dict[str, Any]:
    """The on_search of the SF Grid LoadFlex BPP."""
    return next(c for c in flow.catalogs if c["context"]["bpp_id"] == net.bpps[BPP].key.subscriber_id)


@pytest.fixture(scope="module")
def enrolled(networks: dict[str, Network]) -> dict[str, Flow]:
    """Search to cancel with SF Grid LoadFlex on the networks of ENROLLED, all at once, every id from on_search."""
    def play(name: str) -> Flow:
        net = networks[name]
        flow = search(net, bpps=2)
        return enrol(net, flow, sf_grid(flow, net))

    with ThreadPoolExecutor(max_workers=len(ENROLLED)) as pool:
        return dict(zip(ENROLLED, pool.map(play, ENROLLED)))


@pytest.mark.parametrize("variation", ENROLLED)
def test_a_variation_is_conformant_from_search_to_cancel(networks: dict[str, Network], enrolled: dict[str, Flow],
                                                         variation: str, tmp_path: Path) -> None:
    flow = enrolled[variation]
    assert [flow.answers[a]["response"] for a in flow.answers] == [ACK] * 5
    assert errors(networks[variation], flow, tmp_path) == []


def test_support_ticket_answers_support_with_a_ticket_of_its_own(enrolled: dict[str, Flow]) -> None:
    varied, plain = enrolled["support-ticket"], enrolled[""]
    ticket = varied.callbacks["on_support"]["message"]["support"]["ref_id"]
    assert ticket.startswith("support-") and ticket != varied.order_id
    assert plain.callbacks["on_support"]["message"]["support"]["ref_id"] == plain.order_id


def test_first_state_processing_confirms_in_processing_and_status_moves_it_on(enrolled: dict[str, Flow]) -> None:
    def states(flow: Flow) -> list[str]:
        return [state(flow.callbacks[a]) for a in ("on_confirm", "on_status", "on_cancel")]

    assert states(enrolled["other-first-state"]) == [
        "APPLICATION_PROCESSING", "APPLICATION_SUCCESSFUL", "APPLICATION_CANCELLED"]
    assert states(enrolled[""]) == ["APPLICATION_SUBMITTED", "APPLICATION_SUCCESSFUL", "APPLICATION_CANCELLED"]


def ids(on_search: dict[str, Any]) -> set[str]:
    """Every id an on_search defines or refers to: providers', their entries', and the references between them."""
    found: set[str] = set()
    for provider in on_search["message"]["catalog"]["providers"]:
        found.add(provider["id"])
        for member in ("items", "categories", "fulfillments", "locations"):
            for entry in provider.get(member, []):
                found.add(entry["id"])
                for refs in ("category_ids", "fulfillment_ids", "location_ids"):
                    found.update(entry.get(refs, []))
    return found


def test_other_ids_publishes_none_of_the_guides_ids_and_takes_orders_by_its_own(
        networks: dict[str, Network], enrolled: dict[str, Flow], engine: Engine) -> None:
    varied, plain = enrolled["other-ids"], enrolled[""]
    for net, flow in ((networks["other-ids"], varied), (networks[""], plain)):
        on_search = sf_grid(flow, net)
        assert [f.text() for f in engine.check_alone(Message(on_search, "on_search", None, endpoint="/on_search"))
                if f.severity is Severity.ERROR] == []
    theirs = set().union(*(ids(c) for c in varied.catalogs))
    guides = set().union(*(ids(c) for c in plain.catalogs))
    assert len(theirs) == len(guides) and not theirs & guides
    assert varied.callbacks["on_confirm"]["message"]["order"]["provider"]["id"] in theirs
    # A BAP that orders by the guide's ids, not by what on_search published, is refused.
    context = towards(varied.transaction_id, sf_grid(varied, networks["other-ids"]))
    guide_order = order_from(sf_grid(plain, networks[""]))
    refused = client(networks["other-ids"], "select", context, {"order": guide_order})["response"]
    assert refused["error"]["code"] == "30001"


@pytest.mark.parametrize("network, sent", [("thin-client", True), ("no-validation", False)])
def test_thin_client_sends_the_confirm_after_an_init_error_callback(networks: dict[str, Network], network: str,
                                                                    sent: bool) -> None:
    net = networks[network]
    flow = search(net, bpps=2)
    on_search = sf_grid(flow, net)
    context = towards(flow.transaction_id, on_search)
    unknown = {**order_from(on_search), "items": [{"id": "item-nobody-publishes"}]}
    assert client(net, "init", context, {"order": unknown})["response"] == ACK  # the BPP finds out later ...
    assert inbox(net, flow.transaction_id, "on_init")[0]["error"]["code"] == "30004"  # ... and says so
    confirm = httpx.post(f"{net.bap_client_url}/confirm", json={"context": context, "message": {"order": unknown}},
                         timeout=5)
    assert confirm.status_code == (200 if sent else 409), confirm.text
    assert [m["body"]["context"]["action"] for m in net.bap.outbox][-1] == ("confirm" if sent else "init")



# ---- which participant has which variation ---------------------------------------------------------------------

@pytest.mark.parametrize("participant, variation, known, whose", [
    ("bap", "support-ticket", "thin-client", "BPP"),
    (BPP, "thin-client", ", ".join(sorted(BPP_VARIATIONS)), "BAP"),
    ("gateway", "other-ids", "none", "BPP"),
])
def test_a_variation_of_another_participant_is_refused(participant: str, variation: str, known: str,
                                                       whose: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Network(NetworkConfig(variations={participant: frozenset({variation})}))
    assert str(refused.value) == (f"{participant}: unknown variations ['{variation}']; known here: {known}; "
                                  f"only a {whose} has {variation}")


def test_a_variation_for_nobody_is_refused() -> None:
    bpps = sorted(p.stem for p in NetworkConfig().catalogs)  # every use case's
    assert {"flexigrid-aggregator", "sf-grid-loadflex"} <= set(bpps)
    participants = ", ".join(["gateway", "bap", *bpps])
    with pytest.raises(ConfigError, match=rf"^variations for unknown participants \['nobody'\]; participants: "
                                          rf"{re.escape(participants)}$"):
        Network(NetworkConfig(variations={"nobody": frozenset({"support-ticket"})}))


def test_list_variations_says_which_participants_have_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--list-variations"]) == 0
    listed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert listed.keys() == VARIATIONS.keys() and not VARIATIONS.keys() & FAULTS.keys()
    assert {name for name, what in listed.items() if what.startswith("BAP only: ")} == BAP_VARIATIONS.keys()
    assert {name for name, what in listed.items() if what.startswith("BPP only: ")} == BPP_VARIATIONS.keys()


@pytest.mark.parametrize("argv, message", [
    (["--vary", "bap"], "--vary 'bap': write PARTICIPANT=VARIATION, e.g. sf-grid-loadflex=support-ticket"),
    (["--vary", "bap=support-ticket"], "bap: unknown variations ['support-ticket']; known here: thin-client; only a "
                                       "BPP has support-ticket"),
])
def test_sandbox_refuses_a_variation_it_cannot_give_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                                message: str) -> None:
    assert main(["sandbox", *argv]) == 2
    assert capsys.readouterr().err == f"deg-conformance: error: {message}\n"


# ---- callbacks that take their time ------------------------------------------------------------------------------

def test_callbacks_three_seconds_late_are_within_a_ttl_of_thirty(tmp_path: Path) -> None:
    with Network(NetworkConfig(latency=3.0)) as net:
        sent = client(net, "search", {"location": LOCATION, "ttl": "PT30S"}, SEARCH)
        assert sent["response"] == ACK  # at once: the latency is the callback's, not the ACK's
        flow = Flow(sent["context"]["transaction_id"], inbox(net, sent["context"]["transaction_id"], "on_search",
                                                              count=2, timeout=6))
        assert len(flow.catalogs) == 2
        taken = [m for m in net.bap.inbox if m["body"]["context"]["transaction_id"] == flow.transaction_id]
        assert all(m["received_at"] - net.bap.outbox[0]["sent_at"] >= 3.0 for m in taken)
        assert errors(net, flow, tmp_path) == []
        asked = datetime.fromisoformat(sent["context"]["timestamp"])
        # A callback is stamped when it is sent, not when it was decided on.
        assert all(datetime.fromisoformat(c["context"]["timestamp"]) - asked >= timedelta(seconds=3)
                   for c in flow.catalogs)


def test_stopping_with_callbacks_pending_is_quick_and_quiet(capfd: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    net = Network(NetworkConfig(latency=3.0)).start()
    try:
        assert client(net, "search", {"location": LOCATION}, SEARCH)["response"] == ACK
        deadline = time.monotonic() + 3
        while not all(b.seen for b in bpps_of(net)):  # both BPPs took the search: their on_search is pending
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        net.stop()
    assert time.monotonic() - started < 1
    assert capfd.readouterr().err == ""  # uvicorn says nothing of tasks it had to cancel
    assert [r.getMessage() for r in caplog.records if r.levelname != "DEBUG"] == []


# ---- mounted in another server -----------------------------------------------------------------------------------

PUBLIC = "http://deg-harness.invalid/harness"
"""The host's public URL in these tests: never resolvable, so whatever reaches a participant went the local way."""


@pytest.fixture
def host() -> Iterator[tuple[MountableNetwork, dict[str, ReferenceBPP]]]:
    """A server of its own, as the harness playing BPP runs: its BPPs (one per shipped catalog) under /bpp/<name>,
    and beside them a reference registry, gateway and BAP (no BPPs of theirs) mounted from a MountableNetwork."""
    server = BackgroundServer(bind("127.0.0.1", 0), name="host")
    try:
        net = MountableNetwork(NetworkConfig(catalogs=()), public_url=PUBLIC, local_url=server.url)
        engine = Engine()
        own = {p.stem: ReferenceBPP(KeyPair.generate(f"{p.stem}.host.test", "host-key-1"), url=f"{PUBLIC}/bpp/{p.stem}",
                                    catalog=load_catalog(p), engine=engine) for p in sorted(CATALOGS.glob("*.json"))}
        for bpp in own.values():
            net.add_subscriber(Subscriber.for_key(bpp.key, url=bpp.url, type="BPP", domain=net.config.domain))

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as http, net.attach(http, also=own.values()):
                yield

        routes = [*net.routes(), *(Mount(f"/bpp/{name}", app=bpp.app()) for name, bpp in own.items())]
        server.start(Starlette(routes=routes, lifespan=lifespan))
        yield net, own
    finally:
        server.stop()


def test_a_mounted_network_relays_a_search_to_its_hosts_bpps_and_their_callbacks_back(
        host: tuple[MountableNetwork, dict[str, ReferenceBPP]], tmp_path: Path) -> None:
    net, own = host
    flow = search(net, bpps=2)
    assert {c["context"]["bpp_uri"] for c in flow.catalogs} == {f"{PUBLIC}/bpp/{name}" for name in own}
    assert all(c["context"]["bap_uri"] == f"{PUBLIC}/bap" for c in flow.catalogs)
    enrol(net, flow, flow.catalogs[0], actions=("init", "confirm", "status"))
    assert state(flow.callbacks["on_status"]) == "APPLICATION_SUCCESSFUL"
    assert errors(net, flow, tmp_path) == []  # every signature checked against the registry, at its local URL


def test_a_mounted_network_registers_and_advertises_its_public_urls(
        host: tuple[MountableNetwork, dict[str, ReferenceBPP]]) -> None:
    net, own = host
    listed = httpx.post(f"{net.local_registry_url}/lookup", json={}, timeout=5).json()
    assert sorted(r["url"] for r in listed) == sorted([f"{PUBLIC}/gateway", f"{PUBLIC}/bap",
                                                       *(f"{PUBLIC}/bpp/{name}" for name in own)])
    assert [e.url for e in net.endpoints()] == [f"{PUBLIC}/registry", f"{PUBLIC}/gateway", f"{PUBLIC}/bap",
                                                f"{PUBLIC}/bap-client"]


@pytest.mark.parametrize("urls, message", [
    ({"public_url": "deg-harness.example/harness"}, "public URL 'deg-harness.example/harness' is not an http(s) URL"),
    ({"public_url": PUBLIC, "local_url": "127.0.0.1:8082"}, "local URL '127.0.0.1:8082' is not an http(s) URL"),
])
def test_a_mounted_network_needs_http_urls(urls: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^the network's {re.escape(message)}$"):
        MountableNetwork(NetworkConfig(), **urls)
