"""The Layer-2 packs of the DEG Starter Kit's use cases (retail, finance, rental, p2p-trading, ev): every rule each
pack declares fires on its use case's conformant transaction broken in one place, citing that pack's clause and
values, and stays silent on the transaction as it is; packs that share a rule id mean the same check. The kit states
no taxonomy, so the packs close no list its examples merely show: values other DEG material or another conformant
participant uses in those places are no error, and no pack names a cancelled state of the harness's own.

Each use case's transaction (fixtures/<use case>/conformant-transaction/) is what its scenario plays against the
reference network, recorded with readable ids and times (docs/positions-starter-kit.md says what each pack narrows
and why).
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from conformance import Engine, Message, Severity, usecases
from conformance.layer2 import Layer2Pack
from tests.conftest import parent_of

STARTER_KIT = ("retail", "finance", "rental", "p2p-trading", "ev")


def transaction(use_case: str) -> dict[str, dict[str, Any]]:
    """The use case's conformant transaction, by file name, in order."""
    folder = usecases.named(use_case).folder / "conformant-transaction"
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def messages(bodies: dict[str, dict[str, Any]]) -> list[Message]:
    return [Message(body, name, None, seq=n) for n, (name, body) in enumerate(bodies.items())]


def pack_of(engine: Engine, use_case: str) -> Layer2Pack:
    found = usecases.named(use_case)
    pack = engine.layer2.pack_for(found.domain, found.version)
    assert pack is not None and pack.name == use_case
    return pack


@dataclass(frozen=True)
class Break:
    use_case: str
    rule: str
    file: str
    """The message of the use case's transaction that is broken."""
    path: str
    """Where (the finding's JSONPath without `$.`)."""
    value: Any
    why: str

    @property
    def id(self) -> str:
        return f"{self.use_case}: {self.rule}: {self.why}"


ON_SEARCH = "02-on_search.json"
PROVIDER = "message.catalog.providers[0]"
BREAKS = [
    Break("retail", "L2_PAYMENT_COLLECTED_BY", "07-confirm.json", "message.order.payments[0].collected_by",
          "Bpp", "neither the kit's case nor the core's"),
    Break("rental", "L2_PAYMENT_COLLECTED_BY", "07-confirm.json", "message.order.payments[0].collected_by",
          "WALLET", "a party that is neither BAP nor BPP"),
    Break("p2p-trading", "L2_PAYMENT_COLLECTED_BY", "05-confirm.json", "message.order.payments[0].collected_by",
          "PROSUMER", "a party that is neither BAP nor BPP"),
]


def broken(b: Break) -> dict[str, dict[str, Any]]:
    bodies = copy.deepcopy(transaction(b.use_case))
    parent, key = parent_of(bodies[b.file], b.path)
    assert key in parent if isinstance(parent, dict) else key < len(parent), f"{b.file} has no {b.path}"
    parent[key] = b.value
    return bodies


@pytest.mark.parametrize("b", [pytest.param(b, id=b.id) for b in BREAKS])
def test_rule_fires_with_its_own_packs_clause(b: Break, engine: Engine) -> None:
    findings = engine.check(messages(broken(b))).findings
    assert Counter((f.rule_id, f.source, f.path) for f in findings) == Counter([(b.rule, b.file, f"$.{b.path}")]), \
        "\n\n".join(f.text() for f in findings)
    [finding] = findings
    declared = pack_of(engine, b.use_case).declared(b.rule)
    assert declared is not None
    assert (finding.severity, finding.title, finding.clause, finding.must) == (
        declared.severity, declared.title, declared.clause, declared.must)
    assert finding.found == b.value


@pytest.mark.parametrize("use_case", STARTER_KIT)
def test_the_use_cases_transaction_is_clean(use_case: str, engine: Engine) -> None:
    """Silent: no rule of the catalogue, the use case's pack included, finds anything in it."""
    bodies = transaction(use_case)
    report = engine.check(messages(bodies))
    assert report.findings == [], "\n\n".join(f.text() for f in report.findings)
    assert (report.messages, report.transactions) == (len(bodies), 1)
    assert bodies[ON_SEARCH]["message"]["catalog"]["providers"] == [
        json.loads(path.read_text(encoding="utf-8"))["provider"] for path in usecases.named(use_case).catalogs]


@dataclass(frozen=True)
class Free:
    """A value the kit's material shows, changed to another a conformant participant may use: no error."""
    use_case: str
    file: str
    path: str
    value: Any
    why: str


