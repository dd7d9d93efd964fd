"""The check catalogue. Importing this package registers every built-in rule."""
from __future__ import annotations

from typing import Iterable

from conformance.layer2 import Layer2Pack, PackRule
from conformance.rules import (  # noqa: F401  (registration)
    catalog, context, layer2, order, probe, scenario, schema, signature, timing, transaction,
)
from conformance.rules.layer2 import pack_rule
from conformance.rules.registry import GROUPS, CheckContext, Rule, Settings, registered, rule

__all__ = ["CheckContext", "RESPONSE_RULES", "Rule", "Settings", "catalogue", "rule"]

RESPONSE_RULES = frozenset({"SCH_ACK_RESPONSE", "TIM_ACK_LATENCY"})
"""The rules that judge the synchronous reply a message got, so the one who replied, not the one who sent it."""


def catalogue(packs: Iterable[Layer2Pack] = ()) -> list[Rule]:
    """Every rule a run applies: the built-in ones, then the rules the given Layer-2 packs declare."""
    rules = {r.id: r for r in registered()}
    declared: dict[str, list[tuple[str, PackRule]]] = {}
    for pack in packs:
        for spec in pack.rules:
            declared.setdefault(spec.id, []).append((pack.name, spec))
    for rule_id, specs in declared.items():
        rules.setdefault(rule_id, pack_rule(specs))
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(rules.values(), key=lambda r: rank[r.group])
