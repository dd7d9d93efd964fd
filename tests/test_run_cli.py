"""`deg-conformance run`: exit codes (0 passed, 1 conformance failures, 2 bad usage or scenario, 3 target
unreachable), reports on disk, bounded waits, and never a traceback."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cli import main
from tests._live import ONE_SEARCH, ROOT, SHIPPED, TinyBPP, closed_port_url, serve, write

Capture = pytest.CaptureFixture[str]
QUICK = ["--callback-timeout", "0.3", "--ack-timeout", "0.5"]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- against the reference network -----------------------------------------------------------------------

def test_the_shipped_suite_passes(capsys: Capture, tmp_path: Path) -> None:
    code, out, err = run(capsys, "-n", "5", "--callback-timeout", "1.5", "--report-dir", str(tmp_path))
    assert code == 0, out
    assert out.count("PASS   ") == 5 and "5 passed, 0 failed, 0 broken, 0 skipped of 5 in" in out
    assert "5 scenario(s) against the reference network" in err and f"reports in {tmp_path}/" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["passed"], summary["failed"], summary["exit_code"], summary["findings"]) == (5, 0, 0, [])
    assert summary["settings"]["reference_network"] is True and summary["settings"]["concurrency"] == 5


def test_a_fault_fails_the_right_scenario_and_every_report_says_so(capsys: Capture, tmp_path: Path) -> None:
    failing, passing = SHIPPED / "manual-optin.yaml", SHIPPED / "automated-control.yaml"
    code, out, err = run(capsys, str(failing), str(passing), "--fault", "sf-grid-loadflex=enum-out-of-range",
                         "-n", "2", "--callback-timeout", "1.5", "--report-dir", str(tmp_path), "--json")
    assert code == 1
    printed = json.loads(out)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert printed["findings"] == summary["findings"]
    assert (summary["scenarios_total"], summary["passed"], summary["failed"], summary["exit_code"]) == (2, 1, 1, 1)
    assert "manual-optin                       3/6 confirm  ACK" in err

    manual = next(s for s in summary["scenarios"] if s["id"] == "manual-optin")
    confirm = manual["steps"][2]
    l2 = [f for f in summary["findings"] if f["rule_id"] == "L2_FULFILLMENT_STATE"]
    assert l2[0] | {"expected": None, "title": None, "clause": None, "must": None} == {
        "rule_id": "L2_FULFILLMENT_STATE", "severity": "error", "scenario": "manual-optin",
        "scenario_name": "Manual opt-in to a demand-flexibility program", "step": 3, "step_name": "confirm enrolment",
        "action": "on_confirm", "transaction_id": manual["transaction_id"], "message_id": confirm["message_id"],
        "source": "scenarios/demand-flexibility/manual-optin.yaml", "index": 18,
        "path": "$.message.order.fulfillments[0].state.descriptor.code",
        "expected": None, "found": "SMS", "title": None, "clause": None, "must": None, "waiver": None}
    for f in summary["findings"]:
        assert f["scenario"] == "manual-optin"
        assert {"rule_id", "severity", "scenario", "step", "action", "transaction_id", "message_id", "path",
                "expected", "found"} <= set(f)
    # the cancelled order shows a state outside the taxonomy, so it shows no cancelled state either
    assert {(f["rule_id"], f["action"]) for f in summary["findings"]} == {
        ("L2_FULFILLMENT_STATE", "on_confirm"), ("L2_FULFILLMENT_STATE", "on_status"),
        ("L2_FULFILLMENT_STATE", "on_cancel"), ("ORD_NOT_CANCELLED", "on_cancel")}

    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"manual-optin", "automated-control"}
    failure = cases["manual-optin"].find("failure")
    assert failure is not None and "L2_FULFILLMENT_STATE" in (failure.get("message") or "")
    assert "$.message.order.fulfillments[0].state.descriptor.code must" in (failure.text or "")
    assert cases["automated-control"].find("failure") is None

    allure = tmp_path / "allure-results"
    results = {r["name"]: r for r in (json.loads(p.read_text()) for p in allure.glob("*-result.json"))}
    assert len(results) == 2
    bad = results["Manual opt-in to a demand-flexibility program"]
    assert bad["status"] == "failed" and {"name": "rule", "value": "L2_FULFILLMENT_STATE"} in bad["labels"]
    assert [s["status"] for s in bad["steps"]] == ["passed", "passed", "failed", "failed", "passed", "failed"]
    confirm_step = bad["steps"][2]
    assert confirm_step["name"] == "3. confirm: confirm enrolment"
    names = [a["name"] for a in confirm_step["attachments"]]
    assert names == ["request: confirm", "request: synchronous response", "received: on_confirm #1", "findings"]
    for a in confirm_step["attachments"]:
        assert (allure / a["source"]).is_file()
    callback = json.loads((allure / confirm_step["attachments"][2]["source"]).read_text())
    assert callback["message_id"] == confirm["message_id"]
    assert callback["body"]["message"]["order"]["fulfillments"][0]["state"]["descriptor"]["code"] == "SMS"
    assert results["Automated device control by an aggregator"]["status"] == "passed"


def test_text_output_reads_as_findings(capsys: Capture, tmp_path: Path) -> None:
    code, out, _ = run(capsys, str(SHIPPED / "status-after-cancel.yaml"), "--fault",
                       "flexigrid-aggregator=enum-out-of-range", "--fault", "sf-grid-loadflex=enum-out-of-range",
                       "--callback-timeout", "1", "--report-dir", str(tmp_path))
    assert code == 1
    assert out.startswith("FAIL   status-after-cancel  (Status after cancellation shows the order cancelled; "
                          "transaction ")
    assert "ERROR   L2_FULFILLMENT_STATE  scenarios/demand-flexibility/status-after-cancel.yaml:14  on_confirm" in out
    assert "  $.message.order.fulfillments[0].state.descriptor.code must be APPLICATION_SUBMITTED," in out
    assert "  found:    'SMS'" in out and "  clause:   DEG demand flexibility guide v1.0" in out
    assert "ERROR   ORD_STATUS_AFTER_CANCEL  scenarios/demand-flexibility/status-after-cancel.yaml:18  on_status" in out
    assert out.rstrip().endswith("(exit code 1)") and "0 passed, 1 failed, 0 broken, 0 skipped of 1 in" in out


def test_a_scenario_the_target_cannot_serve_is_skipped_with_its_reason(capsys: Capture, tmp_path: Path) -> None:
    """One BPP, no gateway, no automated program: the gateway and automated scenarios do not apply to it."""
    code, out, err = run(capsys, str(SHIPPED), "--fault", "flexigrid-aggregator=nack-everything",
                         "--callback-timeout", "1", "-n", "5", "--report-dir", str(tmp_path))
    assert code == 0, out
    assert "SKIP   automated-control" in out
    assert "skipped: the target publishes no offer where $.categories[*].descriptor.code contains 'AUTO_FLEX'" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["passed"], summary["skipped"], summary["exit_code"]) == (4, 1, 0)
    skipped = next(s for s in summary["scenarios"] if s["status"] == "skipped")
    assert skipped["skip_reason"].startswith("the target publishes no offer where")
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().findall("testcase")}
    assert cases["automated-control"].find("skipped") is not None
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure-results").glob("*-result.json")]
    assert [r["statusDetails"]["message"][:9] for r in results if r["status"] == "skipped"] == ["skipped: "]


# --- hand-made targets: exit codes, bounded waits --------------------------------------------------------

def test_unreachable_target_exits_3(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    started = time.monotonic()
    code, out, _ = run(capsys, str(s), "--target", closed_port_url(), *QUICK, "--report-dir", str(tmp_path / "r"))
    assert code == 3 and "RUN_UNREACHABLE" in out and "unreachable: ConnectError" in out
    assert time.monotonic() - started < 5
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["exit_code"] == 3


def test_non_json_target_exits_1(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    with serve(TinyBPP(replies={"search": "text"}).app()) as url:
        code, out, err = run(capsys, str(s), "--target", url, *QUICK, "--report-dir", str(tmp_path / "r"))
    assert code == 1
    assert "RUN_OUTCOME" in out and "found:    HTTP 502, neither ACK nor NACK" in out and "SCH_ACK_RESPONSE" in out
    assert "1/1 search   HTTP 502" in err


def test_slow_target_exits_1_without_waiting_for_it(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    slow = TinyBPP(replies={"search": "slow"}, slow_for=5.0)
    with serve(slow.app()) as url:
        started = time.monotonic()
        code, out, _ = run(capsys, str(s), "--target", url, "--ack-timeout", "0.2", "--report-dir",
                           str(tmp_path / "r"))
        took = time.monotonic() - started
        slow.release.set()
    assert code == 1 and "TIM_NO_ACK" in out and "timeout: no whole reply within 0.2s" in out
    assert took < 2.5  # not the 5 s the target takes


def test_target_that_never_calls_back_exits_1_after_the_window(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    with serve(TinyBPP(replies={"search": "ack-only"}).app()) as url:
        started = time.monotonic()
        code, out, _ = run(capsys, str(s), "--target", url, *QUICK, "--report-dir", str(tmp_path / "r"))
        took = time.monotonic() - started
    assert code == 1 and "TIM_CALLBACK_MISSING" in out and "expected: on_search within 0.3 s" in out
    assert 0.3 <= took < 3


# --- bad usage and bad scenarios: exit 2, nothing sent ---------------------------------------------------

BAD_SCENARIOS = {
    "schema.yaml": ("name: bad\nsteps:\n  - send: search\n    expect: {count: 0}\n", ":4: steps/0/expect/count"),
    "yaml.yaml": ("name: bad\nsteps:\n  - name: [oops\n    send: search\n", ":4:9: not valid YAML"),
    "template.yaml": ("name: bad\nsteps:\n  - send: search\n  - send: status\n", ":4: steps/1: body "),
    "fixture.yaml": ("name: bad\nsteps:\n  - {send: search, body: nowhere.json}\n", ":3: body 'nowhere.json'"),
    "jsonpath.yaml": ("name: bad\nsteps:\n  - send: search\n    save: {x: '$.a['}\n", ":3: '$.a[' is not a JSONPath"),
    "regex.yaml": ("name: bad\nsteps:\n  - send: search\n    assert: [{path: $.a, matches: '[z-a]'}]\n",
                   ":4: matches '[z-a]' is not a regular expression"),
    "key.yaml": ("name: bad\nsteps:\n  - send: search\n    sned: init\n", ":4: steps/0: Additional properties"),
}


@pytest.mark.parametrize("name", sorted(BAD_SCENARIOS))
def test_a_bad_scenario_exits_2_before_anything_is_sent(capsys: Capture, tmp_path: Path, name: str) -> None:
    text, where = BAD_SCENARIOS[name]
    good = write(tmp_path, "a-good.yaml", ONE_SEARCH)
    bad = write(tmp_path, name, text)
    target = TinyBPP(replies={"search": "ack"})
    with serve(target.app()) as url:
        code, out, err = run(capsys, str(good), str(bad), "--target", url, *QUICK, "--report-dir",
                             str(tmp_path / "r"))
    assert code == 2
    assert err.startswith(f"deg-conformance: error: {bad}{where}"), err
    assert out == "" and target.received == []
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, message", [
    (["--target", "ftp://bpp.example"], "target 'ftp://bpp.example' is not an http(s) URL"),
    (["--gateway", "bpp.example"], "gateway 'bpp.example' is not an http(s) URL"),
    (["-n", "0"], "concurrency must be at least 1"),
    (["--ack-timeout", "-1"], "ack-timeout -1.0 is not a number of seconds above 0"),
    (["--ack-timeout", "inf"], "ack-timeout inf is not a number of seconds above 0"),
    (["--callback-timeout", "nan"], "callback-timeout nan is not a number of seconds above 0"),
    (["--listen", "nowhere"], "--listen 'nowhere': write HOST:PORT"),
    (["--listen", "127.0.0.1:99999"], "cannot listen on 127.0.0.1:99999"),
    (["--fault", "sf-grid-loadflex"], "--fault 'sf-grid-loadflex': write PARTICIPANT=FAULT"),
    (["--fault", "sf-grid-loadflex=on-fire"], "sf-grid-loadflex: unknown faults ['on-fire']"),
    (["--fault", "nobody=no-callback"], "faults for unknown participants ['nobody']"),
    (["--fault", "gateway=no-callback", "--target", "http://127.0.0.1:9"],
     "--fault applies to the reference network"),
    (["--key-file", "/nonexistent/key"], "--key-file /nonexistent/key: cannot read"),
    (["/nonexistent/scenarios"], "/nonexistent/scenarios: no such scenario file or folder"),
])
def test_bad_usage_exits_2(capsys: Capture, tmp_path: Path, argv: list[str], message: str) -> None:
    scenarios = [] if argv[0].startswith("/nonexistent/s") else [str(SHIPPED / "unknown-order.yaml")]
    code, out, err = run(capsys, *scenarios, *argv, "--report-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.startswith("deg-conformance: error: ") and message in err, err
    assert out == ""


def test_an_empty_scenario_folder_exits_2(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path), "--report-dir", str(tmp_path / "r"))
    assert code == 2 and "no scenario files (*.yaml)" in err


def test_argument_errors_exit_2(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--ack-timeout", "soon"])
    assert info.value.code == 2
    assert "invalid float value: 'soon'" in capsys.readouterr().err


def test_validate_still_works_after_a_run_in_the_same_process(capsys: Capture) -> None:
    """A regression test: the run's report modules once shadowed conformance.reporting.summary()."""
    import conformance.reporting.live  # noqa: F401 - what `run` imports

    code = main(["validate", str(ROOT / "fixtures" / "demand-flexibility" / "conformant-transaction")])
    assert code == 0 and capsys.readouterr().out.startswith("PASS: 12 messages")


