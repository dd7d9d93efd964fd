"""The live runner through its Python API: the shipped suite against the reference network (passing, isolated
when run concurrently, every report), and hand-made targets that misbehave at the HTTP level."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import httpx
import orjson
import pytest
import respx

from conformance import Engine, scenario
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Severity
from conformance.reporting.live import run_text, write_reports
from conformance.runner import Harness, RunConfig, RunResult, ScenarioResult
from conformance.runner.listener import Inbox, Received
from conformance.runner.results import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE
from conformance.transport import Sender
from tests._live import ONE_SEARCH, SHIPPED, TinyBPP, closed_port_url, serve, write

STRAY_TXN = "txn-no-scenario-started"


@pytest.fixture(scope="module")
def shipped_run(engine: Engine) -> Iterator[RunResult]:
    """The shipped suite, five scenarios at once, against the reference network; a stray message is posted to
    the harness's callback URL before the run starts."""
    scenarios = [s for s in map(scenario.load, scenario.discover([SHIPPED])) if s.role == "bap"]
    with Harness(RunConfig(concurrency=5, callback_timeout=1.5, settle=0.2), engine=engine) as harness:
        stray = {"context": {"action": "on_status", "transaction_id": STRAY_TXN, "message_id": str(uuid.uuid4())},
                 "message": {}}
        answer = httpx.post(f"{harness.callback_url}/on_status", json=stray, trust_env=False)
        assert answer.status_code == 401  # unsigned: refused, but kept
        yield harness.run(scenarios, "test-run")


def by_id(run: RunResult) -> dict[str, ScenarioResult]:
    """The shipped scenarios' results (not the entry for messages no scenario asked for)."""
    return {s.scenario.id: s for s in run.scenarios if s.scenario.id != UNSOLICITED}


UNSOLICITED = "unsolicited-messages"


# --- the happy path --------------------------------------------------------------------------------------

def test_every_shipped_scenario_passes_cleanly(shipped_run: RunResult) -> None:
    assert [s.scenario.id for s in shipped_run.scenarios] == [*sorted(by_id(shipped_run)), UNSOLICITED]
    for s in by_id(shipped_run).values():
        assert s.status == "passed", run_text(shipped_run)
        assert s.error is None and not s.unreachable
        assert [f for f in s.findings if f.severity is Severity.ERROR] == []
        assert s.harness_findings == [], f"{s.scenario.id}: {[f.text() for f in s.harness_findings]}"
        assert s.unexpected == []
        assert len(s.steps) == len(s.scenario.steps)
    assert shipped_run.exit_code == EXIT_FAILED  # only for the stray, an unsigned callback for no transaction


def test_each_step_got_the_answer_it_expected(shipped_run: RunResult) -> None:
    results = by_id(shipped_run)
    manual = results["manual-optin"]
    assert [(st.action, st.reply.ack if st.reply else None, len(st.callbacks)) for st in manual.steps] == [
        ("search", "ACK", 2), ("init", "ACK", 1), ("confirm", "ACK", 1), ("status", "ACK", 1),
        ("support", "ACK", 1), ("cancel", "ACK", 1)]
    assert [c.action for st in manual.steps for c in st.callbacks][1:] == [
        "on_search", "on_init", "on_confirm", "on_status", "on_support", "on_cancel"]
    unknown = results["unknown-order"]
    assert [(st.reply.ack, st.reply.error_code) for st in unknown.steps if st.reply] == [
        ("ACK", None), ("NACK", "30010"), ("NACK", "30010")]
    gateway = results["gateway-search"]
    assert {c.context["bpp_id"] for c in gateway.steps[0].callbacks} == {
        "sf-grid-loadflex.deg-sandbox.local", "flexigrid-aggregator.deg-sandbox.local"}

    # every callback was verified: the BPP's signature, and the gateway's on relayed catalogs
    for st in manual.steps:
        for c in st.callbacks:
            assert c.signatures and all(check.reason is None for check in c.signatures)
    assert {check.header for c in manual.steps[0].callbacks for check in c.signatures} == {
        "Authorization", "X-Gateway-Authorization"}


