"""The signed certificate (certificate.json, conformance/certificate.py): issued on a real run's report folder,
verified with the operator's key given or looked up in a registry; any edited byte of the certificate or of a
digested report file, a missing file, another key: each fails and is named. The schema, the badge and the page."""
from __future__ import annotations

import html
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import orjson
import pytest
import yaml

from conformance import certificate
from conformance.cli import main
from conformance.keys import new_key_file
from conformance.network.registry import Registry, Subscriber
from conformance.errors import ConfigError
from conformance.signing import KeyPair, sign_detached, signature_valid
from tests._live import SHIPPED, closed_port_url, serve

Capture = pytest.CaptureFixture[str]
OPERATOR, KEY_ID = "operator.example", "op-key-1"
QUICK = ["--callback-timeout", "1.5"]
SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, KeyPair]:
    path = tmp_path_factory.mktemp("operator") / "operator.key"
    return path, new_key_file(path, OPERATOR, KEY_ID)


def certified_run(folder: Path, key_file: Path, *argv: str) -> int:
    return main(["run", *argv, "--report-dir", str(folder), "--certificate-key", str(key_file),
                 "--subscriber-id", OPERATOR, "--key-id", KEY_ID, *QUICK])


@pytest.fixture(scope="module")
def passed(tmp_path_factory: pytest.TempPathFactory, operator: tuple[Path, KeyPair]) -> Path:
    """A real run against the reference network, two scenarios, certified: its report folder."""
    folder = tmp_path_factory.mktemp("passed")
    assert certified_run(folder, operator[0], str(SHIPPED / "unknown-order.yaml"),
                         str(SHIPPED / "status-after-cancel.yaml")) == 0
    return folder


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory, operator: tuple[Path, KeyPair]) -> Path:
    """A real run against a BPP that breaks the Layer-2 fulfillment states, certified."""
    folder = tmp_path_factory.mktemp("failed")
    assert certified_run(folder, operator[0], str(SHIPPED / "manual-optin.yaml"),
                         "--fault", "sf-grid-loadflex=enum-out-of-range") == 1
    return folder


@pytest.fixture
def copy(passed: Path, tmp_path: Path) -> Path:
    """The passing run's folder, to edit."""
    return Path(shutil.copytree(passed, tmp_path / "reports"))


def check(folder: Path, key: KeyPair) -> certificate.Verification:
    return certificate.verify(folder / certificate.NAME, key=lambda document: key.public_key)


def document(folder: Path) -> dict[str, Any]:
    return json.loads((folder / certificate.NAME).read_text())


# ---- issuing -----------------------------------------------------------------------------------------------------

def test_a_certified_run_verifies_with_the_operators_key(passed: Path, operator: tuple[Path, KeyPair],
                                                         capsys: Capture) -> None:
    code, out, err = cli(capsys, "verify-certificate", str(passed / "certificate.json"),
                         "--public-key", operator[1].public_key)
    assert code == 0, out
    assert out.startswith("VALID certificate: PASS for ") and f"by {OPERATOR}" in out
    files = len(document(passed)["files"])
    assert f"{files} report file(s) unchanged" in out
    # the key as a file holding it, from another folder (the report folder defaults to the certificate's)
    public = passed.parent / "operator.pub"
    public.write_text(f"# the operator's public key\n{operator[1].public_key}\n")
    code, out, _ = cli(capsys, "verify-certificate", str(passed / "certificate.json"), "--public-key", str(public),
                       "--json")
    assert code == 0 and json.loads(out)["valid"] is True and json.loads(out)["verdict"] == "pass"


