"""What both roles share: one scenario's messages in the order seen, and the check of the whole transaction.

Whichever part the harness plays, the transaction is the harness's messages (direction "out": its requests as
BAP, its callbacks as BPP) and the target's (direction "in"). When the steps are done it goes through the rule
engine exactly as a capture would in `deg-conformance validate`. Findings on the harness's own messages are
kept apart, except those that judge the target's synchronous reply to them.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jsonpath

from conformance import offers
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Finding, Violation
from conformance.messages import UNCHECKABLE, Message, dig
from conformance.rules import RESPONSE_RULES
from conformance.rules import scenario as expect_rules
from conformance.rules.registry import Rule
from conformance.runner.listener import Received
from conformance.runner.results import ScenarioResult, StepResult
from conformance.scenario import Scenario, Step
from conformance.transport import Sender

if TYPE_CHECKING:
    from conformance.runner import Harness


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
    pinned: frozenset[str] = frozenset()
    """Variables set by whoever runs the scenario (--var, --vars): an offer must agree with them."""
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
               path: str | None = None, clause: str | None = None, line: int | None = None) -> None:
        """A finding of the runner's own; `step` None for a message no step expected; `line` the YAML line it
        comes from when it is not the step's (an assertion's)."""
        self.result.report(rule.finding(violation, msg, path=path, clause=clause), step, line=line)

    def where(self, step: StepResult, msg: Message) -> str:
        """A step as a finding elsewhere names it: the scenario, the step and the message it sent."""
        return f"{self.result.scenario.id} step {step.index} ({step.action}, message_id {msg.message_id})"


StepPlayer = Callable[[Play, Step, StepResult, Sender], bool]
"""How a role plays one step; False when the scenario cannot go on."""
Sent = Callable[[], list[Message]]
"""Every message the harness has sent in the scenario's transaction so far."""


def play_steps(state: Play, play_step: StepPlayer, sent_by_harness: Sent) -> None:
    """Every step in order, each reported as it ends (with what the rule catalogue finds on its messages by
    then), until one says the scenario cannot go on. A mistake of the scenario's own (a ConfigError) stops it as
    broken, with the file and line."""
    harness, result = state.harness, state.result
    scenario = result.scenario
    harness.transactions.add(result.transaction_id)
    with harness.client() as client:
        for index, step in enumerate(scenario.steps):
            if harness.interrupted:
                result.error = f"interrupted (Ctrl-C) before step {index + 1} ({step.name})"
                return
            outcome = StepResult(index + 1, step.name, step.send, time.time())
            result.steps.append(outcome)
            try:
                go_on = play_step(state, step, outcome, client)
            except ConfigError as exc:
                result.error = f"step {index + 1} ({step.name}), {scenario.path}:{step.line}: {exc}"
                go_on = False
            outcome.stopped = time.time()
            if harness.interrupted and result.error is None:
                result.error = f"interrupted (Ctrl-C) during step {index + 1} ({step.name})"
                go_on = False
            if harness.watched:  # the live line's preview: a check of the transaction so far, for nobody else
                outcome.previewed = _preview(state, outcome, sent_by_harness())
            harness.progress(result, outcome)
            if not go_on:
                return


def _preview(state: Play, step: StepResult, sent: list[Message]) -> list[Finding]:
    """The catalogue's findings against the target on `step`'s messages, from the transaction so far: rules see
    only the past, so these are the findings the end-of-run check gives them, unless something comes late."""
    transcript = sorted({id(m): m for m in sent + list(state.messages.values())}.values(), key=lambda m: m.seq)
    mine = {seq for seq, owner in state.steps_of.items() if owner is step}
    by_seq = {m.seq: m for m in transcript}
    scenario = state.result.scenario.id
    return [judged for f in state.harness.engine.check(transcript).findings
            if f.index in mine and _against_target(by_seq[f.index], f)
            and (judged := state.harness.config.policy.judge(f, scenario)) is not None]


def _against_target(msg: Message, finding: Finding) -> bool:
    """Whether a finding counts against the target: on its message, or on its reply to the harness's."""
    return (msg.direction == "out") == (finding.rule_id in RESPONSE_RULES)


