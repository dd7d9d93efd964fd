"""`deg-conformance load` on Locust: a master and two workers against the reference network on loopback, a fault
switch under load, the tally that adds flows up, and the refusals of settings that cannot work.

Locust monkey-patches the standard library for gevent when it is imported, so it runs only in the subprocesses
these tests start (the command re-executes Locust), never in the pytest process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from conformance.cli import main
from conformance.findings import Finding, Severity
from conformance.load import LoadConfig, settings
from conformance.load import player as player_module
from conformance.load.tally import Tally, duplicates, outcome
from conformance.messages import Message
from conformance.network import Network
from conformance.network.registry import Subscriber
from conformance.runner.listener import Received
from conformance.runner.results import ScenarioResult, StepResult
from conformance.scenario import Scenario
from conformance.signing import KeyPair
from conformance.transport import Reply
from tests._live import ONE_SEARCH, SHIPPED, free_port, write

DEADLINE = 120
"""Seconds a whole load command may take in a test (its run time is a few seconds)."""


def load(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conformance.cli", "load", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=DEADLINE)
    return process.returncode, out + err


def registered_key(net: Network, folder: Path) -> list[str]:
    """A key of the harness's, in the network's registry: the identity options every worker gets."""
    key = KeyPair.generate("load.conformance.test", "k1")
    net.add_subscriber(Subscriber.for_key(key, url="http://127.0.0.1:9", type="BAP", domain="flexibility"))
    path = folder / "harness.key"
    path.write_text(key.private_key + "\n")
    return ["--key-file", str(path), "--subscriber-id", key.subscriber_id, "--key-id", "k1"]


def test_master_and_two_workers_find_nothing_against_the_clean_network(deg_network: Network, tmp_path: Path) -> None:
    port, reports = free_port(), tmp_path / "reports"
    identity = registered_key(deg_network, tmp_path)
    master = load("--master", "--expect-workers", "2", "--master-port", str(port), "--users", "12", "--spawn-rate",
                  "12", "--run-time", "4s", "--target", deg_network.bpps["sf-grid-loadflex"].url, "--registry",
                  deg_network.registry_url, "--report-dir", str(reports), cwd=tmp_path)
    workers = [load("--worker", "--master-port", str(port), *identity, cwd=tmp_path) for _ in range(2)]
    code, text = finished(master)
    for worker in workers:  # each played through a listener of its own
        worker_code, worker_text = finished(worker)
        assert worker_code == 0 and "callbacks at http://127.0.0.1:" in worker_text, worker_text
    assert code == 0, text
    summary = json.loads((reports / "load-summary.json").read_text())
    assert summary["findings"] == {} and set(summary["problems"]) <= {"skipped"}  # automated-control: no AUTO_FLEX
    assert (summary["lost"], summary["duplicated"], summary["misrouted"], summary["late"]) == (0, 0, 0, 0)
    assert summary["flows"]["passed"] >= 12 and set(summary["flows"]) <= {"passed", "skipped"}
    assert summary["flows_per_s"] > 0
    for kind, action in (("ACK", "search"), ("ACK", "confirm"), ("CALLBACK", "on_confirm")):
        row = summary["latency_ms"][kind][action]
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert (reports / "locust_stats.csv").read_text().count("on_confirm") == 1
    assert (reports / "locust.html").stat().st_size > 0
    assert "callbacks at" not in text  # the master plays nothing itself


def test_a_fault_switch_under_load_gives_its_rule(tmp_path: Path) -> None:
    code, text = finished(load("--users", "4", "--spawn-rate", "4", "--run-time", "3s", "--callback-timeout", "2",
                               "--fault", "sf-grid-loadflex=wrong-callback-message-id", str(SHIPPED / "manual-optin.yaml"),
                               "--report-dir", str(tmp_path / "r"), cwd=tmp_path))
    assert code == 1, text
    summary = json.loads((tmp_path / "r" / "load-summary.json").read_text())
    assert summary["findings"]["TXN_CALLBACK_MESSAGE_ID"]["count"] >= 1
    assert "FAIL" in text


@pytest.mark.parametrize("args, message", [
    (["--worker", "--target", "http://127.0.0.1:9"], "--target: the master's plan"),
    (["--master", "--key-file", "k"], "--key-file: each worker's own"),
    (["--worker", "--use-case", "ev-charging", "x.yaml"], "SCENARIO, --use-case: the master's plan"),
    (["--worker", "--master-port", "1", "--users", "0"], "--users: the master's plan"),
    (["--master"], "--master needs --target or --gateway"),
    (["--run-time", "soon"], "--run-time 'soon'"),
    (["--users", "0"], "--users, --expect-workers and --expect-workers-max-wait must be at least 1"),
    (["--target", "ftp://x"], "is not an http(s) URL"),
    (["--target", "http://127.0.0.1:9", "--fault", "sf-grid-loadflex=no-callback", "--master"], "--fault applies"),
])
def test_settings_that_cannot_work_are_refused_at_once(capsys: pytest.CaptureFixture[str], args: list[str],
                                                       message: str) -> None:
    assert main(["load", *args]) == 2  # before Locust is started: in this process, which it would monkey-patch
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_ctrl_c_ends_the_flows_under_way_and_writes_the_reports(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "conformance.cli", "load", "--users", "2", "--run-time", "5m",
                                "--report-dir", str(tmp_path / "r"), str(SHIPPED / "unknown-order.yaml")],
                               cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _playing(tmp_path / "r"):
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground process group
    code, text = finished(process)
    assert code == 130 and "Traceback" not in text, text
    summary = json.loads((tmp_path / "r" / "load-summary.json").read_text())
    assert summary["flows"].get("passed", 0) >= 1 and summary["findings"] == {}


def _playing(report: Path) -> bool:
    """Locust's history CSV has a row with a request in it: the users play."""
    history = report / "locust_stats_history.csv"
    rows = history.read_text().splitlines()[1:] if history.exists() else []
    return any(row.split(",")[17:18] not in (["0"], []) for row in rows)


