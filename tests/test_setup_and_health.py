"""Blame only the target: set-up problems (a key the target or registry does not know, a registry that cannot
be reached) are set-up errors naming the fix (exit 4), never the target's non-conformance; a target that goes
down mid-run is said so, on the request that brought it down, and what comes after is not run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance import Engine, scenario
from conformance.cli import main
from conformance.network import Network, NetworkConfig
from conformance.network.registry import Registry, Subscriber
from conformance.runner import Harness, RunConfig, RunResult
from conformance.runner.results import EXIT_FAILED, EXIT_OK, EXIT_SETUP
from conformance.signing import KeyPair
from tests._live import ONE_SEARCH, Crashing, TinyBPP, closed_port_url, serve, write

NACKED = """
    name: {name}
    steps:
      - {{name: first, send: search, expect: {{outcome: nacked}}}}
      - {{name: second, send: search, expect: {{outcome: nacked}}}}
      - {{name: third, send: search, expect: {{outcome: nacked}}}}
"""


def nacked(tmp_path: Path, name: str) -> scenario.Scenario:
    return scenario.load(write(tmp_path, f"{name}.yaml", NACKED.format(name=name)))


def play(target: str, scenarios: list[scenario.Scenario], engine: Engine, **settings: Any) -> RunResult:
    config = RunConfig(target=target, **{"ack_timeout": 1.0, "callback_timeout": 0.5, "settle": 0.05, **settings})
    with Harness(config, engine=engine) as harness:
        return harness.run(scenarios)


# ---- a target that goes down ----------------------------------------------------------------------------------

def test_a_target_that_crashes_on_a_request_is_blamed_for_that_request_and_the_rest_is_not_run(
        tmp_path: Path, engine: Engine) -> None:
    with Crashing(answers=1) as target:
        run = play(target.url, [nacked(tmp_path, "a"), nacked(tmp_path, "b")], engine)
    first, second = run.scenarios
    [down] = first.errors
    assert (down.rule_id, down.action, down.message_id) == (
        "RUN_TARGET_DOWN", "search", first.steps[1].request.message_id)  # type: ignore[union-attr]
    assert "earlier requests" in str(down.found) and "refuses connections since" in str(down.found)
    assert first.status == "failed" and len(first.steps) == 2 and not first.unreachable
    assert second.status == "broken" and not second.findings and not second.unreachable
    assert second.error is not None and second.error.startswith(f"not run: {target.url}/search has not answered since a step 2")
    assert run.exit_code == EXIT_FAILED  # the target failed on a request; never "unreachable" (3)
    assert target.seen == 2  # nothing more was sent to it


def test_one_dropped_request_on_a_target_that_stays_up_is_that_request_only(tmp_path: Path, engine: Engine) -> None:
    with Crashing(answers=1, die=False) as target:
        run = play(target.url, [nacked(tmp_path, "a")], engine)
    [s] = run.scenarios
    [down] = s.errors
    assert down.rule_id == "RUN_TARGET_DOWN" and "refuses connections" not in str(down.found)
    assert len(s.steps) == 2 and run.exit_code == EXIT_FAILED


def test_probes_after_the_probe_that_brought_the_target_down_are_not_run(engine: Engine) -> None:
    """A BPP that answers the probes' valid set-up search, then dies on the first probe."""
    with Network(NetworkConfig()) as net:
        with Crashing(answers=1, upstream=net.bpps["sf-grid-loadflex"].url) as target:
            config = RunConfig(target=target.url, registry=net.registry_url, callback_timeout=1.0, ack_timeout=1.0)
            with Harness(config, engine=engine) as harness:
                net.registry.subscribe(Subscriber.for_key(harness.key, url=harness.callback_url, type="BAP",
                                                          domain="flexibility"))
                run = harness.run([], probes=True)
    first, *rest = run.scenarios  # the set-up search passed: it is reported only when it fails
    assert [f.rule_id for f in first.errors] == ["RUN_TARGET_DOWN"] and first.status == "failed"
    assert rest and all(r.status == "broken" and (r.error or "").startswith("not run:") for r in rest)
    assert run.exit_code == EXIT_FAILED and target.seen == 2


# ---- set-up, not conformance ------------------------------------------------------------------------------------

def test_a_target_that_cannot_verify_the_harness_is_a_setup_error(tmp_path: Path, engine: Engine) -> None:
    bpp = TinyBPP(replies={"search": "401"})
    with serve(bpp.app()) as url:
        run = play(url, [scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH))], engine)
    [s] = run.scenarios
    assert s.status == "broken" and s.findings == [] and run.exit_code == EXIT_SETUP
    assert s.setup_error is not None and "answered HTTP 401" in s.setup_error
    assert "SIG_KEY_UNKNOWN: no such key here" in s.setup_error and "keys subscribe" in s.setup_error


