"""Sending the probes (conformance/probes.py) to a BPP or a BAP and judging what comes back.

Each probe runs in a transaction of its own, so that no probe touches a transaction a scenario uses, and starts
from a valid message, so that only what the probe breaks is wrong: for a BPP, a request for the BPP's own
catalog (found by one discovery search first); for a BAP, an on_search answering a search the BAP was just
asked for. A conformant target refuses the probe synchronously and (a BPP) sends no callback for it; the
report shows, per probe, what was sent, the reply, any callback, and the verdict.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import Executor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import orjson

from conformance import offers, signing
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Violation
from conformance.messages import Message, dig, parse_duration
from conformance.network.participant import join, now_rfc3339
from conformance.probes import Probe, Sending, encode, for_bap, for_bpp, for_gateway
from conformance.rules import scenario as expect_rules
from conformance.rules import timing
from conformance.rules.registry import Rule
from conformance.runner.listener import Received
from conformance.runner.results import ScenarioResult, StepResult
from conformance import usecases
from conformance.scenario import Scenario, read_fixture, render
from conformance.transport import Sender

if TYPE_CHECKING:
    from conformance.runner import Harness

SILENCE = 1.0
"""Seconds to listen for a callback a refused probe must not get, before any callback of the run was timed."""
SILENCE_FACTOR, SILENCE_FLOOR = 4.0, 0.25
"""Once callbacks were timed: a refused probe is watched for SILENCE_FACTOR times the slowest callback the target
sent in this run (at least SILENCE_FLOOR seconds): a callback for it would come about as late as the others do."""


Pending = Callable[[], ScenarioResult]
"""A probe's result, or the wait for it: what `plan` gives for each report entry."""


def plan(harness: "Harness", pool: Executor) -> list[Pending]:
    """Start the probes in `pool` (the one a run's scenarios share, so that the probes' silence windows and the
    scenarios' waits overlap): the valid exchange they all start from first, here, then each probe as a task of
    the pool. Returns, in catalogue order, how to get each report entry; when the target does not take part in
    that valid exchange, the exchange is the one entry. Never waits on the pool itself: a pool of one worker
    running this would otherwise wait on itself."""
    if harness.interrupted:
        return []
    without_pack = [_done(r) for r in _without_pack(harness)]
    if harness.config.role == "bpp":
        if harness.config.drive != "trigger":
            raise ConfigError("probes of a BAP need --drive trigger: each starts with a search the BAP is asked for")
        setup = _result(harness, "probe set-up: a search the BAP sends", "setup")
        request = _bap_search(harness, setup)
        if request is None:
            return [_done(setup)]
        on_bap = for_bap(harness.engine, _on_search(harness, request))
        return [pool.submit(_play_on_bap, harness, p).result for p in on_bap] + without_pack
    target, gateway = harness.probe_target()
    variables, setup = _discover(harness, target)
    if variables is None:
        return [_done(setup)]
    probes = for_gateway() if gateway else for_bpp(harness.engine, _body(harness, "init", variables))
    return [pool.submit(_play, harness, p, variables, target, gateway).result for p in probes] + without_pack


def _done(result: ScenarioResult) -> Pending:
    return lambda: result


def _without_pack(harness: "Harness") -> list[ScenarioResult]:
    """The Layer-2 probes come from the use case's pack: without one, or with one that narrows nothing (a use case
    whose material states no list), there are none, and the report says so."""
    use_case = usecases.named(harness.config.use_case)
    pack = harness.engine.layer2.pack_for(use_case.domain, use_case.version)
    if pack is not None and pack.rules:
        return []
    skipped = _result(harness, f"Layer-2 probes of {use_case.name}", "layer2")
    why = "its Layer-2 pack narrows nothing" if pack is not None else "no Layer-2 pack"
    skipped.skipped = (f"{why} for {use_case.domain} {use_case.version}: no value outside a taxonomy is probed "
                       "(add one under conformance/packs/, or give --layer2)")
    skipped.stopped = time.time()
    harness.progress(skipped, None)
    return [skipped]


