"""The DEG Starter Kit's five 1.1.0 domains as use cases (retail, finance, rental, p2p-trading, ev): each plays end to
end against the reference network in both roles and against BPPs unlike the reference that conform all the same,
each scenario fails with the right rule against a BPP that breaks what it proves, and the collection's own requests
are judged as docs/positions-starter-kit.md says: exactly the findings its positions imply, and a flow the
reference network serves with the ids they order.

Every run of the module happens at once, in one module fixture (2 cores: a few seconds in all).
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conformance import ConfigError, Engine, Message, scenario, usecases
from conformance.cli import main
from conformance.findings import Severity
from conformance.network import Network, NetworkConfig
from conformance.network.catalog import load_catalog
from conformance.network.registry import Subscriber
from conformance.runner import Harness, RunConfig, ScenarioResult
from tests._live import write
from tests.conftest import REFERENCE, needs_shared

STARTER_KIT = {"Energy Retail": "retail", "Energy Finance": "finance", "Battery Rental": "rental",
               "P2P Energy Trading": "p2p-trading", "EV": "ev"}
"""The collection's top folders, and the use case each is."""
COLLECTION = REFERENCE / "deg" / "beckn-missions" / "DEG" / "STARTER_KIT" / "DEG_Starter_Kit.postman_collection.json"
WINDOW = 2.0
"""Seconds to wait for a callback: the reference BPPs answer in milliseconds."""
FAULT = {"retail": ("duplicate-callback", "TXN_DUPLICATE_CALLBACK"),
         "finance": ("unsigned", "SIG_MISSING"),
         "p2p-trading": ("wrong-callback-message-id", "TXN_CALLBACK_MESSAGE_ID"),
         "rental": ("wrong-callback-message-id", "TXN_CALLBACK_MESSAGE_ID"),
         "ev": ("bad-signature", "SIG_INVALID")}
"""Per use case, a BPP fault that breaks its scenario, and the one rule it must break, on every callback of the flow.
The kit states no order states (a state seen in one example is no taxonomy: positions), so no pack has a state rule
and enum-out-of-range is no fault here: see test_a_state_of_the_bpps_own_is_no_failure."""


# ---- the collection ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    folder: str
    name: str
    action: str
    body: dict[str, Any]

    @property
    def use_case(self) -> str:
        return STARTER_KIT[self.folder]


def collection() -> list[Request]:
    """The collection's Beckn requests (those to the BAP client), its variables filled in, in collection order."""
    doc = json.loads(COLLECTION.read_text(encoding="utf-8"))
    variables = {v["key"]: v["value"] for v in doc["variable"]}
    found: list[Request] = []

    def walk(items: list[dict[str, Any]], folder: str) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"], folder or item["name"])
                continue
            url = item["request"]["url"]
            url = url if isinstance(url, str) else url["raw"]
            if url.startswith("{{BAP_CLIENT_URL}}/"):
                raw = re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], item["request"]["body"]["raw"])
                found.append(Request(folder, item["name"], url.rsplit("/", 1)[1], json.loads(raw)))

    walk(doc["item"], "")
    return found


@needs_shared
def test_the_collections_requests_get_exactly_the_findings_of_the_positions(engine: Engine) -> None:
    """On arrival (schema, context, catalog and Layer-2 rules, the use case's pack included), every request of the
    five folders is valid but for position 1: no context.message_id, except in the one request that has one."""
    requests = collection()
    assert {r.use_case for r in requests} == set(STARTER_KIT.values()) and len(requests) == 31
    for r in requests:
        findings = engine.check_alone(Message(r.body, f"{r.folder}/{r.name}", None, endpoint=f"/{r.action}"))
        expected = [] if "message_id" in r.body["context"] else [("CTX_REQUIRED", "$.context.message_id")]
        assert [(f.rule_id, f.path) for f in findings] == expected, "\n".join(f.text() for f in findings)
    assert [r.name for r in requests if "message_id" in r.body["context"]] == ["Search By Item Name, Price and tags"]