def test_late_callbacks_pending_at_exit_print_no_traceback(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    started = time.monotonic()
    code, out, err = run(capsys, str(s), "--fault", "sf-grid-loadflex=late-callback", "--fault",
                         "flexigrid-aggregator=late-callback", "--callback-timeout", "0.3",
                         "--report-dir", str(tmp_path / "r"))
    assert code == 1 and "TIM_CALLBACK_MISSING" in out
    assert time.monotonic() - started < 8  # the callbacks due in 31 s are cut short, not waited for


# --- found in review: never a traceback, nothing lost --------------------------------------------------------

def test_a_target_url_httpx_cannot_parse_is_unreachable_not_a_traceback(capsys: Capture, tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", ONE_SEARCH)
    code, out, _ = run(capsys, str(s), "--target", "http://[::", *QUICK, "--report-dir", str(tmp_path / "r"))
    assert code == 3 and "unreachable: InvalidURL" in out


def test_a_key_file_that_is_not_text_is_a_usage_error(capsys: Capture, tmp_path: Path) -> None:
    key = tmp_path / "key.bin"
    key.write_bytes(b"\xff\xfe\x00binary")
    code, _, err = run(capsys, str(write(tmp_path, "s.yaml", ONE_SEARCH)), "--key-file", str(key))
    assert code == 2 and "not text" in err


def test_a_report_dir_that_cannot_be_written_stops_the_run_before_it_starts(capsys: Capture, tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    code, _, err = run(capsys, str(write(tmp_path, "s.yaml", ONE_SEARCH)), "--report-dir", str(taken))
    assert code == 2 and "cannot write reports there" in err and "run " not in err  # nothing was played


def test_a_callback_that_comes_after_its_scenario_was_judged_is_kept(capsys: Capture, tmp_path: Path) -> None:
    """The late BPP's on_search for the first scenario arrives while the second still waits: kept, and judged with
    its transaction, as `validate` judges the transcript: it came after the search's 1 s ttl."""
    quick = write(tmp_path, "a.yaml", """
        name: quick
        steps:
          - {send: search, set: {context.ttl: PT1S}, expect: {within: PT1S}}
    """)
    slow = write(tmp_path, "b.yaml", """
        name: slow
        steps:
          - {send: search, expect: {count: all, min: 1, within: PT3S}}
    """)
    code, _, _ = run(capsys, str(quick), str(slow), "--fault", "flexigrid-aggregator=late-callback",
                     "--report-dir", str(tmp_path / "r"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    first = summary["scenarios"][0]["transaction_id"]
    assert code == 1 and [m["transaction_id"] for m in summary["unexpected_messages"]] == [first]
    assert {(f["rule_id"], f["transaction_id"]) for f in summary["findings"]} == {
        ("TXN_CALLBACK_AFTER_TTL", first), ("RUN_UNCLAIMED", first)}


# --- the exit-code table (README) ----------------------------------------------------------------------------------

def test_every_exit_code_of_the_table(capsys: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0 pass, 1 non-conformance, 2 usage or scenario, 3 unreachable, 4 set-up, 5 internal error: each from a
    run that earns it, and nothing else."""
    s = str(write(tmp_path, "s.yaml", ONE_SEARCH))
    quick = [*QUICK, "--report-dir", str(tmp_path / "r")]
    assert run(capsys, str(SHIPPED / "unknown-order.yaml"), *quick)[0] == 0
    assert run(capsys, s, "--fault", "sf-grid-loadflex=no-callback", "--fault",
               "flexigrid-aggregator=no-callback", *quick)[0] == 1
    assert run(capsys, str(write(tmp_path, "bad.yaml", "name: bad\nsteps: []\n")), *quick)[0] == 2
    assert run(capsys, s, "--target", closed_port_url(), *quick)[0] == 3
    with serve(TinyBPP(replies={"search": "401"}).app()) as url:
        assert run(capsys, s, "--target", url, *quick)[0] == 4

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the harness")

    monkeypatch.setattr("conformance.runner.Harness.run", bug)
    code, out, err = run(capsys, s, *quick)
    assert code == 5 and "internal error (RuntimeError)" in err and "not a verdict on the target" in err
    last = err.splitlines()[-1]
    assert last.startswith("deg-conformance: internal error (RuntimeError)") and "Traceback" not in err
    assert last.endswith(f"the traceback is in {tmp_path / 'r' / 'harness-error.log'}")
    assert "RuntimeError: a bug in the harness" in (tmp_path / "r" / "harness-error.log").read_text()