# --- isolation -------------------------------------------------------------------------------------------

def test_concurrent_scenarios_keep_their_own_transactions(shipped_run: RunResult) -> None:
    scenarios = list(by_id(shipped_run).values())
    assert len({s.transaction_id for s in scenarios}) == len(scenarios)
    assert max(s.started for s in scenarios) < min(s.stopped for s in scenarios), "they did not overlap"
    message_ids = []
    for s in scenarios:
        for st in s.steps:
            assert st.request is not None and st.request.transaction_id == s.transaction_id
            message_ids.append(st.request.message_id)
            for c in st.callbacks:
                assert c.transaction_id == s.transaction_id
                assert c.message_id == st.request.message_id  # each callback answers this step's request
    assert len(set(message_ids)) == len(message_ids)


def test_a_message_for_no_scenario_is_a_stray_and_an_error_against_its_sender(shipped_run: RunResult) -> None:
    assert [(m.transaction_id, m.action, m.endpoint) for m in shipped_run.strays] == [
        (STRAY_TXN, "on_status", "/on_status")]
    assert shipped_run.strays[0].signatures[0].reason == "SIG_MISSING"
    stray = shipped_run.scenarios[-1]
    assert stray.scenario.id == UNSOLICITED and stray.status == "failed"
    assert [(m.transaction_id, m.action) for m in stray.unexpected] == [(STRAY_TXN, "on_status")]
    assert {(f.rule_id, f.transaction_id) for f in stray.errors} >= {
        ("TXN_ORPHAN_CALLBACK", STRAY_TXN), ("SIG_MISSING", STRAY_TXN)}
    assert f"FAIL   {UNSOLICITED}" in run_text(shipped_run)


# --- reports ---------------------------------------------------------------------------------------------

def test_reports_of_the_passing_run(shipped_run: RunResult, tmp_path: Path) -> None:
    write_reports(shipped_run, tmp_path, participant="the reference network")
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert (summary["scenarios_total"], summary["passed"], summary["failed"], summary["broken"]) == (6, 5, 1, 0)
    assert summary["exit_code"] == 1 and {f["scenario"] for f in summary["findings"]} == {UNSOLICITED}
    assert [m["transaction_id"] for m in summary["unexpected_messages"]] == [STRAY_TXN]
    manual = next(s for s in summary["scenarios"] if s["id"] == "manual-optin")
    assert [(st["action"], st["ack"], st["callbacks"]) for st in manual["steps"]][:2] == [
        ("search", "ACK", 2), ("init", "ACK", 1)]

    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert sorted(cases) == sorted([*by_id(shipped_run), UNSOLICITED])
    assert [name for name, c in cases.items() if c.find("failure") is not None or c.find("error") is not None] == [
        UNSOLICITED]

    allure = tmp_path / "allure-results"
    results = [orjson.loads(p.read_bytes()) for p in allure.glob("*-result.json")]
    per_scenario = {r["fullName"]: r for r in results}
    assert set(per_scenario) == {f"demand-flexibility/bap/{sid}" for sid in [*by_id(shipped_run), UNSOLICITED]}
    assert per_scenario[f"demand-flexibility/bap/{UNSOLICITED}"]["status"] == "failed"
    for s in by_id(shipped_run).values():
        doc = per_scenario[f"demand-flexibility/bap/{s.scenario.id}"]
        assert doc["status"] == "passed"
        assert [st["name"].split(". ")[1].split(":")[0] for st in doc["steps"]] == [st.action for st in s.steps]
        for step, st in zip(doc["steps"], s.steps):
            names = [a["name"] for a in step["attachments"]]
            assert names[:2] == [f"request: {st.action}", "request: synchronous response"]
            assert sum(n.startswith("received: ") for n in names) == len(st.callbacks)
            for a in step["attachments"]:
                assert (allure / a["source"]).is_file()
            request = orjson.loads((allure / step["attachments"][0]["source"]).read_bytes())
            assert request["body"]["context"]["message_id"] == st.request.message_id  # type: ignore[union-attr]
    assert (allure / "environment.properties").read_text().count("reference_network=True") == 1


