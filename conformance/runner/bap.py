"""Playing the BAP: send each step's request, check the synchronous reply, wait for the callbacks, assert.

When the steps are done, the whole transaction as it crossed the wire (the harness's requests with their
replies, and everything received for the transaction) goes through the rule engine, exactly as a capture
would in `deg-conformance validate`; the runner adds what only it knows (what each step expected).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
import jsonpath

from conformance import signing
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Finding, Violation
from conformance.messages import Message, parse_duration
from conformance.network.participant import now_rfc3339
from conformance.rules import scenario as expect_rules
from conformance.rules import timing
from conformance.rules.registry import Rule
from conformance.runner.listener import Received
from conformance.runner.results import ScenarioResult, StepResult
from conformance.scenario import Scenario, Step, build_body
from conformance.transport import Reply, encode, post

if TYPE_CHECKING:
    from conformance.runner import Harness

RESPONSE_RULES = frozenset({"SCH_ACK_RESPONSE", "TIM_ACK_LATENCY"})
"""Rules that judge a request's synchronous reply: about the target even though the request is ours."""
DEFAULT_WINDOW = 30.0


@dataclass(slots=True)
class _Play:
    """The state of one scenario being played: its variables, and every message in the order seen."""

    harness: "Harness"
    result: ScenarioResult
    variables: dict[str, Any]
    messages: dict[int, Message] = field(default_factory=dict)
    """id(Received) -> its Message, so that a callback is one object wherever it is reported."""
    steps_of: dict[int, StepResult] = field(default_factory=dict)
    """Message seq -> the step it belongs to."""
    seq: int = 0

    def message(self, received: Received) -> Message:
        known = self.messages.get(id(received))
        if known is None:
            self.seq += 1
            known = Message(received.doc, self.result.scenario.id, self.seq, seq=self.seq,
                            received_at=received.received_at, direction="in", endpoint=received.path,
                            signatures=received.signatures, decode_error=received.decode_error,
                            size=len(received.raw))
            self.messages[id(received)] = known
        return known

    def report(self, step: StepResult | None, rule: Rule, violation: Violation, msg: Message,
               path: str | None = None) -> None:
        """A finding of the runner's own; `step` None for a message no step expected."""
        finding = rule.finding(violation, msg, path=path)
        if step is not None:
            step.findings.append(finding)
        self.result.findings.append(finding)


def play(scenario: Scenario, harness: "Harness") -> ScenarioResult:
    """Run one scenario against the target, playing the BAP. Never raises for what the target does."""
    transaction_id = str(uuid.uuid4())
    result = ScenarioResult(scenario, transaction_id, time.time())
    state = _Play(harness, result, {**scenario.variables, "transaction_id": transaction_id,
                                    "bap_id": harness.key.subscriber_id, "bap_uri": harness.callback_url})
    timeout = httpx.Timeout(harness.config.ack_timeout)
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        for index, step in enumerate(scenario.steps):
            outcome = StepResult(index + 1, step.name, step.send, time.time())
            result.steps.append(outcome)
            try:
                go_on = _step(state, step, outcome, client)
            except ConfigError as exc:
                result.error = f"step {index + 1} ({step.name}), {scenario.path}:{step.line}: {exc}"
                go_on = False
            outcome.stopped = time.time()
            harness.progress(result, outcome)
            if not go_on:
                break
    _close(state)
    result.stopped = time.time()
    return result


def _step(state: _Play, step: Step, out: StepResult, client: httpx.Client) -> bool:
    """One step; False when the scenario cannot meaningfully go on."""
    harness, result = state.harness, state.result
    body = build_body(step, state.variables)
    context = body["context"]
    if not isinstance(context, dict):
        raise ConfigError(f"{step.body}: context must be an object")
    owned = {"action": step.send, "bap_id": harness.key.subscriber_id, "bap_uri": harness.callback_url,
             "transaction_id": result.transaction_id, "message_id": str(uuid.uuid4()),
             "timestamp": now_rfc3339()}
    context.update({k: v for k, v in owned.items() if f"context.{k}" not in step.set})
    out.url = harness.url_for(step.send, context)
    raw = encode(body)
    sent_at = datetime.now(timezone.utc)
    reply = post(client, out.url, raw, {"Authorization": signing.sign(raw, harness.key)})
    state.seq += 1
    request = Message(body, result.scenario.id, state.seq, seq=state.seq, received_at=sent_at, direction="out",
                      endpoint=f"/{step.send}", response=reply.body if reply.status is not None else ABSENT,
                      latency=reply.latency, size=len(raw))
    state.steps_of[request.seq] = out
    out.request, out.reply = request, reply
    if reply.error is not None:
        unreachable = reply.error.startswith("unreachable")
        rule = expect_rules.UNREACHABLE if unreachable else timing.NO_ACK
        result.unreachable = result.unreachable or unreachable
        state.report(out, rule, Violation((), f"an ACK/NACK from POST {out.url}", reply.error), request)
        return False
    expect = step.expect
    if expect.outcome != "answered" and reply.ack == "NACK":
        if expect.error_code is not None and reply.error_code != expect.error_code:
            state.report(out, expect_rules.OUTCOME, Violation(("error", "code"), expect.error_code, reply.error_code),
                         request, path="$.error.code (synchronous response)")
        return True
    if reply.ack != "ACK" or expect.outcome == "nacked":
        wanted = "NACK" if expect.outcome != "answered" else "ACK"
        state.report(out, expect_rules.OUTCOME, Violation(("message", "ack", "status"), wanted, _describe(reply)),
                     request, path="$.message.ack.status (synchronous response)")
        return False
    return _callbacks(state, step, out, request, sent_at)


