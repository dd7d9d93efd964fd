"""Active probes: the reference BPP (the conformant target) refuses every one; a BPP with a fault switch that
accepts bad input fails exactly the matching probes; the verdicts are stable from run to run."""
from __future__ import annotations

from pathlib import Path


import pytest

from conformance.cli import main
from conformance.engine import Engine
from conformance.network import NetworkConfig
from conformance.probes import for_bpp
from conformance.rules.context import REQUIRED
from conformance.runner import Harness, RunConfig, RunResult
from conformance.runner.results import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from conformance.scenario import FIXTURES, read_fixture, render
from tests._live import closed_port_url

TARGET = "flexigrid-aggregator"  # the reference network's first BPP, which probes go to by default


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def probe(engine: Engine, faults: frozenset[str] = frozenset(), times: int = 1) -> list[RunResult]:
    network = NetworkConfig(faults={TARGET: faults} if faults else {})
    with Harness(RunConfig(network=network, concurrency=8, callback_timeout=0.5), engine=engine) as harness:
        return [harness.run([], probes=True) for _ in range(times)]


def verdicts(run: RunResult) -> dict[str, str]:
    return {s.scenario.id: s.status for s in run.scenarios}


def failed(run: RunResult) -> set[str]:
    return {s.scenario.id for s in run.scenarios if s.status == "failed"}


@pytest.fixture(scope="module")
def conformant(engine: Engine) -> list[RunResult]:
    return probe(engine, times=2)


def test_the_reference_bpp_refuses_every_probe(conformant: list[RunResult]) -> None:
    run = conformant[0]
    assert run.exit_code == EXIT_OK and len(run.scenarios) >= 25
    for s in run.scenarios:
        assert s.status == "passed", [f.text() for f in s.findings]
        assert not s.steps[-1].callbacks or s.scenario.id in ("signature-replay", "flow-message-id-reused")


def test_verdicts_are_the_same_from_run_to_run(conformant: list[RunResult]) -> None:
    first, second = conformant
    assert verdicts(first) == verdicts(second)
    assert {s.transaction_id for s in first.scenarios}.isdisjoint(s.transaction_id for s in second.scenarios)


def test_each_probe_shows_what_was_sent_and_what_came_back(conformant: list[RunResult]) -> None:
    missing = next(s for s in conformant[0].scenarios if s.scenario.id == "signature-missing-header")
    [step] = missing.steps
    assert step.request is not None and step.request.action == "search"
    assert step.reply is not None and (step.reply.status, step.reply.ack) == (401, "NACK") and step.reply.challenge
    replay = next(s for s in conformant[0].scenarios if s.scenario.id == "signature-replay")
    first, probe = replay.steps
    assert first.name == "a valid request the probe needs first"
    assert probe.name.startswith("the probe (watched for ")  # the silence window is stated
    assert [c.action for c in replay.steps[-1].callbacks] == ["on_search"]  # the original's answer, only


def test_probes_come_from_the_catalogue(engine: Engine) -> None:
    init = render(read_fixture(FIXTURES / "demand-flexibility" / "requests" / "init.json"),
                  {"bpp_id": "b", "bpp_uri": "http://b", "provider_id": "p", "item_id": "i", "fulfillment_id": "f"})
    init["context"].update(action="init", bap_id="a", bap_uri="http://a", transaction_id="t", message_id="m",
                           timestamp="2026-11-28T12:00:00Z")
    ids = [p.id for p in for_bpp(engine, init)]
    assert len(ids) == len(set(ids))
    assert {f"context/missing-{name}" for name in REQUIRED} <= set(ids)  # one per required context field
    assert {i for i in ids if i.startswith("layer2/")} == {"layer2/L2_FULFILLMENT_TYPE", "layer2/L2_STOP_TYPE"}


SIGNATURE_PROBES = {"signature-missing-header", "signature-unregistered-key", "signature-body-changed",
                    "signature-expired", "signature-created-in-future", "signature-subscriber-mismatch"}


def test_a_bpp_that_does_not_check_signatures_fails_the_signature_probes(engine: Engine) -> None:
    [run] = probe(engine, frozenset({"no-signature-check"}))
    # a replay is still refused: its message_id was used already
    assert failed(run) == SIGNATURE_PROBES and run.exit_code == EXIT_FAILED
    finding = next(s for s in run.scenarios if s.scenario.id == "signature-expired").findings[0]
    assert (finding.rule_id, finding.action, finding.expected, finding.found) == (
        "PRB_SIGNATURE", "search", "HTTP 401 with a WWW-Authenticate header (a NACK)", "HTTP 200, ACK")
    assert finding.transaction_id and finding.message_id


def test_a_bpp_that_does_not_validate_fails_every_other_probe(engine: Engine, conformant: list[RunResult]) -> None:
    [run] = probe(engine, frozenset({"no-validation"}))
    # It also calls back for probes that carried no transaction_id: messages for no transaction the harness
    # started, judged on their own.
    assert failed(run) == set(verdicts(conformant[0])) - SIGNATURE_PROBES | {"unsolicited-messages"}
    rules = {f.rule_id for s in run.scenarios if s.scenario.id != "unsolicited-messages" for f in s.findings}
    assert rules == {"PRB_CONTEXT", "PRB_SCHEMA", "PRB_LAYER2", "PRB_FLOW", "PRB_SIGNATURE"}  # replay is PRB_SIGNATURE
    callbacks = next(s for s in run.scenarios if s.scenario.id == "flow-status-unknown-order").findings
    assert any("no callback" in str(f.expected) for f in callbacks)  # it ACKed, then answered with an error