FREE = [
    Free("retail", ON_SEARCH, f"{PROVIDER}.categories[0].descriptor.code", "ev_scooter", "DEG2.0's retail category"),
    Free("retail", "05-init.json", "message.order.fulfillments[0].type", "Delivery in 3 Days", "a faster delivery"),
    Free("retail", "05-init.json", "message.order.fulfillments[0].type", "HOME_DELIVERY", "DEG2.0's type"),
    Free("retail", "07-confirm.json", "message.order.payments[0].collected_by", "bpp", "the core's lower case"),
    Free("rental", "07-confirm.json", "message.order.payments[0].collected_by", "bap", "the core's lower case"),
    Free("finance", "01-search.json", "message.intent.category.descriptor.code", "loan_type_solar", "another loan"),
    Free("finance", "05-confirm.json", "message.order.fulfillments[0].type", "DISBURSAL", "another fulfillment type"),
    Free("rental", ON_SEARCH, f"{PROVIDER}.categories[0].descriptor.code", "EV_BATTERY_RENTAL", "another category"),
    Free("p2p-trading", ON_SEARCH, f"{PROVIDER}.categories[0].descriptor.code", "wind-energy", "another source"),
    Free("p2p-trading", "01-search.json", "message.intent.item.descriptor.code", "electricity", "another word"),
    Free("ev", "05-init.json", "message.order.fulfillments[0].type", "Parking", "another fulfillment type"),
    Free("ev", "03-select.json", "message.order.items[0].tags[0].list[0].value", "Type1", "a connector not listed"),
    Free("ev", "03-select.json", "message.order.items[0].tags[0].list[0].value", "CCS2", "a connector not listed"),
]


@pytest.mark.parametrize("f", [pytest.param(f, id=f"{f.use_case}: {f.value}: {f.why}") for f in FREE])
def test_a_value_the_kit_does_not_list_is_no_error(f: Free, engine: Engine) -> None:
    """Near miss of the breaks above: the kit states no list of categories, fulfillment types, item codes or
    connectors (values seen in its examples are no taxonomy), so a participant using others conforms; a collector
    is the kit's BPP or the core's bpp."""
    bodies = copy.deepcopy(transaction(f.use_case))
    parent, key = parent_of(bodies[f.file], f.path)
    assert parent[key] != f.value
    parent[key] = f.value
    assert engine.check(messages(bodies)).findings == []


@pytest.mark.parametrize("use_case", STARTER_KIT)
def test_every_rule_of_the_pack_has_a_break(use_case: str, engine: Engine) -> None:
    declared = {r.id for r in pack_of(engine, use_case).rules}
    assert declared == {b.rule for b in BREAKS if b.use_case == use_case}


def test_packs_that_share_a_rule_id_mean_the_same_check(engine: Engine) -> None:
    """A rule id is one check in the catalogue and in reports: the packs that declare it give it one title and one
    severity; only the clause and the values (must) are their use case's own."""
    meaning: dict[str, set[tuple[str, Severity]]] = {}
    for pack in engine.layer2.packs():
        for r in pack.rules:
            meaning.setdefault(r.id, set()).add((r.title, r.severity))
    assert {rule_id: m for rule_id, m in meaning.items() if len(m) > 1} == {}
    shared = {rule_id for rule_id in meaning if sum(p.declared(rule_id) is not None for p in engine.layer2.packs()) > 1}
    assert {"L2_FULFILLMENT_STATE", "L2_PAYMENT_TYPE", "L2_PAYMENT_COLLECTED_BY"} <= shared
    listed = {r.id: r for r in engine.rules}["L2_PAYMENT_COLLECTED_BY"]
    assert listed.clause.startswith("the Layer-2 pack of the message's use case (demand-flexibility, ")


def cancelled_with(use_case: str, state: str) -> list[Message]:
    """The use case's transaction, then a cancel and an on_cancel whose fulfillments show `state` and whose order
    has no status: what ORD_NOT_CANCELLED judges."""
    bodies = transaction(use_case)
    confirm, on_confirm = (bodies[name] for name in sorted(bodies) if name.endswith("confirm.json"))
    last = max(b["context"]["timestamp"] for b in bodies.values())
    later = {"message_id": "0c0c0c0c-0000-4000-8000-000000000001", "timestamp": last}
    cancel = {"context": {**confirm["context"], **later, "action": "cancel"},
              "message": {"order_id": on_confirm["message"]["order"]["id"], "descriptor": {"name": "Changed my mind"}}}
    order = copy.deepcopy(on_confirm["message"]["order"])
    for f in order["fulfillments"]:
        f["state"] = {"descriptor": {"code": state}}
    on_cancel = {"context": {**on_confirm["context"], **later, "action": "on_cancel"}, "message": {"order": order}}
    return messages({**bodies, "90-cancel.json": cancel, "91-on_cancel.json": on_cancel})


@pytest.mark.parametrize("use_case", STARTER_KIT)
@pytest.mark.parametrize("state, shown", [("RENTAL_CANCELLED", True), ("Booking-cancelled", True),
                                          ("ORDER_CONFIRMED", False)])
def test_a_cancelled_state_is_any_code_ending_in_cancelled(use_case: str, state: str, shown: bool,
                                                           engine: Engine) -> None:
    """The kit cancels nothing and names no cancelled state: no pack lists one (a name of the harness's own would
    refuse a BPP that cancels in its own words), so a state whose last word is CANCELLED shows the order cancelled."""
    assert pack_of(engine, use_case).cancelled_states == frozenset()
    found = [f.rule_id for f in engine.check(cancelled_with(use_case, state)).findings]
    assert found == ([] if shown else ["ORD_NOT_CANCELLED"])
