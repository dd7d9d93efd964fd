"""Each fault switch of the reference network breaks exactly the rule it should, and the finding points at the
right message (action, message_id) and JSON path.

BPP faults are played with the harness's target set to the faulty BPP itself, so that the fault shows on the
hop the harness sees (through the gateway, a BPP's bad signature is refused by the gateway and the harness
would only see a missing callback). All runs happen at once, in one module fixture, to keep the suite fast.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance import Engine, scenario
from conformance.findings import Finding, Severity
from conformance.network import Network, NetworkConfig
from conformance.network.registry import Subscriber
from conformance.network.catalog import CATALOGS
from conformance.runner import Harness, RunConfig, ScenarioResult
from conformance.runner.results import EXIT_FAILED, EXIT_OK
from tests._live import SHIPPED, write

BPP = "sf-grid-loadflex"
WINDOW = 1.5
"""Seconds to wait for a callback: the reference BPPs answer in milliseconds; this leaves room on a busy CI."""
FLOW = """
    name: enrol, then status
    variables: {provider_id: provider_demand_flex_001, item_id: manual_optin_demand_flex, fulfillment_id: manual_optin}
    steps:
      - name: discover
        send: search
        save: {bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}
      - {name: start enrolment, send: init}
      - name: confirm enrolment
        send: confirm
        save: {order_id: $.message.order.id}
      - {name: check status, send: status}
"""
LATE = """
    name: a search with a short ttl and a long window
    steps:
      - name: discover
        send: search
        set: {context.ttl: PT0.5S}
        expect: {within: PT4S}
"""
BPP_FAULTS = ["wrong-callback-message-id", "wrong-callback-transaction-id", "enum-out-of-range", "no-callback",
              "late-callback", "duplicate-callback", "bad-signature", "unsigned", "nack-everything"]


def play_against_bpp(fault: str, s: scenario.Scenario, engine: Engine) -> ScenarioResult:
    """One scenario against one BPP with one fault, the harness registered in that network's registry."""
    lenient = fault == "no-validation"
    config = NetworkConfig(catalogs=(CATALOGS / f"{BPP}.json",), faults={BPP: frozenset({fault})})
    with Network(config) as net:
        timeout = 4.0 if fault == "late-callback" else WINDOW
        run = RunConfig(target=net.bpps[BPP].url, registry=net.registry_url, callback_timeout=timeout, settle=0.2)
        with Harness(run, engine=engine) as harness:
            net.registry.subscribers.append(Subscriber.for_key(
                harness.key, url=harness.callback_url, type="BAP", domain=config.domain))
            result = harness.run([s])
    assert result.exit_code == (EXIT_OK if lenient else EXIT_FAILED)
    return result.scenarios[0]


def play_through_gateway(faults: dict[str, frozenset[str]], s: scenario.Scenario, engine: Engine) -> ScenarioResult:
    network = NetworkConfig(catalogs=(CATALOGS / f"{BPP}.json",), faults=faults)
    with Harness(RunConfig(network=network, callback_timeout=WINDOW, settle=0.2), engine=engine) as harness:
        return harness.run([s]).scenarios[0]


@pytest.fixture(scope="module")
def runs(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ScenarioResult]]:
    folder = tmp_path_factory.mktemp("fault-scenarios")
    flow = scenario.load(write(folder, "flow.yaml", FLOW))
    late = scenario.load(write(folder, "late.yaml", LATE))
    unknown_order = scenario.load(SHIPPED / "unknown-order.yaml")
    with ThreadPoolExecutor(max_workers=len(BPP_FAULTS) + 2) as pool:
        futures = {f: pool.submit(play_against_bpp, f, late if f == "late-callback" else flow, engine)
                   for f in BPP_FAULTS}
        futures["no-validation"] = pool.submit(play_against_bpp, "no-validation", unknown_order, engine)
        futures["gateway=nack-everything"] = pool.submit(
            play_through_gateway, {"gateway": frozenset({"nack-everything"})}, flow, engine)
        yield {name: future.result() for name, future in futures.items()}


def errors(result: ScenarioResult) -> set[str]:
    return {f.rule_id for f in result.findings if f.severity is Severity.ERROR}


def only(result: ScenarioResult, rule_id: str) -> list[Finding]:
    return [f for f in result.findings if f.rule_id == rule_id]


def request_id(result: ScenarioResult, index: int) -> str | None:
    request = result.steps[index].request
    assert request is not None
    return request.message_id


def test_wrong_callback_message_id(runs: dict[str, ScenarioResult]) -> None:
    r = runs["wrong-callback-message-id"]
    assert errors(r) == {"TXN_CALLBACK_MESSAGE_ID"}
    found = only(r, "TXN_CALLBACK_MESSAGE_ID")
    assert [f.action for f in found] == ["on_search", "on_init", "on_confirm", "on_status"]
    for n, f in enumerate(found):
        callback = r.steps[n].callbacks[0]
        assert f.message_id == callback.message_id != request_id(r, n)  # points at the callback itself...
        assert f.expected == request_id(r, n) and f.found == callback.message_id  # ...and names the request's id
        assert f.path == "$.context.message_id" and f.transaction_id == r.transaction_id
        assert r.step_of(f) is r.steps[n]