def window(state: Play, step: Step, default: float, ttl: timedelta | None) -> tuple[float, str | None]:
    """How long a step waits for what it expects, and the clause a finding about that wait cites (None: the
    rule's own, the ttl clause). The request's ttl (`ttl`) is the spec's bound; a step's `within` replaces it
    for the reason the scenario states; `--callback-timeout` caps either, by the choice of whoever runs."""
    expect = step.expect
    if expect.within is not None:
        seconds = expect.within.total_seconds()
        clause: str | None = (f"{state.result.scenario.path}:{step.line}: expect.within {seconds:g} s "
                              f"({expect.reason or 'the scenario gives no reason'})")
    elif ttl is not None:
        seconds, clause = ttl.total_seconds(), None
    else:
        seconds, clause = default, f"no ttl in the request: the harness waits {default:g} s"
    cap = state.harness.config.callback_timeout
    if cap is not None and cap < seconds:
        seconds, clause = cap, f"the run's --callback-timeout of {cap:g} s (a cap chosen by whoever ran the harness)"
    return seconds, clause


Candidate = tuple[Message, Any]
"""A message a step may read, and the document its JSONPaths are evaluated on."""


def pick(state: Play, step: Step, out: StepResult, candidates: list[Candidate],
         catalog_of: Callable[[Any], Any]) -> Candidate | None:
    """The candidate the step's assertions and saves read: the one holding the first offer that fits `offer`
    (its values saved), else the first that fits `choose`, else the first of all. None when none fits: with
    `offer` the scenario does not apply to this target (skipped, saying why; broken when the offer was pinned by
    whoever runs the scenario), with `choose` it is a finding. `catalog_of` finds the on_search in a candidate's
    document."""
    if step.offer is not None:
        return _offer(state, step, candidates, catalog_of)
    if step.choose is None:
        return candidates[0]
    fits = [c for c in candidates if step.choose.failure(c[1], state.variables) is None]
    if not fits:
        state.report(out, expect_rules.ASSERTION,
                     Violation((), f"a {candidates[0][0].action} where {step.choose.describe(state.variables)}",
                               f"none of {len(candidates)}"), candidates[0][0], path=step.choose.where(state.variables),
                     clause=step.choose.clause, line=step.choose.line)
        return None
    return fits[0]


def _offer(state: Play, step: Step, candidates: list[Candidate], catalog_of: Callable[[Any], Any]) -> Candidate | None:
    assert step.offer is not None
    pinned = {name: state.variables[name] for name in step.offer.save if name in state.pinned}
    seen = 0
    for candidate in candidates:
        for view in offers.views(catalog_of(candidate[1])):
            seen += 1
            if any(a.failure(view, state.variables) is not None for a in step.offer.where):
                continue
            found = {name: jsonpath.findall(query, view) for name, query in step.offer.save.items()}
            if all(found.values()) and all(found[name][0] == value for name, value in pinned.items()):
                state.variables.update({name: values[0] for name, values in found.items()})
                return candidate
    wanted = " and ".join(a.describe(state.variables) for a in step.offer.where) or "any offer"
    where = f"{seen} offer(s) in {len(candidates)} catalog(s)"
    if pinned:
        state.result.error = (f"no offer where {wanted} has the pinned {', '.join(f'{k}={v!r}' for k, v in pinned.items())} "
                              f"({where}): pin values the target publishes, or drop the pin")
    else:
        state.result.skipped = f"the target publishes no offer where {wanted} ({where})"
    return None