# --- hand-made targets -----------------------------------------------------------------------------------

@pytest.fixture
def one_search(tmp_path: Path) -> scenario.Scenario:
    return scenario.load(write(tmp_path, "one-search.yaml", ONE_SEARCH))


def play(target: str, s: scenario.Scenario, engine: Engine, **settings: float) -> tuple[RunResult, float]:
    config = RunConfig(target=target, **{"ack_timeout": 0.5, "callback_timeout": 0.3, "settle": 0.05, **settings})
    started = time.monotonic()
    with Harness(config, engine=engine) as harness:
        result = harness.run([s])
    return result, time.monotonic() - started


def errors_of(result: ScenarioResult) -> list[tuple[str, str | None, str]]:
    return [(f.rule_id, f.action, f.path) for f in result.errors]


def test_unreachable_target(one_search: scenario.Scenario, engine: Engine) -> None:
    url = closed_port_url()
    run, took = play(url, one_search, engine)
    s = run.scenarios[0]
    assert s.unreachable and run.exit_code == EXIT_UNREACHABLE
    assert errors_of(s) == [("RUN_UNREACHABLE", "search", "$")]
    assert s.findings[0].expected == f"an ACK/NACK from POST {url}/search"
    assert str(s.findings[0].found).startswith("unreachable: ConnectError")
    assert s.findings[0].message_id == s.steps[0].request.message_id  # type: ignore[union-attr]
    assert took < 3


def test_target_answering_non_json(one_search: scenario.Scenario, engine: Engine) -> None:
    bpp = TinyBPP(replies={"search": "text"})
    with serve(bpp.app()) as url:
        run, _ = play(url, one_search, engine)
    s = run.scenarios[0]
    assert run.exit_code == EXIT_FAILED and not s.unreachable
    assert errors_of(s) == [("RUN_OUTCOME", "search", "$.message.ack.status (synchronous response)"),
                            ("SCH_ACK_RESPONSE", "search", "$")]
    assert (s.findings[0].expected, s.findings[0].found) == ("ACK", "HTTP 502, neither ACK nor NACK")
    assert s.steps[0].reply is not None and s.steps[0].reply.body.startswith("<html>")


def test_slow_target_is_given_up_on(one_search: scenario.Scenario, engine: Engine) -> None:
    bpp = TinyBPP(replies={"search": "slow"}, slow_for=30.0)
    with serve(bpp.app()) as url:
        run, took = play(url, one_search, engine, ack_timeout=0.2)
        bpp.release.set()
    s = run.scenarios[0]
    assert run.exit_code == EXIT_FAILED
    assert errors_of(s) == [("TIM_NO_ACK", "search", "$")]
    assert s.findings[0].found == "timeout: no whole reply within 0.2s (TimeoutError)"
    assert took < 10  # the harness did not wait the 30 s for the target, however busy the machine


def test_target_that_never_calls_back(one_search: scenario.Scenario, engine: Engine) -> None:
    bpp = TinyBPP(replies={"search": "ack-only"})
    with serve(bpp.app()) as url:
        run, took = play(url, one_search, engine, callback_timeout=0.3)
    s = run.scenarios[0]
    assert run.exit_code == EXIT_FAILED
    assert errors_of(s) == [("TIM_CALLBACK_MISSING", "search", "$")]
    assert (s.findings[0].expected, s.findings[0].found) == ("on_search within 0.3 s", "no callback")
    assert 0.3 <= took < 2
    assert len(bpp.received) == 1


def test_steps_after_a_missing_callback_are_not_played(tmp_path: Path, engine: Engine) -> None:
    s = scenario.load(write(tmp_path, "two.yaml", """
        name: two
        steps:
          - send: search
          - send: search
    """))
    bpp = TinyBPP(replies={"search": "ack-only"})
    with serve(bpp.app()) as url:
        run, _ = play(url, s, engine)
    assert len(run.scenarios[0].steps) == 1 and len(bpp.received) == 1


