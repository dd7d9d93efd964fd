"""The runner playing BPP: the shipped role-bpp scenarios pass against the reference BAP, and a BAP that
misbehaves (a fault switch of the reference BAP, or a hand-made client endpoint) fails with the right rule."""
from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from conformance import scenario
from conformance.cli import main
from conformance.engine import Engine
from conformance.errors import ConfigError
from conformance.keys import entry, publication
from conformance.network.bap import ReferenceBAP
from conformance.network.registry import registry_client
from conformance.findings import Severity
from conformance.network import NetworkConfig
from conformance.runner import Harness, RunConfig, RunResult, ScenarioResult
from conformance.runner.results import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from conformance.signing import KeyPair
from conformance.transport import BackgroundServer, bind
from tests._live import SHIPPED, closed_port_url, free_port, serve, write
from tests._person import Person

BPP_ROLE = SHIPPED / "bpp-role"
MANUAL = BPP_ROLE / "manual-optin.yaml"
PASSIVE_ONLY = "stops-after-a-refused-enrolment"
WINDOW = 3.0

ONE_SEARCH = """
    name: one search
    role: bpp
    steps:
      - {name: discover, send: search, expect: {count: 2, within: PT1S}}
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def play(scenarios: list[scenario.Scenario], engine: Engine, **settings: Any) -> RunResult:
    config = RunConfig(role="bpp", callback_timeout=WINDOW, settle=0.2, **settings)
    with Harness(config, engine=engine) as harness:
        return harness.run(scenarios)


def play_passive(scenarios: list[scenario.Scenario], engine: Engine, **settings: Any) -> RunResult:
    """Passive drive, a person (tests/_person.py) at the reference BAP's controls."""
    harness: Harness | None = None

    def app() -> str:
        assert harness is not None and harness.network is not None
        return harness.network.bap_client_url

    person = Person(app)
    config = RunConfig(role="bpp", drive="passive", callback_timeout=WINDOW, settle=0.2, **settings)
    try:
        with Harness(config, engine=engine, notify=person) as harness:
            return harness.run(scenarios)
    finally:
        person.close()


def errors(result: ScenarioResult) -> set[str]:
    return {f.rule_id for f in result.findings if f.severity is Severity.ERROR}


@pytest.fixture(scope="module")
def shipped(engine: Engine) -> RunResult:
    scenarios = [scenario.load(p) for p in scenario.discover([BPP_ROLE])]
    return play(scenarios, engine, concurrency=len(scenarios))


# ---- the shipped scenarios against the reference BAP --------------------------------------------------------

def test_every_shipped_bpp_role_scenario_passes(shipped: RunResult) -> None:
    assert len(shipped.scenarios) >= 3
    for s in shipped.scenarios:
        if s.scenario.id == PASSIVE_ONLY:  # it judges the BAP's own decision: not in trigger drive
            assert s.status == "skipped" and "--drive passive" in (s.skipped or "") and not s.steps
            continue
        assert s.status == "passed", [f.text() for f in s.findings]
        assert not s.findings and not s.unexpected
    assert shipped.exit_code == EXIT_OK and not shipped.strays


def test_passive_drive_with_a_person_at_the_reference_bap(engine: Engine) -> None:
    """Every shipped role-bpp scenario, a person acting on each prompt in the reference BAP's app."""
    run = play_passive([scenario.load(p) for p in scenario.discover([BPP_ROLE])], engine)
    for s in run.scenarios:
        assert s.status == "passed", (s.scenario.id, s.why, [f.text() for f in s.findings])
    refused = next(s for s in run.scenarios if s.scenario.id == PASSIVE_ONLY)
    assert [st.action for st in refused.steps] == ["search", "init", "confirm"] and not refused.steps[2].callbacks
    assert run.exit_code == EXIT_OK