@needs_shared
def test_the_catalogs_publish_what_the_collection_orders() -> None:
    """The provider, items and fulfillments every select, init and confirm of the collection orders are in its use
    case's catalogs, so that the collection's flows run against the reference network; but for the two fulfillments
    the rental confirm invents (position 22)."""
    unknown = []
    for r in collection():
        order = r.body["message"].get("order")
        if order is None:
            continue
        providers = {p["id"]: p for c in usecases.named(r.use_case).catalogs for p in load_catalog(c)["providers"]}
        provider = providers[order["provider"]["id"]]
        assert {i["id"] for i in order["items"]} <= {i["id"] for i in provider["items"]}, r
        published = {f["id"] for f in provider.get("fulfillments", [])}
        unknown += [(r.use_case, r.action, f["id"]) for f in order.get("fulfillments", []) if f.get("id") not in
                    (published | {None})]
    assert unknown == [("rental", "confirm", "6"), ("rental", "confirm", "7")]


# ---- playing the use cases ----------------------------------------------------------------------------------------

def shipped(use_case: str, role: str) -> list[scenario.Scenario]:
    found = usecases.named(use_case).scenarios
    return [s for s in map(scenario.load, scenario.discover([found])) if s.role == role]


def play(use_case: str, role: str, scenarios: list[scenario.Scenario]) -> list[ScenarioResult]:
    """The scenarios against the reference network (as BAP: its gateway and BPPs, which serve every use case, so
    that one run plays the scenarios of all; as BPP: its BAP, the harness serving the use case's catalogs)."""
    run = RunConfig(use_case=use_case, role=role, callback_timeout=WINDOW, settle=0.1, concurrency=4)
    with Harness(run) as harness:
        return harness.run(scenarios).scenarios


VARIED = frozenset({"other-ids", "support-ticket", "no-tracking"})
"""How the Starter Kit's BPPs differ from the reference while conforming (other-first-state needs a second first
state, which no Starter Kit use case has)."""
LATENCY = 1.0
"""Seconds each of those BPPs waits before a callback: slow, within every window."""


def play_varied(scenarios: list[scenario.Scenario]) -> list[ScenarioResult]:
    """The scenarios against a reference network whose every BPP differs from the reference in VARIED, late."""
    network = NetworkConfig(variations={c.stem: VARIED for u in STARTER_KIT.values()
                                        for c in usecases.named(u).catalogs}, latency=LATENCY)
    run = RunConfig(use_case=usecases.DEFAULT, network=network, callback_timeout=LATENCY + WINDOW, settle=0.1,
                    concurrency=len(scenarios))
    with Harness(run) as harness:
        return harness.run(scenarios).scenarios


def play_with_fault(use_case: str, fault: str | None, catalogs: tuple[Path, ...] = ()) -> ScenarioResult:
    """The use case's role-bap scenario straight at its reference BPP (serving the use case's catalogs, or those
    given), given one fault (at the BPP itself, so that what the fault breaks is on the hop the harness sees)."""
    catalogs = catalogs or usecases.named(use_case).catalogs
    config = NetworkConfig(catalogs=catalogs, faults={catalogs[0].stem: frozenset({fault} if fault else ())},
                           domain=usecases.named(use_case).domain)
    with Network(config) as net:
        run = RunConfig(use_case=use_case, target=net.bpps[catalogs[0].stem].url, registry=net.registry_url,
                        callback_timeout=WINDOW, settle=0.1)
        with Harness(run) as harness:
            net.registry.subscribers.append(Subscriber.for_key(harness.key, url=harness.callback_url, type="BAP",
                                                               domain=config.domain))
            [result] = harness.run(shipped(use_case, "bap")).scenarios
    return result


def collection_flow(requests: list[Request], folder: Path) -> scenario.Scenario:
    """A scenario that plays a folder's first search, then its select/init/confirm/status, as `import postman`
    makes one: the bodies as written, but what the harness owns (ids, timestamp, bap_id, bap_uri) and bpp_id,
    bpp_uri (saved from on_search) and the order id (saved from on_confirm)."""
    use_case = requests[0].use_case
    flow = [next(r for r in requests if r.action == "search"), *(r for r in requests if r.action != "search")]
    steps: list[dict[str, Any]] = []
    for n, r in enumerate(flow):
        fixture = folder / f"{n}-{r.action}.json"
        fixture.write_text(json.dumps(r.body), encoding="utf-8")
        step: dict[str, Any] = {"send": r.action, "body": fixture.name}
        if r.action == "search":
            step.update(expect={"count": "all", "min": 1},
                        offer={"save": {"bpp_id": "$.context.bpp_id", "bpp_uri": "$.context.bpp_uri"}})
        else:
            step["set"] = {"context.bpp_id": "{{ bpp_id }}", "context.bpp_uri": "{{ bpp_uri }}"}
        if r.action == "confirm":
            step["save"] = {"order_id": "$.message.order.id"}
        if r.action == "status":
            step["set"].update({"message.order_id": "{{ order_id }}", "message.orderId": "{{ order_id }}"})
        steps.append(step)
    path = folder / "collection.yaml"
    path.write_text(yaml.safe_dump({"name": f"the collection's {use_case} flow", "use_case": use_case,
                                    "steps": steps}), encoding="utf-8")
    return scenario.load(path)


