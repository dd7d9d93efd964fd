"""The pytest plugin: opt-in collection (`*.deg.yaml`, --deg-scenarios, the deg_scenarios ini option), a bad file
a collection error naming its line, a bad option one line before anything runs; scenarios that pass against the
reference network, against a registry-backed target with the harness's own identity, and under `-n 4`; and Allure
results from allure-pytest that show a scenario as the CLI's do."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from conformance import scenario
from conformance.errors import ConfigError
from conformance.keys import new_key_file
from conformance.network import Network
from conformance.network.registry import Subscriber
from conformance.pytest_plugin import worker_address
from conformance.reporting.allure import write_results
from conformance.runner import Harness, RunConfig
from tests._live import SHIPPED

pytest_plugins = ["pytester"]

WRONG_PROVIDER = ("name: wrong provider\n"
                  "steps:\n"
                  "  - send: search\n"
                  "    expect: {count: all, min: 1, within: PT1S}\n"
                  "    choose: {path: '$.message.catalog.providers[*].id', contains: no-such-provider}\n")
NO_CACHE = ("-p", "no:cacheprovider")


# --- what is collected -----------------------------------------------------------------------------------

def test_plain_pytest_leaves_unrelated_yaml_under_scenarios_alone(pytester: pytest.Pytester) -> None:
    """A Kubernetes manifest under scenarios/ is not a scenario; nor is the harness loaded for a session that plays
    none (the plugin is imported in every pytest session where the package is installed)."""
    (pytester.mkdir("scenarios") / "k8s").mkdir()
    (pytester.path / "scenarios" / "k8s" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {mode: test}\n")
    (pytester.path / "scenarios" / "notes.yml").write_text("- just a list\n")
    pytester.makepyfile(test_app="""
        import sys

        def test_app():
            assert "conformance.runner" not in sys.modules and "conformance.scenario" not in sys.modules
        """)
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=1)
    assert result.ret == 0 and "error" not in result.stdout.str().lower()


def test_deg_yaml_files_are_scenarios_wherever_they_are_and_a_bad_one_is_a_collection_error(
        pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("anywhere")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.deg.yaml")
    (folder / "broken.deg.yml").write_text("name: broken\nsteps:\n  - send: search\n    expect: {count: twice}\n")
    (folder / "unknown-order.yaml").write_text("not: a scenario\n")
    items, reprec = pytester.inline_genitems(*NO_CACHE)
    assert [item.name for item in items] == ["unknown-order"]  # the id drops `.deg`, as the CLI's does
    [failed] = reprec.getfailedcollections()
    text = str(failed.longrepr)
    assert f"{folder / 'broken.deg.yml'}:4: steps/0/expect/count" in text
    assert "Traceback" not in text


def test_deg_scenarios_names_folders_of_scenarios_and_is_collected_when_no_path_is_given(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_app.py").write_text("def test_app():\n    pass\n")
    flex = pytester.mkdir("flex")
    shutil.copy(SHIPPED / "manual-optin.yaml", flex / "manual-optin.yaml")
    shutil.copy(SHIPPED / "unknown-order.yaml", flex / "unknown-order.yaml")
    result = pytester.runpytest("--collect-only", "-q", "--deg-scenarios", "flex", *NO_CACHE)
    result.stdout.fnmatch_lines(["flex/manual-optin.yaml::manual-optin", "flex/unknown-order.yaml::unknown-order",
                                 "*2 tests collected*"])
    # Named paths are collected as given, with the --deg-scenarios ones classed as scenarios.
    result = pytester.runpytest("--collect-only", "-q", "--deg-scenarios", "flex/unknown-order.yaml", "tests",
                                "flex", *NO_CACHE)
    result.stdout.fnmatch_lines(["tests/test_app.py::test_app", "flex/unknown-order.yaml::unknown-order",
                                 "*2 tests collected*"])


def test_the_deg_scenarios_ini_option_names_them_for_plain_pytest(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndeg_scenarios = suites/flex\n")
    flex = pytester.mkdir("suites") / "flex"
    flex.mkdir()
    shutil.copy(SHIPPED / "unknown-order.yaml", flex / "unknown-order.yaml")
    (pytester.mkdir("deploy") / "values.yaml").write_text("replicas: 2\n")
    result = pytester.runpytest("--collect-only", "-q", *NO_CACHE)
    result.stdout.fnmatch_lines(["suites/flex/unknown-order.yaml::unknown-order", "*1 test collected*"])


def test_scenario_items_carry_their_tags_as_marks(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "manual-optin.yaml", folder / "manual-optin.yaml")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.yaml")
    result = pytester.runpytest("--collect-only", "-q", "-m", "manual_flex", "--deg-scenarios", "scenarios",
                                *NO_CACHE)
    result.stdout.fnmatch_lines(["scenarios/manual-optin.yaml::manual-optin", "*1/2 tests collected*"])


# --- options ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "says"), [
    (["--deg-key-file", "no-such.key"], "--deg-key-file no-such.key: cannot read"),
    (["--deg-listen", "8081"], "--deg-listen '8081': write HOST:PORT"),
    (["--deg-callback-url", "http://me.example:{port}/"], "{port} needs a fixed --deg-listen port"),
    (["--deg-target", "bpp.example"], "target 'bpp.example' is not an http(s) URL"),
    (["--deg-registry-name", "deg-sandbox"], "registry-name names a DeDi registry"),
])
def test_an_option_that_cannot_be_used_stops_pytest_with_one_line(pytester: pytest.Pytester, options: list[str],
                                                                  says: str) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.deg.yaml")
    result = pytester.runpytest(*options, *NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: deg-conformance: " in result.stderr.str() and says in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_each_xdist_worker_gets_its_own_address() -> None:
    assert worker_address("127.0.0.1:0", None, 3) == ("127.0.0.1:0", None)
    assert worker_address("0.0.0.0:9000", None, 0) == ("0.0.0.0:9000", None)
    assert worker_address("[::1]:9000", "https://me.example/w{worker}:{port}", 2) == (
        "[::1]:9002", "https://me.example/w2:9002")
    assert worker_address("127.0.0.1:0", "https://me.example/w{worker}", 1) == ("127.0.0.1:0", "https://me.example/w1")
    with pytest.raises(ConfigError, match="past 65535"):
        worker_address("127.0.0.1:65535", None, 1)


# --- playing -----------------------------------------------------------------------------------------------

def test_scenarios_of_both_roles_run_in_one_session(pytester: pytest.Pytester) -> None:
    """Each role gets its own harness: a BAP-role scenario against the reference network's BPPs, a BPP-role
    one against its BAP."""
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.deg.yaml")
    shutil.copy(SHIPPED / "bpp-role" / "status-of-an-order-not-its-own.yaml", folder / "not-its-own.deg.yaml")
    result = pytester.runpytest("--deg-callback-timeout", "2", *NO_CACHE)
    result.assert_outcomes(passed=2)


def test_a_failing_scenario_reports_its_findings(pytester: pytest.Pytester) -> None:
    (pytester.mkdir("scenarios") / "wrong.deg.yaml").write_text(WRONG_PROVIDER)
    result = pytester.runpytest("--deg-callback-timeout", "1", *NO_CACHE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAIL   wrong  (wrong provider; transaction *",
                                 "*ERROR   RUN_ASSERTION  scenarios/wrong.deg.yaml:*on_search*"])
    out = result.stdout.str()
    assert "expected: a on_search where $.message.catalog.providers[*].id contains 'no-such-provider'\n" in out
    assert "found:    none of " in out and "Traceback" not in out


def test_with_its_own_identity_the_plugin_passes_against_a_registry_backed_bpp(
        pytester: pytest.Pytester, deg_network: Network, tmp_path: Path) -> None:
    """The harness's key from a key file, published in the network's registry and looked up there the DeDi way;
    the same run with a key the registry does not hold is a set-up error on every scenario, saying so."""
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.deg.yaml")
    published = new_key_file(tmp_path / "published.key", "conformance.example.org", "k1")
    deg_network.add_subscriber(Subscriber.for_key(published, url="http://127.0.0.1:9/unused", type="BAP",
                                                  domain="flexibility"))
    new_key_file(tmp_path / "unknown.key", "conformance.example.org", "k1")
    options = ["--deg-target", deg_network.bpps["sf-grid-loadflex"].url, "--deg-registry", deg_network.registry_url,
               "--deg-registry-type", "dedi", "--deg-registry-name", "deg-sandbox",
               "--deg-subscriber-id", "conformance.example.org", "--deg-key-id", "k1", "--deg-callback-timeout", "2"]

    result = pytester.runpytest(*options, "--deg-key-file", str(tmp_path / "published.key"), *NO_CACHE)
    result.assert_outcomes(passed=1)

    result = pytester.runpytest(*options, "--deg-key-file", str(tmp_path / "unknown.key"), *NO_CACHE)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "set-up: the registry at " in out and "holds another public key for conformance.example.org|k1" in out
    assert "Traceback" not in out


def _consecutive_free_ports(count: int) -> int:
    """The first of `count` loopback ports that were all free a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free loopback ports")