def assert_and_save(state: Play, step: Step, out: StepResult, msg: Message, doc: Any) -> bool:
    """The step's assertions, then its saves. False (stop) only when a value to save is missing, since later
    steps need it; a failed assertion is reported and the scenario goes on (docs/scenarios.md)."""
    for assertion in step.asserts:
        failed = assertion.failure(doc, state.variables)
        if failed is not None:
            state.report(out, expect_rules.ASSERTION, Violation((), failed[0], failed[1],
                                                               f"satisfy {assertion.describe(state.variables)}"),
                         msg, path=assertion.where(state.variables), clause=assertion.clause, line=assertion.line)
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
    harness.pause(harness.config.settle)
    sent = sent_by_harness()
    ours = {m.message_id for m in sent}
    received = harness.inbox.messages(result.transaction_id) + harness.inbox.answering(ours, result.transaction_id)
    if not sent and not received:
        return  # nothing crossed the wire in this transaction
    for r in received:
        r.claimed = True
        copied = next((o for o in received if id(o) in state.messages and r.relays(o)), None)
        if id(r) not in state.messages and copied is not None:  # arrived after its step had taken the first copy
            state.messages[id(r)] = state.messages[id(copied)]
    leftovers = [state.message(r) for r in received if id(r) not in state.messages]
    result.unexpected = leftovers
    transcript = sorted({id(m): m for m in sent + [state.message(r) for r in received]}.values(), key=lambda m: m.seq)
    unchecked = [c.detail for m in transcript for c in m.signatures if c.reason == UNCHECKABLE]
    if unchecked and result.setup_error is None:
        result.setup_error = (f"{len(unchecked)} signature(s) could not be checked: {unchecked[0]}. Check --registry "
                              "(and --registry-type) and that the registry is up")
    report = harness.engine.check(transcript)
    by_seq = {m.seq: m for m in transcript}
    for finding in report.findings:
        owner = by_seq.get(finding.index or -1)
        step = state.steps_of.get(finding.index or -1)
        if owner is not None and not _against_target(owner, finding):
            # on the harness's message, or on its reply to the target's
            result.harness_findings.append(result.locate(finding, step))
            continue
        result.report(finding, step)
    nacked = {m.message_id for m in sent if dig(m.response, "message", "ack", "status") == "NACK"}
    for msg in leftovers:
        rule = expect_rules.CALLBACK_AFTER_NACK if msg.message_id in nacked else expect_rules.UNCLAIMED
        state.report(None, rule, Violation((), "no such message", msg.action or "a message"), msg)
    step_order = {id(f): s.index for s in result.steps for f in s.findings}
    result.findings.sort(key=lambda f: step_order.get(id(f), len(result.steps) + 1))


def unsolicited(harness: "Harness", strays: list[Received], judged: list[ScenarioResult]) -> ScenarioResult | None:
    """What the target sent that no scenario took, judged as a report entry of its own: a message for a
    transaction the harness never started goes through the catalogue (a callback there is TXN_ORPHAN_CALLBACK,
    an error against its sender); one that came after its scenario was judged is a warning (RUN_UNCLAIMED), and
    is checked with the scenario's transaction before it (a duplicate callback is one however late it comes)."""
    # A search the harness's own gateway relays to each of its BPPs is one request: a copy arriving after its
    # scenario was judged is that request again, already in the report, and nothing the BAP did twice.
    strays = [r for r in strays if not any(other.claimed and r.relays(other)
                                           for other in harness.inbox.messages(r.transaction_id))]
    if not strays:
        return None
    result = ScenarioResult(Scenario(name="Messages for no scenario", path=Path("run") / "unsolicited-messages",
                                     steps=(), description="What the target sent that no scenario asked for.",
                                     tags=("unsolicited",), role=harness.config.role), "", time.time())
    state = Play(harness, result, {})
    orphans = [state.message(r) for r in strays if r.transaction_id not in harness.transactions]
    for finding in harness.engine.check(orphans).findings:
        result.report(finding)
    owners = {s.transaction_id: s for s in judged}
    late: list[Message] = []
    for tid, arrived in itertools.groupby(sorted((r for r in strays if r.transaction_id in harness.transactions),
                                                 key=lambda r: str(r.transaction_id)), lambda r: r.transaction_id):
        owner = owners.get(str(tid))
        before = owner.messages() if owner is not None else []
        seq = max((m.seq for m in before), default=0)
        mine = {m.seq: m for m in (r.message(result.scenario.id, seq + n) for n, r in enumerate(arrived, 1))}
        for finding in harness.engine.check([*before, *mine.values()]).findings:
            if finding.index in mine:  # the harness's own reply to a late message is not the target's doing
                if _against_target(mine[finding.index], finding):
                    result.report(finding)
                else:
                    result.harness_findings.append(finding)
        late += mine.values()
    for msg in late:
        state.report(None, expect_rules.UNCLAIMED, Violation(
            (), "no such message", f"{msg.action or 'a message'} after its scenario was judged"), msg)
    result.unexpected = orphans + late
    result.stopped = time.time()
    return result
