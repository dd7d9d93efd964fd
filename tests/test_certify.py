"""deg-conformance certify: a use case's certification profile played against a target, one verdict, with coverage.

Certify passes against the reference network for every shipped use case in both roles, and fails against each fault
switch of the reference BPP and BAP with the rule that fault breaks; coverage is exact (a step taken out of a profile
takes out exactly the rules it alone exercised, and the required coverage it alone gave fails the certification).
Every certification runs through the command itself (`main`), several at once per test: as BAP all against one
reference network (each use case's BPP, and a faulty copy of a BPP per fault), as BPP each against the reference BAP.
"""
from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import jsonschema_rs
import pytest
import yaml

from conformance import coverage, profiles, scenario, usecases
from conformance.cli import main
from conformance.network import Network, NetworkConfig, NetworkProcess
from conformance.network.catalog import CATALOGS
from conformance.network.participant import BAP_ONLY, BPP_ONLY, SHARED_FAULTS
from conformance.network.registry import Subscriber
from conformance.signing import KeyPair

WINDOW = "2"
"""--callback-timeout: the reference network answers in milliseconds, and a window ends as soon as its callbacks
came; the headroom is for a machine busy with a dozen certifications at once."""
BPP_WINDOW = ("--callback-timeout", "2", "-n", "8")
"""As BPP, a longer window: the reference gateway relays each search to both of the harness's BPPs, and a copy
that comes after the window is judged as a second search with the same message_id (TXN_MESSAGE_ID_REUSED), which
a loaded machine made happen with 0.5 s. More at once, so that the probes' longer silences cost no more time."""
USE_CASES = list(usecases.shipped())
HARNESS = "certify.deg-conformance.local"
BPP_FAULTS = {  # fault of the reference BPP -> the rule certify must fail it with (the BPP certified straight)
    "wrong-callback-message-id": "TXN_CALLBACK_MESSAGE_ID",
    "wrong-callback-transaction-id": "TXN_CALLBACK_TRANSACTION_ID",
    "enum-out-of-range": "L2_FULFILLMENT_STATE",
    "no-callback": "TIM_CALLBACK_MISSING",
    # A callback after the shipped ttl (PT30S) comes after --callback-timeout too: certify waits the window, not the
    # ttl, so what it sees is the missing callback (TXN_CALLBACK_AFTER_TTL: tests/test_runner_faults.py, short ttl).
    "late-callback": "TIM_CALLBACK_MISSING",
    "duplicate-callback": "TXN_DUPLICATE_CALLBACK",
    "forget-cancellation": "ORD_STATUS_AFTER_CANCEL",
    "invent-orders": "PRB_FLOW",
    "bad-signature": "SIG_INVALID",
    "unsigned": "SIG_MISSING",
    "no-signature-check": "PRB_SIGNATURE",
    "no-validation": "PRB_CONTEXT",
    "nack-everything": "RUN_OUTCOME",
}
BAP_FAULTS = {  # fault of the reference BAP -> the rule certify --role bpp must fail it with
    "unsigned": "SIG_MISSING",
    "bad-signature": "SIG_INVALID",
    "nack-everything": "RUN_CALLBACK_NACKED",
    "fresh-transaction-id": "TXN_REQUEST_TRANSACTION_ID",
    "reused-message-id": "TXN_MESSAGE_ID_REUSED",
    "unknown-item": "ORD_ITEM_UNKNOWN",
    "wrong-order-id": "ORD_REQUEST_ORDER_ID",
    "no-signature-check": "PRB_SIGNATURE",
    "no-validation": "PRB_CONTEXT",
}
NOT_CERTIFIABLE = {  # BAP faults certify cannot catch, and why (README, "Certifying for a network")
    "ignore-error-callback": "only a person at the BAP's controls can decline an error (stops-after-a-refused-*, "
                             "--drive passive), and the probes need --drive trigger",
}


