"""`deg-conformance replay`: a capture's requests sent again, with fresh ids and the harness's signature, to a
target whose new answers the whole catalogue judges; one scenario per original transaction, played as `run`
plays a file."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conformance import replay, scenario, transcript
from conformance.cli import main
from conformance.network import Network, NetworkConfig, start
from conformance.network.registry import Subscriber
from conformance.runner import Harness, RunConfig
from conformance.signing import KeyPair
from tests._live import SHIPPED, free_port

Capture = pytest.CaptureFixture[str]
FAULT = "enum-out-of-range"
"""The reference BPP's fault that puts SMS, which is no fulfillment state, in on_confirm (L2_FULFILLMENT_STATE)."""
LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
CUSTOMER = {"customer": {"person": {"name": "Alex Morgan"}},
            "stops": [{"type": "END", "location": {"address": "der://ssf.meter/98765456"}}]}


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def summary(report_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((report_dir / "summary.json").read_text())
    return loaded


def write_capture(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A BAP's capture of a whole transaction: the shipped role-bpp manual-optin played by the harness as BPP
    against the reference BAP, whose transcript() is the wrapped JSON Lines a BAP would log."""
    flow = scenario.load(SHIPPED / "bpp-role" / "manual-optin.yaml")
    with Harness(RunConfig(role="bpp", callback_timeout=3, settle=0.2)) as harness:
        result = harness.run([flow])
        assert result.scenarios[0].status == "passed"
        transaction_id = result.scenarios[0].transaction_id
        assert harness.network is not None
        records = harness.network.bap.transcript(transaction_id)
    return write_capture(tmp_path_factory.mktemp("capture") / "bap.jsonl", records), transaction_id


def test_a_capture_replayed_against_a_fresh_reference_network_passes_with_fresh_ids(
        captured: tuple[Path, str], capsys: Capture, tmp_path: Path) -> None:
    capture, original = captured
    code, out, err = cli(capsys, "replay", str(capture), "--report-dir", str(tmp_path), "--callback-timeout", "3")
    assert code == 0, out + err
    assert "replay: 7 callback(s) left out: the replay judges what the target answers now" in err
    assert "1 transaction(s) replayed from" in err and "against the reference network" in err
    report = summary(tmp_path)
    assert (report["passed"], report["failed"], report["exit_code"], report["findings"]) == (1, 0, 0, [])
    played = report["scenarios"][0]
    assert played["id"] == original and played["name"] == f"Replay of transaction {original}"
    assert [s["action"] for s in played["steps"]] == ["search", "init", "confirm", "status", "support", "cancel"]
    assert played["transaction_id"] != original
    captured_ids = {json.loads(line)["body"]["context"]["message_id"] for line in capture.read_text().splitlines()}
    assert not captured_ids & {s["message_id"] for s in played["steps"]}


def test_what_is_sent_again_is_the_captured_body_with_the_new_runs_ids(captured: tuple[Path, str]) -> None:
    capture, original = captured
    flows = replay.scenarios([capture], imported=Path("unused"))
    with Harness(RunConfig(callback_timeout=3, settle=0.2)) as harness:
        result = harness.run(flows)
        bap_id = harness.key.subscriber_id
    played = result.scenarios[0]
    assert played.status == "passed"
    sent = [s.request for s in played.steps if s.request is not None]
    before = [r["body"] for r in map(json.loads, capture.read_text().splitlines()) if r["direction"] == "out"]
    for old, new in zip(before, sent, strict=True):
        assert new.message_id != old["context"]["message_id"] and new.transaction_id == played.transaction_id
        assert new.context["bap_id"] == bap_id != old["context"]["bap_id"]
        assert new.context["timestamp"] != old["context"]["timestamp"]
    # the captured BPP was the harness's (in the run that made the capture); the new search found the network's
    bpp = played.steps[0].callbacks[0].context if played.steps[0].callbacks else {}
    chosen = next(c.context for c in played.steps[0].callbacks
                  if c.message["catalog"]["providers"][0]["id"] == before[1]["message"]["order"]["provider"]["id"])
    assert bpp and all(r.context["bpp_id"] == chosen["bpp_id"] != before[1]["context"]["bpp_id"] for r in sent[1:])
    assert sent[1].message == before[1]["message"]  # the order itself is as captured
    order_id = played.steps[2].callbacks[0].message["order"]["id"]
    assert order_id != before[3]["message"]["order_id"]
    assert (sent[3].message["order_id"], sent[4].message["support"]["ref_id"], sent[5].message["order_id"]) == (
        order_id, order_id, order_id)


# --- a field incident, reproduced and then shown fixed ------------------------------------------------------------

def bap_client(net: Network, action: str, context: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{net.bap_client_url}/{action}", json={"context": context, "message": message}, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def inbox(net: Network, transaction_id: str, action: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found = [m["body"] for m in net.bap.inbox
                 if m["action"] == action and m["body"]["context"]["transaction_id"] == transaction_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A capture from the field: the reference BAP's enrolment with a BPP whose on_confirm is broken (taken and
    logged, as a BAP that does not validate callbacks would)."""
    faults = {"sf-grid-loadflex": frozenset({FAULT}), "bap": frozenset({"no-validation"})}
    with start(NetworkConfig(faults=faults)) as net:
        sent = bap_client(net, "search", {"location": LOCATION}, {"intent": {"descriptor": {"name": "Incentives"}}})
        transaction_id = sent["context"]["transaction_id"]
        on_search = next(c for c in inbox(net, transaction_id, "on_search", count=2)
                         if c["message"]["catalog"]["providers"][0]["id"] == "provider_demand_flex_001")
        context = {"transaction_id": transaction_id, "location": LOCATION, "bpp_id": on_search["context"]["bpp_id"],
                   "bpp_uri": on_search["context"]["bpp_uri"]}
        order = {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": "manual_optin_demand_flex"}],
                 "fulfillments": [{"id": "manual_optin", **CUSTOMER}]}
        bap_client(net, "init", context, {"order": order})
        inbox(net, transaction_id, "on_init")
        bap_client(net, "confirm", context, {"order": order})
        order_id = inbox(net, transaction_id, "on_confirm")[0]["message"]["order"]["id"]
        bap_client(net, "status", context, {"order_id": order_id})
        inbox(net, transaction_id, "on_status")
        yield write_capture(tmp_path_factory.mktemp("incident") / "field.jsonl", net.bap.transcript(transaction_id))


def test_a_broken_capture_replayed_against_a_fixed_bpp_passes_and_against_the_broken_one_fails(
        incident: Path, capsys: Capture, tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "validate", str(incident))
    assert code == 1 and "L2_FULFILLMENT_STATE" in out  # what was seen in the field

    code, out, err = cli(capsys, "replay", str(incident), "--report-dir", str(tmp_path / "broken"),
                         "--callback-timeout", "3", "--fault", f"sf-grid-loadflex={FAULT}")
    assert code == 1, out + err  # reproduced: the build with the bug fails the same way
    report = summary(tmp_path / "broken")
    found = [(f["rule_id"], f["action"], f["step_name"], f["found"], f["index"]) for f in report["findings"]]
    assert found == [("L2_FULFILLMENT_STATE", "on_confirm", "confirm, field.jsonl:6", "SMS", 6),
                     ("L2_FULFILLMENT_STATE", "on_status", "status, field.jsonl:8", "SMS", 8)]
    assert report["findings"][0]["source"].endswith(f"field.jsonl/{report['scenarios'][0]['id']}")

    code, out, err = cli(capsys, "replay", str(incident), "--report-dir", str(tmp_path / "fixed"),
                         "--callback-timeout", "3")
    assert code == 0, out + err  # fixed: the same requests, the build without the bug
    assert summary(tmp_path / "fixed")["findings"] == []


def test_a_target_of_its_own_takes_the_replay_as_it_takes_run(incident: Path, capsys: Capture,
                                                              tmp_path: Path) -> None:
    """--target, --registry and the harness's key registered there, as on a real network."""
    key, port = KeyPair.generate("replayer.example", "k1"), free_port()
    key_file = tmp_path / "harness.key"
    key_file.write_text(key.private_key)
    with start() as net:
        net.add_subscriber(Subscriber.for_key(key, url=f"http://127.0.0.1:{port}", type="BAP", domain="flexibility"))
        code, out, err = cli(capsys, "replay", str(incident), "--target", net.bpps["sf-grid-loadflex"].url,
                             "--registry", net.registry_url, "--listen", f"127.0.0.1:{port}", "--key-file",
                             str(key_file), "--subscriber-id", "replayer.example", "--key-id", "k1",
                             "--report-dir", str(tmp_path / "out"), "--callback-timeout", "3")
    assert code == 0, out + err
    assert summary(tmp_path / "out")["settings"]["target"] == net.bpps["sf-grid-loadflex"].url


# --- how a capture becomes scenarios ------------------------------------------------------------------------------

def request(action: str, transaction_id: str, **message: Any) -> dict[str, Any]:
    return {"context": {"domain": "flexibility", "action": action, "version": "1.1.0", "bap_id": "bap.example",
                        "bap_uri": "https://bap.example", "bpp_id": "bpp.example", "bpp_uri": "https://bpp.example",
                        "transaction_id": transaction_id, "message_id": str(uuid.uuid4()),
                        "timestamp": "2025-01-01T00:00:00Z", "location": LOCATION},
            "message": message}


def test_requests_are_grouped_by_their_transaction_in_capture_order(tmp_path: Path) -> None:
    ordered = {"order": {"provider": {"id": "p1"}, "items": [{"id": "i1"}]}}
    search = request("search", "t-1", intent={})
    del search["context"]["bpp_id"], search["context"]["bpp_uri"]
    records = [search, request("status", "t-2", order_id="o-9"), request("init", "t-1", **ordered),
               {**request("on_init", "t-1"), "message": {"order": {}}}, request("confirm", "t-1", **ordered),
               request("status", "t-1", order_id="o-1", orderId="o-1"), "not json"]
    capture = tmp_path / "mixed.jsonl"
    capture.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    notes: list[str] = []
    first, second = replay.scenarios([capture], imported=tmp_path / "unused", note=notes.append)
    assert notes[0].startswith("mixed.jsonl:7: left out: not a Beckn message (") and notes[1:] == [
        "1 callback(s) left out: the replay judges what the target answers now"]
    assert (first.id, second.id) == ("t-1", "t-2") and first.path == capture / "t-1"
    assert [(s.send, s.line, s.name) for s in first.steps] == [
        ("search", 1, "search, mixed.jsonl:1"), ("init", 3, "init, mixed.jsonl:3"),
        ("confirm", 5, "confirm, mixed.jsonl:5"), ("status", 6, "status, mixed.jsonl:6")]
    search_step, init, confirm, status = first.steps
    assert search_step.offer is not None and search_step.expect.count is None
    assert [(a.path, a.value) for a in search_step.offer.where] == [("$.provider.id", "p1"), ("$.item.id", "i1")]
    assert init.set == {"context.bpp_id": "{{ bpp_id }}", "context.bpp_uri": "{{ bpp_uri }}"}
    assert confirm.save == {"order_id": "$.message.order.id"}
    assert status.set == {"context.bpp_id": "{{ bpp_id }}", "context.bpp_uri": "{{ bpp_uri }}",
                          "message.order_id": "{{ order_id }}", "message.orderId": "{{ order_id }}"}
    assert init.payload == records[2]  # the captured body, as it is
    body = scenario.build_body(status, {"bpp_id": "b", "bpp_uri": "https://b", "order_id": "o-new"})
    assert body["message"] == {"order_id": "o-new", "orderId": "o-new"}
    # no search before it: the captured BPP, which --var bpp_id=... changes
    assert second.variables == {"bpp_id": "bpp.example", "bpp_uri": "https://bpp.example"}
    assert second.steps[0].set == {"context.bpp_id": "{{ bpp_id }}", "context.bpp_uri": "{{ bpp_uri }}"}


def test_a_har_capture_and_a_folder_of_json_files_are_read_as_validate_reads_them(tmp_path: Path) -> None:
    bodies = [request("search", "t-h", intent={}), request("init", "t-h", order={})]
    har = tmp_path / "session.har"
    har.write_text(json.dumps({"log": {"entries": [
        {"startedDateTime": f"2025-01-01T00:00:0{n}Z",
         "request": {"method": "POST", "url": f"https://bpp.example/{b['context']['action']}",
                     "postData": {"text": json.dumps(b)}}, "response": {"content": {"text": "{}"}}}
        for n, b in enumerate(bodies)]}}))
    folder = tmp_path / "folder"
    folder.mkdir()
    for n, b in enumerate(bodies):
        (folder / f"{n:02d}-{b['context']['action']}.json").write_text(json.dumps(b))
    (from_har,) = replay.scenarios([har], imported=tmp_path / "unused")
    (from_folder,) = replay.scenarios([folder], imported=tmp_path / "unused")
    assert [(s.send, s.name) for s in from_har.steps] == [("search", "search, session.har:1"),
                                                          ("init", "init, session.har:2")]
    assert [(s.send, s.name) for s in from_folder.steps] == [("search", "search, 00-search.json"),
                                                             ("init", "init, 01-init.json")]
    assert from_folder.path == folder / "t-h"
    assert transcript.load([har])[0].body == from_har.steps[0].payload


def test_a_postman_collection_is_replayed_as_import_makes_it(capsys: Capture, tmp_path: Path) -> None:
    def item(name: str, action: str, message: dict[str, Any]) -> dict[str, Any]:
        context = {"domain": "flexibility", "action": action, "version": "1.1.0", "bap_id": "{{BAP_ID}}",
                   "location": LOCATION, "ttl": "PT30S", **({} if action == "search" else {"bpp_id": "{{BPP_ID}}"})}
        return {"name": name, "request": {"method": "POST", "url": f"{{{{BAP_CLIENT_URL}}}}/{action}",
                                          "body": {"mode": "raw", "raw": json.dumps({"context": context,
                                                                                     "message": message})}}}
    order = {"order": {"provider": {"id": "provider_demand_flex_001"}, "items": [{"id": "manual_optin_demand_flex"}],
                       "fulfillments": [{"id": "manual_optin", **CUSTOMER}]}}
    collection = tmp_path / "flex.postman_collection.json"
    collection.write_text(json.dumps({
        "info": {"name": "Flex", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": "BPP_ID", "value": "somewhere.example"}],
        "item": [{"name": "Enrol", "item": [item("Find", "search", {"intent": {}}), item("Start", "init", order),
                                            item("Join", "confirm", order),
                                            item("Check", "status", {"order_id": "from-last-week"})]}]}))
    code, out, err = cli(capsys, "replay", str(collection), "--report-dir", str(tmp_path / "out"),
                         "--callback-timeout", "3")
    assert code == 0, out + err
    assert (tmp_path / "out/imported/flex-postman-collection/enrol.yaml").is_file()
    played = summary(tmp_path / "out")["scenarios"][0]
    assert (played["id"], [s["action"] for s in played["steps"]]) == ("enrol", ["search", "init", "confirm", "status"])


def test_a_capture_replayed_as_bpp_asks_the_bap_again_and_serves_the_captured_catalogs(
        captured: tuple[Path, str], capsys: Capture, tmp_path: Path) -> None:
    """--role bpp: the target is a BAP. Its client endpoint is asked for the captured requests again, from the
    search on, and the harness's BPPs publish what the captured on_searches did, so the captured order's offer
    exists; what the BAP sends now is judged."""
    capture, original = captured
    code, out, err = cli(capsys, "replay", str(capture), "--role", "bpp", "--report-dir", str(tmp_path),
                         "--callback-timeout", "3")
    assert code == 0, out + err
    served = sorted((tmp_path / "imported" / "catalogs").glob("*.json"))
    assert [p.stem for p in served] == ["flexigrid-aggregator", "sf-grid-loadflex"]
    assert "replay: serving the captured catalogs: " in err and all(str(p) in err for p in served)
    report = summary(tmp_path)
    assert (report["passed"], report["failed"], report["exit_code"]) == (1, 0, 0), report["findings"]
    played = report["scenarios"][0]
    assert played["id"] == original and played["transaction_id"] != original
    assert [s["action"] for s in played["steps"]] == ["search", "init", "confirm", "status", "support", "cancel"]


def test_a_bap_that_breaks_the_replayed_flow_fails_with_the_rule(captured: tuple[Path, str], capsys: Capture,
                                                                  tmp_path: Path) -> None:
    code, out, err = cli(capsys, "replay", str(captured[0]), "--role", "bpp", "--fault", "bap=reused-message-id",
                         "--report-dir", str(tmp_path), "--callback-timeout", "3")
    assert code == 1, out + err
    assert "TXN_MESSAGE_ID_REUSED" in {f["rule_id"] for f in summary(tmp_path)["findings"]}


def test_replay_as_bpp_needs_a_search_and_a_catalog(capsys: Capture, tmp_path: Path) -> None:
    """A transaction that does not start with a search is left out, saying why (the BAP would send it to the captured
    BPP); a capture with no on_search to serve names --catalog; a Postman collection (a BAP's requests, no BPP's
    callbacks) is replayed as BAP."""
    no_search = write_capture(tmp_path / "status.jsonl", [request("status", "t-1")])
    code, out, err = cli(capsys, "replay", str(no_search), "--role", "bpp", "--report-dir", str(tmp_path / "a"))
    assert (code, out) == (2, "")
    assert "transaction t-1: left out: it starts with status, not a search" in err
    assert "none starts with a search" in err
    searched = write_capture(tmp_path / "search.jsonl", [request("search", "t-2")])
    code, out, err = cli(capsys, "replay", str(searched), "--role", "bpp", "--report-dir", str(tmp_path / "b"))
    assert (code, out) == (2, "")
    assert "no on_search with a catalog in" in err and "--catalog FILE" in err and len(err.strip().splitlines()) == 1
    collection = tmp_path / "c.postman_collection.json"
    collection.write_text(json.dumps({"info": {"name": "c", "schema": "https://schema.getpostman.com/json/collection/"
                                               "v2.1.0/collection.json"}, "item": []}))
    code, out, err = cli(capsys, "replay", str(collection), "--role", "bpp", "--report-dir", str(tmp_path / "c"))
    assert (code, out) == (2, "") and "replay it with --role bap" in err


@pytest.mark.parametrize("argv, message", [
    (["--env", "env.json"], "--env fills a Postman collection's variables"),
    (["--drive", "passive"], "--catalog and --drive are for --role bpp"),
])
def test_what_replay_does_not_do_is_one_line_exit_2(argv: list[str], message: str, captured: tuple[Path, str],
                                                    capsys: Capture, tmp_path: Path) -> None:
    code, out, err = cli(capsys, "replay", str(captured[0]), *argv, "--report-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_report_folder_that_cannot_be_written_is_one_line_exit_2(captured: tuple[Path, str], capsys: Capture,
                                                                     tmp_path: Path) -> None:
    """Replay writes into the report folder before the run (the catalogs it serves as BPP, a collection's scenarios):
    a folder it cannot write is said as for any run, not an OSError."""
    (tmp_path / "a-file").write_text("")
    code, out, err = cli(capsys, "replay", str(captured[0]), "--role", "bpp", "--report-dir",
                         str(tmp_path / "a-file" / "reports"))
    assert (code, out) == (2, "") and "cannot write reports there" in err and len(err.strip().splitlines()) == 1


def test_a_capture_with_nothing_to_replay_is_one_line_exit_2(capsys: Capture, tmp_path: Path) -> None:
    only_callbacks = write_capture(tmp_path / "callbacks.jsonl", [request("on_search", "t-1")])
    code, out, err = cli(capsys, "replay", str(only_callbacks), "--report-dir", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert f"no Beckn request to replay in {only_callbacks}" in err
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"ts": "2025-01-01T00:00:00Z", "payload": {"a": 1}}\n')
    code, _, err = cli(capsys, "replay", str(unknown), "--report-dir", str(tmp_path / "out2"))
    assert code == 2 and "unknown.jsonl:1: left out: not a Beckn message (be a Beckn message or a capture wrapper" in err
    code, _, err = cli(capsys, "replay", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "missing.jsonl: no such file or folder" in err