def test_the_runner_fills_in_its_variables_and_owns_the_context(tmp_path: Path, engine: Engine) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: s
        steps:
          - send: search
            set:
              message.intent.descriptor.name: "{{ bap_id }} {{ bap_uri }} {{ transaction_id }}"
              context.ttl: PT1S
          - {send: search, set: {context.message_id: fixed-id}}
    """))
    bpp = TinyBPP(replies={"search": "ack"})
    with serve(bpp.app()) as url, Harness(RunConfig(target=url, callback_timeout=0.5, settle=0.05),
                                          engine=engine) as harness:
        run = harness.run([s])
    result = run.scenarios[0]
    first, second = bpp.received
    context = first["context"]
    assert first["message"]["intent"]["descriptor"]["name"] == (
        f"{harness.key.subscriber_id} {harness.callback_url} {result.transaction_id}")
    assert (context["action"], context["bap_id"], context["bap_uri"], context["transaction_id"], context["ttl"]) == (
        "search", "deg-conformance.local", harness.callback_url, result.transaction_id, "PT1S")
    assert uuid.UUID(context["message_id"]) and second["context"]["message_id"] == "fixed-id"
    assert second["context"]["transaction_id"] == context["transaction_id"]


def test_expected_refusals(tmp_path: Path, engine: Engine) -> None:
    s = scenario.load(write(tmp_path, "refusals.yaml", """
        name: refusals
        variables: {order_id: nope, bpp_id: tiny.bpp.test, bpp_uri: "http://127.0.0.1:9/tiny"}
        steps:
          - {name: nacked as expected, send: status, expect: {outcome: nacked, error_code: "30010"}}
          - {name: refused by NACK, send: cancel, expect: {outcome: refused, error_code: "30010"}}
          - {name: refused in the callback, send: support, expect: {outcome: refused, error_code: "30010"}}
          - {name: wrong code, send: status, expect: {outcome: nacked, error_code: "30004"}}
          - {name: acked but should be nacked, send: support, expect: {outcome: nacked}}
    """))
    bpp = TinyBPP(replies={"status": "nack:30010", "cancel": "nack:30010", "support": "ack"},
                  callbacks={"support": {"error": {"code": "30010", "message": "no such order"}}})
    with serve(bpp.app()) as url:
        run, _ = play(url, s, engine)
    result = run.scenarios[0]
    outcome = [(f.rule_id, f.action, f.path, f.expected, f.found) for f in result.findings if f.rule_id == "RUN_OUTCOME"]
    assert outcome == [
        ("RUN_OUTCOME", "status", "$.error.code (synchronous response)", "30004", "30010"),
        ("RUN_OUTCOME", "support", "$.message.ack.status (synchronous response)", "NACK", "HTTP 200, ACK")]
    assert [f.message_id for f in result.findings if f.rule_id == "RUN_OUTCOME"] == [
        result.steps[3].request.message_id, result.steps[4].request.message_id]  # type: ignore[union-attr]
    assert [st.index for st in result.steps] == [1, 2, 3, 4, 5]
    assert len(result.steps[2].callbacks) == 1 and not [f for f in result.steps[2].findings if f.rule_id.startswith("RUN")]


def test_a_callback_after_a_nack_is_reported(tmp_path: Path, engine: Engine) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: nacked
        steps:
          - {send: search, expect: {outcome: nacked}}
    """))
    with serve(TinyBPP(replies={"search": "nack-then-callback"}).app()) as url:
        run, _ = play(url, s, engine, settle=0.5)
    result = run.scenarios[0]
    assert [(f.rule_id, f.action, f.message_id) for f in result.errors if f.rule_id.startswith("RUN_")] == [
        ("RUN_CALLBACK_AFTER_NACK", "on_search", result.steps[0].request.message_id)]  # type: ignore[union-attr]
    assert [m.action for m in result.unexpected] == ["on_search"]