def test_under_xdist_each_worker_listens_on_its_own_port(pytester: pytest.Pytester) -> None:
    """`pytest -n 4` against the reference network: every worker runs its own harness (and network), on
    --deg-listen's port plus its number, and the callback URL names that port."""
    folder = pytester.mkdir("scenarios")
    for name in ("unknown-order", "status-after-cancel", "manual-optin", "automated-control"):
        shutil.copy(SHIPPED / f"{name}.yaml", folder / f"{name}.yaml")
    base = _consecutive_free_ports(4)
    results = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(
        "-n", "4", "--deg-scenarios", "scenarios", "--deg-listen", f"127.0.0.1:{base}",
        "--deg-callback-url", "http://127.0.0.1:{port}", "--deg-callback-timeout", "5", "--alluredir", str(results),
        *NO_CACHE, timeout=240)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["4 workers [4 items]"])
    port_of: dict[str, set[str]] = {}
    for doc in (json.loads(p.read_text()) for p in results.glob("*-result.json")):
        [thread] = [label["value"] for label in doc["labels"] if label["name"] == "thread"]
        request = json.loads((results / doc["steps"][0]["attachments"][0]["source"]).read_text())
        port_of.setdefault(thread.split("-")[0], set()).add(request["body"]["context"]["bap_uri"].rsplit(":", 1)[1])
    # Fewer items than twice the workers: xdist deals them out one each, so every worker played one.
    assert len(port_of) == 4 and all(len(ports) == 1 for ports in port_of.values()), port_of
    assert sorted(int(port) for ports in port_of.values() for port in ports) == [base + n for n in range(4)]