class Certified:
    """One certification's outcome: its exit code and the report folder's summary.json and coverage.json."""

    def __init__(self, code: int, folder: Path) -> None:
        self.code, self.folder = code, folder
        self.summary: dict[str, Any] = json.loads((folder / "summary.json").read_text())
        self.coverage: dict[str, Any] = json.loads((folder / "coverage.json").read_text())

    @property
    def errors(self) -> set[str]:
        return {f["rule_id"] for f in self.summary["findings"] if f["severity"] == "error" and not f.get("waiver")}

    @property
    def never(self) -> dict[str, str]:
        return {n["rule"]: n["why"] for n in self.coverage["rules"]["never"]}

    def why_not(self) -> str:
        failing = [(s["id"], s["status"], s["error"] or s["setup_error"] or s["skip_reason"])
                   for s in self.summary["scenarios"] if s["status"] not in ("passed", "skipped")]
        findings = [(f["rule_id"], f["scenario"], f["step_name"], f["action"], f["expected"], f["found"])
                    for f in self.summary["findings"] if f["severity"] == "error"]
        return (f"exit {self.code} ({self.folder}), errors {sorted(self.errors)}, {failing[:6]}, {findings[:4]}, "
                f"missing {self.coverage['missing']}")


def certify(folder: Path, *argv: str) -> Certified:
    code = main(["certify", "--callback-timeout", WINDOW, "-n", "4", "--report-dir", str(folder), *argv])
    return Certified(code, folder)


def all_at_once(jobs: dict[str, tuple[str, ...]], tmp: Path) -> dict[str, Certified]:
    """Each job's certification, a few at a time (the runs spend most of their time waiting)."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {name: pool.submit(certify, tmp / name.replace("/", "-"), *argv) for name, argv in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetworkProcess, list[str]]]:
    """One reference network for every certification as BAP: each use case's BPPs, and a copy of sf-grid-loadflex
    per BPP fault, named after it; the harness's key registered in its registry. Yields it and the key options."""
    folder = tmp_path_factory.mktemp("faulty")
    copies = []
    for fault in BPP_FAULTS:
        copies.append(folder / f"flex-{fault}.json")
        shutil.copyfile(CATALOGS / "sf-grid-loadflex.json", copies[-1])
    catalogs = tuple(c for u in usecases.shipped().values() for c in u.catalogs) + tuple(copies)
    config = NetworkConfig(catalogs=catalogs, faults={f"flex-{fault}": frozenset({fault}) for fault in BPP_FAULTS})
    key = KeyPair.generate(HARNESS, "k1")
    key_file = folder / "harness.key"
    key_file.write_text(key.private_key)
    with NetworkProcess(config) as net:  # its own process: a dozen certifications at once do not slow it
        net.add_subscriber(Subscriber.for_key(key, url="http://127.0.0.1:9/unused", type="BAP", domain="flexibility"))
        yield net, ["--registry", net.registry_url, "--key-file", str(key_file), "--subscriber-id", HARNESS,
                    "--key-id", "k1"]


def bpp_of(net: NetworkProcess, use_case: str) -> str:
    return net.bpp_urls[usecases.named(use_case).catalogs[0].stem]


# ---- passing -----------------------------------------------------------------------------------------------------