def test_too_few_callbacks_and_a_value_not_there_to_save(tmp_path: Path, engine: Engine) -> None:
    """Against the reference network, whose gateway reaches two BPPs."""
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: counts and saves
        steps:
          - {send: search, expect: {count: 3, within: PT1S}}
          - {send: search, save: {nothing: $.message.no_such_field}}
          - {send: search}
    """))
    with Harness(RunConfig(callback_timeout=2, settle=0.1), engine=engine) as harness:
        result = harness.run([s]).scenarios[0]
    assert [(f.rule_id, f.action, f.expected, f.found) for f in result.errors] == [
        ("RUN_CALLBACK_COUNT", "search", "at least 3 × on_search", "2"),
        ("RUN_SAVE", "on_search", "a value to save as nothing", ABSENT)]
    assert result.errors[1].path == "$.message.no_such_field"
    assert len(result.steps) == 2  # the value later steps need is missing: the scenario stops there


def test_a_failed_assertion_is_reported_and_the_scenario_goes_on(tmp_path: Path, engine: Engine) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: s
        steps:
          - send: search
            assert:
              - {path: $.message.catalog.descriptor.name, equals: "{{ expected_name }}"}
              - {path: $.context.bpp_id, matches: '^tiny\\.'}
            save: {bpp_name: $.context.bpp_id}
          - send: search
            choose: {path: $.message.catalog.descriptor.name, equals: "{{ bpp_name }}"}
          - send: search
        variables: {expected_name: Energy Incentives}
    """))
    bpp = TinyBPP(replies={"search": "ack"}, callbacks={"search": {"message": {"catalog": {"descriptor": {"name": "X"}}}}})
    with serve(bpp.app()) as url:
        run, _ = play(url, s, engine)
    result = run.scenarios[0]
    assertion = [(f.rule_id, f.path, f.expected, f.found, f.must) for f in result.steps[0].findings
                 if f.rule_id.startswith("RUN_")]
    assert assertion == [("RUN_ASSERTION", "$.message.catalog.descriptor.name", "equals 'Energy Incentives'", "X",
                          "satisfy $.message.catalog.descriptor.name equals 'Energy Incentives'")]
    # a choose that no callback fits stops the scenario: there is nothing for later steps to read
    [choose] = [f for f in result.steps[1].findings if f.rule_id == "RUN_ASSERTION"]
    assert choose.expected == "a on_search where $.message.catalog.descriptor.name equals 'tiny.bpp.test'"
    assert choose.found == "none of 1"
    assert len(result.steps) == 2 and len(bpp.received) == 2


def test_a_callback_that_is_not_json_is_kept_as_a_stray(one_search: scenario.Scenario, engine: Engine) -> None:
    bpp = TinyBPP(replies={"search": "ack-only"})
    with serve(bpp.app()) as url, Harness(RunConfig(target=url, callback_timeout=0.2, settle=0.05),
                                          engine=engine) as harness:
        garbage = httpx.post(f"{harness.callback_url}/on_search", content=b"{not json", trust_env=False)
        run = harness.run([one_search])
    assert garbage.status_code == 400 and garbage.json()["message"]["ack"]["status"] == "NACK"
    assert [(m.endpoint, m.transaction_id) for m in run.strays] == [("/on_search", None)]
    assert run.strays[0].decode_error is not None


