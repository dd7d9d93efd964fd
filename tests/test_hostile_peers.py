"""The harness against targets that are, by assumption, broken: each case ends within its bound, with no
traceback, the exit code of the README's table, and whatever the target sent in the report."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from conformance import Engine, scenario
from conformance.cli import main
from conformance.network.registry import Registry, Subscriber
from conformance.runner import Harness, RunConfig, RunResult
from conformance.runner.results import EXIT_FAILED, EXIT_INTERNAL
from conformance.signing import KeyPair
from tests._live import ONE_SEARCH, TinyBPP, Trickling, serve, write

CATALOG = {"message": {"catalog": {"descriptor": {"name": "Tiny"}, "providers": []}}}


def nested(depth: int) -> bytes:
    """JSON nested `depth` objects deep (written by hand: orjson will not write past 254 levels)."""
    return b'{"deeper":' * depth + b'"leaf"' + b"}" * depth


def play(target: str, tmp_path: Path, engine: Engine, text: str = ONE_SEARCH, **settings: Any) -> tuple[RunResult, float]:
    config = RunConfig(target=target, **{"ack_timeout": 1.0, "callback_timeout": 1.0, "settle": 0.1, **settings})
    started = time.monotonic()
    with Harness(config, engine=engine) as harness:
        result = harness.run([scenario.load(write(tmp_path, "s.yaml", text))])
    return result, time.monotonic() - started


# ---- hangs ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_reply_that_trickles_is_given_up_on_at_the_deadline(tmp_path: Path, engine: Engine, part: str) -> None:
    with Trickling(part, every=0.3) as target:
        run, took = play(target.url, tmp_path, engine)
    [s] = run.scenarios
    assert [f.rule_id for f in s.errors] == ["TIM_NO_ACK"] and run.exit_code == EXIT_FAILED
    assert "no whole reply within 1s" in str(s.errors[0].found)
    assert took < 8  # the 1 s deadline (and a busy machine), not the 20 s the trickle would take


def test_ctrl_c_reports_what_finished_and_a_second_quits_at_once(tmp_path: Path) -> None:
    """A real process and real signals: the first SIGINT ends the waits and writes the reports (exit 130); a
    second one, while the reports are not yet written, exits at once."""
    bpp = TinyBPP(replies={"search": "ack-only"})
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    command = [sys.executable, "-m", "conformance.cli", "run", str(s), str(s), "--ack-timeout", "2"]
    with serve(bpp.app()) as url:
        for presses in (1, 2):
            reports = tmp_path / f"r{presses}"
            child = subprocess.Popen([*command, "--target", url, "--report-dir", str(reports)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 15
            while len(bpp.received) < presses and time.monotonic() < deadline:  # it waits for a callback now
                time.sleep(0.05)
            started = time.monotonic()
            for _ in range(presses):
                child.send_signal(signal.SIGINT)
                time.sleep(0.05)
            out, err = child.communicate(timeout=20)
            assert child.returncode == 130 and "Traceback" not in out + err, err
            assert time.monotonic() - started < 5
            if presses == 1:
                summary = json.loads((reports / "summary.json").read_text())
                assert summary["interrupted"] is True and summary["exit_code"] == 130
                first, second = summary["scenarios"]
                assert first["error"].startswith("interrupted (Ctrl-C) during step 1")
                assert second["error"] == "not run: the run was interrupted (Ctrl-C)"
                assert "ending the steps under way" in err
            else:  # at once: from the handler if the run was still on, else as the reports are being written
                assert "quitting without reports" in err or err.rstrip().endswith("deg-conformance: interrupted")


# ---- input that would crash a harness ---------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [70, 254, 300, 5000])
def test_a_callback_nested_too_deep_is_kept_and_reported(tmp_path: Path, engine: Engine, depth: int) -> None:
    bpp = TinyBPP(replies={"search": "ack"}, bodies={
        "search": lambda context: b'{"context":' + json.dumps(context).encode() + b',"message":' + nested(depth) + b"}"})
    with serve(bpp.app()) as url:
        code = main(["run", str(write(tmp_path, "s.yaml", ONE_SEARCH)), "--target", url, "--callback-timeout", "1",
                     "--report-dir", str(tmp_path / "r")])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert code == EXIT_FAILED and summary["exit_code"] == 1
    assert {f["rule_id"] for f in summary["findings"]} >= {"SCH_TOO_DEEP"}
    assert bpp.statuses == [400]  # refused: a NACK, the message kept (as the reference network does)


def test_a_body_that_never_ends_is_recorded_as_unfinished(tmp_path: Path, engine: Engine,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    async def endless(context: dict[str, Any]) -> AsyncIterator[bytes]:
        yield b'{"context": ' + json.dumps(context).encode()
        while True:
            await asyncio.sleep(0.1)
            yield b" "

    bpp = TinyBPP(replies={"search": "ack"}, bodies={"search": endless})
    with caplog.at_level(logging.WARNING), serve(bpp.app()) as url:
        run, took = play(url, tmp_path, engine, ack_timeout=1.0)
    assert took < 5
    [s, unsolicited] = run.scenarios  # what came cannot say which transaction it was for: a stray
    [kept] = run.strays
    assert [f.rule_id for f in unsolicited.errors] == ["SCH_NOT_JSON"]
    assert kept.decode_error is not None and kept.decode_error.startswith("unfinished: the body did not end within 1 s")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("uvicorn")]


def test_every_callback_the_harness_acked_is_in_the_report(tmp_path: Path, engine: Engine) -> None:
    """Callbacks landing around the end of the run (the window, the settle, the listener closing): each one the
    harness answered 200 is in the report; one that came after it stopped listening got a 503, not an ACK."""
    text = """
        name: a short window
        steps:
          - {send: search, expect: {within: PT0.3S, reason: the callbacks are meant to come around its end}}
    """
    for delay in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        bpp = TinyBPP(replies={"search": "ack"}, callbacks={"search": CATALOG}, delay=delay)
        with serve(bpp.app()) as url:
            run, _ = play(url, tmp_path, engine, text, settle=0.1)
            time.sleep(0.3)  # let a callback sent after the run ended get its answer
        s = run.scenarios[0]  # a late one may also be judged in an entry of its own: counted once, as a stray
        kept = [c for st in s.steps for c in st.callbacks] + s.unexpected + run.strays
        assert len(kept) == bpp.statuses.count(200), (delay, bpp.statuses)
        assert set(bpp.statuses) <= {200, 503, "ConnectError"}, bpp.statuses  # after the run: 503, or nobody


def test_a_duplicate_callback_after_its_scenario_was_judged_is_judged_with_its_transaction(
        tmp_path: Path, engine: Engine) -> None:
    """A callback sent twice, the copy arriving once its scenario is over (another scenario keeps the run going):
    the copy is a duplicate however late it comes, judged against the transaction it belongs to, as `validate`
    judges the transcript."""
    bpp = TinyBPP(replies={"search": "ack", "status": "ack-only"}, callbacks={"search": CATALOG}, repeat_after=1.5)
    longer = """
        name: a longer scenario
        variables: {bpp_id: tiny.bpp.test, bpp_uri: "http://127.0.0.1:9/tiny", order_id: no-such-order}
        steps:
          - {send: status, expect: {within: PT4S, reason: keeps the run open while the copy comes}}
    """
    with serve(bpp.app()) as url:
        config = RunConfig(target=url, ack_timeout=1.0, callback_timeout=4.0, settle=0.1, concurrency=2)
        with Harness(config, engine=engine) as harness:
            run = harness.run([scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH)),
                               scenario.load(write(tmp_path, "l.yaml", longer))])
    short, _, unsolicited = run.scenarios
    assert [c.action for st in short.steps for c in st.callbacks] == ["on_search"] and short.unexpected == []
    [copy] = unsolicited.unexpected
    assert (copy.action, copy.transaction_id) == ("on_search", short.transaction_id)
    assert {(f.rule_id, f.message_id) for f in unsolicited.errors} == {("TXN_DUPLICATE_CALLBACK", copy.message_id)}
    assert "RUN_UNCLAIMED" in {f.rule_id for f in unsolicited.findings}


def test_a_gateway_signature_by_a_key_that_is_not_a_gateways_is_refused(tmp_path: Path, engine: Engine) -> None:
    """BECKN-006: X-Gateway-Authorization must verify with a key registered to a BG, not just any subscriber."""
    registry = Registry()
    harness_key, bpp_key = KeyPair.generate("harness.test", "k1"), KeyPair.generate("tiny.bpp.test", "b1")
    for key, kind in ((harness_key, "BAP"), (bpp_key, "BPP")):
        registry.subscribe(Subscriber.for_key(key, url="http://x", type=kind, domain="flexibility"))

    # a BPP's own key in the gateway's header: registered, but not to a BG
    bpp = TinyBPP(replies={"search": "ack"}, callbacks={"search": CATALOG}, key=bpp_key, gateway_key=bpp_key)
    with serve(registry.app()) as registry_url, serve(bpp.app()) as url:
        run, _ = play(url, tmp_path, engine, registry=registry_url, subscriber_id="harness.test", key_id="k1",
                      private_key=harness_key.private_key)
    [s] = run.scenarios
    [finding] = [f for f in s.errors if f.rule_id == "SIG_GATEWAY_INVALID"]
    assert "SIG_KEY_UNKNOWN" in str(finding.found) and "for a BG" in str(finding.found)
    assert bpp.statuses == [401]


# ---- a bug of the harness ---------------------------------------------------------------------------------------

def test_a_bug_while_playing_one_scenario_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.runner import bap
    real = bap.play

    def sometimes(s: scenario.Scenario, harness: Harness) -> Any:
        if s.id == "broken":
            raise RuntimeError("a bug in the harness")
        return real(s, harness)

    monkeypatch.setattr(bap, "play", sometimes)
    fine, broken = write(tmp_path, "fine.yaml", ONE_SEARCH), write(tmp_path, "broken.yaml", ONE_SEARCH)
    code = main(["run", str(fine), str(broken), "-n", "2", "--callback-timeout", "1", "--report-dir",
                 str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL and "Traceback" not in out + err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert {s["id"]: s["status"] for s in summary["scenarios"]} == {"fine": "passed", "broken": "broken"}
    assert "RuntimeError: a bug in the harness" in (tmp_path / "r" / "harness-error.log").read_text()
    assert f"the traceback is in {tmp_path / 'r' / 'harness-error.log'}" in err
    assert os.path.exists(tmp_path / "r" / "junit.xml")