def test_certify_passes_every_shipped_use_case_in_both_roles(network: tuple[NetworkProcess, list[str]],
                                                              tmp_path: Path) -> None:
    net, identity = network
    jobs = {f"{u}/bap": ("--use-case", u, "--target", bpp_of(net, u), *identity) for u in USE_CASES}
    jobs |= {f"{u}/bpp": ("--use-case", u, "--role", "bpp", *BPP_WINDOW) for u in USE_CASES}
    runs = all_at_once(jobs, tmp_path)
    failed = {name: run.why_not() for name, run in runs.items() if run.code != 0}
    assert failed == {}
    for name, run in runs.items():
        use_case, role = name.split("/")
        profile = profiles.of(use_case, role)
        doc = run.coverage
        coverage.check(doc)
        assert (doc["use_case"], doc["role"], doc["domain"]) == (use_case, role, usecases.named(use_case).domain)
        assert doc["complete"] and doc["missing"] == [], name
        assert {a["action"] for a in doc["actions"] if a["exercised"]} >= set(profile.actions), name
        assert {p["name"] for p in doc["probes"]} >= set(profile.required_probes), name
        assert run.summary["coverage"] == doc and run.summary["certification"]["certified"] is True
        played = {s["id"] for s in run.summary["scenarios"]}
        assert set(profile.scenario_ids) <= played
        assert (run.folder / "transcript.jsonl").is_file() and (run.folder / "junit.xml").is_file()
        assert any((run.folder / "allure-results").iterdir())
        # The rules of other use cases' packs, and none of this one's, are never evaluated "not in the pack".
        theirs = {r for r, why in run.never.items() if why == coverage.NOT_IN_PACK}
        assert theirs and all(r.startswith("L2_") for r in theirs), name


def test_every_shipped_scenario_is_in_its_profile_and_every_use_case_has_one() -> None:
    for use_case in usecases.shipped().values():
        for role in profiles.ROLES:
            profile = profiles.of(use_case.name, role)
            shipped = {s.id for s in map(scenario.load, scenario.discover([use_case.scenarios])) if s.role == role}
            assert set(profile.scenario_ids) == shipped, (use_case.name, role)
            assert profile.required_scenarios and profile.actions and profile.required_probes


# ---- failing against each fault switch ---------------------------------------------------------------------------

def test_every_fault_switch_is_certified_against() -> None:
    assert set(BPP_FAULTS) == BPP_ONLY | set(SHARED_FAULTS)
    assert set(BAP_FAULTS) | set(NOT_CERTIFIABLE) == BAP_ONLY | set(SHARED_FAULTS)


def test_certify_fails_a_faulty_bpp_with_the_rule_its_fault_breaks(network: tuple[NetworkProcess, list[str]],
                                                                   tmp_path: Path) -> None:
    net, identity = network
    runs = all_at_once({fault: ("--target", net.bpp_urls[f"flex-{fault}"], *identity) for fault in BPP_FAULTS},
                       tmp_path)
    wrong = {fault: runs[fault].why_not() for fault, rule in BPP_FAULTS.items()
             if runs[fault].code != 1 or rule not in runs[fault].errors}
    assert wrong == {}
    for run in runs.values():
        assert run.summary["certification"]["certified"] is False and run.summary["exit_code"] == 1


def test_certify_fails_a_faulty_bap_with_the_rule_its_fault_breaks(tmp_path: Path) -> None:
    runs = all_at_once({fault: ("--role", "bpp", "--fault", f"bap={fault}", *BPP_WINDOW) for fault in BAP_FAULTS},
                       tmp_path)
    wrong = {fault: runs[fault].why_not() for fault, rule in BAP_FAULTS.items()
             if runs[fault].code != 1 or rule not in runs[fault].errors}
    assert wrong == {}


# ---- coverage is exact -------------------------------------------------------------------------------------------