def p2p_in_the_guides_layout(folder: Path) -> Path:
    """The P2P catalog as the kit's guide lays a trade out: one fulfillment (no type) with a start and an end stop,
    not the collection's START and END fulfillments (position 26)."""
    [path] = usecases.named("p2p-trading").catalogs
    doc = json.loads(path.read_text(encoding="utf-8"))
    provider = doc["provider"]
    stops = [stop for f in provider["fulfillments"] for stop in f["stops"]]
    assert [s["type"] for s in stops] == ["start", "end"]
    provider["fulfillments"] = [{"id": "1", "stops": stops}]
    for item in provider["items"]:
        item["fulfillment_ids"] = ["1"]
    out = folder / "p2p-guide-layout.json"
    out.write_text(json.dumps(doc), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Any]]:
    """Every run of the module, at once: per use case, its scenarios in both roles, its scenario against a faulty
    BPP, and (with the reference material beside the checkout) its folder of the collection."""
    flows = {}
    if COLLECTION.is_file():
        for use_case in STARTER_KIT.values():
            folder = [r for r in collection() if r.use_case == use_case]
            flows[use_case] = collection_flow(folder, tmp_path_factory.mktemp(use_case))
    skipping_select = write(tmp_path_factory.mktemp("finance"), "skipping-select.yaml", """
        name: a finance confirm before any select
        use_case: finance
        steps:
          - send: search
            expect: {count: all, min: 1}
            offer: {save: {provider_id: $.provider.id, item_id: $.item.id, bpp_id: $.context.bpp_id,
                           bpp_uri: $.context.bpp_uri}}
          - send: confirm
            expect: {outcome: nacked, error_code: "30000"}
    """)
    as_bap = [s for use_case in STARTER_KIT.values() for s in shipped(use_case, "bap")] + list(flows.values())
    as_bap.append(scenario.load(skipping_select))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: dict[tuple[str, str], Any] = {("every", "bap"): pool.submit(play, usecases.DEFAULT, "bap", as_bap)}
        for use_case in STARTER_KIT.values():
            futures[use_case, "bpp"] = pool.submit(play, use_case, "bpp", shipped(use_case, "bpp"))
            futures[use_case, "fault"] = pool.submit(play_with_fault, use_case, FAULT[use_case][0])
        futures["every", "varied"] = pool.submit(
            play_varied, [s for use_case in STARTER_KIT.values() for s in shipped(use_case, "bap")])
        futures["retail", "own-states"] = pool.submit(play_with_fault, "retail", "enum-out-of-range")
        futures["p2p-trading", "guide-layout"] = pool.submit(
            play_with_fault, "p2p-trading", None, (p2p_in_the_guides_layout(tmp_path_factory.mktemp("p2p")),))
        done = {key: future.result() for key, future in futures.items()}
    for result in done.pop(("every", "varied")):
        done[result.scenario.use_case, "varied"] = [result]
    for result in done.pop(("every", "bap")):
        kind = {"collection.yaml": "collection", "skipping-select.yaml": "skipping-select"}.get(
            result.scenario.path.name, "bap")
        done[result.scenario.use_case, kind] = [result]
    yield done


def errors(result: ScenarioResult) -> list[str]:
    return [f.rule_id for f in result.findings if f.severity is Severity.ERROR]


