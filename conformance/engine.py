"""The rule engine: groups captured messages into transactions, walks them in order, applies every rule.

The CLI, the pytest plugin and (later) the live runner all call `Engine.check`, so a finding means the
same thing wherever it is produced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from conformance._perf import paused_gc
from conformance.findings import Finding, Severity
from conformance.layer2 import Layer2, Layer2Pack
from conformance.messages import Message
from conformance.rules import CheckContext, Rule, Settings, catalogue
from conformance.rules.registry import Condition, Gate
from conformance.schemas import SchemaSet
from conformance.transaction import Transaction, group
from conformance.validation import UNCHECKED, Validation

Progress = Callable[[int], None]
STANDALONE_GROUPS = frozenset({"schema", "context", "catalog", "layer2"})


@dataclass(slots=True)
class Report:
    """The outcome of checking a transcript: every finding, in message order, and what was checked."""

    findings: list[Finding]
    messages: int
    transactions: int
    rules: list[Rule] = field(repr=False)

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)

    @property
    def passed(self) -> bool:
        return self.errors == 0


class Engine:
    """Applies the catalogue to messages. Build one per configuration and reuse it: schemas compile once."""

    def __init__(self, *, schemas: SchemaSet | None = None, layer2: Layer2 | None = None,
                 settings: Settings | None = None) -> None:
        self.schemas = schemas or SchemaSet.builtin()
        self.layer2 = layer2 or Layer2(self.schemas)
        self.settings = settings or Settings()
        self.validation = Validation(self.schemas, self.layer2)
        self._packs: list[Layer2Pack] = []
        self._index_rules(self.layer2.packs())
        self.evaluated: set[tuple[str, str]] | None = None
        """Coverage (conformance/coverage.py) sets a set here to learn which rules were applied: (rule id, action)
        of each rule whose `when` held on a message of its action. None (the default) records nothing."""

    def _index_rules(self, packs: Iterable[Layer2Pack]) -> None:
        self._packs.extend(p for p in packs if p not in self._packs)
        self.rules = catalogue(self._packs)
        self._groups = {r.id: r.group for r in self.rules}
        self._envelope = _Plans([r for r in self.rules if r.envelope])
        by_action: dict[str, list[Rule]] = {}
        for r in self.rules:
            if not r.envelope:
                for action in r.actions:
                    by_action.setdefault(action, []).append(r)
        self._by_action = {action: _Plans(rules) for action, rules in by_action.items()}

    def check_alone(self, msg: Message) -> list[Finding]:
        """What a receiver can judge of one message on arrival: the rules that need no transaction history
        (schema, context, catalog, Layer 2). The reference network admits messages with this."""
        return [f for f in self.check([msg]).findings if self._groups[f.rule_id] in STANDALONE_GROUPS]

    def check(self, messages: Sequence[Message], progress: Progress | None = None) -> Report:
        findings: list[Finding] = []
        usable = []
        with paused_gc(len(messages)):
            for msg in messages:
                if msg.usable:
                    usable.append(msg)
                else:
                    findings.extend(self.check_unusable(msg))
            transactions = group(usable)
            done = 0
            for txn in transactions:
                findings.extend(self.check_transaction(txn))
                done += len(txn.messages)
                if progress is not None and done // 1000 > (done - len(txn.messages)) // 1000:
                    progress(done)
        return Report(findings, len(messages), len(transactions), self.rules)

    def check_unusable(self, msg: Message) -> list[Finding]:
        """A record that is not a usable Beckn message: only the envelope rules (what it is instead) apply."""
        alone = CheckContext(Transaction(None, [msg]), self.validation, UNCHECKED, self.settings)
        return self._apply(self._envelope, msg, alone)

    def check_transaction(self, txn: Transaction) -> list[Finding]:
        """Every message of one transaction, in its order, each seeing only the messages before it."""
        out: list[Finding] = []
        for msg in txn.messages:
            txn.enter(msg)
            outcome = self.validation.outcome(msg)
            if outcome.pack is not None and outcome.pack not in self._packs:
                self._index_rules([outcome.pack])
            ctx = CheckContext(txn, self.validation, outcome, self.settings)
            plans = self._by_action.get(msg.action or "")
            if plans is not None:
                out.extend(self._apply(plans, msg, ctx))
                if self.evaluated is not None:
                    self._record(plans.rules, msg, ctx, self.evaluated)
            txn.absorb(msg)
        return out

    @staticmethod
    def _record(rules: list[Rule], msg: Message, ctx: CheckContext, into: set[tuple[str, str]]) -> None:
        """Each rule that applied to the message (its `when` held), as (rule id, action): what coverage reads. Kept
        out of `_apply`, the hot loop, which runs without it; a `when` is asked only until its rule is recorded."""
        action = msg.action or ""
        into.update(key for r in rules if (key := (r.id, action)) not in into and (r.when is None or r.when(msg, ctx)))

    @staticmethod
    def _apply(plans: _Plans, msg: Message, ctx: CheckContext) -> list[Finding]:
        """The one place a rule is applied to a message. The hot loop: kept flat, since it runs ~20 times a
        message; the rules behind a closed gate are not in the plan at all."""
        out: list[Finding] = []
        for r, when in plans.plan(msg, ctx):
            if when is not None and not when(msg, ctx):
                continue
            assert r.check is not None  # rules the runner reports have no actions, so never get here
            for v in r.check(msg, ctx):
                out.append(r.finding(v, msg))
        return out


class _Plans:
    """The rules of one action (in catalogue order, which is the order of their findings), and for each combination
    of open gates the list of rules to ask, with the condition each still has to meet (None: none, or its gate)."""

    __slots__ = ("rules", "gates", "_plans")

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.gates = list(dict.fromkeys(r.when for r in rules if isinstance(r.when, Gate)))
        self._plans: dict[int, list[tuple[Rule, Condition | None]]] = {}

    def plan(self, msg: Message, ctx: CheckContext) -> list[tuple[Rule, Condition | None]]:
        mask = 0
        for bit, gate in enumerate(self.gates):
            if gate.test(msg, ctx):
                mask |= 1 << bit
        found = self._plans.get(mask)
        if found is None:
            found = self._plans[mask] = [
                (r, None) if isinstance(r.when, Gate) else (r, r.when) for r in self.rules
                if not isinstance(r.when, Gate) or mask >> self.gates.index(r.when) & 1]
        return found