def without(profile: profiles.Profile, folder: Path, *, keep: str | None = None, drop: str | None = None) -> Path:
    """A copy of the shipped profile file whose role section plays every scenario but `drop`, or `keep` alone."""
    doc = yaml.safe_load(profile.path.read_text())
    part = doc[profile.role]["scenarios"]
    for kind in ("required", "optional"):
        part[kind] = [s for s in part.get(kind) or [] if (s == keep if keep else s != drop)]
    path = folder / f"{'only' if keep else 'without'}-{keep or drop}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("use_case, step, alone, missing_actions", [
    # status-after-cancel alone sends a status after a cancel: only it brings ORD_STATUS_AFTER_CANCEL.
    ("demand-flexibility", "status-after-cancel", {"ORD_STATUS_AFTER_CANCEL"}, set()),
    # charging-session alone starts and ends a charge and rates it: the profile requires those actions (track is
    # optional: a BPP may decline it, and track-a-session, which tracks, is an optional scenario).
    ("ev-charging", "charging-session", set(), {"update", "rating", "support"}),
])
def test_a_step_taken_out_of_a_profile_takes_out_exactly_what_it_alone_covered(
        network: tuple[NetworkProcess, list[str]], tmp_path: Path, use_case: str, step: str, alone: set[str],
        missing_actions: set[str]) -> None:
    net, identity = network
    profile = profiles.of(use_case, "bap")
    common = ("--use-case", use_case, "--target", bpp_of(net, use_case), *identity)
    runs = all_at_once({"full": common,
                        "without": (*common, "--profile", str(without(profile, tmp_path, drop=step))),
                        "alone": (*common, "--profile", str(without(profile, tmp_path, keep=step)))}, tmp_path)
    full, reduced, only = runs["full"], runs["without"], runs["alone"]
    assert full.code == 0, full.why_not()
    evaluated = {name: set(run.coverage["rules"]["evaluated"]) for name, run in runs.items()}
    # What the step alone exercised: what it evaluates that the rest of the profile does not...
    its_own = evaluated["alone"] - evaluated["without"]
    # ...is exactly what taking it out takes out of the full profile's coverage, and is then reported as never.
    assert evaluated["full"] - evaluated["without"] == its_own
    assert set(reduced.never) - set(full.never) == its_own
    assert alone <= its_own
    for rule in its_own:
        assert reduced.never[rule].startswith((coverage.NOT_HELD, coverage.NO_MESSAGE)), (rule, reduced.never[rule])
    assert {m["name"] for m in reduced.coverage["missing"] if m["kind"] == "action"} == missing_actions
    if missing_actions:  # required coverage missing, the target's doing: not certified, exit 1
        assert reduced.code == 1 and reduced.errors == set() and not reduced.coverage["complete"]
        assert reduced.summary["certification"]["certified"] is False
        assert all(not m["setup"] for m in reduced.coverage["missing"])
    else:
        assert reduced.code == 0, reduced.why_not()
    assert only.code == (0 if profile.actions == ("search",) else 1)  # one scenario leaves required actions out


def test_a_required_step_the_run_cannot_offer_is_a_set_up_error(network: tuple[NetworkProcess, list[str]],
                                                                tmp_path: Path) -> None:
    """gateway-search made required, and a BPP certified alone (--target, no gateway): the scenario is skipped for
    the run's set-up, so certification stops short with exit 4, naming the fix, not 1."""
    net, identity = network
    profile = profiles.of("demand-flexibility", "bap")
    doc = yaml.safe_load(profile.path.read_text())
    doc["bap"]["scenarios"] = {"required": ["gateway-search", "manual-optin"]}
    path = tmp_path / "gateway-required.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = certify(tmp_path / "run", "--target", net.bpp_urls["sf-grid-loadflex"], *identity, "--profile", str(path))
    assert run.code == 4, run.why_not()
    [missing] = run.coverage["missing"]
    assert (missing["kind"], missing["name"], missing["setup"]) == ("scenario", "gateway-search", True)
    assert "--gateway" in missing["why"]


# ---- the command -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile_text, message", [
    ("bap: {scenarios: {required: [no-such-scenario]}, probes: {}, actions: [search]}",
     "bap.scenarios names no bap scenario of finance: no-such-scenario"),
    ("bap: {scenarios: {required: [battery-loan]}, probes: {}, actions: [charge]}",
     "bap.actions names no Beckn request action: charge"),
    ("bpp: {scenarios: {required: [battery-loan]}, probes: {}, actions: []}", "no profile for role bap"),
    ("[not, a, mapping]", "a certification profile is a mapping of role"),
])
def test_a_profile_that_cannot_be_used_is_refused_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               profile_text: str, message: str) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(profile_text)
    assert main(["certify", "--use-case", "finance", "--profile", str(path)]) == 2
    _, err = capsys.readouterr()
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_certify_as_bpp_in_passive_drive_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str],
                                                                              tmp_path: Path) -> None:
    assert main(["certify", "--role", "bpp", "--drive", "passive", "--report-dir", str(tmp_path)]) == 2
    _, err = capsys.readouterr()
    assert "certify plays the probes, which as BPP need --drive trigger" in err and "Traceback" not in err
    assert not (tmp_path / "summary.json").exists()