def test_each_step_shows_the_trigger_the_request_the_callback_and_the_bap_reply(shipped: RunResult) -> None:
    manual = next(s for s in shipped.scenarios if s.scenario.path == MANUAL)
    assert [st.action for st in manual.steps] == ["search", "init", "confirm", "status", "support", "cancel"]
    for st in manual.steps:
        assert st.reply is not None and st.reply.status == 200  # the BAP's client endpoint took the trigger
        assert [m.direction for m in st.callbacks] == ["in"] and st.callbacks[0].action == st.action
        assert st.callbacks[0].transaction_id == manual.transaction_id
        assert all(c.reason is None for c in st.callbacks[0].signatures) and st.callbacks[0].signatures
        assert {m.action for m in st.answers} == {f"on_{st.action}"}
        assert all(m.direction == "out" and m.response == {"message": {"ack": {"status": "ACK"}}} for m in st.answers)


def test_a_search_relayed_to_both_bpps_is_one_request_with_two_callbacks(shipped: RunResult) -> None:
    search = next(s for s in shipped.scenarios if s.scenario.path == MANUAL).steps[0]
    assert len(search.callbacks) == 1 and len(search.answers) == 2
    assert {dig_bpp(m.body) for m in search.answers} == {
        "sf-grid-loadflex.deg-conformance.local", "flexigrid-aggregator.deg-conformance.local"}


def test_a_relayed_copy_that_comes_after_its_step_is_the_same_request(engine: Engine, tmp_path: Path) -> None:
    """A step that takes one search gets the copy the gateway relayed to one of the harness's BPPs; the copy relayed
    to the other comes after the step (as one did under load): it is that request again, not the BAP sending a
    message_id twice (TXN_MESSAGE_ID_REUSED), nor a message no step took."""
    text = ONE_SEARCH.replace("count: 2", "count: 1")
    run = play([scenario.load(write(tmp_path, "s.yaml", text))], engine)
    [s] = [r for r in run.scenarios if r.scenario.name == "one search"]
    assert len(s.steps[0].callbacks) == 1 and s.unexpected == []
    assert [f.rule_id for f in s.findings if f.rule_id != "TIM_ACK_LATENCY"] == []
    assert [m.action for m in s.messages() if m.direction == "in"] == ["search"]


def dig_bpp(body: Any) -> str:
    return str(body["context"]["bpp_id"])


# ---- the reference BAP's fault switches ------------------------------------------------------------------------

BREAKS = {  # fault -> (the step it first shows at, the rule that must fire there)
    "unsigned": ("search", "SIG_MISSING"),
    "bad-signature": ("search", "SIG_INVALID"),
    "nack-everything": ("init", "RUN_CALLBACK_NACKED"),
    "fresh-transaction-id": ("init", "TXN_REQUEST_TRANSACTION_ID"),
    "reused-message-id": ("init", "TXN_MESSAGE_ID_REUSED"),
    "unknown-item": ("init", "ORD_ITEM_UNKNOWN"),
    "wrong-order-id": ("status", "ORD_REQUEST_ORDER_ID"),
}
EXPECTED = {  # shipped scenario -> {fault: (action, rule)} for each fault it must catch
    "manual-optin": BREAKS,
    "automated-control": BREAKS,
    "status-of-an-order-not-its-own": {
        "unsigned": ("search", "SIG_MISSING"), "bad-signature": ("search", "SIG_INVALID"),
        "fresh-transaction-id": ("status", "TXN_REQUEST_TRANSACTION_ID"),
        "reused-message-id": ("status", "TXN_MESSAGE_ID_REUSED"), "wrong-order-id": ("status", "RUN_ASSERTION")},
    # Passive drive: a BAP that NACKs every callback refuses the catalogs too (relayed by the gateway, whose
    # problem that NACK is), so its user finds no program to enrol in.
    "stops-after-a-refused-enrolment": {
        "unsigned": ("search", "SIG_MISSING"), "ignore-error-callback": ("confirm", "RUN_REQUEST_NOT_EXPECTED"),
        "nack-everything": ("init", "TIM_REQUEST_MISSING")},
}