# ---- the command line -------------------------------------------------------------------------------------------

def test_probe_command_against_the_reference_network(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["probe", "-n", "8", "--callback-timeout", "0.5", "--report-dir", str(tmp_path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "the probes against the reference network" in err and "0 failed, 0 broken" in out
    assert len(list((tmp_path / "allure-results").glob("*-result.json"))) >= 25


def test_run_with_probes_plays_the_scenarios_then_the_probes(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "demand-flexibility" / "unknown-order.yaml"
    code = main(["run", str(scenario), "--probes", "-n", "8", "--callback-timeout", "0.5",
                 "--report-dir", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == EXIT_OK and out.startswith("PASS   unknown-order") and "PASS   signature-missing-header" in out


def test_an_unreachable_target_is_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["probe", "--target", closed_port_url(), "--report-dir", str(tmp_path)]) == EXIT_UNREACHABLE
    assert "RUN_UNREACHABLE" in capsys.readouterr().out


# ---- probing a BAP: wrong callbacks to the reference BAP ----------------------------------------------------

def probe_bap(engine: Engine, faults: frozenset[str] = frozenset()) -> RunResult:
    network = NetworkConfig(faults={"bap": faults} if faults else {})
    config = RunConfig(role="bpp", network=network, concurrency=8, callback_timeout=2)
    with Harness(config, engine=engine) as harness:
        return harness.run([], probes=True)


@pytest.fixture(scope="module")
def bap_conformant(engine: Engine) -> RunResult:
    return probe_bap(engine)


def test_the_reference_bap_refuses_every_probe(bap_conformant: RunResult) -> None:
    assert bap_conformant.exit_code == EXIT_OK and len(bap_conformant.scenarios) >= 20
    for s in bap_conformant.scenarios:
        assert s.status == "passed", [f.text() for f in s.findings]
        assert s.steps[0].url is not None and s.steps[0].url.endswith("/bap-client/search")  # its own search first
        assert s.steps[-1].url is not None and s.steps[-1].url.endswith("/bap/on_search")
    assert "flow-unknown-transaction" in verdicts(bap_conformant)
    layer2 = {s.scenario.id for s in bap_conformant.scenarios if s.scenario.id.startswith("layer2-")}
    assert layer2 == {"layer2-L2_ACCEPTANCE_TYPE", "layer2-L2_CATEGORY_CODE", "layer2-L2_FULFILLMENT_TYPE"}


def test_a_bap_that_does_not_check_signatures_fails_the_signature_probes(engine: Engine) -> None:
    run = probe_bap(engine, frozenset({"no-signature-check"}))
    assert failed(run) == SIGNATURE_PROBES


def test_a_bap_that_does_not_validate_fails_the_other_probes(engine: Engine, bap_conformant: RunResult) -> None:
    run = probe_bap(engine, frozenset({"no-validation"}))
    assert failed(run) == set(verdicts(bap_conformant)) - SIGNATURE_PROBES


def test_probes_of_a_bap_need_a_trigger(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--role", "bpp", "--drive", "passive"]) == 2
    assert "probes of a BAP need --drive trigger" in capsys.readouterr().err




# ---- probing a gateway -------------------------------------------------------------------------------------

def probe_gateway(engine: Engine, faults: frozenset[str] = frozenset()) -> RunResult:
    """The reference gateway, probed on its own (--gateway, no --target), the harness registered as a BAP."""
    from conformance.network import Network
    from conformance.network.registry import Subscriber
    with Network(NetworkConfig(faults={"gateway": faults} if faults else {})) as net:
        config = RunConfig(gateway=net.gateway_url, registry=net.registry_url, concurrency=8, callback_timeout=1)
        with Harness(config, engine=engine) as harness:
            net.registry.subscribers.append(Subscriber.for_key(harness.key, url=harness.callback_url, type="BAP",
                                                               domain=net.config.domain))
            return harness.run([], probes=True)


def test_the_reference_gateway_refuses_every_search_probe(engine: Engine) -> None:
    run = probe_gateway(engine)
    assert run.exit_code == EXIT_OK, [f.text() for s in run.scenarios for f in s.findings]
    ids = set(verdicts(run))
    assert {"signature-replay", "flow-message-id-reused", "context-missing-bap_id"} <= ids
    assert not {i for i in ids if i.startswith(("layer2-", "flow-status", "flow-confirm"))}  # a gateway only searches
    assert all(s.steps[-1].url and "/gateway/search" in s.steps[-1].url for s in run.scenarios)
    assert not run.strays  # the discovery search's answers from both BPPs are its own, not strays


def test_a_gateway_that_does_not_check_signatures_fails_the_signature_probes(engine: Engine) -> None:
    run = probe_gateway(engine, frozenset({"no-signature-check"}))
    assert failed(run) == SIGNATURE_PROBES