@pytest.mark.parametrize("use_case", STARTER_KIT.values())
@pytest.mark.parametrize("role", ["bap", "bpp"])
def test_the_use_case_plays_end_to_end(runs: dict[tuple[str, str], Any], use_case: str, role: str) -> None:
    results = runs[use_case, role]
    assert len(results) == 1
    [r] = results
    assert (r.status, r.findings, r.harness_findings) == ("passed", [], []), "\n".join(f.text() for f in r.findings)
    sent = [st.action for st in r.steps]
    assert sent[0] == "search" and sent[-2:] == ["confirm", "status"]
    if role == "bap":
        [on_status] = r.steps[-1].callbacks
        state = on_status.body["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"]
        assert state == usecases.named(use_case).orders.confirmed


@pytest.mark.parametrize("use_case", STARTER_KIT.values())
def test_the_scenario_holds_on_a_bpp_unlike_the_reference(runs: dict[tuple[str, str], Any], use_case: str) -> None:
    """Other ids for everything its catalog publishes, support tickets, no tracking, callbacks a second late: a
    conformant BPP all the same, so the use case's scenario passes, with the ids that BPP published."""
    [r] = runs[use_case, "varied"]
    assert (r.status, r.findings) == ("passed", []), (r.why, "\n".join(f.text() for f in r.findings))
    [on_confirm] = [st for st in r.steps if st.action == "confirm"][0].callbacks
    ordered = {i["id"] for i in on_confirm.body["message"]["order"]["items"]}
    published = {i["id"] for c in usecases.named(use_case).catalogs for p in load_catalog(c)["providers"]
                 for i in p["items"]}
    assert ordered and not ordered & published, "the varied BPP's ids are not its catalog file's"


def test_a_use_case_confirming_after_select_still_refuses_a_confirm_before_it(
        runs: dict[tuple[str, str], Any], tmp_path: Path) -> None:
    """Energy finance goes select -> confirm (`orders.confirm-after: select`, position 16): its BPP takes a confirm
    after a select (the scenario above), and refuses one in a transaction with neither select nor init. A use case
    naming another request is refused when it is read, naming the file."""
    [r] = runs["finance", "skipping-select"]
    assert (r.status, r.findings) == ("passed", [])
    assert r.steps[-1].reply is not None and r.steps[-1].reply.body["error"] == {
        "code": "30000", "message": "confirm before select: this transaction has no initialised order",
        "paths": "$.context.transaction_id"}
    bad = write(tmp_path, "use-case.yaml", """
        title: t
        domain: d
        version: "1.1.0"
        orders: {confirmed: A, cancelled: B, confirm-after: status}
    """)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}: orders.confirm-after must be one of init, "
                                          r"select, not 'status'$"):
        usecases.read(bad)


@pytest.mark.parametrize("use_case", STARTER_KIT.values())
def test_the_scenario_fails_with_the_rule_its_fault_breaks(runs: dict[tuple[str, str], Any], use_case: str) -> None:
    r = runs[use_case, "fault"]
    fault, rule_id = FAULT[use_case]
    assert r.status == "failed" and set(errors(r)) == {rule_id}, "\n".join(f.text() for f in r.findings)
    found = [f for f in r.findings if f.rule_id == rule_id]
    assert [f.action for f in found] == [f"on_{st.action}" for st in r.steps]


def test_a_prosumer_laying_a_trade_out_as_the_guide_does_is_played(runs: dict[tuple[str, str], Any]) -> None:
    """The P2P scenario takes the item's fulfillments whatever their layout: a BPP with the guide's one fulfillment
    and two stops is played and passes, rather than skipped for want of START and END fulfillments."""
    r = runs["p2p-trading", "guide-layout"]
    assert (r.status, r.findings) == ("passed", []), (r.why, "\n".join(f.text() for f in r.findings))
    [init] = [st for st in r.steps if st.action == "init"]
    assert init.request is not None
    assert [[s["type"] for s in f["stops"]] for f in init.request.body["message"]["order"]["fulfillments"]] == [
        ["start", "end"]]


def test_a_state_of_the_bpps_own_is_no_failure(runs: dict[tuple[str, str], Any]) -> None:
    """Near miss of the faults above: a BPP whose orders go through states the kit never shows (enum-out-of-range
    writes SMS) conforms, since the kit lists no states; on_status shows the state it chose."""
    r = runs["retail", "own-states"]
    assert (r.status, r.findings) == ("passed", []), "\n".join(f.text() for f in r.findings)
    [on_status] = r.steps[-1].callbacks
    assert on_status.body["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"] == "SMS"