def _callbacks(state: _Play, step: Step, out: StepResult, request: Message, sent_at: datetime) -> bool:
    harness, result, expect = state.harness, state.result, step.expect
    ttl = parse_duration(request.context.get("ttl"))
    window = expect.within.total_seconds() if expect.within else (ttl.total_seconds() if ttl else DEFAULT_WINDOW)
    if harness.config.callback_timeout is not None:
        window = min(window, harness.config.callback_timeout)

    def mine(r: Received) -> bool:
        return r.action == step.callback and not r.claimed and r.received_at >= sent_at

    wanted = expect.count
    ready = (lambda msgs: False) if wanted is None else (lambda msgs: sum(map(mine, msgs)) >= wanted)
    arrived = [r for r in harness.inbox.wait(result.transaction_id, ready, time.monotonic() + window) if mine(r)]
    got = arrived if wanted is None else arrived[:wanted]
    for r in got:
        r.claimed = True
    out.callbacks = [state.message(r) for r in got]
    for msg in out.callbacks:
        state.steps_of[msg.seq] = out
    fewest = expect.min if wanted is None else wanted
    if not got:
        if fewest:
            state.report(out, timing.CALLBACK_MISSING,
                         Violation((), f"{step.callback} within {window:g} s", "no callback"), request)
        return not fewest
    if len(got) < fewest:
        state.report(out, expect_rules.CALLBACK_COUNT,
                     Violation((), f"at least {fewest} × {step.callback}", f"{len(got)}"), request)
    return _judge(state, step, out)


def _judge(state: _Play, step: Step, out: StepResult) -> bool:
    """Choose the callback the step reads, then its assertions, expected error and saved values. False (stop)
    only when later steps cannot be played: no callback fits `choose`, or a value to save is missing. A failed
    assertion is reported and the scenario goes on (docs/scenarios.md)."""
    chosen = out.callbacks[0]
    if step.choose is not None:
        fits = [m for m in out.callbacks if step.choose.failure(m.body, state.variables) is None]
        if not fits:
            state.report(out, expect_rules.ASSERTION,
                         Violation((), f"a {step.callback} where {step.choose.describe(state.variables)}",
                                   f"none of {len(out.callbacks)}"), out.callbacks[0], path=step.choose.path)
            return False
        chosen = fits[0]
    if step.expect.outcome == "refused":
        code = jsonpath.findall("$.error.code", chosen.body)
        if not code or (step.expect.error_code is not None and code[0] != step.expect.error_code):
            state.report(out, expect_rules.OUTCOME,
                         Violation(("error", "code"), step.expect.error_code or "an error", code[0] if code else ABSENT),
                         chosen)
    for assertion in step.asserts:
        failed = assertion.failure(chosen.body, state.variables)
        if failed is not None:
            state.report(out, expect_rules.ASSERTION, Violation((), failed[0], failed[1],
                                                               f"satisfy {assertion.describe(state.variables)}"),
                         chosen, path=assertion.path)
    for name, query in step.save.items():
        values = jsonpath.findall(query, chosen.body)
        if not values:
            state.report(out, expect_rules.SAVE, Violation((), f"a value to save as {name}", ABSENT), chosen, path=query)
            return False
        state.variables[name] = values[0]
    return True


def _close(state: _Play) -> None:
    """After the last step: let stragglers land, then check the whole transaction and report leftovers."""
    harness, result = state.harness, state.result
    if not result.steps or result.steps[0].request is None:
        return
    time.sleep(harness.config.settle)
    ours = {s.request.message_id for s in result.steps if s.request is not None}
    received = harness.inbox.messages(result.transaction_id) + harness.inbox.answering(ours, result.transaction_id)
    for r in received:
        r.claimed = True
    leftovers = [state.message(r) for r in received if id(r) not in state.messages]
    result.unexpected = leftovers
    requests = [s.request for s in result.steps if s.request is not None]
    report = harness.engine.check(requests + [state.message(r) for r in received])
    by_seq = {m.seq: m for m in requests + list(state.messages.values())}
    for finding in report.findings:
        owner = by_seq.get(finding.index or -1)
        if owner is not None and owner.direction == "out" and finding.rule_id not in RESPONSE_RULES:
            result.harness_findings.append(finding)
            continue
        step = state.steps_of.get(finding.index or -1)
        if step is not None:
            step.findings.append(finding)
        result.findings.append(finding)
    nacked = {s.request.message_id for s in result.steps if s.request is not None and s.reply is not None
              and s.reply.ack == "NACK"}
    for msg in leftovers:
        rule = expect_rules.CALLBACK_AFTER_NACK if msg.message_id in nacked else expect_rules.UNCLAIMED
        state.report(None, rule, Violation((), "no such message", msg.action or "a message"), msg)
    step_order = {id(f): s.index for s in result.steps for f in s.findings}
    result.findings.sort(key=lambda f: step_order.get(id(f), len(result.steps) + 1))


def _describe(reply: Reply) -> str:
    """A reply in one line for a finding: status, ACK/NACK and error."""
    ack = reply.ack or "neither ACK nor NACK"
    code = f", error {reply.error_code}" if reply.error_code else ""
    return f"HTTP {reply.status}, {ack}{code}"