def test_a_scenario_that_cannot_go_on_is_broken_and_exits_2(tmp_path: Path, engine: Engine) -> None:
    write(tmp_path, "body.json", '{"context": {"domain": "flexibility"}, "message": {}}')
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: s
        steps:
          - {send: search, body: body.json, set: {context.domain.code: x}}
    """))
    bpp = TinyBPP()
    with serve(bpp.app()) as url:
        run, _ = play(url, s, engine)
    result = run.scenarios[0]
    assert result.status == "broken" and run.exit_code == EXIT_USAGE
    assert result.error is not None and result.error.startswith(f"step 1 (search), {tmp_path / 's.yaml'}:3: ")
    assert "set context.domain.code" in result.error
    assert bpp.received == []


def test_a_request_without_a_bpp_uri_is_a_broken_scenario_not_a_crash(tmp_path: Path, engine: Engine) -> None:
    # No target and a gateway only: init has nowhere to go without bpp_uri.
    write(tmp_path, "init.json", '{"context": {"domain": "flexibility"}, "message": {}}')
    s = scenario.load(write(tmp_path, "s.yaml", "name: s\nsteps:\n  - {send: init, body: init.json}\n"))
    config = RunConfig(gateway=closed_port_url(), callback_timeout=0.2, settle=0.05)
    with Harness(config, engine=engine) as harness:
        run = harness.run([s])
    assert run.scenarios[0].status == "broken" and run.exit_code == EXIT_USAGE
    assert "init needs context.bpp_uri" in (run.scenarios[0].error or "")


@pytest.mark.parametrize("settings, message", [
    ({"target": "ftp://x"}, "target 'ftp://x' is not an http(s) URL"),
    ({"callback_url": "localhost:80"}, "callback-url 'localhost:80' is not an http(s) URL"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"ack_timeout": 0}, "ack-timeout 0 is not a number of seconds above 0 up to 86400"),
    ({"callback_timeout": float("inf")}, "callback-timeout inf is not a number of seconds above 0"),
    ({"settle": -0.1}, "settle -0.1 is not a number of seconds from 0"),
    ({"signatures": "sometimes"}, "signatures must be one of required, optional, off"),
])
def test_bad_run_config(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**settings)  # type: ignore[arg-type]


def test_bad_listen_address_and_key(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="--listen 'nowhere': write HOST:PORT"):
        Harness(RunConfig(target="http://127.0.0.1:9", listen="nowhere"), engine=engine).start()
    with pytest.raises(ConfigError, match="the harness's private key"):
        Harness(RunConfig(target="http://127.0.0.1:9", private_key="not base64 at all"), engine=engine)


# --- transport.Sender, stubbed at the transport ----------------------------------------------------------

@respx.mock
def test_post_never_raises_for_what_the_far_side_does() -> None:
    respx.post("http://bpp.test/ack").respond(200, json={"message": {"ack": {"status": "ACK"}}})
    respx.post("http://bpp.test/nack").respond(
        401, json={"message": {"ack": {"status": "NACK"}}, "error": {"code": "30000", "message": "no"}})
    respx.post("http://bpp.test/text").respond(200, text="OK")
    respx.post("http://bpp.test/slow").mock(side_effect=httpx.ReadTimeout("slow"))
    respx.post("http://bpp.test/down").mock(side_effect=httpx.ConnectError("refused"))
    with Sender(0.5) as sender:
        replies = {name: sender.post(f"http://bpp.test/{name}", b"{}", {"Authorization": "x"})
                   for name in ("ack", "nack", "text", "slow", "down")}
    assert (replies["ack"].status, replies["ack"].ack, replies["ack"].error) == (200, "ACK", None)
    assert replies["ack"].latency is not None and replies["ack"].latency >= 0
    assert (replies["nack"].ack, replies["nack"].error_code) == ("NACK", "30000")
    assert (replies["text"].body, replies["text"].ack) == ("OK", None)
    assert (replies["slow"].status, replies["slow"].error) == (None, "timeout: no whole reply within 0.5s (ReadTimeout)")
    assert replies["down"].error == "unreachable: ConnectError: refused" and replies["down"].latency is None
    sent = respx.calls[0].request
    assert sent.headers["Authorization"] == "x" and sent.headers["Content-Type"] == "application/json"


def test_collecting_every_callback_ends_once_every_sender_has_answered() -> None:
    """A gateway's search: the wait for `count: all` ends when as many senders as the registry lists have
    answered, not at the deadline."""
    inbox = Inbox()
    since = datetime.now(timezone.utc)
    for bpp in ("a", "b"):
        inbox.add(Received(datetime.now(timezone.utc), "/on_search", b"{}", {"context": {
            "action": "on_search", "transaction_id": "t", "bpp_id": bpp}}, None, {}, ()))
    started = time.monotonic()
    assert len(inbox.collect("t", "on_search", since, None, time.monotonic() + 10, senders=2)) == 2
    assert time.monotonic() - started < 1
    started = time.monotonic()
    assert len(inbox.collect("t", "on_search", since, None, time.monotonic() + 0.3, senders=3)) == 2
    assert 0.3 <= time.monotonic() - started < 2  # a third never came: the deadline