@needs_shared
@pytest.mark.parametrize("use_case", STARTER_KIT.values())
def test_the_collections_own_flow_runs_against_the_reference_network(runs: dict[tuple[str, str], Any],
                                                                     use_case: str) -> None:
    """Its select/init/confirm/status as written (finance: select then confirm, no init; p2p: init then confirm),
    with what the harness owns filled in: the BPP serves them. What is wrong with them is on the harness's own
    requests, shown and not counted: the context.location changes of position 4, the rental confirm's invented
    fulfillments of position 22."""
    [r] = runs[use_case, "collection"]
    assert (r.status, r.findings) == ("passed", []), "\n".join(f.text() for f in r.findings)
    own = {(f.rule_id, f.action) for f in r.harness_findings}
    moved = {"retail": {"select", "init"}, "finance": {"select"}, "rental": {"status"}, "p2p-trading": set(),
             "ev": {"select", "init", "confirm", "status"}}[use_case]
    invented = {("ORD_FULFILLMENT_UNKNOWN", "confirm")} if use_case == "rental" else set()
    assert own == {("TXN_LOCATION_CHANGED", action) for action in moved} | invented, \
        "\n".join(f.text() for f in r.harness_findings)


def test_run_use_case_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["use-cases"]) == 0
    listed = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert {name: listed[name] for name in STARTER_KIT.values()} == {
        "retail": "deg:retail", "finance": "deg:finance", "rental": "deg:rental", "p2p-trading": "uei:p2p_trading",
        "ev": "deg:ev"}
    code = main(["run", "--use-case", "finance", "--callback-timeout", str(WINDOW), "--report-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert (code, summary["passed"], [s["id"] for s in summary["scenarios"]]) == (0, 1, ["battery-loan"])


def test_the_probes_say_a_pack_that_narrows_nothing_has_no_layer2_probe(capsys: pytest.CaptureFixture[str],
                                                                         tmp_path: Path) -> None:
    """Energy finance's pack narrows nothing (the kit states no list): its probe report says so, as it does for a
    use case with no pack (tests/test_usecase_ev_charging.py pins the Layer-2 probes of a pack that narrows)."""
    code = main(["probe", "--use-case", "finance", "-n", "8", "--callback-timeout", str(WINDOW), "--report-dir",
                 str(tmp_path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    layer2 = [s for s in summary["scenarios"] if s["id"].startswith("layer2")]
    assert code == 0 and [(s["id"], s["status"]) for s in layer2] == [("layer2", "skipped")]
    assert "its Layer-2 pack narrows nothing for deg:finance 1.1.0" in json.dumps(layer2[0])


def _recoded(value: Any, n: list[int]) -> Any:
    """`value` with every descriptor code replaced by one of its own (`CODE-1`, `CODE-2`, ...)."""
    if isinstance(value, dict):
        out = {k: _recoded(v, n) for k, v in value.items()}
        if isinstance(out.get("descriptor"), dict) and "code" in out["descriptor"]:
            n[0] += 1
            out["descriptor"] = {**out["descriptor"], "code": f"CODE-{n[0]}"}
        return out
    if isinstance(value, list):
        return [_recoded(v, n) for v in value]
    return value


@pytest.mark.parametrize("use_case", ["retail", "finance", "p2p-trading"])
def test_a_bpp_with_codes_of_its_own_is_certified_all_the_same(use_case: str, tmp_path: Path) -> None:
    """The kit's category and item codes (DEG_RETAIL_1, loan_type, energy) are one provider's, not a taxonomy: a BPP
    whose every descriptor code is its own is played through the whole flow, not skipped (a skipped flow would leave
    the certification's required actions missing)."""
    source = usecases.named(use_case).catalogs[0]
    catalog = tmp_path / source.name
    catalog.write_text(json.dumps(_recoded(json.loads(source.read_text(encoding="utf-8")), [0])), encoding="utf-8")
    assert "CODE-1" in catalog.read_text(encoding="utf-8")
    result = play_with_fault(use_case, None, (catalog,))
    assert (result.status, result.why) == ("passed", None), "\n".join(f.text() for f in result.findings)