@pytest.fixture(scope="module")
def faulty(engine: Engine) -> dict[tuple[str, str], ScenarioResult]:
    """Each shipped scenario against the reference BAP with each fault it must catch, all at once."""
    def one(path: Path, fault: str) -> ScenarioResult:
        network = NetworkConfig(faults={"bap": frozenset({fault})})
        drive = play_passive if path.stem == PASSIVE_ONLY else play
        return drive([scenario.load(path)], engine, network=network).scenarios[0]

    jobs = {(p.stem, fault): p for p in scenario.discover([BPP_ROLE]) for fault in EXPECTED[p.stem]}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {job: pool.submit(one, path, job[1]) for job, path in jobs.items()}
        return {job: future.result() for job, future in futures.items()}


def test_every_shipped_scenario_has_faults_to_catch() -> None:
    assert {p.stem for p in scenario.discover([BPP_ROLE])} == set(EXPECTED)


def test_every_bap_fault_switch_is_caught() -> None:
    from conformance.network.participant import BAP_ONLY
    # no-callback, late-callback, duplicate-callback and the wrong-callback ids are about callbacks, which a
    # BAP does not send; no-signature-check and no-validation make a BAP lenient: the probes catch those.
    caught = {fault for faults in EXPECTED.values() for fault in faults}
    assert BAP_ONLY | {"unsigned", "bad-signature", "nack-everything"} == caught


@pytest.mark.parametrize("job", [(s, f) for s, faults in EXPECTED.items() for f in faults], ids="/".join)
def test_a_faulty_bap_fails_with_the_right_rule_at_the_right_step(
        faulty: dict[tuple[str, str], ScenarioResult], job: tuple[str, str]) -> None:
    caught_at(faulty[job], *EXPECTED[job[0]][job[1]])


def caught_at(result: ScenarioResult, action: str, rule: str) -> None:
    """The scenario failed, and `rule` fired first at the step that sent (or was sent) `action`."""
    assert result.status == "failed"
    hits = [f for f in result.findings if f.rule_id == rule]
    assert hits, f"{rule} did not fire: {sorted(errors(result))}"
    step = result.step_of(hits[0])
    assert step is not None and step.action == action
    assert hits[0].action == (f"on_{action}" if rule == "RUN_CALLBACK_NACKED" else action)  # on what was NACKed


def test_a_step_can_script_the_harness_answer(engine: Engine, tmp_path: Path) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: init refused outright
        role: bpp
        variables: {provider_id: provider_demand_flex_001, item_id: manual_optin_demand_flex, fulfillment_id: manual_optin}
        steps:
          - send: search
            expect: {count: 2, within: PT5S}
            choose: {path: "$.callback.message.catalog.providers[*].id", contains: "{{ provider_id }}"}
            save: {bpp_id: $.callback.context.bpp_id, bpp_uri: $.callback.context.bpp_uri}
          - {send: init, answer: {nack: "30004"}, expect: {outcome: nacked, error_code: "30004"}}
    """))
    result = play([s], engine).scenarios[0]
    assert result.status == "passed", [f.text() for f in result.findings]
    init = result.steps[1].callbacks[0]
    assert init.response == {"message": {"ack": {"status": "NACK"}}, "error": {
        "code": "30004", "message": "refused as the scenario's step says (answer: nack 30004)"}}
    assert result.steps[1].answers == []  # a NACK: no callback


def test_answer_and_not_sent_belong_to_role_bpp(tmp_path: Path) -> None:
    for field in ("answer: {nack: '30004'}", "expect: {outcome: not-sent}"):
        path = write(tmp_path, "s.yaml", f"""
            name: s
            steps:
              - send: search
                {field}
        """)
        with pytest.raises(ConfigError, match="are for role bpp"):
            scenario.load(path)


# ---- a hand-made BAP client endpoint ----------------------------------------------------------------------------

class TinyClient:
    """A BAP client endpoint that does as told with each trigger: "silent" (200, sends nothing), "refuse"
    (500), "garbage" (POSTs a body that is not JSON to the harness's BPP), "wrong-action" (sends confirm when
    asked for init)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.bpp_url = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{action}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        doc = await request.json()
        if self.behaviour == "refuse":
            return JSONResponse({"error": "cannot send now"}, status_code=500)
        if self.behaviour == "garbage":
            async with httpx.AsyncClient(trust_env=False) as client:
                await client.post(f"{self.bpp_url}/search", content=b"{not json", headers={"Content-Type": "application/json"})
        if self.behaviour == "wrong-action":
            context = {**doc["context"], "action": "confirm", "message_id": "m-1", "bap_id": "tiny.bap",
                       "bap_uri": "http://127.0.0.1:9/tiny"}
            async with httpx.AsyncClient(trust_env=False) as client:
                await client.post(f"{self.bpp_url}/confirm", json={"context": context, "message": {}})
        return JSONResponse({"ok": True})