def registry_app(harness_key: list[KeyPair], fail_others: bool) -> Starlette:
    """A Beckn registry that knows the harness's key and answers 500 for any other lookup (or knows nothing)."""
    async def lookup(request: Request) -> JSONResponse:
        query = await request.json()
        key = harness_key[0] if harness_key else None
        if key is not None and query.get("subscriber_id") == key.subscriber_id:
            return JSONResponse([Subscriber.for_key(key, url="http://x", type="BAP", domain="flexibility").as_record()])
        if fail_others:
            return JSONResponse({"error": "the registry is having a bad day"}, status_code=500)
        return JSONResponse([])
    return Starlette(routes=[Route("/lookup", lookup, methods=["POST"])])


def test_a_registry_that_cannot_be_asked_for_a_callback_key_is_a_setup_error(tmp_path: Path, engine: Engine) -> None:
    key = KeyPair.generate("harness.test", "k1")
    bpp = TinyBPP(replies={"search": "ack"}, key=KeyPair.generate("tiny.bpp.test", "b1"),
                  callbacks={"search": {"message": {"catalog": {"descriptor": {"name": "Tiny"}, "providers": []}}}})
    with serve(registry_app([key], fail_others=True)) as registry, serve(bpp.app()) as url:
        run = play(url, [scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH))], engine, registry=registry,
                   subscriber_id="harness.test", key_id="k1", private_key=key.private_key, callback_timeout=2.0)
    [s] = run.scenarios
    assert s.status == "broken" and s.errors == [] and run.exit_code == EXIT_SETUP, [f.text() for f in s.findings]
    assert s.setup_error is not None and "could not be checked" in s.setup_error and "HTTP" in s.setup_error
    [callback] = s.steps[0].callbacks
    assert callback.signatures[0].reason == "UNCHECKABLE"  # kept, ACKed, and judged on everything but its signature


@pytest.mark.parametrize("registry, says", [
    ("closed", "cannot be asked for the harness's key"),
    ("empty", "has no key deg-conformance.local|deg-conformance-key-1"),
])
def test_preflight_finds_the_harness_key_missing_before_anything_is_sent(tmp_path: Path, engine: Engine,
                                                                         registry: str, says: str) -> None:
    bpp = TinyBPP(replies={"search": "ack"})
    with serve(registry_app([], fail_others=False)) as empty, serve(bpp.app()) as url:
        where = closed_port_url() if registry == "closed" else empty
        run = play(url, [scenario.load(write(tmp_path, "s.yaml", ONE_SEARCH))], engine, registry=where)
    assert run.exit_code == EXIT_SETUP and run.scenarios == [] and bpp.received == []
    [problem] = run.setup_errors
    assert says in problem and "--registry" in problem


def test_preflight_passes_when_the_key_is_registered(tmp_path: Path, engine: Engine) -> None:
    registry = Registry()
    key = KeyPair.generate("harness.test", "k1")
    registry.subscribe(Subscriber.for_key(key, url="http://x", type="BAP", domain="flexibility"))
    bpp = TinyBPP(replies={"search": "nack:30000"})
    s = scenario.load(write(tmp_path, "s.yaml", "name: n\nsteps: [{send: search, expect: {outcome: nacked}}]\n"))
    with serve(registry.app()) as registry_url, serve(bpp.app()) as url:
        run = play(url, [s], engine, registry=registry_url, subscriber_id="harness.test", key_id="k1",
                   private_key=key.private_key)
    assert run.setup_errors == [] and run.exit_code == EXIT_OK and len(bpp.received) == 1


def test_setup_errors_reach_every_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bpp = TinyBPP(replies={"search": "ack"})
    with serve(bpp.app()) as url:
        code = main(["run", str(write(tmp_path, "s.yaml", ONE_SEARCH)), "--target", url, "--registry",
                     closed_port_url(), "--report-dir", str(tmp_path / "r")])
    out, _ = capsys.readouterr()
    assert code == EXIT_SETUP and out.startswith("SET-UP the registry at") and "(exit code 4)" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["exit_code"] == 4 and "cannot be asked" in summary["setup_errors"][0]
    junit = (tmp_path / "r" / "junit.xml").read_text()
    assert 'type="setup"' in junit
    results = [json.loads(p.read_text()) for p in (tmp_path / "r" / "allure-results").glob("*-result.json")]
    assert [r["statusDetails"]["message"][:7] for r in results] == ["set-up:"]
