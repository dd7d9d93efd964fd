"""What a run saw can be checked again: `validate` on a run's transcript.jsonl gives the rule findings the run's own
end-of-run check gave, over the shipped suites of both roles and the reference network's fault switches."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conformance import Engine, scenario, transcript
from conformance.cli import main
from conformance.network import NetworkConfig
from conformance.reporting import run_transcript
from conformance.reporting.live import write_reports
from conformance.runner import Harness, RunConfig, RunResult
from tests._live import SHIPPED

Key = tuple[str, str | None, str | None, str]
BAP_FAULTS = ["wrong-callback-message-id", "wrong-callback-transaction-id", "enum-out-of-range", "duplicate-callback",
              "bad-signature", "unsigned", "nack-everything", "forget-cancellation", "invent-orders"]
BAP_SIDE = ["fresh-transaction-id", "reused-message-id", "unknown-item", "wrong-order-id", "unsigned"]


def play(role: str, faults: dict[str, frozenset[str]], engine: Engine) -> RunResult:
    scenarios = [s for s in map(scenario.load, scenario.discover([SHIPPED])) if s.role == role]
    config = RunConfig(role=role, network=NetworkConfig(faults=faults), concurrency=len(scenarios),
                       callback_timeout=1.5, settle=0.3)
    with Harness(config, engine=engine) as harness:
        return harness.run(scenarios)


def the_runs() -> dict[str, tuple[str, dict[str, frozenset[str]]]]:
    runs: dict[str, tuple[str, dict[str, frozenset[str]]]] = {"bap": ("bap", {}), "bpp": ("bpp", {})}
    runs |= {f"bap/{f}": ("bap", {b: frozenset({f}) for b in ("sf-grid-loadflex", "flexigrid-aggregator")})
             for f in BAP_FAULTS}
    runs |= {f"bpp/{f}": ("bpp", {"bap": frozenset({f})}) for f in BAP_SIDE}
    return runs


@pytest.fixture(scope="module")
def runs() -> dict[str, RunResult]:
    engine = Engine()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(play, role, faults, engine) for name, (role, faults) in the_runs().items()}
        return {name: future.result() for name, future in futures.items()}


def engine_findings(run: RunResult) -> set[Key]:
    """What the run's end-of-run check found (the catalogue's own rules, against the target and on the harness's
    own messages alike), as a capture can show it."""
    runner_rules = {r.id for r in Engine().rules if r.check is None}
    found = [f for s in run.scenarios for f in [*s.findings, *s.harness_findings]]
    return {(f.rule_id, f.action, f.message_id, f.path) for f in found if f.rule_id not in runner_rules}


@pytest.mark.parametrize("name", list(the_runs()))
def test_validating_the_transcript_gives_the_runs_findings(runs: dict[str, RunResult], name: str,
                                                          tmp_path: Path) -> None:
    run = runs[name]
    path = run_transcript.write(run, tmp_path)
    messages = transcript.load([path])
    assert len(messages) == len(run_transcript.messages(run)) > 0
    report = Engine().check(messages)
    offline = {(f.rule_id, f.action, f.message_id, f.path) for f in report.findings}
    in_run = engine_findings(run)
    assert in_run == offline, (sorted(in_run - offline), sorted(offline - in_run))
    if name in ("bap", "bpp"):  # the clean runs: nothing but, on a busy machine, a slow ACK
        assert {f[0] for f in offline} <= {"TIM_ACK_LATENCY"}


def test_a_transcript_line_has_what_a_run_measured(runs: dict[str, RunResult]) -> None:
    records: list[dict[str, Any]] = [run_transcript.record(m) for m in run_transcript.messages(runs["bap"])]
    assert {r["direction"] for r in records} == {"in", "out"}
    callback = next(r for r in records if r["direction"] == "in")
    assert {(c["header"], c["reason"]) for c in callback["signatures"]} >= {("Authorization", None)}
    request = next(r for r in records if r["direction"] == "out")
    assert request["response"]["message"]["ack"]["status"] == "ACK" and request["latency"] >= 0
    assert records == sorted(records, key=lambda r: r["received_at"])


def test_validate_on_a_report_folder_reads_its_transcript_or_says_what_it_is(
        runs: dict[str, RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "report"
    write_reports(runs["bap/enum-out-of-range"], folder, participant="the reference network")
    assert main(["validate", str(folder), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {f["source"] for f in doc["findings"]} == {str(folder / "transcript.jsonl")}
    assert "L2_FULFILLMENT_STATE" in {f["rule_id"] for f in doc["findings"]}
    assert main(["validate", str(folder / "allure-results")]) == 2
    assert "Allure results, not a capture" in capsys.readouterr().err
    (folder / "transcript.jsonl").unlink()
    assert main(["validate", str(folder)]) == 2
    assert "the report folder of a run, not a capture" in capsys.readouterr().err