def play_tiny(tiny: TinyClient, s: scenario.Scenario, engine: Engine) -> RunResult:
    with serve(tiny.app()) as url:
        config = RunConfig(role="bpp", target=url, callback_timeout=1.0, settle=0.1)
        with Harness(config, engine=engine) as harness:
            tiny.bpp_url = harness.bpps["sf-grid-loadflex"].url
            return harness.run([s])


def test_a_bap_that_never_sends_is_a_finding_within_the_wait(engine: Engine, tmp_path: Path) -> None:
    started = time.monotonic()
    run = play_tiny(TinyClient("silent"), scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH)), engine)
    s = run.scenarios[0]
    assert errors(s) == {"TIM_REQUEST_MISSING"} and run.exit_code == EXIT_FAILED
    finding = s.findings[0]
    assert (finding.action, finding.transaction_id) == ("search", s.transaction_id)
    assert "no request" in str(finding.found) and '"ok":true' in str(finding.found)
    assert time.monotonic() - started < 20  # the step's 1 s, not the 30 s ttl: bounded, however busy the machine


def test_a_client_endpoint_that_refuses_is_run_trigger(engine: Engine, tmp_path: Path) -> None:
    run = play_tiny(TinyClient("refuse"), scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH)), engine)
    assert errors(run.scenarios[0]) == {"RUN_TRIGGER"}
    assert "HTTP 500" in str(run.scenarios[0].findings[0].found)


def test_an_unreachable_client_endpoint_is_exit_3(engine: Engine, tmp_path: Path) -> None:
    config = RunConfig(role="bpp", target=closed_port_url(), callback_timeout=1.0, settle=0.1)
    with Harness(config, engine=engine) as harness:
        run = harness.run([scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH))])
    assert errors(run.scenarios[0]) == {"RUN_UNREACHABLE"} and run.exit_code == EXIT_UNREACHABLE


def test_garbage_sent_to_the_harness_is_kept_and_reported(engine: Engine, tmp_path: Path) -> None:
    run = play_tiny(TinyClient("garbage"), scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH)), engine)
    assert errors(run.scenarios[0]) == {"TIM_REQUEST_MISSING"}
    assert [m.decode_error is not None for m in run.strays] == [True]  # nothing received is lost


