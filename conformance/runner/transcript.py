"""What both roles share: one scenario's messages in the order seen, and the check of the whole transaction.

Whichever part the harness plays, the transaction is the harness's messages (direction "out": its requests as
BAP, its callbacks as BPP) and the target's (direction "in"). When the steps are done it goes through the rule
engine exactly as a capture would in `deg-conformance validate`. Findings on the harness's own messages are
kept apart, except those that judge the target's synchronous reply to them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import httpx
import jsonpath

from conformance.errors import ConfigError
from conformance.findings import ABSENT, Violation
from conformance.messages import Message, dig
from conformance.rules import scenario as expect_rules
from conformance.rules.registry import Rule
from conformance.runner.listener import Received
from conformance.runner.results import ScenarioResult, StepResult
from conformance.scenario import Step

if TYPE_CHECKING:
    from conformance.runner import Harness

RESPONSE_RULES = frozenset({"SCH_ACK_RESPONSE", "TIM_ACK_LATENCY"})
"""Rules that judge a message's synchronous reply, so the side that replied: the target for the harness's
messages, the harness for the target's."""


@dataclass(slots=True)
class Play:
    """The state of one scenario being played: its variables, and every message in the order seen."""

    harness: "Harness"
    result: ScenarioResult
    variables: dict[str, Any]
    messages: dict[int, Message] = field(default_factory=dict)
    """id(Received) -> its Message, so that a message is one object wherever it is reported."""
    steps_of: dict[int, StepResult] = field(default_factory=dict)
    """Message seq -> the step it belongs to."""
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def message(self, received: Received, direction: str = "in") -> Message:
        """The Message for a POST between target and harness, with the reply it got, so that the report shows
        both (the response rules judge the replier: see RESPONSE_RULES)."""
        known = self.messages.get(id(received))
        if known is None:
            known = self.messages[id(received)] = received.message(self.result.scenario.id, self.next_seq(), direction)
        return known

    def report(self, step: StepResult | None, rule: Rule, violation: Violation, msg: Message,
               path: str | None = None) -> None:
        """A finding of the runner's own; `step` None for a message no step expected."""
        finding = rule.finding(violation, msg, path=path)
        if step is not None:
            step.findings.append(finding)
        self.result.findings.append(finding)


StepPlayer = Callable[[Play, Step, StepResult, httpx.Client], bool]
"""How a role plays one step; False when the scenario cannot go on."""


def play_steps(state: Play, play_step: StepPlayer) -> None:
    """Every step in order, each reported as it ends, until one says the scenario cannot go on. A mistake of
    the scenario's own (a ConfigError) stops it as broken, with the file and line."""
    harness, result = state.harness, state.result
    scenario = result.scenario
    harness.transactions.add(result.transaction_id)
    with httpx.Client(timeout=httpx.Timeout(harness.config.ack_timeout), trust_env=False) as client:
        for index, step in enumerate(scenario.steps):
            outcome = StepResult(index + 1, step.name, step.send, time.time())
            result.steps.append(outcome)
            try:
                go_on = play_step(state, step, outcome, client)
            except ConfigError as exc:
                result.error = f"step {index + 1} ({step.name}), {scenario.path}:{step.line}: {exc}"
                go_on = False
            outcome.stopped = time.time()
            harness.progress(result, outcome)
            if not go_on:
                return


Candidate = tuple[Message, Any]
"""A message a step may read, and the document its JSONPaths are evaluated on."""


def choose(state: Play, step: Step, out: StepResult, candidates: list[Candidate]) -> Candidate | None:
    """The candidate the step's assertions and saves read: the first that fits `choose` (the first of all when
    there is no `choose`). None, with a finding, when none fits: later steps cannot be played."""
    if step.choose is None:
        return candidates[0]
    fits = [c for c in candidates if step.choose.failure(c[1], state.variables) is None]
    if not fits:
        state.report(out, expect_rules.ASSERTION,
                     Violation((), f"a {candidates[0][0].action} where {step.choose.describe(state.variables)}",
                               f"none of {len(candidates)}"), candidates[0][0], path=step.choose.path)
        return None
    return fits[0]


def assert_and_save(state: Play, step: Step, out: StepResult, msg: Message, doc: Any) -> bool:
    """The step's assertions, then its saves. False (stop) only when a value to save is missing, since later
    steps need it; a failed assertion is reported and the scenario goes on (docs/scenarios.md)."""
    for assertion in step.asserts:
        failed = assertion.failure(doc, state.variables)
        if failed is not None:
            state.report(out, expect_rules.ASSERTION, Violation((), failed[0], failed[1],
                                                               f"satisfy {assertion.describe(state.variables)}"),
                         msg, path=assertion.path)
    for name, query in step.save.items():
        values = jsonpath.findall(query, doc)
        if not values:
            state.report(out, expect_rules.SAVE, Violation((), f"a value to save as {name}", ABSENT), msg, path=query)
            return False
        state.variables[name] = values[0]
    return True


def close(state: Play, sent_by_harness: Callable[[], list[Message]]) -> None:
    """After the last step: let stragglers land, then check the whole transaction and report leftovers.
    `sent_by_harness` gives every message the harness sent in the transaction, once the stragglers are in."""
    harness, result = state.harness, state.result
    time.sleep(harness.config.settle)
    sent = sent_by_harness()
    ours = {m.message_id for m in sent}
    received = harness.inbox.messages(result.transaction_id) + harness.inbox.answering(ours, result.transaction_id)
    if not sent and not received:
        return  # nothing crossed the wire in this transaction
    for r in received:
        r.claimed = True
    leftovers = [state.message(r) for r in received if id(r) not in state.messages]
    result.unexpected = leftovers
    transcript = sorted({id(m): m for m in sent + [state.message(r) for r in received]}.values(), key=lambda m: m.seq)
    report = harness.engine.check(transcript)
    by_seq = {m.seq: m for m in transcript}
    for finding in report.findings:
        owner = by_seq.get(finding.index or -1)
        if owner is not None and (owner.direction == "out") != (finding.rule_id in RESPONSE_RULES):
            result.harness_findings.append(finding)  # on the harness's message, or on its reply to the target's
            continue
        step = state.steps_of.get(finding.index or -1)
        if step is not None:
            step.findings.append(finding)
        result.findings.append(finding)
    nacked = {m.message_id for m in sent if dig(m.response, "message", "ack", "status") == "NACK"}
    for msg in leftovers:
        rule = expect_rules.CALLBACK_AFTER_NACK if msg.message_id in nacked else expect_rules.UNCLAIMED
        state.report(None, rule, Violation((), "no such message", msg.action or "a message"), msg)
    step_order = {id(f): s.index for s in result.steps for f in s.findings}
    result.findings.sort(key=lambda f: step_order.get(id(f), len(result.steps) + 1))
