"""`deg-conformance import postman`: collections become scenarios that `run` plays unchanged; what is not Beckn
1.1.0 is skipped or refused, and each request's defects are said."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import scenario, usecases
from conformance.cli import main
from conformance.network import NetworkConfig
from conformance.postman import without_comments
from conformance.runner import Harness, RunConfig
from tests.conftest import REFERENCE, needs_shared

Capture = pytest.CaptureFixture[str]
COLLECTIONS = sorted(REFERENCE.glob("deg/**/*.postman_collection.json"))
STARTER_KIT = REFERENCE / "deg/beckn-missions/DEG/STARTER_KIT/DEG_Starter_Kit.postman_collection.json"
UPPCL = REFERENCE / "deg/beckn-missions/UPPCL/postman/p2p-energy-trade-UPPCL.postman_collection.json"
IMPORTED = {
    STARTER_KIT.name: [
        "energy-retail--energy-retail-beckn-apis",
        "energy-retail--energy-retail-beckn-apis--energy-retail-discovery--search-by-provider-item-price-fulfillment",
        "energy-retail--energy-retail-beckn-apis--energy-retail-discovery--search-by-provider",
        "energy-retail--energy-retail-beckn-apis--energy-retail-discovery--search-by-location",
        "energy-finance",
        "energy-finance--energy-finance-discovery--search-by-provider-and-category",
        "battery-rental--battery-rental-beckn-apis",
        "battery-rental--battery-rental-beckn-apis--battery-discovery--search-by-provider-item-price",
        "battery-rental--battery-rental-beckn-apis--battery-discovery--search-by-provider",
        "battery-rental--battery-rental-beckn-apis--battery-discovery--search-by-price",
        "p2p-energy-trading--beckn-apis",
        "ev--charger-discovery--beckn-apis",
        "ev--charger-discovery--beckn-apis--ev-charger-discovery--search-by-provider-item-location-price-tag",
        "ev--charger-discovery--beckn-apis--ev-charger-discovery--search-by-provider",
        "ev--charger-discovery--beckn-apis--ev-charger-discovery--search-by-item-name-price-and-tags"],
    UPPCL.name: ["energy-trading", "energy-logistics"],
}


def import_postman(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["import", "postman", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- the reference collections ------------------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("collection", COLLECTIONS, ids=[c.name for c in COLLECTIONS])
def test_every_reference_collection_is_imported_or_refused(collection: Path, capsys: Capture, tmp_path: Path) -> None:
    code, out, err = import_postman(capsys, str(collection), "--out", str(tmp_path))
    if collection.name not in IMPORTED:  # the Beckn 2.0 ones (beckn-DEG/.../v2)
        assert code == 2 and out == ""
        assert "Beckn 2.0 is not supported yet; this harness certifies 1.1.0" in err
        assert len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
        return
    assert code == 0, err
    written = [Path(line) for line in out.split()]
    assert [p.stem for p in written] == IMPORTED[collection.name]
    for path in written:
        loaded = scenario.load(path)
        assert loaded.role == "bap" and loaded.use_case in usecases.shipped()
        assert all(step.body.parent == path.with_suffix("") for step in loaded.steps)
        for step in loaded.steps:  # what the harness owns is not in a fixture
            context = scenario.read_fixture(step.body)["context"]
            assert not {"bap_id", "bap_uri", "transaction_id", "message_id", "timestamp", "action"} & set(context)
            if step.send != "search":
                assert (context["bpp_id"], context["bpp_uri"]) == ("{{ bpp_id }}", "{{ bpp_uri }}")


@needs_shared
def test_the_starter_kit_skips_what_is_not_beckn_and_says_why(capsys: Capture, tmp_path: Path) -> None:
    code, out, err = import_postman(capsys, str(STARTER_KIT), "--out", str(tmp_path))
    assert code == 0
    skipped = [line for line in err.splitlines() if ": skipped: not a Beckn request" in line]
    assert [line.split(": skipped")[0] for line in skipped] == [
        "Energy Retail / Signup", "Energy Retail / Login", "Energy Retail / Verify OTP", "Energy Retail / Link Wallet",
        "Energy Retail / Get User Profile", "Battery Rental / Login", "Battery Rental / Publish Catalog"]
    assert "15 scenario(s) in" in err and "7 request(s) skipped" in err
    assert "Energy Finance / Confirm: a confirm with no init before it in the flow" in err
    assert ("EV / Charger Discovery / Beckn APIs / Select: context.location is "
            '{"country":{"name":"India","code":"IND"},"city":{"name":"Bangalore","code":"std:080"}}, not the first '
            "request's" in err)

    flow = yaml.safe_load((tmp_path / "ev--charger-discovery--beckn-apis.yaml").read_text())
    assert [s["name"] for s in flow["steps"]] == ["Search By Location and Item Name", "Select", "Init", "Confirm",
                                                   "Status"]
    assert flow["steps"][0]["offer"] == {
        "where": [{"path": "$.provider.id", "equals": "282"}, {"path": "$.item.id", "equals": "382"}],
        "save": {"bpp_id": "$.context.bpp_id", "bpp_uri": "$.context.bpp_uri"}}
    assert flow["steps"][3]["save"] == {"order_id": "$.message.order.id"}
    status = json.loads((tmp_path / "ev--charger-discovery--beckn-apis/05-status.json").read_text())
    assert status["message"] == {"order_id": "{{ order_id }}", "orderId": "{{ order_id }}"}
    assert status["context"]["location"] == {"country": {"name": "United States", "code": "USA"}}  # the search's


@needs_shared
def test_uppcl_bodies_with_comments_are_read_as_postman_sends_them(capsys: Capture, tmp_path: Path) -> None:
    code, out, err = import_postman(capsys, str(UPPCL), "--out", str(tmp_path))
    assert code == 0
    assert err.count("its body has comments") == 6
    assert "energy-trading / status: context has no bpp_id and bpp_uri" in err
    search = json.loads((tmp_path / "energy-trading/01-search.json").read_text())
    assert search["context"]["domain"] == "p2p-energy-trade"  # {{domain_trade}}, from the collection's variables
    assert search["message"]["intent"]["fulfillment"]["stops"][0]["location"] == {
        "address": "der://uppcl.meter/98765456"}
    logistics = scenario.load(tmp_path / "energy-logistics.yaml")  # no search: the collection's BPP, as variables
    assert logistics.variables == {"bpp_id": "p2p-transmission-bpp-sandbox.krypc.com",
                                   "bpp_uri": "https://transmission-bpp-sandbox.krypc.com"}


EV_CATALOG = {"catalog_descriptor": {"name": "Capital Volt"},
              "providers": [{"id": "282", "descriptor": {"name": "Capital Volt"},
                             "fulfillments": [{"id": "548", "type": "Onsite"}],
                             "items": [{"id": "382", "descriptor": {"name": "Capital Volt Fast Charger 2"},
                                        "fulfillment_ids": ["548"], "price": {"value": "160", "currency": "USD"}}]}]}


@needs_shared
def test_every_imported_reference_flow_plays_against_the_reference_network(capsys: Capture, tmp_path: Path) -> None:
    """The Starter Kit's 15 scenarios, as imported, pass against the reference network, which serves their use
    cases with catalogs holding the collection's ids; UPPCL's are of domains no shipped use case has (and its
    logistics flow is sent to the collection's own BPP): skipped, saying why, neither failed on the network's
    account nor sent out of it."""
    for collection in (STARTER_KIT, UPPCL):
        assert import_postman(capsys, str(collection), "--out", str(tmp_path / collection.stem))[0] == 0
    with Harness(RunConfig(callback_timeout=5, concurrency=8)) as harness:
        result = harness.run([scenario.load(p) for c in (STARTER_KIT, UPPCL)
                              for p in sorted((tmp_path / c.stem).glob("*.yaml"))])
    status = {r.scenario.id: (r.status, r.why) for r in result.scenarios}
    assert {sid: s for sid, s in status.items() if sid in IMPORTED[STARTER_KIT.name]} == {
        sid: ("passed", None) for sid in IMPORTED[STARTER_KIT.name]}, [f.text() for r in result.scenarios
                                                                       for f in r.findings]
    assert status["energy-trading"] == ("skipped", "skipped: the reference network serves no BPP of domain "
                                        "'p2p-energy-trade' (its use cases: `deg-conformance use-cases`): play it "
                                        "against a --target or --gateway that does")
    logistics = status["energy-logistics"]
    assert logistics[0] == "skipped" and "outside the reference network" in str(logistics[1])
    assert result.exit_code == 0


@needs_shared
def test_an_imported_flow_plays_end_to_end_against_a_network_that_holds_its_ids(capsys: Capture,
                                                                                  tmp_path: Path) -> None:
    assert import_postman(capsys, str(STARTER_KIT), "--out", str(tmp_path / "kit"))[0] == 0
    catalog = tmp_path / "capital-volt.json"
    catalog.write_text(json.dumps(EV_CATALOG))
    flow = scenario.load(tmp_path / "kit/ev--charger-discovery--beckn-apis.yaml")
    with Harness(RunConfig(network=NetworkConfig(domain="deg:ev", catalogs=(catalog,)), callback_timeout=5)) as h:
        result = h.run([flow])
    played = result.scenarios[0]
    assert (played.status, result.exit_code) == ("passed", 0), [f.text() for f in played.findings]
    assert [(s.action, s.reply.ack if s.reply else None, [c.action for c in s.callbacks]) for s in played.steps] == [
        ("search", "ACK", ["on_search"]), ("select", "ACK", ["on_select"]), ("init", "ACK", ["on_init"]),
        ("confirm", "ACK", ["on_confirm"]), ("status", "ACK", ["on_status"])]
    sent = [s.request.context for s in played.steps if s.request is not None]
    assert {c["transaction_id"] for c in sent} == {played.transaction_id}  # one fresh transaction, not the kit's five
    assert all(c["bpp_id"] == played.steps[0].callbacks[0].context["bpp_id"] for c in sent[1:])
    order_id = played.steps[3].callbacks[0].message["order"]["id"]
    assert played.steps[4].request is not None and played.steps[4].request.message["order_id"] == order_id


# --- how a collection maps to scenarios ---------------------------------------------------------------------------

def request(name: str, url: str, body: Any, method: str = "POST") -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body, indent=2)
    return {"name": name, "request": {"method": method, "url": {"raw": url},
                                      "body": {"mode": "raw", "raw": raw}}}


def beckn(action: str, **message: Any) -> dict[str, Any]:
    bpp = {} if action == "search" else {"bpp_id": "{{BPP_ID}}", "bpp_uri": "{{BPP_URI}}"}
    return {"context": {"domain": "{{domain}}", "action": action, "version": "1.1.0", "bap_id": "{{BAP_ID}}",
                        "bap_uri": "{{BAP_URI}}", **bpp, "transaction_id": "{{$randomUUID}}",
                        "message_id": "{{$randomUUID}}", "timestamp": "{{$timestamp}}",
                        "location": {"country": {"code": "USA"}}},
            "message": message}


ORDER = {"order": {"provider": {"id": "p1"}, "items": [{"id": "i1"}]}}


def collection(*items: dict[str, Any], version: str = "1.1.0") -> dict[str, Any]:
    return {"info": {"name": "Tiny grid", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
                                                     "collection.json"},
            "variable": [{"key": "domain", "value": "deg:tiny"}, {"key": "BAP_CLIENT_URL", "value": "https://c.example"},
                         {"key": "BPP_ID", "value": "bpp.tiny.example"},
                         {"key": "BPP_URI", "value": "https://bpp.tiny.example"}, {"key": "version", "value": version}],
            "item": list(items)}


def folder(name: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "item": list(items)}


def written(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "tiny.postman_collection.json"
    path.write_text(json.dumps(doc))
    return path


def test_folders_in_order_a_discovery_folders_first_search_goes_on_into_its_parents_flow(
        capsys: Capture, tmp_path: Path) -> None:
    doc = collection(
        folder("Retail",
               folder("Discovery",
                      request("By name", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={"item": {}})),
                      request("By provider", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={"provider": {}}))),
               request("Select", "{{BAP_CLIENT_URL}}/select", beckn("select", **ORDER)),
               request("Init", "{{BAP_CLIENT_URL}}/init", beckn("init", **ORDER)),
               request("Confirm", "{{BAP_CLIENT_URL}}/confirm", beckn("confirm", **ORDER)),
               request("Status", "{{BAP_CLIENT_URL}}/status", beckn("status", order_id="3743", orderId="3743")),
               request("Login", "{{STRAPI_URL}}/login", {"phone": "1"})),
        folder("Only discovery",
               request("Nearby", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={})),
               request("Cheap", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={}))))
    code, out, err = import_postman(capsys, str(written(tmp_path, doc)), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert [Path(p).stem for p in out.split()] == [
        "retail", "retail--discovery--by-provider", "only-discovery--nearby", "only-discovery--cheap"]
    assert "Retail / Login: skipped: not a Beckn request (POST {{STRAPI_URL}}/login; no context.action it names)" in err
    flow = scenario.load(tmp_path / "out/retail.yaml")
    assert [(s.name, s.send) for s in flow.steps] == [("By name", "search"), ("Select", "select"), ("Init", "init"),
                                                      ("Confirm", "confirm"), ("Status", "status")]
    assert flow.steps[0].offer is not None and flow.steps[0].expect.count is None
    assert [(a.path, a.value) for a in flow.steps[0].offer.where] == [("$.provider.id", "p1"), ("$.item.id", "i1")]
    select = scenario.read_fixture(flow.steps[1].body)
    assert select["context"] == {"domain": "deg:tiny", "version": "1.1.0", "bpp_id": "{{ bpp_id }}",
                                 "bpp_uri": "{{ bpp_uri }}", "location": {"country": {"code": "USA"}}}
    assert scenario.read_fixture(flow.steps[4].body)["message"] == {"order_id": "{{ order_id }}",
                                                                     "orderId": "{{ order_id }}"}
    alone = scenario.load(tmp_path / "out/retail--discovery--by-provider.yaml")
    assert [s.send for s in alone.steps] == ["search"] and alone.steps[0].save == {}


def test_variables_come_from_the_environment_over_the_collection_and_unknown_ones_become_scenario_variables(
        capsys: Capture, tmp_path: Path) -> None:
    body = beckn("search", intent={"descriptor": {"name": "{{program}}"}, "tags": "{{missing-one}}"})
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"name": "staging", "values": [
        {"key": "domain", "value": "deg:staging", "enabled": True},
        {"key": "program", "value": "off", "enabled": False}]}))
    doc = collection(request("Find", "{{BAP_CLIENT_URL}}/search", body))
    doc["variable"].append({"key": "program", "value": "Peak Saver"})
    code, out, err = import_postman(capsys, str(written(tmp_path, doc)), "--env", str(env), "--out", str(tmp_path))
    assert code == 0, err
    found = scenario.load(Path(out.strip()))
    fixture = scenario.read_fixture(found.steps[0].body)
    assert fixture["context"]["domain"] == "deg:staging"  # the environment wins; a disabled value does not
    assert fixture["message"]["intent"] == {"descriptor": {"name": "Peak Saver"}, "tags": "{{ missing_one }}"}
    assert found.variables == {"missing_one": ""}
    assert "Find: {{missing_one}} has no value in the collection or the environment" in err
    env.write_text(json.dumps({"name": "not an environment"}))
    code, _, err = import_postman(capsys, str(tmp_path / "tiny.postman_collection.json"), "--env", str(env), "--out",
                                  str(tmp_path))
    assert code == 2 and err.strip() == f"deg-conformance: error: {env}: not a Postman environment (no values list)"


def test_defects_are_said_per_request_and_the_rest_is_imported(capsys: Capture, tmp_path: Path) -> None:
    mismatched = beckn("select", **ORDER)
    doc = collection(folder(
        "Flow",
        request("Find", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={})),
        request("Pick", "{{BAP_CLIENT_URL}}/init", mismatched),
        request("Broken", "{{BAP_CLIENT_URL}}/confirm", '{"context": {"action": "confirm",}'),
        request("Commented", "{{BAP_CLIENT_URL}}/status",
                '{"context": {"action": "status", "version": "1.1.0"}, // the order\n'
                ' "message": {"order_id": 3743 /* from on_confirm */}}'),
        request("Callback", "{{BAP_CLIENT_URL}}/on_status", beckn("on_status")),
        request("Listed", "https://elsewhere.example/api", {"context": {"action": ["search"]}, "message": {}})))
    code, out, err = import_postman(capsys, str(written(tmp_path, doc)), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Flow / Listed: skipped: not a Beckn request" in err  # an action that is a list names none
    assert "Flow / Pick: context.action is 'select' but the request goes to /init: the step sends init" in err
    assert "Flow / Broken: skipped: its body is not JSON even without comments" in err
    assert "Flow / Commented: its body has comments" in err
    assert "Flow / Callback: skipped: on_status is a callback" in err
    assert "Flow / Commented: context has no bpp_id and bpp_uri" in err
    assert "Flow / Commented: context.domain is absent, not the first request's \"deg:tiny\"" in err
    assert "Flow / Commented: SCH_TYPE: $.message.order_id must" in err  # the catalogue's findings, per request
    flow = scenario.load(tmp_path / "out/flow.yaml")
    assert [s.send for s in flow.steps] == ["search", "init", "status"]
    text = (tmp_path / "out/flow.yaml").read_text()
    assert "  # Pick: context.action is 'select'" in text  # the notes stay with the step they are about


@pytest.mark.parametrize("how", ["version variable", "discover endpoint", "context version"])
def test_beckn_2_collections_are_refused(how: str, capsys: Capture, tmp_path: Path) -> None:
    body = beckn("search", intent={})
    url = "{{BAP_CLIENT_URL}}/search"
    if how == "version variable":
        body["context"]["version"] = "{{version}}"
    elif how == "discover endpoint":
        url = "{{BAP_CLIENT_URL}}/discover"
    else:
        body["context"]["version"] = "2.0.0"
    doc = collection(request("Find", url, body), version="2.0.0")
    code, out, err = import_postman(capsys, str(written(tmp_path, doc)), "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert "Beckn 2.0 is not supported yet; this harness certifies 1.1.0 (request 'Find'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a Postman collection (not valid JSON"),
    (json.dumps({"info": {"name": "old"}, "requests": []}), "not a Postman collection (no info and item list)"),
    (json.dumps({"info": {"schema": "https://schema.getpostman.com/json/collection/v1.0.0/collection.json"},
                 "item": []}), "not a Postman collection v2.x"),
    (json.dumps(collection(request("Login", "https://x.example/login", {"phone": "1"}))),
     "no Beckn 1.1.0 request to import"),
    (json.dumps({**collection(), "variable": {"not": "a list"}}), "variable: must be a list"),
])
def test_input_that_cannot_be_imported_is_one_line_exit_2(content: str, message: str, capsys: Capture,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    code, out, err = import_postman(capsys, str(path), "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_out_folder_that_cannot_be_written_is_one_line_exit_2(capsys: Capture, tmp_path: Path) -> None:
    path = written(tmp_path, collection(request("Find", "{{BAP_CLIENT_URL}}/search", beckn("search", intent={}))))
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, out, err = import_postman(capsys, str(path), "--out", str(blocked / "out"))
    assert (code, out) == (2, "")
    assert err.startswith(f"deg-conformance: error: {blocked / 'out'}: cannot write the scenarios there: ")


def test_comments_are_removed_outside_strings_only() -> None:
    text = '{"url": "https://a.example/x", // gone\n "b": "/* kept */" /* gone */}'
    assert without_comments(text) == ('{"url": "https://a.example/x", \n "b": "/* kept */" }', True)
    assert without_comments('{"a": "\\"//"}') == ('{"a": "\\"//"}', False)