def test_the_wrong_action_is_reported_and_kept(engine: Engine, tmp_path: Path) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: init asked, confirm sent
        role: bpp
        variables: {bpp_id: x, bpp_uri: "http://127.0.0.1:9/x", provider_id: p, item_id: i, fulfillment_id: f}
        steps:
          - {send: init, expect: {within: PT1S}}
    """))
    result = play_tiny(TinyClient("wrong-action"), s, engine).scenarios[0]
    assert "TIM_REQUEST_MISSING" in errors(result)
    assert [m.action for m in result.unexpected] == ["confirm"]
    assert "RUN_UNCLAIMED" in {f.rule_id for f in result.findings}


# ---- passive drive: a person acts on the prompt -------------------------------------------------------------

def test_passive_drive_prompts_and_takes_what_the_person_makes_the_app_send(engine: Engine, tmp_path: Path) -> None:
    s = scenario.load(write(tmp_path, "s.yaml", """
        name: a person searches
        role: bpp
        steps:
          - {send: search, prompt: "search for programs ({{ transaction_id }})", expect: {count: 2, within: PT5S}}
    """))
    prompts: list[str] = []
    pool = ThreadPoolExecutor(max_workers=1)

    def person(text: str) -> None:  # does what the prompt says, in the app (the reference BAP's client)
        prompts.append(text)
        txn = re.search(r"\(transaction ([0-9a-f-]+);", text)
        assert txn is not None
        pool.submit(httpx.post, f"{harness.network.bap_client_url}/search",  # type: ignore[union-attr]
                    json={"context": {"transaction_id": txn.group(1), "domain": "flexibility", "version": "1.1.0",
                                      "location": {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}},
                          "message": {"intent": {"descriptor": {"name": "flex"}}}}, trust_env=False)

    with Harness(RunConfig(role="bpp", drive="passive", settle=0.1), engine=engine, notify=person) as harness:
        result = harness.run([s]).scenarios[0]
    pool.shutdown()
    assert result.status == "passed", [f.text() for f in result.findings]
    assert len(prompts) == 1 and prompts[0].startswith(f"s 1/1: search for programs ({result.transaction_id})")
    assert result.steps[0].request is None  # nothing was POSTed to a client endpoint


# ---- misuse -------------------------------------------------------------------------------------------------

def test_a_scenario_of_the_other_role_is_refused_before_anything_is_sent(engine: Engine) -> None:
    bap_scenario = scenario.load(SHIPPED / "unknown-order.yaml")
    with Harness(RunConfig(role="bpp"), engine=engine) as harness:
        with pytest.raises(ConfigError, match="play bap, not bpp"):
            harness.run([bap_scenario])
        assert not harness.inbox.by_transaction


@pytest.mark.parametrize("field, text", [
    ("prompt: hello", "prompt is for role bpp"),
])
def test_role_bap_refuses_role_bpp_fields(tmp_path: Path, field: str, text: str) -> None:
    path = write(tmp_path, "s.yaml", f"""
        name: s
        steps:
          - send: search
            {field}
    """)
    with pytest.raises(ConfigError, match=text):
        scenario.load(path)


def test_role_bpp_refuses_expect_callback(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """
        name: s
        role: bpp
        steps:
          - {send: search, expect: {callback: on_search}}
    """)
    with pytest.raises(ConfigError, match="expect.callback is for role bap"):
        scenario.load(path)


def test_threads_left_running_are_none(engine: Engine, tmp_path: Path) -> None:
    """Every server a BPP-role run starts (its BPPs, the reference registry, gateway and BAP) stops with it."""
    before = {t.name for t in threading.enumerate()}
    play([scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH))], engine)
    deadline = time.monotonic() + 5
    while {t.name for t in threading.enumerate()} - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {t.name for t in threading.enumerate()} - before == set()



# ---- the command line -------------------------------------------------------------------------------------------

def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", "--role", "bpp", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_run_role_bpp_plays_the_shipped_bpp_scenarios(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "-n", "3", "--callback-timeout", "3", "--report-dir", str(tmp_path))
    shipped = len(scenario.discover([BPP_ROLE]))
    assert code == 0, out
    assert f"{shipped - 1} passed, 0 failed, 0 broken, 1 skipped of {shipped} in" in out
    assert "against the reference BAP as BPP" in err and "sf-grid-loadflex.deg-conformance.local at http" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["role"] == "bpp" and summary["settings"]["drive"] == "trigger"
    step = summary["scenarios"][0]["steps"][0]
    assert (step["callbacks"], step["sent_callbacks"]) == (1, 2)  # one search, answered by both BPPs
    names = {a["name"] for r in (tmp_path / "allure-results").glob("*-result.json")
             for st in json.loads(r.read_text()).get("steps", []) for a in st.get("attachments", [])}
    assert {"trigger (the BAP's client endpoint): search", "received: search #1",
            "sent: on_search #1, with the target's reply"} <= names


def test_a_bap_fault_fails_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, str(MANUAL), "--fault", "bap=unsigned", "--callback-timeout", "2",
                       "--report-dir", str(tmp_path))
    assert code == EXIT_FAILED and "SIG_MISSING" in out


@pytest.mark.parametrize("argv, says", [
    (["--gateway", "http://127.0.0.1:9"], "--gateway is for --role bap"),
    ([str(SHIPPED / "unknown-order.yaml")], "play bap, not bpp"),
])
def test_misuse_is_exit_2_with_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                             says: str) -> None:
    code, _, err = cli(capsys, *argv, "--report-dir", str(tmp_path))
    assert code == 2 and says in err


def test_passive_drive_is_one_scenario_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--role", "bpp", "--drive", "passive", "-n", "2"]) == 2
    assert "passive drive plays one scenario at a time" in capsys.readouterr().err


def test_bpp_only_flags_are_refused_for_role_bap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--drive", "passive"]) == 2
    assert "--catalog and --drive are for --role bpp" in capsys.readouterr().err


# ---- a BAP that is not the reference one -------------------------------------------------------------------------

def test_a_thin_bap_client_passes_every_scenario_that_applies_in_trigger_drive(engine: Engine) -> None:
    """A protocol-server style client forwards whatever it is told, an init or confirm after a refusal included:
    in trigger drive the harness is the one deciding, so only what applies there is played."""
    scenarios = [scenario.load(p) for p in scenario.discover([BPP_ROLE])]
    run = play(scenarios, engine, concurrency=len(scenarios),
               network=NetworkConfig(variations={"bap": frozenset({"thin-client"})}))
    assert {s.scenario.id: s.status for s in run.scenarios} == {
        s.id: "skipped" if s.id == PASSIVE_ONLY else "passed" for s in scenarios}, [
        (s.scenario.id, s.why, [f.text() for f in s.findings]) for s in run.scenarios]
    assert run.exit_code == EXIT_OK


def test_a_bap_configured_from_the_printed_addresses_before_the_run(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The BAP under test is set up first, with the gateway and registry `run --role bpp --print-network` gives,
    and its registry entry (what `keys new` prints) handed to the run with --register; then the run."""
    listen = f"127.0.0.1:{free_port()}"
    assert main(["run", "--role", "bpp", "--print-network", "--listen", listen]) == 0
    printed = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()}
    gateway, registry = printed["gateway"], printed["registry"]

    server = BackgroundServer(bind("127.0.0.1", 0), name="the BAP under test")
    key = KeyPair.generate("bap-under-test.example", "k1")
    bap = ReferenceBAP(key, url=f"{server.url}/bap", gateway_url=gateway, domain="flexibility", engine=Engine())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            bap.attach(http, registry_client(registry, http))
            yield

    (tmp_path / "bap.json").write_text(json.dumps(publication(entry(key, url=bap.url, type="BAP",
                                                                    domain="flexibility"))))
    server.start(Starlette(routes=[Mount("/bap", bap.network_app()), Mount("/bap-client", bap.client_app())],
                           lifespan=lifespan))
    try:
        code = main(["run", "--role", "bpp", str(MANUAL), "--listen", listen, "--target", f"{server.url}/bap-client",
                     "--register", str(tmp_path / "bap.json"), "--callback-timeout", "5",
                     "--report-dir", str(tmp_path / "r")])
    finally:
        server.stop()
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out + err
    assert f"gateway {gateway}, registry {registry}" in err and "1 passed" in out


@pytest.mark.parametrize("signatures, passes", [("off", True), ("optional", True), ("required", False)])
def test_signatures_mode_applies_to_the_baps_requests(engine: Engine, signatures: str, passes: bool) -> None:
    run = play([scenario.load(MANUAL)], engine, signatures=signatures,
               network=NetworkConfig(faults={"bap": frozenset({"unsigned"})}))
    [s] = run.scenarios
    assert (s.status == "passed") is passes, [f.text() for f in s.findings]
    if not passes:
        assert "SIG_MISSING" in errors(s)