def test_wrong_callback_transaction_id(runs: dict[str, ScenarioResult]) -> None:
    r = runs["wrong-callback-transaction-id"]
    assert errors(r) == {"TIM_CALLBACK_MISSING", "TXN_CALLBACK_TRANSACTION_ID"}
    [missing] = only(r, "TIM_CALLBACK_MISSING")
    assert (missing.action, missing.message_id, missing.path) == ("search", request_id(r, 0), "$")
    [foreign] = only(r, "TXN_CALLBACK_TRANSACTION_ID")
    assert (foreign.action, foreign.message_id, foreign.path) == ("on_search", request_id(r, 0),
                                                                  "$.context.transaction_id")
    assert foreign.expected == r.transaction_id and foreign.found == foreign.transaction_id != r.transaction_id
    # the callback is not lost: it is this scenario's unexpected message, and no stray
    assert [(m.action, m.message_id) for m in r.unexpected] == [("on_search", request_id(r, 0))]
    assert len(r.steps) == 1


def test_enum_out_of_range(runs: dict[str, ScenarioResult]) -> None:
    r = runs["enum-out-of-range"]
    assert errors(r) == {"L2_FULFILLMENT_STATE"}
    found = only(r, "L2_FULFILLMENT_STATE")
    assert [(f.action, f.message_id) for f in found] == [("on_confirm", request_id(r, 2)),
                                                          ("on_status", request_id(r, 3))]
    for f in found:
        assert f.path == "$.message.order.fulfillments[0].state.descriptor.code"
        assert f.found == "SMS" and "APPLICATION_SUBMITTED" in f.expected


def test_no_callback(runs: dict[str, ScenarioResult]) -> None:
    r = runs["no-callback"]
    assert errors(r) == {"TIM_CALLBACK_MISSING"}
    [f] = r.findings
    assert (f.action, f.message_id, f.transaction_id, f.path) == ("search", request_id(r, 0), r.transaction_id, "$")
    assert f.found == "no callback" and f.expected == f"on_search within {WINDOW:g} s"
    assert len(r.steps) == 1 and r.unexpected == []


def test_late_callback(runs: dict[str, ScenarioResult]) -> None:
    r = runs["late-callback"]
    assert errors(r) == {"TXN_CALLBACK_AFTER_TTL"}
    [f] = r.findings
    assert (f.action, f.message_id, f.path) == ("on_search", request_id(r, 0), "$.context.timestamp")
    assert str(f.found).startswith("arrived ") and str(f.expected).startswith("arrival by ")


def test_duplicate_callback(runs: dict[str, ScenarioResult]) -> None:
    r = runs["duplicate-callback"]
    assert errors(r) == {"TXN_DUPLICATE_CALLBACK"}
    duplicates = only(r, "TXN_DUPLICATE_CALLBACK")
    assert sorted((f.action, f.message_id) for f in duplicates) == sorted(
        (f"on_{st.action}", st.request.message_id) for st in r.steps if st.request)
    assert all(f.path == "$.context.message_id" for f in duplicates)
    # the second copies are kept, each reported once more as unclaimed (a warning)
    assert sorted(m.action or "" for m in r.unexpected) == ["on_confirm", "on_init", "on_search", "on_status"]
    assert {(f.rule_id, f.severity) for f in r.findings} - {("TXN_DUPLICATE_CALLBACK", Severity.ERROR)} == {
        ("RUN_UNCLAIMED", Severity.WARNING)}


@pytest.mark.parametrize("fault, rule_id, detail", [
    ("bad-signature", "SIG_INVALID", "the signature does not match the body and the registered key"),
    ("unsigned", "SIG_MISSING", "no signature header"),
])
def test_signature_faults(runs: dict[str, ScenarioResult], fault: str, rule_id: str, detail: str) -> None:
    r = runs[fault]
    assert errors(r) == {rule_id}
    found = only(r, rule_id)
    assert [(f.action, f.message_id) for f in found] == [
        (f"on_{st.action}", st.request.message_id) for st in r.steps if st.request]
    for f in found:  # the whole message is unverified; the predicate names the header
        assert (f.path, f.expected, f.found) == ("$", "a verified signature", detail)
        assert f.must.endswith("(HTTP header Authorization)")


def test_nack_everything(runs: dict[str, ScenarioResult]) -> None:
    r = runs["nack-everything"]
    assert errors(r) == {"RUN_OUTCOME"}
    [f] = r.findings
    assert (f.action, f.message_id, f.path) == ("search", request_id(r, 0),
                                                "$.message.ack.status (synchronous response)")
    assert (f.expected, f.found) == ("ACK", "HTTP 400, NACK, error 30000")
    assert len(r.steps) == 1


