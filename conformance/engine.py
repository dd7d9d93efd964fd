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
        self._envelope = [r for r in self.rules if r.envelope]
        self._by_action: dict[str, list[Rule]] = {}
        for r in self.rules:
            if not r.envelope:
                for action in r.actions:
                    self._by_action.setdefault(action, []).append(r)

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
                    alone = CheckContext(Transaction(None, [msg]), self.validation, UNCHECKED, self.settings)
                    findings.extend(self._apply(self._envelope, msg, alone))
            transactions = group(usable)
            done = 0
            for txn in transactions:
                for msg in txn.messages:
                    findings.extend(self._check_one(msg, txn))
                    done += 1
                    if progress is not None and done % 1000 == 0:
                        progress(done)
        return Report(findings, len(messages), len(transactions), self.rules)

    def _check_one(self, msg: Message, txn: Transaction) -> list[Finding]:
        txn.enter(msg)
        outcome = self.validation.outcome(msg)
        if outcome.pack is not None and outcome.pack not in self._packs:
            self._index_rules([outcome.pack])
        ctx = CheckContext(txn, self.validation, outcome, self.settings)
        rules = self._by_action.get(msg.action or "", [])
        out = self._apply(rules, msg, ctx)
        if self.evaluated is not None:
            self._record(rules, msg, ctx, self.evaluated)
        txn.absorb(msg)
        return out

    @staticmethod
    def _record(rules: list[Rule], msg: Message, ctx: CheckContext, into: set[tuple[str, str]]) -> None:
        """Each rule that applied to the message (its `when` held), as (rule id, action): what coverage reads. Kept
        out of `_apply`, the hot loop, which runs without it; a `when` is asked only until its rule is recorded."""
        action = msg.action or ""
        into.update(key for r in rules if (key := (r.id, action)) not in into and (r.when is None or r.when(msg, ctx)))

    def _apply(self, rules: list[Rule], msg: Message, ctx: CheckContext) -> list[Finding]:
        """The hot loop: every rule of the message's action. Kept flat, since it runs ~30 times a message."""
        out: list[Finding] = []
        for r in rules:
            if r.when is not None and not r.when(msg, ctx):
                continue
            assert r.check is not None  # rules the runner reports have no actions, so never get here
            out.extend(r.finding(v, msg) for v in r.check(msg, ctx))
        return out