def test_validate_coverage_of_a_capture(capsys: pytest.CaptureFixture[str]) -> None:
    folder = usecases.named("demand-flexibility").folder / "conformant-transaction"
    assert main(["validate", "--coverage", str(folder)]) == 0
    out, _ = capsys.readouterr()
    assert "coverage of demand-flexibility (domain flexibility)" in out
    assert "  support           1         1  yes" in out
    assert main(["validate", "--coverage", "--json", str(folder)]) == 0
    doc = json.loads(capsys.readouterr().out)["coverage"]
    coverage.check(doc)
    never = {n["rule"]: n["why"] for n in doc["rules"]["never"]}
    assert doc["role"] is None and doc["complete"] and doc["required"] == {"scenarios": [], "probes": [], "actions": []}
    assert never["L2_EV_CONNECTOR_TYPE"] == coverage.NOT_IN_PACK
    assert never["SIG_INVALID"].startswith(coverage.NOT_HELD)  # a capture holds no signature checks
    assert never["ORD_STATUS_AFTER_CANCEL"].startswith(coverage.NOT_HELD)  # no status after the cancel
    assert "ORD_NOT_CANCELLED" in doc["rules"]["evaluated"] and "TXN_ORPHAN_CALLBACK" in doc["rules"]["evaluated"]
    assert main(["validate", str(folder)]) == 0
    assert "coverage of" not in capsys.readouterr().out  # opt-in: validate's output is unchanged without it


