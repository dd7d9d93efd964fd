"""Running from CI: settings from a file and the environment under the flags, --junitxml, --fail-on, rule
exclusion and waivers, proxies and CA bundles."""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance.cli import main
from conformance.transport import Sender
from tests._live import SHIPPED, TinyBPP, serve, write

Capture = pytest.CaptureFixture[str]
FLOW = """
    name: enrol
    steps:
      - name: discover
        send: search
        expect: {count: all, min: 1}
        offer:
          where: [{path: "$.categories[*].descriptor.code", contains: MANUAL_FLEX}]
          save: {provider_id: $.provider.id, item_id: $.item.id, fulfillment_id: $.fulfillment.id,
                 bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}
      - {name: start enrolment, send: init}
      - {name: confirm enrolment, send: confirm}
"""
STATE = "L2_FULFILLMENT_STATE"
BROKEN = ["--fault", "sf-grid-loadflex=enum-out-of-range", "--callback-timeout", "2"]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def verdicts(report_dir: Path) -> tuple[int, dict[str, tuple[str, list[str]]]]:
    summary = json.loads((report_dir / "summary.json").read_text())
    return summary["exit_code"], {s["id"]: (s["status"], sorted({f["rule_id"] for f in summary["findings"]
                                                                 if f["scenario"] == s["id"]}))
                                  for s in summary["scenarios"]}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DEG_CONFORMANCE_* from the machine, and a working folder with no settings file of its own."""
    import os
    for name in list(os.environ):
        if name.startswith("DEG_CONFORMANCE_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# ---- settings: file, environment, flags ---------------------------------------------------------------------------

def test_a_settings_file_and_the_environment_reproduce_a_flag_driven_run(capsys: Capture, clean_env: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = [str(SHIPPED / "manual-optin.yaml"), str(SHIPPED / "automated-control.yaml")]
    code, _, _ = run(capsys, *scenarios, *BROKEN, "-n", "2", "--report-dir", str(clean_env / "flags"))
    settings = clean_env / "ci" / "deg-conformance.yaml"
    write(settings.parent, settings.name, f"""
        scenarios: {json.dumps(scenarios)}
        fault: [sf-grid-loadflex=enum-out-of-range]
        callback-timeout: 2
        concurrency: 2
    """)
    monkeypatch.setenv("DEG_CONFORMANCE_REPORT_DIR", str(clean_env / "settings"))
    again, _, _ = run(capsys, "--config", str(settings))
    assert (code, verdicts(clean_env / "flags")) == (again, verdicts(clean_env / "settings"))
    assert code == 1 and verdicts(clean_env / "flags")[1]["manual-optin"][0] == "failed"
    # The file named by the environment instead of --config, as a CI job's variables would.
    monkeypatch.setenv("DEG_CONFORMANCE_CONFIG", str(settings))
    monkeypatch.setenv("DEG_CONFORMANCE_REPORT_DIR", str(clean_env / "by-env"))
    by_env, _, _ = run(capsys)
    assert (by_env, verdicts(clean_env / "by-env")) == (code, verdicts(clean_env / "flags"))


def test_flags_win_over_the_environment_which_wins_over_the_file(capsys: Capture, clean_env: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(clean_env, "deg-conformance.yaml", "concurrency: 2\nsubscriber-id: from.file\ncallback-timeout: 1\n")
    monkeypatch.setenv("DEG_CONFORMANCE_CONCURRENCY", "3")
    s = str(SHIPPED / "unknown-order.yaml")
    for extra, concurrency in (([], 3), (["-n", "4"], 4)):
        code, _, _ = run(capsys, s, *extra, "--report-dir", str(clean_env / "r"))
        settings = json.loads((clean_env / "r" / "summary.json").read_text())["settings"]
        assert code == 0 and (settings["concurrency"], settings["subscriber_id"]) == (concurrency, "from.file")


def test_pyproject_holds_the_settings_too(capsys: Capture, clean_env: Path) -> None:
    write(clean_env, "pyproject.toml", """
        [project]
        name = "my-bpp"
        [tool.deg-conformance]
        report-dir = "reports/ci"
        callback-timeout = 1
        scenarios = ["my-scenarios/unknown-order.yaml"]
    """)
    (clean_env / "my-scenarios").mkdir()
    (clean_env / "my-scenarios" / "unknown-order.yaml").write_text((SHIPPED / "unknown-order.yaml").read_text())
    code, out, _ = run(capsys)
    assert code == 0 and "PASS   unknown-order" in out and (clean_env / "reports" / "ci" / "summary.json").is_file()


def test_one_settings_file_serves_run_probe_and_replay(capsys: Capture, clean_env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """run's scenarios (and a replay's --env) in the file or the environment do not stop the other commands."""
    write(clean_env, "deg-conformance.yaml", f"scenarios: [{SHIPPED / 'unknown-order.yaml'}]\nenv: staging.json\n"
                                             "callback-timeout: 1\nregistry-type: nonsense\n")
    monkeypatch.setenv("DEG_CONFORMANCE_PROBES", "1")
    for argv in (["probe"], ["replay", "capture.jsonl"]):
        code = main(argv)
        err = capsys.readouterr().err
        # the command got as far as its own options, which the file gets wrong on purpose
        assert code == 2 and "registry-type: 'nonsense' is not one of beckn, dedi" in err, err
    write(clean_env, "deg-conformance.yaml", "scenarioz: [x.yaml]\n")
    assert main(["replay", "capture.jsonl"]) == 2 and "unknown settings scenarioz" in capsys.readouterr().err


@pytest.mark.parametrize("file, env, says", [
    ("callbak-timeout: 1\n", {}, "unknown settings callbak_timeout"),
    ("ack-timeout: soon\n", {}, "ack-timeout: 'soon' is not a valid value"),
    ("role: gateway\n", {}, "'gateway' is not one of bap, bpp"),
    ("json: maybe\n", {}, "json: write true or false"),
    ("", {"DEG_CONFORMANCE_TARGT": "http://x"}, "unknown environment settings DEG_CONFORMANCE_TARGT"),
    ("", {"DEG_CONFORMANCE_JSON": "perhaps"}, "DEG_CONFORMANCE_JSON='perhaps': write 1 or 0"),
])
def test_bad_settings_are_usage_errors(capsys: Capture, clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                       file: str, env: dict[str, str], says: str) -> None:
    write(clean_env, "deg-conformance.yaml", file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, str(SHIPPED / "unknown-order.yaml"))
    assert code == 2 and says in err, err


# ---- what fails a run -----------------------------------------------------------------------------------------------

def test_junitxml_and_fail_on_warning(capsys: Capture, clean_env: Path) -> None:
    """A target whose only finding is a warning (an ACK slower than a second) passes, unless warnings fail."""
    s = write(clean_env, "s.yaml", "name: one search\nsteps: [{send: search}]\n")
    bpp = TinyBPP(replies={"search": "ack"}, ack_after=1.2,
                  callbacks={"search": {"message": {"catalog": {"descriptor": {"name": "Tiny"}, "providers": []}}}})
    with serve(bpp.app()) as url:
        lenient, _, _ = run(capsys, str(s), "--target", url, "--report-dir", str(clean_env / "a"),
                            "--junitxml", str(clean_env / "ci" / "junit.xml"))
        strict, out, _ = run(capsys, str(s), "--target", url, "--report-dir", str(clean_env / "b"),
                             "--fail-on", "warning")
    assert (lenient, strict) == (0, 1) and "TIM_ACK_LATENCY" in out
    suite = ET.parse(clean_env / "ci" / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    # The step the warning is on fails with its scenario, in the summary and in Allure alike.
    for folder, passed in (("a", True), ("b", False)):
        [scenario] = json.loads((clean_env / folder / "summary.json").read_text())["scenarios"]
        assert [st["passed"] for st in scenario["steps"]] == [passed]
        [result] = [json.loads(p.read_text()) for p in (clean_env / folder / "allure-results").glob("*-result.json")]
        assert [st["status"] for st in result["steps"]] == ["passed" if passed else "failed"]


@pytest.mark.parametrize("waiver, code", [
    ({"rule": STATE, "reason": "the next release fixes the state codes"}, 0),
    ({"rule": "L2_*", "reason": "Layer 2 under review", "path": "$.message.order.*"}, 0),
    ({"rule": STATE, "reason": "expired", "until": date.today() - timedelta(days=1)}, 1),
    ({"rule": STATE, "reason": "another scenario's", "scenario": "manual-optin"}, 1),
])
def test_a_waiver_keeps_the_finding_and_its_reason_but_not_the_failure(
        capsys: Capture, clean_env: Path, waiver: dict[str, Any], code: int) -> None:
    s = write(clean_env, "enrol.yaml", FLOW)
    write(clean_env, "waivers.yaml", json.dumps([{k: str(v) if isinstance(v, date) else v for k, v in waiver.items()}]))
    got, out, _ = run(capsys, str(s), *BROKEN, "--waivers", str(clean_env / "waivers.yaml"),
                      "--report-dir", str(clean_env / "r"))
    assert got == code, out
    summary = json.loads((clean_env / "r" / "summary.json").read_text())
    [finding] = [f for f in summary["findings"] if f["rule_id"] == STATE]
    if code == 0:
        assert finding["waiver"] == waiver["reason"] and f"waived:   {waiver['reason']}" in out
        assert f"WAIVED error {STATE}" in out and summary["scenarios"][0]["status"] == "passed"
    else:
        assert finding["waiver"] is None


def test_a_waiver_without_a_reason_is_refused(capsys: Capture, clean_env: Path) -> None:
    write(clean_env, "waivers.yaml", "- {rule: L2_STOP_TYPE}\n")
    code, _, err = run(capsys, str(SHIPPED / "unknown-order.yaml"), "--waivers", str(clean_env / "waivers.yaml"))
    assert code == 2 and "waiver 1 needs a rule id and a reason" in err


@pytest.mark.parametrize("extra, says", [
    ("path: 5", "waiver 1: path must be text"),
    ("scenario: [a, b]", "waiver 1: scenario must be text"),
    ("until: 2027-01-31 10:00:00", "waiver 1: until must be a date (2027-01-31), not a time"),
])
def test_a_waiver_that_could_not_be_applied_is_refused_before_the_run(capsys: Capture, clean_env: Path, extra: str,
                                                                      says: str) -> None:
    """Refused when read, in one line: applied to each finding during the run, it would have crashed it."""
    write(clean_env, "waivers.yaml", f"- {{rule: L2_STOP_TYPE, reason: under review, {extra}}}\n")
    code, _, err = run(capsys, str(SHIPPED / "unknown-order.yaml"), "--waivers", str(clean_env / "waivers.yaml"))
    assert code == 2 and says in err and "Traceback" not in err


def test_excluded_rules_are_not_reported_and_the_settings_say_so(capsys: Capture, clean_env: Path) -> None:
    s = write(clean_env, "enrol.yaml", FLOW)
    code, out, _ = run(capsys, str(s), *BROKEN, "--exclude-rules", "L2_*", "--report-dir", str(clean_env / "r"))
    summary = json.loads((clean_env / "r" / "summary.json").read_text())
    assert code == 0 and STATE not in out and summary["findings"] == []
    assert summary["settings"]["excluded_rules"] == "L2_*"


# ---- proxies and CAs --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


class OneReplyServer:
    """Answers every request with an ACK, over TLS when given a certificate, and remembers each request line."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.lines: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.context = None
        if tls is not None:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(str(tls[1]), str(tls[0]))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        body = b'{"message":{"ack":{"status":"ACK"}}}'
        try:
            conn.settimeout(5)
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:  # the whole request: closing on unread bytes would reset
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.lines.append(data.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        except (OSError, ssl.SSLError):
            conn.close()  # a client that refused the certificate, or left

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_target(certificate: tuple[Path, Path]) -> Iterator[OneReplyServer]:
    server = OneReplyServer(certificate)
    yield server
    server.close()


def test_a_private_ca_is_trusted_with_ca_bundle(tls_target: OneReplyServer, certificate: tuple[Path, Path]) -> None:
    url = f"https://127.0.0.1:{tls_target.port}/search"
    with Sender(2.0) as untrusting:
        refused = untrusting.post(url, b"{}", {})
    with Sender(2.0, certificate[1]) as trusting:
        accepted = trusting.post(url, b"{}", {})
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert accepted.ack == "ACK"


def test_the_environment_s_proxy_is_used_but_never_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, target = OneReplyServer(), OneReplyServer()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        with Sender(2.0) as sender:
            far = sender.post("http://bpp.example.invalid/search", b"{}", {})
            near = sender.post(f"http://127.0.0.1:{target.port}/search", b"{}", {})
    finally:
        proxy.close()
        target.close()
    assert far.ack == "ACK" and proxy.lines == ["POST http://bpp.example.invalid/search HTTP/1.1"]
    assert near.ack == "ACK" and target.lines == ["POST /search HTTP/1.1"]


def test_a_ca_bundle_that_is_not_one_is_a_usage_error(capsys: Capture, clean_env: Path) -> None:
    bad = write(clean_env, "ca.pem", "not a certificate")
    code, _, err = run(capsys, str(SHIPPED / "unknown-order.yaml"), "--ca-bundle", str(bad))
    assert code == 2 and "--ca-bundle" in err and "not a readable bundle" in err


def test_an_environment_ca_file_that_does_not_load_is_a_usage_error(capsys: Capture, clean_env: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SSL_CERT_FILE naming no bundle: one line naming it, before anything starts (it failed inside the listener's
    start-up, a traceback and a harness error)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(clean_env / "no-such-bundle.pem"))
    code, _, err = run(capsys, str(SHIPPED / "unknown-order.yaml"), "--target", "http://127.0.0.1:9")
    assert code == 2 and "SSL_CERT_FILE=" in err and "no-such-bundle.pem" in err and "not a readable bundle" in err
    assert len(err.strip().splitlines()) == 1