def _discover(harness: "Harness", target: str) -> tuple[dict[str, Any] | None, ScenarioResult]:
    """What a valid request to this BPP needs, from one valid search: the first offer of its catalog, as a
    scenario sees it (conformance/offers.py: provider, item, fulfillment, and the item's fulfillments, which an
    order naming several, as a battery rental's start and end, takes whole), and bpp_id, bpp_uri. None, and why
    in the result, when the target does not answer it."""
    result = _result(harness, "probe set-up: a valid search the probes start from", "setup")
    transaction_id = result.transaction_id
    body = _body(harness, "search", {})
    body["context"]["transaction_id"] = transaction_id
    raw = encode(body)
    with harness.client() as client:
        step = _send(harness, client, result, 1,
                     Sending("search", raw, {"Authorization": signing.sign(raw, harness.key)}), target)
    reply = step.reply
    assert reply is not None
    window = _wait(harness, body)
    catalog = None
    if reply.status == 401:
        result.setup_error = harness.signature_refused(step.url or target, reply)
    elif reply.error is None and reply.ack != "ACK":
        _report(result, step, expect_rules.OUTCOME, Violation((), "an ACK for a valid search", reply.describe()))
    elif not _unanswered(harness, result, step):
        arrived = harness.inbox.wait(transaction_id, lambda msgs: any(r.action == "on_search" for r in msgs),
                                     time.monotonic() + window)
        first = next((r for r in arrived if r.action == "on_search"), None)
        catalog = first.doc if first is not None else None
        if first is not None and step.request is not None and step.request.received_at is not None:
            harness.timed_callback((first.received_at - step.request.received_at).total_seconds())
        _claim_all(harness, transaction_id)
    offer = next(iter(offers.views(catalog)), None)
    result.stopped = time.time()
    if offer is None:
        if not result.findings and result.setup_error is None and result.error is None:
            _report(result, step, timing.CALLBACK_MISSING, Violation(
                (), f"an on_search with a provider and an item within {window:g} s", "none"))
        return None, result
    return {"bpp_id": dig(catalog, "context", "bpp_id"), "bpp_uri": dig(catalog, "context", "bpp_uri"),
            "provider_id": offer["provider"].get("id"), "item_id": offer["item"].get("id"),
            "fulfillment_id": offer["fulfillment"].get("id"), "fulfillments": offer["fulfillments"],
            "order_id": "set-by-the-probe"}, result  # status/cancel/support probes name an unknown order


def _wait(harness: "Harness", body: dict[str, Any]) -> float:
    """How long a set-up request's answer is waited for: its ttl (the spec's bound), capped by
    --callback-timeout; the wait ends as soon as the answer is in."""
    ttl = parse_duration(dig(body, "context", "ttl"))
    seconds = ttl.total_seconds() if ttl is not None else 30.0
    cap = harness.config.callback_timeout
    return min(seconds, cap) if cap is not None else seconds