def test_the_certificate_states_the_run_and_digests_every_report_file(passed: Path,
                                                                      operator: tuple[Path, KeyPair]) -> None:
    cert = document(passed)
    assert certificate.schema_problems(cert) == []
    summary = json.loads((passed / "summary.json").read_text())
    assert cert["participant"] == {"subscriber_id": None, "role": "bpp", "target": None, "domain": "flexibility",
                                   "use_case": "demand-flexibility"}  # two reference BPPs answered: none is named
    assert cert["issuer"] == {"subscriber_id": OPERATOR, "key_id": KEY_ID, "public_key": operator[1].public_key}
    assert (cert["verdict"], cert["run"]["run_id"], cert["run"]["exit_code"]) == ("pass", summary["run_id"], 0)
    assert [(r["id"], r["kind"], r["status"]) for r in cert["results"]] == [
        (s["id"], "scenario", s["status"]) for s in summary["scenarios"]]
    assert cert["run"]["started"] <= cert["run"]["ended"] <= cert["issued_at"]
    assert cert["harness"]["digests"] == certificate.harness_digests(None)
    on_disk = {p.relative_to(passed).as_posix() for p in passed.rglob("*") if p.is_file()}
    assert set(cert["files"]) == on_disk - {"certificate.json"}
    reports = {"summary.json", "transcript.jsonl", "junit.xml", "certificate.svg", "certificate.html"}
    assert reports <= set(cert["files"])
    assert any(name.startswith("allure-results/") for name in cert["files"])
    # the signature: Ed25519 over the BLAKE2b-512 of the canonical form (sorted keys, no whitespace)
    unsigned = {k: v for k, v in cert.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical == certificate.canonical(cert)
    assert signature_valid(certificate.signed_message(cert), cert["signature"]["value"], operator[1].public_key)
    # the file is that document indented, keys sorted
    assert (passed / "certificate.json").read_bytes() == certificate.written(cert)


def test_a_failing_run_is_certified_as_failing_with_the_rules_and_their_clauses(failed: Path,
                                                                                operator: tuple[Path, KeyPair]) -> None:
    cert = document(failed)
    assert check(failed, operator[1]).valid
    assert cert["verdict"] == "fail" and cert["run"]["exit_code"] == 1
    assert cert["verdict_reason"] == "the participant broke 2 rule(s)"
    rules = {r["rule_id"]: r for r in cert["failed_rules"]}
    assert set(rules) == {"L2_FULFILLMENT_STATE", "ORD_NOT_CANCELLED"}
    assert rules["L2_FULFILLMENT_STATE"]["scenarios"] == ["manual-optin"] and rules["L2_FULFILLMENT_STATE"]["clause"]
    assert cert["results"][0]["rules"] == ["L2_FULFILLMENT_STATE", "ORD_NOT_CANCELLED"]
    page = (failed / "certificate.html").read_text()
    assert "FAIL" in page and html.escape(rules["ORD_NOT_CANCELLED"]["clause"]) in page


def test_a_run_given_a_key_file_it_cannot_use_stops_before_anything_is_sent(tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!\n")
    code, _, err = cli(capsys, "run", str(SHIPPED / "unknown-order.yaml"), "--report-dir", str(tmp_path / "r"),
                       "--certificate-key", str(bad), "--target", closed_port_url())
    assert code == 2 and f"--certificate-key {bad}: the private key is not base64" in err
    assert not (tmp_path / "r" / "summary.json").exists()


def test_issuing_needs_a_run_report_folder(tmp_path: Path, operator: tuple[Path, KeyPair]) -> None:
    with pytest.raises(ConfigError, match="no summary.json"):
        certificate.issue(tmp_path, participant=participant(), key=operator[1])


# ---- edits -------------------------------------------------------------------------------------------------------

def test_flipping_any_byte_of_the_certificate_fails_and_names_it(copy: Path, operator: tuple[Path, KeyPair],
                                                                  tmp_path: Path, capsys: Capture) -> None:
    path = copy / "certificate.json"
    original = path.read_bytes()
    for position in range(len(original)):
        for bit in (0x01, 0x20):  # 0x20 also turns e into E, and hex digits' case
            flipped = bytearray(original)
            flipped[position] ^= bit
            found = certificate.verify_bytes(bytes(flipped), name=str(path), report_dir=copy,
                                             key=lambda document: operator[1].public_key)
            assert found.problems and found.problems[0].startswith(f"{path}: the certificate itself was changed"), \
                (position, bit, chr(original[position]), found.problems)
    # and on disk, through the command
    for position in (0, len(original) // 3, len(original) - 2):
        flipped = bytearray(original)
        flipped[position] ^= 0x01
        path.write_bytes(flipped)
        code, out, _ = cli(capsys, "verify-certificate", str(path), "--public-key", operator[1].public_key)
        assert code == 1 and out.startswith(f"INVALID {path}: the certificate itself was changed")
    path.write_bytes(original)
    assert check(copy, operator[1]).valid


def test_flipping_a_byte_of_any_digested_file_fails_and_names_the_file(copy: Path, operator: tuple[Path, KeyPair],
                                                                       capsys: Capture) -> None:
    names = list(document(copy)["files"])
    for name in names:
        path = copy / name
        original = path.read_bytes()
        for position in {0, len(original) // 2, len(original) - 1}:
            flipped = bytearray(original)
            flipped[position] ^= 0x80
            path.write_bytes(flipped)
            assert check(copy, operator[1]).problems == [
                f"{name}: the report file was changed (its digest is not the certificate's)"]
        path.write_bytes(original)
    with (copy / "transcript.jsonl").open("ab") as transcript:
        transcript.write(b"\n")
    code, out, _ = cli(capsys, "verify-certificate", str(copy / "certificate.json"),
                       "--public-key", operator[1].public_key)
    changed = "transcript.jsonl: the report file was changed (its digest is not the certificate's)"
    assert code == 1 and out == f"INVALID {changed}\n"
    code, out, err = cli(capsys, "verify-certificate", str(copy / "certificate.json"),
                         "--public-key", operator[1].public_key, "--json")
    printed = json.loads(out)
    assert code == 1 and (printed["valid"], printed["problems"], printed["verdict"]) == (False, [changed], "pass")
    assert f"INVALID {changed}" in err


def test_a_missing_file_is_named_and_an_added_one_noted(copy: Path, operator: tuple[Path, KeyPair],
                                                        capsys: Capture) -> None:
    (copy / "junit.xml").unlink()
    (copy / "allure-report").mkdir()
    (copy / "allure-report" / "index.html").write_text("rendered later")
    code, out, err = cli(capsys, "verify-certificate", str(copy / "certificate.json"),
                         "--public-key", operator[1].public_key)
    assert code == 1
    assert out == f"INVALID junit.xml: a digested report file is missing from {copy}\n"
    assert "allure-report/index.html" in err and "not covered by the certificate" in err


def test_the_report_folder_can_be_elsewhere(copy: Path, passed: Path, operator: tuple[Path, KeyPair],
                                            capsys: Capture, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(copy / "certificate.json", alone)
    code, _, _ = cli(capsys, "verify-certificate", str(alone / "certificate.json"),
                     "--public-key", operator[1].public_key, "--report-dir", str(passed))
    assert code == 0
    code, out, _ = cli(capsys, "verify-certificate", str(alone / "certificate.json"),
                       "--public-key", operator[1].public_key)
    assert code == 1 and "summary.json: a digested report file is missing" in out


def test_another_key_fails_and_says_who_signed(passed: Path, capsys: Capture) -> None:
    stranger = KeyPair.generate("stranger.example", "k")
    code, out, _ = cli(capsys, "verify-certificate", str(passed / "certificate.json"),
                       "--public-key", stranger.public_key)
    assert code == 1
    assert f"signed by the key it names ({OPERATOR}|{KEY_ID}" in out and stranger.public_key in out


def test_a_certificate_re_signed_by_someone_else_fails_with_the_operators_key(copy: Path,
                                                                              operator: tuple[Path, KeyPair]) -> None:
    forger = KeyPair.generate(OPERATOR, KEY_ID)
    cert = document(copy)
    cert["verdict"] = "pass"
    cert["issuer"]["public_key"] = forger.public_key
    cert["signature"]["value"] = sign_detached(certificate.signed_message(cert), forger)
    (copy / "certificate.json").write_bytes(certificate.written(cert))
    assert certificate.verify(copy / "certificate.json", key=lambda d: forger.public_key).valid
    [problem] = check(copy, operator[1]).problems
    assert "or issued by someone else" in problem


def test_a_reformatted_certificate_is_named(copy: Path, operator: tuple[Path, KeyPair]) -> None:
    cert = document(copy)
    (copy / "certificate.json").write_text(json.dumps(cert, indent=4))
    [problem] = check(copy, operator[1]).problems
    assert "its content is as signed, but its bytes are not as they were written" in problem


# ---- the registry ------------------------------------------------------------------------------------------------

@pytest.fixture
def registry(operator: tuple[Path, KeyPair]) -> Iterator[str]:
    """The reference registry, holding the operator's key, served on loopback."""
    entry = Subscriber.for_key(operator[1], url="https://operator.example/beckn", type="BAP", domain="flexibility")
    with serve(Registry([entry]).app()) as url:
        yield url


@pytest.mark.parametrize("kind", ["beckn", "dedi"])
def test_the_operators_key_is_looked_up_in_the_registry(passed: Path, registry: str, kind: str,
                                                        capsys: Capture) -> None:
    code, out, _ = cli(capsys, "verify-certificate", str(passed / "certificate.json"), "--registry", registry,
                       "--subscriber-id", OPERATOR, "--registry-type", kind)
    assert code == 0 and out.startswith("VALID")
    code, out, _ = cli(capsys, "verify-certificate", str(passed / "certificate.json"), "--registry", registry,
                       "--subscriber-id", OPERATOR, "--key-id", KEY_ID, "--registry-type", kind)
    assert code == 0


def test_a_key_the_registry_does_not_hold_or_a_registry_down_is_a_setup_error(passed: Path, registry: str,
                                                                              capsys: Capture) -> None:
    cert = str(passed / "certificate.json")
    code, _, err = cli(capsys, "verify-certificate", cert, "--registry", registry, "--subscriber-id", "nobody.example")
    assert code == 4 and "has no key 'op-key-1' for 'nobody.example'" in err
    code, _, err = cli(capsys, "verify-certificate", cert, "--registry", closed_port_url(), "--subscriber-id", OPERATOR)
    assert code == 4 and "cannot ask the registry" in err


def test_the_registry_holding_another_key_for_the_operator_fails(passed: Path, capsys: Capture) -> None:
    rotated = KeyPair.generate(OPERATOR, KEY_ID)
    entry = Subscriber.for_key(rotated, url="https://operator.example/beckn", type="BAP", domain="flexibility")
    with serve(Registry([entry]).app()) as url:
        code, out, _ = cli(capsys, "verify-certificate", str(passed / "certificate.json"), "--registry", url,
                           "--subscriber-id", OPERATOR)
    assert code == 1 and "not by the operator's key given" in out


def test_a_damaged_certificate_is_refused_without_asking_the_registry(copy: Path, capsys: Capture) -> None:
    (copy / "certificate.json").write_text("{")
    code, out, _ = cli(capsys, "verify-certificate", str(copy / "certificate.json"), "--registry", closed_port_url(),
                       "--subscriber-id", OPERATOR)
    assert code == 1 and "the certificate itself was changed: it is not JSON" in out


# ---- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (["nowhere/certificate.json", "--public-key", KeyPair.generate("a", "b").public_key], "cannot read"),
    (["{dir}", "--public-key", KeyPair.generate("a", "b").public_key], "cannot read"),
    (["{cert}", "--public-key", "not-a-key"], "not a base64 Ed25519 public key"),
    (["{cert}", "--public-key", "AAAA"], "not a base64 Ed25519 public key"),
    (["{cert}", "--registry", "http://127.0.0.1:9"], "--registry needs --subscriber-id"),
    (["{cert}", "--registry", "ftp://x", "--subscriber-id", "x"], "not an http(s) URL"),
    (["{cert}", "--public-key", KeyPair.generate("a", "b").public_key, "--key-id", "k"], "are for --registry"),
    (["{cert}", "--public-key", KeyPair.generate("a", "b").public_key, "--report-dir", "nowhere"], "no such folder"),
])
def test_bad_input_is_one_line_and_exit_2(passed: Path, argv: list[str], says: str, capsys: Capture) -> None:
    argv = [a.replace("{cert}", str(passed / "certificate.json")).replace("{dir}", str(passed)) for a in argv]
    code, out, err = cli(capsys, "verify-certificate", *argv)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1


def test_a_key_is_required(passed: Path, capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["verify-certificate", str(passed / "certificate.json")])
    assert exit.value.code == 2


# ---- the schema --------------------------------------------------------------------------------------------------

def schema() -> dict[str, Any]:
    return yaml.safe_load((Path(certificate.__file__).parent / "schemas" / "certificate.schema.yaml").read_text())


def test_the_schema_is_a_json_schema_that_describes_every_field() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())

    def walk(node: Any, at: str) -> Iterator[str]:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    yield f"{at}/{name}"
            for key, sub in node.items():
                yield from walk(sub, f"{at}/{key}")
        elif isinstance(node, list):
            for n, sub in enumerate(node):
                yield from walk(sub, f"{at}/{n}")

    assert list(walk(schema(), "")) == []


def test_an_edit_that_breaks_the_schema_is_refused_even_when_re_signed(copy: Path,
                                                                       operator: tuple[Path, KeyPair]) -> None:
    cert = document(copy)
    cert["verdict"] = "passed with distinction"
    cert["signature"]["value"] = sign_detached(certificate.signed_message(cert), operator[1])
    (copy / "certificate.json").write_bytes(certificate.written(cert))
    [problem] = check(copy, operator[1]).problems
    assert "breaks the certificate schema: /verdict:" in problem
    for path in ("files", "signature"):
        broken = {k: v for k, v in document(copy).items() if k != path}
        assert any(path in p for p in certificate.schema_problems(broken))
    assert certificate.schema_problems({**cert, "files": {"../outside": cert["files"]["summary.json"]}})
    assert certificate.schema_problems({**cert, "files": {"/etc/passwd": cert["files"]["summary.json"]}})


# ---- coverage, the badge and the page ----------------------------------------------------------------------------

SUMMARY = {
    "run_id": "20261129-120000-abcd", "started": 1795996800.0, "duration_s": 12.5, "exit_code": 0,
    "interrupted": False, "setup_errors": [], "settings": {"role": "bap", "fail_on": "error"},
    "scenarios": [
        {"id": "manual-optin", "name": "Manual opt-in", "file": "/x/manual-optin.yaml", "status": "passed",
         "skip_reason": None, "setup_error": None, "error": None, "errors": 0},
        {"id": "gateway-search", "name": "Gateway <search>", "file": "/x/gateway-search.yaml", "status": "skipped",
         "skip_reason": "it needs a gateway", "setup_error": None, "error": None, "errors": 0},
        {"id": "signature-expired", "name": "an expired signature is refused", "file": "probes/signature-expired.probe",
         "status": "passed", "skip_reason": None, "setup_error": None, "error": None, "errors": 0}],
    "findings": [],
}
COVERAGE = {
    "use_case": "demand-flexibility", "role": "bap", "domain": "flexibility",
    "actions": [{"action": "search", "requests": 3, "callbacks": 5, "exercised": True},
                {"action": "update", "requests": 0, "callbacks": 0, "exercised": False}],
    "rules": {"evaluated": ["CTX_ACTION_PATH_MISMATCH"], "never": [{"rule": "L2_UPDATE_TARGET",
                                                                   "why": "no message of that action"}]},
    "probes": [{"name": "signature-expired", "status": "passed"}],
    "required": {"scenarios": ["manual-optin"], "probes": ["signature-expired"], "actions": ["search", "update"]},
    "missing": [{"kind": "action", "name": "update", "why": "no <scenario> sends it"}],
    "complete": False,
}


def participant(**changes: Any) -> certificate.Participant:
    fields = {"subscriber_id": "bpp.example", "role": "bpp", "target": "https://bpp.example/beckn",
              "domain": "flexibility", "use_case": "demand-flexibility", **changes}
    return certificate.Participant(**fields)


def issued(folder: Path, key: KeyPair, coverage: Any = None, **changes: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_bytes(orjson.dumps(SUMMARY))
    if coverage is not None:
        (folder / "coverage.json").write_bytes(orjson.dumps(coverage))
    certificate.issue(folder, participant=participant(**changes), key=key)
    return document(folder)


def test_coverage_is_embedded_as_given_and_missing_coverage_fails(tmp_path: Path,
                                                                  operator: tuple[Path, KeyPair]) -> None:
    cert = issued(tmp_path / "missing", operator[1], COVERAGE)
    assert cert["coverage"] == COVERAGE and cert["verdict"] == "fail"
    assert cert["verdict_reason"] == "required coverage is missing (action update)"
    assert [r["kind"] for r in cert["results"]] == ["scenario", "scenario", "probe"]
    assert cert["results"][1]["reason"] == "it needs a gateway"
    assert check(tmp_path / "missing", operator[1]).valid
    cert = issued(tmp_path / "complete", operator[1], {**COVERAGE, "missing": [], "complete": True})
    assert cert["verdict"] == "pass" and "coverage is complete" in cert["verdict_reason"]
    cert = issued(tmp_path / "none", operator[1])
    assert cert["coverage"] is None and cert["verdict"] == "pass" and "no coverage stated" in cert["verdict_reason"]


def test_coverage_without_its_verdict_is_a_harness_error_not_a_certificate(tmp_path: Path,
                                                                           operator: tuple[Path, KeyPair]) -> None:
    with pytest.raises(AssertionError, match="/coverage"):
        issued(tmp_path, operator[1], {k: v for k, v in COVERAGE.items() if k != "complete"})
    assert not (tmp_path / "certificate.json").exists()


@pytest.mark.parametrize("exit_code, verdict", [(0, "pass"), (1, "fail"), (2, "no verdict"), (4, "no verdict"),
                                                (130, "no verdict")])
def test_the_verdict_follows_the_runs_exit_code(tmp_path: Path, operator: tuple[Path, KeyPair], exit_code: int,
                                                verdict: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUMMARY, "exit_code", exit_code)
    cert = issued(tmp_path, operator[1])
    assert cert["verdict"] == verdict
    badge = ET.parse(tmp_path / "certificate.svg").getroot()
    assert badge.findtext(f"{SVG}title", "").startswith(f"DEG conformance: {verdict.upper()} · ")


def test_the_badge_says_verdict_use_case_role_and_date(tmp_path: Path, operator: tuple[Path, KeyPair]) -> None:
    cert = issued(tmp_path, operator[1], COVERAGE, use_case="a<b>&c")
    svg = ET.parse(tmp_path / "certificate.svg").getroot()
    assert svg.tag == f"{SVG}svg"
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["DEG conformance", f"FAIL · a<b>&c · BPP · {cert['issued_at'][:10]}"]
    assert [r.get("fill") for r in svg.iter(f"{SVG}rect")][1] == "#c62828"
    assert int(svg.get("width", "0")) > 6 * len(texts[1])
    assert not list(svg.iter(f"{SVG}script")) and "http" not in "".join(
        v for e in svg.iter() for k, v in e.attrib.items() if k != "xmlns")


def test_the_page_shows_verdict_coverage_and_failing_rules_escaped(failed: Path, tmp_path: Path,
                                                                   operator: tuple[Path, KeyPair]) -> None:
    hostile = "<script>alert(1)</script>"
    issued(tmp_path, operator[1], COVERAGE, subscriber_id=hostile, target='https://x/"><img src=x>')
    root = ET.parse(tmp_path / "certificate.html").getroot()  # well-formed: every element closed, every text escaped
    assert not list(root.iter(f"{XHTML}script")) and not list(root.iter(f"{XHTML}img"))
    text = "".join(root.itertext())
    assert hostile in text and "Required coverage: MISSING" in text
    cells = [["".join(c.itertext()) for c in row] for row in root.iter(f"{XHTML}tr")]
    assert ["update", "0", "0", "no"] in cells and ["action", "update", "no <scenario> sends it"] in cells
    assert ["L2_UPDATE_TARGET", "no message of that action"] in cells
    assert ["gateway-search", "scenario", "skipped", "it needs a gateway", ""] in cells
    assert not [e for e in root.iter() if e.get("href") or e.get("src")]  # calls nobody when opened
    # a real failing run: the rules it broke, with their clauses
    page = ET.parse(failed / "certificate.html").getroot()
    cert = document(failed)
    rows = [["".join(c.itertext()) for c in row] for row in page.iter(f"{XHTML}tr")]
    for rule in cert["failed_rules"]:
        assert [rule["rule_id"], "error", rule["title"], rule["clause"], str(rule["findings"]), "manual-optin"] in rows
    assert "No coverage stated" in "".join(page.itertext())


def test_the_participant_of_a_run_is_the_one_sender_its_transcript_shows(tmp_path: Path) -> None:
    def transcript(*records: dict[str, Any]) -> Path:
        (tmp_path / "transcript.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        return tmp_path

    def of(role: str) -> str | None:
        return certificate.participant_of(tmp_path, role=role, target=None, use_case="u", domain="d").subscriber_id

    callback = {"direction": "in", "body": {"context": {"bap_id": "harness", "bpp_id": "bpp.example"}}}
    request = {"direction": "out", "body": {"context": {"bap_id": "harness", "bpp_id": "other.example"}}}
    transcript(callback, request, callback)
    assert (of("bpp"), of("bap")) == ("bpp.example", "harness")
    transcript(callback, {"direction": "in", "body": {"context": {"bpp_id": "second.example"}}})
    assert of("bpp") is None  # several BPPs answered (a gateway's): none is named
    (tmp_path / "transcript.jsonl").unlink()
    assert of("bpp") is None


def test_a_certificate_key_other_than_the_runs_key_is_noted(tmp_path: Path, operator: tuple[Path, KeyPair],
                                                            capsys: Capture) -> None:
    harness = tmp_path / "harness.key"
    new_key_file(harness, OPERATOR, KEY_ID)
    code, _, err = cli(capsys, "run", str(SHIPPED / "unknown-order.yaml"), "--report-dir", str(tmp_path / "r"),
                       "--certificate-key", str(operator[0]), "--key-file", str(harness), "--subscriber-id", OPERATOR,
                       "--key-id", KEY_ID, "--target", closed_port_url(), "--ack-timeout", "0.5")
    assert code == 3 and "note: --certificate-key holds another key than --key-file" in err
    assert certificate.verify(tmp_path / "r" / "certificate.json", key=lambda d: operator[1].public_key).valid
    assert document(tmp_path / "r")["verdict"] == "no verdict"


def test_a_probe_run_is_certified_with_each_probe_verdict(tmp_path: Path, operator: tuple[Path, KeyPair],
                                                          capsys: Capture) -> None:
    code, _, err = cli(capsys, "probe", "-n", "8", "--callback-timeout", "0.5", "--report-dir", str(tmp_path),
                       "--certificate-key", str(operator[0]), "--subscriber-id", OPERATOR, "--key-id", KEY_ID)
    assert code == 0 and f"certificate: {tmp_path / 'certificate.json'}" in err
    cert = document(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(r["id"], r["kind"], r["status"]) for r in cert["results"]] == [
        (s["id"], "probe", s["status"]) for s in summary["scenarios"]]
    probed = {json.loads(line)["body"]["context"].get("bpp_id") for line in (tmp_path / "transcript.jsonl").open()
              if json.loads(line)["direction"] == "in"}
    assert len(probed) == 1 and cert["participant"]["subscriber_id"] in probed  # the one BPP the probes went to
    assert check(tmp_path, operator[1]).valid


def test_the_key_can_come_from_the_environment_as_every_live_setting(tmp_path: Path, operator: tuple[Path, KeyPair],
                                                                     capsys: Capture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEG_CONFORMANCE_CERTIFICATE_KEY", str(operator[0]))
    code, _, err = cli(capsys, "run", str(SHIPPED / "unknown-order.yaml"), "--report-dir", str(tmp_path),
                       "--subscriber-id", OPERATOR, "--key-id", KEY_ID, "--target", closed_port_url(),
                       "--ack-timeout", "0.5")
    assert code == 3 and "certificate: " in err
    assert check(tmp_path, operator[1]).valid


def test_the_issuer_is_the_owner_the_operators_key_file_names(tmp_path: Path, operator: tuple[Path, KeyPair],
                                                              capsys: Capture) -> None:
    """The operator is not the harness: a key file made by `keys new` names whose key it is, and that is who signs,
    whatever identity the run uses on the network; a bare key (no such line) signs as the run's identity."""
    run = [str(SHIPPED / "unknown-order.yaml"), "--target", closed_port_url(), "--ack-timeout", "0.5"]
    code, _, _ = cli(capsys, "run", *run, "--report-dir", str(tmp_path / "named"), "--certificate-key",
                     str(operator[0]))
    assert code == 3
    assert document(tmp_path / "named")["issuer"]["subscriber_id"] == OPERATOR
    assert document(tmp_path / "named")["issuer"]["key_id"] == KEY_ID
    bare = tmp_path / "bare.key"
    bare.write_text(operator[1].private_key + "\n")
    code, _, _ = cli(capsys, "run", *run, "--report-dir", str(tmp_path / "bare"), "--certificate-key", str(bare),
                     "--subscriber-id", "harness.example", "--key-id", "h1")
    assert code == 3
    assert (document(tmp_path / "bare")["issuer"]["subscriber_id"], document(tmp_path / "bare")["issuer"]["key_id"]) \
        == ("harness.example", "h1")
