"""The rule catalogue: every check, registered once with its id, severity, title and spec clause.

A rule is a small pure function `check(msg, ctx) -> Iterable[Violation]`. Which messages it applies to
is declared (`actions`, `when`, `envelope`), so the engine can dispatch per action and a rule's body
only says what is wrong. Ids are stable and prefixed by group; a duplicate id is refused at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable, Iterator

from conformance.findings import Severity, Violation
from conformance.messages import ACTIONS, Message
from conformance.transaction import Transaction
from conformance.validation import Outcome, Validation

GROUPS = ("schema", "context", "transaction", "order", "catalog", "layer2")
PREFIX = {"schema": "SCH_", "context": "CTX_", "transaction": "TXN_", "order": "ORD_", "catalog": "CAT_",
          "layer2": "L2_"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Knobs that change what a rule expects, not whether it runs."""

    default_ttl: timedelta = timedelta(seconds=30)
    """Used for the ttl rule when a request carries no ttl."""


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


def has_core_errors(msg: Message, ctx: CheckContext) -> bool:
    return bool(ctx.outcome.core)


def has_layer2_errors(msg: Message, ctx: CheckContext) -> bool:
    return bool(ctx.outcome.layer2)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    group: str
    severity: Severity
    title: str
    clause: str
    must: str
    """The predicate of the finding's sentence: `<path> must <must>`."""
    check: Check = field(repr=False)
    actions: frozenset[str] = ACTIONS
    when: Condition | None = field(default=None, repr=False)
    envelope: bool = False
    """Runs on every input record, even one that is not a usable Beckn message."""

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "group": self.group, "severity": self.severity.value, "title": self.title,
                "clause": self.clause, "actions": sorted(self.actions) if self.actions != ACTIONS else "all"}


_RULES: dict[str, Rule] = {}


def rule(id: str, *, group: str, severity: Severity = Severity.ERROR, title: str, clause: str, must: str,
         actions: Iterable[str] | None = None, when: Condition | None = None,
         envelope: bool = False) -> Callable[[Check], Check]:
    """Register a check in the catalogue under a stable id."""
    if group not in GROUPS or not id.startswith(PREFIX[group]):
        raise ValueError(f"rule {id}: group {group!r} wants the prefix {PREFIX.get(group)}")
    chosen = frozenset(actions) if actions is not None else ACTIONS
    if not chosen <= ACTIONS:
        raise ValueError(f"rule {id}: unknown actions {sorted(chosen - ACTIONS)}")

    def register(check: Check) -> Check:
        add(Rule(id, group, severity, title, clause, must, check, chosen, when, envelope))
        return check

    return register


def add(new: Rule) -> None:
    if new.id in _RULES:
        raise ValueError(f"rule id {new.id} is registered twice")
    _RULES[new.id] = new


def registered() -> Iterator[Rule]:
    """The built-in rules, in registration order (group by group)."""
    return iter(list(_RULES.values()))