def _body(harness: "Harness", action: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A valid request: the use case's fixture, rendered, with the context the harness owns."""
    body: dict[str, Any] = render(read_fixture(usecases.named(harness.config.use_case).requests / f"{action}.json"),
                                  {**variables, "transaction_id": variables.get("transaction_id", "")})
    body["context"].update({"action": action, "bap_id": harness.key.subscriber_id, "bap_uri": harness.callback_url,
                            "message_id": str(uuid.uuid4()), "timestamp": now_rfc3339()})
    return body


def _play(harness: "Harness", probe: Probe, variables: dict[str, Any], target: str, gateway: bool) -> ScenarioResult:
    result = _result(harness, probe.title, probe.id, f"Probe {probe.id}: {probe.title}.")
    body = _body(harness, probe.action, variables)
    body["context"]["transaction_id"] = result.transaction_id
    down = harness.health.down_since(target)
    if down is not None or harness.interrupted:
        result.error = ("not run: the run was interrupted (Ctrl-C)" if down is None
                        else f"not run: {target} has not answered since {down}")
        result.stopped = time.time()
        harness.progress(result, None)
        return result
    _send_all(harness, result, probe, probe.build(body, harness.key), target)
    _silence(harness, result, probe, answers_per_request=None if gateway else 1)
    result.stopped = time.time()
    harness.progress(result, result.steps[-1] if result.steps else None)
    return result


def _send_all(harness: "Harness", result: ScenarioResult, probe: Probe, sendings: list[Sending], target: str) -> None:
    """The probe's sends in order: each set-up one must be ACKed (else the probe proves nothing, and says so);
    the probe itself is judged."""
    with harness.client() as client:
        for sending in sendings:
            step = _send(harness, client, result, len(result.steps) + 1, sending, target)
            if _unanswered(harness, result, step):
                return
            if not sending.setup:
                _judge(result, step, probe)
            elif step.reply is not None and step.reply.status == 401:
                result.setup_error = harness.signature_refused(step.url or target, step.reply)
                return
            elif step.reply is None or step.reply.ack != "ACK":
                answer = step.reply.describe() if step.reply is not None else "nothing sent"
                result.error = (f"the valid message probe {probe.id} starts from was not ACKed ({answer}), "
                                "so the probe proves nothing")
                return


def _send(harness: "Harness", client: Sender, result: ScenarioResult, n: int, sending: Sending,
          target: str, *, trigger: bool = False) -> StepResult:
    """One POST of a probe, recorded as its step; `trigger` when it asks a BAP's client endpoint to send
    something, which is not a Beckn message."""
    step = StepResult(n, "a valid request the probe needs first" if sending.setup else "the probe", sending.action,
                      time.time(), url=join(target, sending.action))
    result.steps.append(step)
    step.reply = harness.post(client, step.url or "", sending.raw, sending.headers)
    try:
        doc: Any = orjson.loads(sending.raw)
    except orjson.JSONDecodeError:
        doc = None
    step.request = Message(doc, result.scenario.id, n, seq=n, received_at=datetime.now(timezone.utc),
                           direction="trigger" if trigger else "out", endpoint=f"/{sending.action}",
                           size=len(sending.raw),
                           response=step.reply.body if step.reply.status is not None else ABSENT,
                           latency=step.reply.latency)
    step.stopped = time.time()
    return step


def _judge(result: ScenarioResult, step: StepResult, probe: Probe) -> None:
    """A conformant target refused it: 401 with WWW-Authenticate for a signature, else a NACK with the code."""
    reply = step.reply
    assert reply is not None
    if probe.unauthorised:
        if reply.status == 401 and reply.challenge:
            return
        expected = "HTTP 401 with a WWW-Authenticate header (a NACK)"
    else:
        if reply.ack == "NACK" and (probe.code is None or reply.error_code == probe.code):
            return
        expected = f"a NACK{f' with error code {probe.code}' if probe.code else ''}"
    _report(result, step, probe.rule, Violation((), expected, reply.describe(), f"refuse it: {probe.title}"))


def _silence(harness: "Harness", result: ScenarioResult, probe: Probe, answers_per_request: int | None) -> None:
    """No callback for what was refused: `answers_per_request` per set-up request is fine, anything more is the
    target answering the probe. Through a gateway (None) a set-up search gets one answer per BPP behind it, a
    number the harness does not know: then only a probe without set-up requests is held to silence."""
    if not result.steps or result.unreachable:
        return
    setups = sum(1 for s in result.steps if s.name.startswith("a valid request"))
    window, why = silence(harness)
    result.steps[-1].name += f" (watched for {window:.2f} s: {why})"
    arrived = harness.inbox.wait(result.transaction_id, lambda msgs: False, time.monotonic() + window)
    allowed = setups * answers_per_request if answers_per_request is not None else (setups and len(arrived))
    for received in arrived:
        received.claimed = True
    callbacks = [r.message(result.scenario.id, 100 + n) for n, r in enumerate(arrived, 1)]
    result.steps[-1].callbacks = callbacks
    if len(callbacks) > allowed:
        _report(result, result.steps[-1], probe.rule, Violation(
            (), f"no callback for the refused message within {window:g} s",
            f"{len(callbacks) - allowed} × {callbacks[-1].action or 'message'}", "send no callback for it"))


def silence(harness: "Harness") -> tuple[float, str]:
    """How long a refused probe is watched for a callback that must not come, and why that long: measured
    evidence of how late this target calls back, rather than a fixed wait."""
    if harness.config.callback_timeout is not None:
        return harness.config.callback_timeout, "--callback-timeout"
    slowest = harness.slowest_callback()
    if slowest is None:
        return SILENCE, "no callback of this run timed yet"
    return (max(SILENCE_FLOOR, SILENCE_FACTOR * slowest),
            f"{SILENCE_FACTOR:g} x the slowest callback of this run, {slowest:.3f} s (at least {SILENCE_FLOOR:g} s)")


def _claim_all(harness: "Harness", transaction_id: str) -> None:
    """Everything of a set-up transaction is the set-up's, including what a gateway brings a moment later
    (the other BPPs' answers, or their copies of the search): kept out of the run's strays."""
    harness.pause(harness.config.settle)
    for received in harness.inbox.messages(transaction_id):
        received.claimed = True


def _unanswered(harness: "Harness", result: ScenarioResult, step: StepResult) -> bool:
    """Whether nothing came back (then reported: no answer in time, unreachable, or a target gone down)."""
    reply = step.reply
    if reply is None or reply.error is None:
        return False
    assert step.request is not None
    harness.health.judge(result, step, step.request, reply,
                         f"probe {result.scenario.id} ({step.action}, message_id {step.request.message_id})",
                         wanted="an answer" if harness.config.role == "bpp" else "an ACK/NACK")
    return True


def _report(result: ScenarioResult, step: StepResult, rule: Rule, violation: Violation) -> None:
    result.report(rule.finding(violation, step.request), step)


# ---- probing a BAP: wrong callbacks to its network endpoint -------------------------------------------------

def _result(harness: "Harness", name: str, probe_id: str, description: str = "") -> ScenarioResult:
    """A report entry of its own, in a fresh transaction, for a probe (or its set-up)."""
    transaction_id = str(uuid.uuid4())
    harness.transactions.add(transaction_id)
    scenario = Scenario(name=name, path=Path("probes") / f"{probe_id.replace('/', '-')}.probe", steps=(),
                        description=description, tags=("probe",), role=harness.config.role)
    return ScenarioResult(scenario, transaction_id, time.time())


def _bap_search(harness: "Harness", result: ScenarioResult) -> Received | None:
    """Ask the BAP for a search in `result`'s transaction; the search as it reached one of the harness's BPPs,
    or None with a finding saying why not."""
    assert harness.target is not None
    body = render(read_fixture(usecases.named(harness.config.use_case).requests / "search.json"), {})
    body["context"].update(transaction_id=result.transaction_id, action="search")
    down = harness.health.down_since(harness.target)
    if down is not None or harness.interrupted:
        result.error = ("not run: the run was interrupted (Ctrl-C)" if down is None
                        else f"not run: {harness.target} has not answered since {down}")
        return None
    with harness.client() as client:
        step = _send(harness, client, result, 1, Sending("search", encode(body), {}, setup=True), harness.target,
                     trigger=True)
    reply = step.reply
    assert reply is not None
    if _unanswered(harness, result, step):
        return None
    if reply.status is None or not 200 <= reply.status < 300:
        _report(result, step, expect_rules.TRIGGER, Violation((), f"a 2xx answer from POST {step.url}",
                                                              reply.describe()))
        return None
    window = _wait(harness, body)

    def relayed_to_all(msgs: list[Received]) -> bool:  # the gateway relays it to every one of the harness's BPPs
        return len({r.party for r in msgs if r.action == "search"}) >= len(harness.bpps)

    arrived = harness.inbox.wait(result.transaction_id, relayed_to_all, time.monotonic() + window)
    request = next((r for r in arrived if r.action == "search" and r.reply is not None and r.reply.ack == "ACK"), None)
    _claim_all(harness, result.transaction_id)
    if request is None:
        _report(result, step, timing.REQUEST_MISSING,
                Violation((), f"a valid, signed search within {window:g} s", f"{len(arrived)} search(es), none ACKed"))
    return request


def _on_search(harness: "Harness", request: Received) -> dict[str, Any]:
    """A valid on_search for `request`, as the harness's BPP that received it answers: the same content as
    the one that BPP already sent, so the timestamp is written with an offset rather than Z, to differ in its
    bytes (the same bytes under the same signature would be a replay)."""
    bpp = next(b for b in harness.bpps.values() if b.key.subscriber_id == request.party)
    context = {**request.doc["context"], "action": "on_search", "bpp_id": bpp.key.subscriber_id, "bpp_uri": bpp.url,
               "timestamp": now_rfc3339().replace("Z", "+00:00")}
    return {"context": context, "message": bpp.catalog()}


def _play_on_bap(harness: "Harness", probe: Probe) -> ScenarioResult:
    result = _result(harness, probe.title, probe.id, f"Probe {probe.id}: {probe.title}.")
    request = _bap_search(harness, result)
    if request is not None:
        bpp = next(b for b in harness.bpps.values() if b.key.subscriber_id == request.party)
        bap_uri = str(dig(request.doc, "context", "bap_uri"))
        _send_all(harness, result, probe, probe.build(_on_search(harness, request), bpp.key), bap_uri)
    elif not result.findings and result.error is None:
        result.error = f"the BAP did not send the search probe {probe.id} starts from"
    result.stopped = time.time()
    harness.progress(result, result.steps[-1] if result.steps else None)
    return result