def test_validate_coverage_of_a_message_whose_domain_is_a_list(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    """A domain of any JSON type is a finding, never a crash of the coverage (which groups messages by domain)."""
    search = json.loads((usecases.named("demand-flexibility").folder / "conformant-transaction" / "01-search.json")
                        .read_text())
    search["context"]["domain"] = ["flexibility"]
    (tmp_path / "odd.json").write_text(json.dumps(search))
    assert main(["validate", "--coverage", "--json", str(tmp_path / "odd.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    coverage.check(doc["coverage"])
    assert [f["rule_id"] for f in doc["findings"]] == ["L2_PACK_MISSING"]
    assert doc["coverage"]["domain"] is None and "L2_PACK_MISSING" in doc["coverage"]["rules"]["evaluated"]


def test_the_coverage_schema_refuses_what_the_contract_does_not_allow() -> None:
    """The schema is strict: a coverage.json with a field it does not name, or a missing entry without its kind,
    is refused (the certificate reads this shape)."""
    folder = usecases.named("retail").folder / "conformant-transaction"
    from conformance.transcript import load
    from conformance import Engine
    engine = Engine()
    engine.evaluated = set()
    messages = load([folder])
    engine.check(messages)
    doc = coverage.measure(messages, engine, engine.evaluated, coverage.Subject(use_case="retail", domain="deg:retail"))
    coverage.check(doc)
    for broken in ({**doc, "extra": 1}, {**doc, "missing": [{"name": "x", "why": "y", "setup": False}]},
                   {**doc, "role": "gateway"}):
        with pytest.raises(jsonschema_rs.ValidationError):
            coverage.check(broken)


def test_probes_sent_to_a_gateway_leave_the_bpps_probes_missing_a_set_up_error(tmp_path: Path) -> None:
    """--gateway without --target: the scenarios go through the gateway, and so do the probes, which a gateway takes
    as searches only; the BPP's flow probes the profile requires are not sent, which the run's set-up is to blame
    for (exit 4, saying to give the BPP as --target)."""
    key = KeyPair.generate(HARNESS, "k1")
    (tmp_path / "harness.key").write_text(key.private_key)
    with Network(NetworkConfig()) as net:
        net.add_subscriber(Subscriber.for_key(key, url="http://127.0.0.1:9/unused", type="BAP", domain="flexibility"))
        run = certify(tmp_path / "run", "--gateway", net.gateway_url, "--registry", net.registry_url,
                      "--key-file", str(tmp_path / "harness.key"), "--subscriber-id", HARNESS, "--key-id", "k1")
    assert run.code == 4, run.why_not()
    assert run.errors == set() and run.summary["certification"]["certified"] is False
    missing = {m["name"]: m for m in run.coverage["missing"]}
    assert set(missing) == {"flow/confirm-before-init", "flow/status-unknown-order", "flow/cancel-unknown-order",
                            "flow/support-unknown-order"}
    assert all(m["setup"] and "give the BPP as --target" in m["why"] for m in missing.values())


def test_why_a_rule_was_never_evaluated() -> None:
    """The guide's conformant transaction without its cancel: ORD_NOT_CANCELLED (on_cancel only) was never evaluated,
    for want of an on_cancel; blamed on a skipped scenario when one would have sent the cancel. As BAP, the rules on
    requests judge the harness's own messages (not applicable to the role)."""
    from conformance import Engine
    from conformance.transcript import load

    messages = [m for m in load([usecases.named("demand-flexibility").folder / "conformant-transaction"])
                if m.action not in ("cancel", "on_cancel")]
    engine = Engine()
    engine.evaluated = set()
    engine.check(messages)

    def never(played: coverage.Played) -> dict[str, str]:
        subject = coverage.Subject(use_case="demand-flexibility", domain="flexibility", role="bap", played=played)
        doc = coverage.measure(messages, engine, engine.evaluated, subject)
        return {n["rule"]: n["why"] for n in doc["rules"]["never"]}

    alone = never(coverage.Played())
    assert alone["ORD_NOT_CANCELLED"] == f"{coverage.NO_MESSAGE} (on_cancel)"
    assert alone["ORD_REQUEST_ORDER_ID"].startswith(coverage.NOT_FOR_ROLE)
    assert "ORD_CALLBACK_ORDER_ID" not in alone  # on_status has it
    skipped = coverage.Step(name="cancels", status="skipped", why="skipped: it needs a gateway", setup=True,
                            actions=("search", "cancel"))
    assert never(coverage.Played(scenarios=(skipped,)))["ORD_NOT_CANCELLED"] == f"{coverage.SKIPPED}: cancels"


def test_certify_prints_its_steps_and_coverage_and_signs_what_it_covered(capsys: pytest.CaptureFixture[str],
                                                                         tmp_path: Path) -> None:
    """A line per step, then the coverage table and one verdict line. With --certificate-key the certificate is issued
    once coverage.json and summary.json are final, so that it states the certification's coverage and verdict,
    digests both files and the profile played, and verifies."""
    from conformance import certificate
    from conformance.keys import new_key_file

    key = new_key_file(tmp_path / "operator.key", "operator.example", "k1")
    capsys.readouterr()
    run = certify(tmp_path / "run", "--use-case", "finance", "--certificate-key", str(tmp_path / "operator.key"))
    out, err = capsys.readouterr()
    assert run.code == 0, run.why_not()
    assert "run " in err and "the finance certification profile (1 scenario(s), then the probes)" in err
    assert "battery-loan                       1/4 search" in err and "signature-missing-header" in err
    assert "coverage of finance as bap (domain deg:finance)" in out
    assert "required coverage: complete" in out
    assert out.rstrip().endswith("certification of finance as bap: CERTIFIED (exit code 0)")
    signed = json.loads((run.folder / certificate.NAME).read_text())
    assert signed["verdict"] == "pass" and signed["coverage"] == run.coverage
    assert signed["harness"]["digests"]["profile"] == certificate.harness_digests(
        profiles.of("finance", "bap").path)["profile"] is not None
    assert {"coverage.json", "summary.json"} <= set(signed["files"])
    capsys.readouterr()
    assert main(["verify-certificate", str(run.folder / certificate.NAME), "--public-key", key.public_key]) == 0
