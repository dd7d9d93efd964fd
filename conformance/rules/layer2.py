"""Layer-2 rules: the use case's taxonomy, as its pack declares it. Pack rules are built from the pack's data."""
from __future__ import annotations

from typing import Iterator, Sequence

from conformance.findings import Severity, Violation
from conformance.layer2 import GENERIC_RULE, PackRule
from conformance.messages import Message
from conformance.rules.registry import Check, CheckContext, Rule, has_layer2_errors, rule
from conformance.transaction import domain_key


def pack_check(rule_id: str) -> Check:
    """The check behind one pack rule: the Layer-2 violations attributed to that id, each with the predicate and
    clause of the pack that judged the message (one id may be declared by the packs of several use cases)."""
    def check(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
        pack = ctx.outcome.pack
        spec = pack.declared(rule_id) if pack is not None else None
        for found_id, err in ctx.outcome.layer2:
            if found_id == rule_id:
                # A pack rule's own predicate says it best; the generic rule can only quote the schema.
                yield Violation(err.path, err.expected, err.found, spec.must if spec else err.must,
                                spec.clause if spec else None)
    return check


def pack_rule(declared: Sequence[tuple[str, PackRule]]) -> Rule:
    """The catalogue's entry for a rule id one or more packs declare, given as (pack name, its declaration). Packs
    that share an id mean the same check (the same title and severity: tests/test_starter_kit_packs.py holds the
    shipped packs to it), each on its own use case's values: the entry names the packs, and each finding cites
    its own pack's clause."""
    first = declared[0][1]
    clause = first.clause if len(declared) == 1 else (
        f"the Layer-2 pack of the message's use case ({', '.join(name for name, _ in declared)}): each finding "
        "cites its own pack's clause")
    return Rule(first.id, "layer2", first.severity, first.title, clause, first.must, pack_check(first.id),
                when=has_layer2_errors)


rule(GENERIC_RULE, group="layer2", title="Constraints of the Layer-2 file that carry no rule id of their own",
     clause="The network's Layer-2 configuration (BECKN-001 layering: Layer 2 narrows the core)",
     must="satisfy the Layer-2 schema", when=has_layer2_errors)(pack_check(GENERIC_RULE))


def _pack_missing_here(msg: Message, ctx: CheckContext) -> bool:
    """Once per transaction and domain: the first message of that domain for which no pack exists."""
    return (ctx.outcome.pack is None and domain_key(msg) not in ctx.txn.domains
            and ctx.validation.layer2.pack_for(msg.context.get("domain"), msg.context.get("version")) is None)


@rule("L2_PACK_MISSING", group="layer2", severity=Severity.WARNING, when=_pack_missing_here,
      title="A Layer-2 pack exists for the message's domain and version (else Layer-2 checks are skipped)",
      clause="protocol-server / beckn-onix: the Layer-2 file is chosen by context.domain and context.version",
      must="name a domain and version that have a Layer-2 pack")
def pack_missing(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    yield Violation(("context", "domain"), "a domain with a Layer-2 pack", msg.context.get("domain"))