# --- Allure ------------------------------------------------------------------------------------------------

def _shown(doc: dict[str, Any], files: Path) -> dict[str, Any]:
    """What a reader sees of a test in Allure, apart from times, ids, and what each front end adds of its own."""
    def shape(content: Any) -> Any:
        return sorted(content) if isinstance(content, dict) else [shape(item) for item in content]

    def step(s: dict[str, Any]) -> tuple[Any, ...]:
        message = s.get("statusDetails", {}).get("message", "").removeprefix("AssertionError: ").split("\n")[0]
        return (s["name"], s["status"], message, [(a["name"], shape(json.loads((files / a["source"]).read_text())))
                                                  for a in s.get("attachments", [])])
    return {"name": doc["name"], "description": doc.get("description"), "status": doc["status"],
            "steps": [step(s) for s in doc.get("steps", [])],
            "parameters": sorted(p["name"] for p in doc["parameters"])}


def test_allure_pytest_shows_a_scenario_as_the_cli_does(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The same failing scenario, played by the CLI's writer and by pytest --alluredir: the same title, status,
    steps with their statuses, attachments and messages, and every label the CLI gives."""
    (pytester.mkdir("scenarios") / "wrong.deg.yaml").write_text(WRONG_PROVIDER)
    by_pytest = pytester.path / "allure-results"
    result = pytester.runpytest("--deg-callback-timeout", "1", "--alluredir", str(by_pytest), *NO_CACHE)
    result.assert_outcomes(failed=1)
    with Harness(RunConfig(callback_timeout=1)) as harness:
        run = harness.run([scenario.load(pytester.path / "scenarios" / "wrong.deg.yaml")])
    by_cli = tmp_path / "allure-results"
    write_results(run, by_cli, participant="the reference network")

    [pytest_doc] = [json.loads(p.read_text()) for p in by_pytest.glob("*-result.json")]
    [cli_doc] = [json.loads(p.read_text()) for p in by_cli.glob("*-result.json")]
    assert _shown(pytest_doc, by_pytest) == _shown(cli_doc, by_cli)
    assert cli_doc["status"] == "failed" and cli_doc["steps"][0]["status"] == "failed"
    assert {(label["name"], label["value"]) for label in cli_doc["labels"]} <= {
        (label["name"], label["value"]) for label in pytest_doc["labels"]}
    assert {"name": "rule", "value": "RUN_ASSERTION"} in pytest_doc["labels"]
    assert pytest_doc["statusDetails"]["message"].endswith(": RUN_ASSERTION")
