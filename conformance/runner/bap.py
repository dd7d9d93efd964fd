"""Playing the BAP: send each step's request, check the synchronous reply, wait for the callbacks, assert.

The runner adds what only it knows (what each step expected) to what the rule engine finds in the whole
transaction (runner/transcript.py).
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import jsonpath

from conformance import signing
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Violation
from conformance.messages import Message, parse_duration
from conformance.network.participant import now_rfc3339
from conformance.rules import scenario as expect_rules
from conformance.rules import timing
from conformance.runner.results import ScenarioResult, StepResult
from conformance.runner.transcript import Play, assert_and_save, close, pick, play_steps, window
from conformance.scenario import Scenario, Step, build_body
from conformance.transport import Sender, encode

if TYPE_CHECKING:
    from conformance.runner import Harness

DEFAULT_WINDOW = 30.0
"""Seconds to wait for a callback to a request that carries no ttl."""


def play(scenario: Scenario, harness: "Harness") -> ScenarioResult:
    """Run one scenario against the target, playing the BAP. Never raises for what the target does."""
    transaction_id = str(uuid.uuid4())
    result = ScenarioResult(scenario, transaction_id, time.time(), policy=harness.config.policy)
    state = Play(harness, result, {**scenario.variables, **harness.config.variables, "transaction_id": transaction_id,
                                    "bap_id": harness.key.subscriber_id, "bap_uri": harness.callback_url},
                 pinned=frozenset(harness.config.variables))
    def sent() -> list[Message]:
        return [s.request for s in result.steps if s.request is not None]

    play_steps(state, _step, sent)
    close(state, sent)
    result.stopped = time.time()
    return result


def _step(state: Play, step: Step, out: StepResult, client: Sender) -> bool:
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
    unanswerable = harness.off_network(step.send, out.url, context)
    if unanswerable is not None:
        result.skipped = unanswerable
        return False
    down = harness.health.down_since(out.url)
    if down is not None:
        result.error = f"not run: {out.url} has not answered since {down}"
        return False
    raw = encode(body)
    sent_at = datetime.now(timezone.utc)
    reply = harness.post(client, out.url, raw, {"Authorization": signing.sign(raw, harness.key)})
    seq = state.next_seq()
    request = Message(body, result.scenario.id, seq, seq=seq, received_at=sent_at, direction="out",
                      endpoint=f"/{step.send}", response=reply.body if reply.status is not None else ABSENT,
                      latency=reply.latency, size=len(raw))
    state.steps_of[request.seq] = out
    out.request, out.reply = request, reply
    if reply.error is not None:
        harness.health.judge(result, out, request, reply, state.where(out, request))
        return False
    if reply.status == 401:
        result.setup_error = harness.signature_refused(out.url, reply)
        return False
    expect = step.expect
    if reply.ack == "NACK" and _unsupported(state, step, reply.error_code):
        return False
    if expect.outcome != "answered" and reply.ack == "NACK":
        if expect.error_code is not None and reply.error_code != expect.error_code:
            state.report(out, expect_rules.OUTCOME, Violation(("error", "code"), expect.error_code, reply.error_code),
                         request, path="$.error.code (synchronous response)")
        return True
    if reply.ack != "ACK" or expect.outcome == "nacked":
        wanted = "NACK" if expect.outcome != "answered" else "ACK"
        state.report(out, expect_rules.OUTCOME, Violation(("message", "ack", "status"), wanted, reply.describe()),
                     request, path="$.message.ack.status (synchronous response)")
        return False
    return _callbacks(state, step, out, request, sent_at)


def _callbacks(state: Play, step: Step, out: StepResult, request: Message, sent_at: datetime) -> bool:
    """Wait for the step's callbacks: `count` of them, or (`all`) every one until the window closes or every
    sender that can answer has; the window is the request's ttl unless the step or the run says otherwise."""
    harness, result, expect = state.harness, state.result, step.expect
    seconds, clause = window(state, step, DEFAULT_WINDOW, parse_duration(request.context.get("ttl")))
    wanted = expect.count
    senders = harness.answerers(step.send, out.url or "", request.context) if wanted is None else None
    got = harness.inbox.collect(result.transaction_id, step.callback, sent_at, wanted, time.monotonic() + seconds,
                                senders=senders)
    for r in got:
        r.claimed = True
        harness.timed_callback((r.received_at - sent_at).total_seconds())
    out.callbacks = [state.message(r) for r in got]
    for msg in out.callbacks:
        state.steps_of[msg.seq] = out
    fewest = expect.min if wanted is None else wanted
    if not got:
        if fewest:
            state.report(out, timing.CALLBACK_MISSING,
                         Violation((), f"{step.callback} within {seconds:g} s", "no callback"), request, clause=clause)
        return not fewest
    if len(got) < fewest:
        state.report(out, expect_rules.CALLBACK_COUNT,
                     Violation((), f"at least {fewest} × {step.callback}", f"{len(got)}"), request)
    return _judge(state, step, out)


def _judge(state: Play, step: Step, out: StepResult) -> bool:
    """The callback the step reads, the error a refused step expects in it, then its assertions and saves."""
    chosen = pick(state, step, out, [(m, m.body) for m in out.callbacks], lambda doc: doc)
    if chosen is None:
        return False
    msg, body = chosen
    if _unsupported(state, step, next(iter(jsonpath.findall("$.error.code", body)), None)):
        return False
    if step.expect.outcome == "refused":
        code = jsonpath.findall("$.error.code", body)
        if not code or (step.expect.error_code is not None and code[0] != step.expect.error_code):
            state.report(out, expect_rules.OUTCOME,
                         Violation(("error", "code"), step.expect.error_code or "an error", code[0] if code else ABSENT),
                         msg)
    return assert_and_save(state, step, out, msg, body)


def _unsupported(state: Play, step: Step, code: Any) -> bool:
    """The target declined the step with a code the step lists as `unsupported`: the scenario does not apply to it
    (skipped, saying so), as when it publishes no offer the scenario needs."""
    if code is None or code not in step.expect.unsupported:
        return False
    state.result.skipped = f"the target does not offer {step.send} (error {code})"
    return True