def test_refused_in_a_callback_is_a_refusal_too(runs: dict[str, ScenarioResult]) -> None:
    """no-validation: the BPP ACKs a status/cancel of an unknown order and says 30010 in the callback instead
    of a NACK; the shipped unknown-order scenario (outcome: refused) accepts both."""
    r = runs["no-validation"]
    assert r.status == "passed" and errors(r) == set() and r.harness_findings == []
    for st in r.steps[1:]:
        assert st.reply is not None and st.reply.ack == "ACK"
        [callback] = st.callbacks
        assert callback.body["error"]["code"] == "30010" and callback.message_id == st.request.message_id  # type: ignore[union-attr]


def test_gateway_nack_everything(runs: dict[str, ScenarioResult]) -> None:
    r = runs["gateway=nack-everything"]
    assert errors(r) == {"RUN_OUTCOME"}
    [f] = r.findings
    assert (f.action, f.message_id, f.found) == ("search", request_id(r, 0), "HTTP 400, NACK, error 30000")
    assert r.steps[0].url is not None and r.steps[0].url.endswith("/gateway/search")


def test_gateway_bad_signature(engine: Engine, tmp_path: Path) -> None:
    # The BPP does not check signatures, so the relayed search reaches it and on_search comes back through
    # the gateway, carrying the gateway's bad X-Gateway-Authorization.
    flow = scenario.load(write(tmp_path, "flow.yaml", FLOW))
    r = play_through_gateway({"gateway": frozenset({"bad-signature"}), BPP: frozenset({"no-signature-check"})},
                             flow, engine)
    assert "SIG_GATEWAY_INVALID" in errors(r)
    f = only(r, "SIG_GATEWAY_INVALID")[0]
    assert (f.action, f.message_id, f.path) == ("on_search", request_id(r, 0), "$")
    assert "X-Gateway-Authorization" in f.must


def test_every_bpp_fault_switch_is_covered() -> None:
    from conformance.network import FAULTS
    # no-signature-check makes a BPP lenient about what it receives: nothing a conformant BAP can see.
    # no-validation is played above: refusals come as error callbacks, which the scenarios accept.
    from conformance.network.participant import BAP_ONLY
    broken = {f for faults, _ in BREAKS.values() for p in faults.values() for f in p} - {"no-signature-check"}
    assert set(FAULTS) - set(BPP_FAULTS) - BAP_ONLY - broken == {"no-signature-check", "no-validation"}


# ---- every shipped scenario fails, with the right rule, against a target that breaks what it proves ------------

BOTH = ("sf-grid-loadflex", "flexigrid-aggregator")
BREAKS: dict[str, tuple[dict[str, frozenset[str]], str]] = {
    "manual-optin": ({"sf-grid-loadflex": frozenset({"enum-out-of-range"})}, "L2_FULFILLMENT_STATE"),
    "automated-control": ({"flexigrid-aggregator": frozenset({"enum-out-of-range"})}, "L2_FULFILLMENT_STATE"),
    "gateway-search": ({"gateway": frozenset({"bad-signature"}), **{b: frozenset({"no-signature-check"}) for b in BOTH}},
                       "SIG_GATEWAY_INVALID"),
    "status-after-cancel": ({b: frozenset({"forget-cancellation"}) for b in BOTH}, "ORD_STATUS_AFTER_CANCEL"),
    "unknown-order": ({b: frozenset({"invent-orders"}) for b in BOTH}, "RUN_OUTCOME"),
}


@pytest.fixture(scope="module")
def broken(engine: Engine) -> dict[str, ScenarioResult]:
    return play_broken(BREAKS, SHIPPED, engine)


def play_broken(breaks: dict[str, tuple[dict[str, frozenset[str]], str]], folder: Path, engine: Engine,
                **settings: Any) -> dict[str, ScenarioResult]:
    """Each scenario of the table (by name, in `folder`) against a reference network with its faults, all at once."""
    def one(name: str) -> ScenarioResult:
        faults, _ = breaks[name]
        config = RunConfig(network=NetworkConfig(faults=faults), callback_timeout=WINDOW, settle=0.2, **settings)
        with Harness(config, engine=engine) as harness:
            return harness.run([scenario.load(folder / f"{name}.yaml")]).scenarios[0]

    with ThreadPoolExecutor(max_workers=len(breaks)) as pool:
        return dict(zip(breaks, pool.map(one, breaks)))


def test_the_table_holds_every_shipped_role_bap_scenario() -> None:
    shipped = {p.stem for p in scenario.discover([SHIPPED]) if scenario.load(p).role == "bap"}
    assert set(BREAKS) == shipped


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_shipped_scenario_fails_against_a_target_that_breaks_it(broken: dict[str, ScenarioResult], name: str) -> None:
    result = broken[name]
    assert result.status == "failed" and BREAKS[name][1] in errors(result), (name, sorted(errors(result)))
