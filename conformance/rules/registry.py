"""The rule catalogue: every check, registered once with its id, severity, title and spec clause.

A rule is a small pure function `check(msg, ctx) -> Iterable[Violation]`. Which messages it applies to
is declared (`actions`, `when`, `envelope`), so the engine can dispatch per action and a rule's body
only says what is wrong. Ids are stable and prefixed by group; a duplicate id is refused at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator

from conformance.findings import ABSENT, Finding, Prose, Severity, Violation, json_path
from conformance.messages import ACTIONS, Message
from conformance.transaction import Transaction
from conformance.validation import Outcome, Validation

GROUPS = ("schema", "context", "transaction", "order", "catalog", "layer2", "signature", "timing", "scenario",
          "probe")
PREFIX = {"schema": "SCH_", "context": "CTX_", "transaction": "TXN_", "order": "ORD_", "catalog": "CAT_",
          "layer2": "L2_", "signature": "SIG_", "timing": "TIM_", "scenario": "RUN_", "probe": "PRB_"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Knobs that change what a rule expects, not whether it runs."""

    default_ttl: timedelta = timedelta(seconds=30)
    """Used for the ttl rule when a request carries no ttl."""
    ack_latency: timedelta = timedelta(seconds=1)
    """A synchronous ACK/NACK slower than this gets a warning: Beckn answers at once and works later."""


@dataclass(slots=True)
class CheckContext:
    """Everything a rule may consult besides the message itself."""

    txn: Transaction
    validation: Validation
    outcome: Outcome
    """The message's schema and Layer-2 validation, computed once before its rules run."""
    settings: Settings = field(default_factory=Settings)

    @property
    def request(self) -> Message:
        """The request the current callback answers. Rules using it declare `when=` a pairing exists."""
        pairing = self.txn.pairing
        if pairing is None or pairing.request is None:
            raise LookupError("the current message answers no request")
        return pairing.request

    @property
    def first(self) -> Message:
        """The transaction's first message. Rules using it declare `when=` there is one."""
        if self.txn.first is None:
            raise LookupError("the current message is the transaction's first")
        return self.txn.first


Check = Callable[[Message, CheckContext], Iterable[Violation]]
Condition = Callable[[Message, CheckContext], bool]


@dataclass(frozen=True, slots=True)
class Gate:
    """A condition many rules share, or one that is false for nearly every message (a clean offline message has
    no schema errors, signatures, latency or response). A rule declares it as its `when`; the engine asks each
    gate once per message and does not ask the rules behind a closed one at all. A gate reads what is known
    before the message's rules run (the message, its validation, the transaction so far), like any `when`."""

    name: str
    test: Condition = field(repr=False)

    def __call__(self, msg: Message, ctx: CheckContext) -> bool:
        return self.test(msg, ctx)


has_core_errors = Gate("core schema errors", lambda msg, ctx: bool(ctx.outcome.core))
has_layer2_errors = Gate("Layer-2 errors", lambda msg, ctx: bool(ctx.outcome.layer2))
SIGNED = Gate("signature checks recorded", lambda msg, ctx: bool(msg.signatures))
TIMED = Gate("an ACK latency recorded", lambda msg, ctx: msg.latency is not None)
ANSWERED = Gate("a synchronous response captured", lambda msg, ctx: msg.response is not ABSENT)
CAPTURE_ISSUES = Gate("unusable capture fields", lambda msg, ctx: bool(msg.capture_issues))
POSTED_TO = Gate("an endpoint captured", lambda msg, ctx: msg.endpoint is not None)
CONTINUES = Gate("an earlier message in the transaction", lambda msg, ctx: ctx.txn.first is not None)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    group: str
    severity: Severity
    title: str
    clause: str
    must: str
    """The predicate of the finding's sentence: `<path> must <must>`."""
    check: Check | None = field(repr=False)
    """None for a rule the live runner reports itself (a missing callback has no message to check)."""
    actions: frozenset[str] = ACTIONS
    when: Condition | None = field(default=None, repr=False)
    envelope: bool = False
    """Runs on every input record, even one that is not a usable Beckn message."""

    @property
    def live_only(self) -> bool:
        """Whether only a live run can break it: it reads what a capture does not hold (signature checks,
        latencies) or is reported by the runner."""
        return self.check is None or self.group in ("signature", "timing")

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "group": self.group, "severity": self.severity.value, "title": self.title,
                "clause": self.clause, "actions": sorted(self.actions) if self.actions != ACTIONS else "all",
                "reported_by": "runner" if self.check is None else "engine", "live_only": self.live_only}

    def finding(self, v: Violation, msg: Message | None = None, *, path: str | None = None, clause: str | None = None,
                **where: Any) -> Finding:
        """The finding for one violation; the message (when there is one) says where it happened. `path`
        overrides the violation's when the runner knows it only as text (a scenario's JSONPath); `clause` the
        rule's when what was broken is more particular (the assertion's own clause, the window that ran out)."""
        if msg is not None:
            where = {"action": msg.action or _text(msg.context.get("action")), "transaction_id": msg.transaction_id,
                     "message_id": msg.message_id, "source": msg.source, "index": msg.index, **where}
        expected, found = v.expected, v.found
        if self.check is None:  # the runner's own rules describe what they expected and found, in words
            expected, found = (Prose(x) if isinstance(x, str) else x for x in (expected, found))
        return Finding(rule_id=self.id, severity=self.severity, title=self.title,
                       clause=clause or v.clause or self.clause, path=path or json_path(v.path),
                       must=v.must or self.must, expected=expected, found=found, **where)


_RULES: dict[str, Rule] = {}


def rule(id: str, *, group: str, severity: Severity = Severity.ERROR, title: str, clause: str, must: str,
         actions: Iterable[str] | None = None, when: Condition | None = None,
         envelope: bool = False) -> Callable[[Check], Check]:
    """Register a check in the catalogue under a stable id."""
    _prefix(id, group)
    chosen = frozenset(actions) if actions is not None else ACTIONS
    if not chosen <= ACTIONS:
        raise ValueError(f"rule {id}: unknown actions {sorted(chosen - ACTIONS)}")

    def register(check: Check) -> Check:
        add(Rule(id, group, severity, title, clause, must, check, chosen, when, envelope))
        return check

    return register


def reported(id: str, *, group: str, severity: Severity = Severity.ERROR, title: str, clause: str,
             must: str) -> Rule:
    """Register a rule the live runner reports itself (an expectation of a scenario, an unreachable target)."""
    _prefix(id, group)
    new = Rule(id, group, severity, title, clause, must, None, frozenset())
    add(new)
    return new


def _prefix(id: str, group: str) -> None:
    if group not in GROUPS or not id.startswith(PREFIX[group]):
        raise ValueError(f"rule {id}: group {group!r} wants the prefix {PREFIX.get(group)}")


def add(new: Rule) -> None:
    if new.id in _RULES:
        raise ValueError(f"rule id {new.id} is registered twice")
    _RULES[new.id] = new


def registered() -> Iterator[Rule]:
    """The built-in rules, in registration order (group by group)."""
    return iter(list(_RULES.values()))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