def test_a_key_the_registry_does_not_hold_is_a_set_up_error(deg_network: Network, tmp_path: Path) -> None:
    code, text = finished(load("--target", deg_network.bpps["sf-grid-loadflex"].url, "--registry",
                               deg_network.registry_url, "--run-time", "2s", "--report-dir", str(tmp_path / "r"),
                               cwd=tmp_path))
    assert code == 4 and "has no key deg-conformance.local|" in text and "keys subscribe" in text, text
    assert json.loads((tmp_path / "r" / "load-summary.json").read_text())["flows"] == {}


def test_a_player_that_dies_is_a_harness_error_not_a_verdict(tmp_path: Path) -> None:
    process = load("--users", "2", "--run-time", "6s", "--report-dir", str(tmp_path / "r"),
                   str(SHIPPED / "unknown-order.yaml"), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _playing(tmp_path / "r"):
        time.sleep(0.5)
    locust = _children(process.pid)
    players = [pid for parent in locust for pid in _children(parent)]
    assert len(locust) == 1 and len(players) == 1
    os.kill(players[0], signal.SIGKILL)
    code, text = finished(process)
    assert code == 5 and "Traceback" not in text, text
    assert "the load player stopped answering" in (tmp_path / "r" / "load-summary.json").read_text()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


def test_a_master_whose_workers_never_come_is_a_set_up_error(tmp_path: Path) -> None:
    code, text = finished(load("--master", "--expect-workers", "2", "--expect-workers-max-wait", "1", "--master-port",
                               str(free_port()), "--target", "http://127.0.0.1:9", "--run-time", "1s",
                               "--report-dir", str(tmp_path / "r"), cwd=tmp_path))
    assert code == 4 and "fewer than 2 worker(s) connected within 1 s" in text, text


def test_without_locust_the_fix_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "locust" else real(name, *a))
    assert main(["load", "--report-dir", str(tmp_path)]) == 4
    assert "pip install 'deg-conformance[load]'" in capsys.readouterr().err


def test_settings_cross_as_json_without_the_key_in_the_plan() -> None:
    plan = settings.Plan(target="http://127.0.0.1:9/bpp", scenarios=("a.yaml",), faults={"bap": ("unsigned",)})
    assert settings.parse(settings.Plan, settings.dump(plan)) == settings.Plan(
        target="http://127.0.0.1:9/bpp", scenarios=("a.yaml",), faults={"bap": ["unsigned"]})
    identity = settings.Identity(private_key="secret")
    assert "secret" not in repr(identity) and "private_key" not in settings.dump(plan)
    assert LoadConfig(mode="worker").plan == settings.Plan()


def _flow(findings: list[Finding], callbacks: list[Message], unexpected: list[Message]) -> ScenarioResult:
    sent = datetime(2026, 1, 1, tzinfo=timezone.utc)
    request = Message({"context": {"action": "search", "transaction_id": "t1", "message_id": "m1"}}, "s", 1,
                      received_at=sent, direction="out")
    step = StepResult(1, "discover", "search", 0.0, request=request, reply=Reply(200, {"message": {"ack": {
        "status": "ACK"}}}, 0.01), callbacks=callbacks)
    return ScenarioResult(Scenario(name="x", path=Path("x.yaml"), steps=()), "t1", 0.0, 1.5, steps=[step],
                          findings=findings, unexpected=unexpected)


def _callback(tid: str, bpp: str, after: float) -> Message:
    return Message({"context": {"action": "on_search", "transaction_id": tid, "message_id": "m1", "bpp_id": bpp}},
                   "s", 2, received_at=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=after),
                   direction="in")


def test_a_flow_counts_lost_duplicated_and_misrouted_callbacks() -> None:
    missing = Finding("TIM_CALLBACK_MISSING", Severity.ERROR, "t", "c", "$", "m", 1, 2)
    flow = outcome(_flow([missing], [_callback("t1", "a", 0.2), _callback("t1", "b", 0.3)],
                         [_callback("t1", "a", 0.5), _callback("t2", "c", 0.6)]))
    assert flow["steps"] == [{"action": "search", "ack": 0.01, "answer": "ACK",
                              "callbacks": [("on_search", 0.2), ("on_search", 0.3)]}]
    assert (flow["lost"], flow["duplicated"], flow["misrouted"], flow["status"]) == (1, 1, 1, "failed")
    clean = outcome(_flow([], [_callback("t1", "a", 0.2), _callback("t1", "b", 0.3)], []))
    assert (clean["lost"], clean["duplicated"], clean["misrouted"], clean["status"]) == (0, 0, 0, "passed")
    assert duplicates([_callback("t1", "a", 0.1), _callback("t1", "b", 0.1)]) == 0


def test_tallies_add_up_across_workers_and_give_the_exit_code() -> None:
    missing = Finding("TIM_CALLBACK_MISSING", Severity.ERROR, "t", "c", "$", "m", 1, 2)
    worker_a, worker_b, master = Tally(), Tally(), Tally()
    worker_a.add(outcome(_flow([], [_callback("t1", "a", 0.1)], [])))
    assert worker_a.exit_code() == 0
    worker_b.add(outcome(_flow([missing], [], [])))
    for worker in (worker_a, worker_b):
        master.merge(worker.as_dict())
    assert master.flows == {"passed": 1, "failed": 1} and master.lost == 1
    assert master.findings["TIM_CALLBACK_MISSING"]["count"] == 1 and master.exit_code() == 1
    master.problem("setup", "the registry has no key")
    assert master.exit_code() == 4
    assert Tally().exit_code() == 2  # nothing judged within the run time proves nothing


def test_a_late_callback_is_checked_with_its_flow_while_it_is_kept_and_only_reported_late_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(player_module, "RETAIN", 0.0)  # only the latest flow is kept
    scenario = write(tmp_path, "one-search.yaml", ONE_SEARCH)
    player = player_module.Player(settings.Plan(scenarios=(str(scenario),)), settings.Identity())
    try:
        player.start()
        first, second = player.play(0), player.play(1)
        assert first is not None and second is not None and first["status"] == second["status"] == "passed"
        kept = player._judged[-1][1]  # noqa: SLF001 - the flow the player still holds
        assert [r.transaction_id for _, r in player._judged] == [second["transaction_id"]]  # noqa: SLF001
        on_search = kept.steps[0].callbacks[0]
        for tid in (first["transaction_id"], second["transaction_id"]):  # the same on_search again, for each flow
            body = {**on_search.body, "context": {**on_search.context, "transaction_id": tid}}
            player.harness.inbox.add(Received(datetime.now(timezone.utc), "/on_search", orjson.dumps(body), body,
                                              None, {}, on_search.signatures))
        tally = player.finish()
    finally:
        player.stop()
    assert tally["late"] == 2 and tally["orphans"] == 0
    assert tally["findings"]["TXN_DUPLICATE_CALLBACK"]["count"] == 1  # the kept flow's: checked with it
    assert "TXN_ORPHAN_CALLBACK" not in tally["findings"]  # the forgotten flow's is no orphan
    assert any("more than 0 s after its flow was judged" in text
               for text in tally["findings"]["RUN_UNCLAIMED"]["examples"])
