"""The EV charging pack's rules (conformance/packs/ev-charging/): each fires on the conformant EV transaction broken in
one place, with exactly that finding, and stays silent on the transaction and on near misses.

The clean transaction is fixtures/ev-charging/conformant-transaction: the guide's (fixtures/ev-charging/guide-
transaction) with every problem docs/positions-ev-charging.md reports repaired. The demand-flexibility rules have
their tables in tests/test_rules.py; these are the rules only the EV pack declares.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from conformance import Engine, Finding, Severity
from conformance.layer2 import load_pack, PACKS_DIR
from conformance.schemas import SchemaSet
from tests.conftest import ROOT
from tests.conftest import parent_of
from tests.test_rules import Edit, as_messages, drop, put

TWIN = ROOT / "fixtures" / "ev-charging" / "conformant-transaction"
PACK = PACKS_DIR / "ev-charging" / "ev-charging_uei_1.1.0.yaml"

(SEARCH, ON_SEARCH, SELECT, ON_SELECT, INIT, ON_INIT, CONFIRM, ON_CONFIRM, STATUS, ON_STATUS, START, ON_START, END,
 ON_END, SUPPORT, ON_SUPPORT, TRACK, ON_TRACK, CANCEL, ON_CANCEL, RATING, ON_RATING) = range(22)

ITEM0 = "message.catalog.providers[0].items[0]"
POINT0 = "message.catalog.providers[0].fulfillments[0]"
CONNECTOR = f"{ITEM0}.tags[0].list"
"""connector-id, charger-type, connector-type, power-rating, availability, in that order."""
ORDER_POINT = "message.order.fulfillments[0]"


def clean_bodies() -> list[dict[str, Any]]:
    bodies = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(TWIN.glob("*.json"))]
    assert [b["context"]["action"] for b in bodies] == [
        "search", "on_search", "select", "on_select", "init", "on_init", "confirm", "on_confirm", "status",
        "on_status", "update", "on_update", "update", "on_update", "support", "on_support", "track", "on_track",
        "cancel", "on_cancel", "rating", "on_rating"]
    return bodies


def append(at: int, path: str, value: Any) -> Edit:
    """Add an entry to a list of the message (a tag the clean transaction does not carry)."""
    def edit(bodies: list) -> None:
        parent, key = parent_of(bodies[at], path)
        parent[key].append(copy.deepcopy(value))
    return edit


def findings(engine: Engine, *edits: Edit) -> list[Finding]:
    bodies = clean_bodies()
    for edit in edits:
        edit(bodies)
    return engine.check(as_messages(bodies)).findings


def test_clean_transaction_has_no_findings(engine: Engine) -> None:
    report = engine.check(as_messages(clean_bodies()))
    assert report.findings == [], "\n\n".join(f.text() for f in report.findings)
    assert (report.messages, report.transactions) == (22, 1)


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[Edit, ...]
    rule: str
    at: int
    path: str
    found: Any
    expected_has: str
    """A value the finding's expected list must hold (the taxonomy's own spelling)."""


def case(name: str, edits: Edit | tuple[Edit, ...], rule: str, at: int, path: str, found: Any,
         expected_has: str) -> Case:
    return Case(name, edits if isinstance(edits, tuple) else (edits,), rule, at, path, found, expected_has)


FIRING = [
    case("on_confirm in the cancellation terms' word for charging",
         put(ON_CONFIRM, f"{ORDER_POINT}.state.descriptor.code", "charging-start"),
         "L2_FULFILLMENT_STATE", ON_CONFIRM, f"$.{ORDER_POINT}.state.descriptor.code", "charging-start",
         "charging-started"),
    case("cancellation terms keyed to the table's misspelt state",
         put(ON_INIT, "message.order.cancellation_terms[0].fulfillment_state.descriptor.code", "start-chargin"),
         "L2_FULFILLMENT_STATE", ON_INIT,
         "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code", "start-chargin", "start-charging"),
    case("an update asking for a state in prose", put(START, f"{ORDER_POINT}.state.descriptor.code", "start charging"),
         "L2_FULFILLMENT_STATE", START, f"$.{ORDER_POINT}.state.descriptor.code", "start charging",
         "start-charging"),
    case("payment on fulfillment", put(CONFIRM, "message.order.payments[0].type", "ON-FULFILLMENT"),
         "L2_PAYMENT_TYPE", CONFIRM, "$.message.order.payments[0].type", "ON-FULFILLMENT", "PRE-ORDER"),
    case("collected_by in upper case, as the guide's confirm has it",
         put(CONFIRM, "message.order.payments[0].collected_by", "BPP"),
         "L2_PAYMENT_COLLECTED_BY", CONFIRM, "$.message.order.payments[0].collected_by", "BPP", "bpp"),
    case("a connector named by its common name", put(ON_SEARCH, f"{CONNECTOR}[2].value", "CCS2"),
         "L2_EV_CONNECTOR_TYPE", ON_SEARCH, f"$.{CONNECTOR}[2].value", "CCS2", "IEC_62196_T2_COMBO"),
    case("a search for a connector in mixed case",
         put(SEARCH, "message.intent.fulfillment.tags[0].list[0].value", "Iec_62196_T2_Combo"),
         "L2_EV_CONNECTOR_TYPE", SEARCH, "$.message.intent.fulfillment.tags[0].list[0].value", "Iec_62196_T2_Combo",
         "iec_62196_t2_combo"),
    case("a connector both AC and DC", put(ON_SEARCH, f"{CONNECTOR}[1].value", "AC/DC"),
         "L2_EV_CHARGER_TYPE", ON_SEARCH, f"$.{CONNECTOR}[1].value", "AC/DC", "DC"),
    case("a connector said to be online (a charging point's word)", put(ON_SEARCH, f"{CONNECTOR}[4].value", "Online"),
         "L2_EV_CONNECTOR_AVAILABILITY", ON_SEARCH, f"$.{CONNECTOR}[4].value", "Online", "Available"),
    case("a charging point said to be available (a connector's word)",
         put(ON_SEARCH, f"{POINT0}.tags[0].list[1].value", "Available"),
         "L2_EV_CHARGING_POINT_AVAILABILITY", ON_SEARCH, f"$.{POINT0}.tags[0].list[1].value", "Available", "Online"),
    case("an order's charging point said to be available",
         append(ON_CONFIRM, f"{ORDER_POINT}.tags", {
             "descriptor": {"code": "charging-point"},
             "list": [{"descriptor": {"code": "availability"}, "value": "Available"}]}),
         "L2_EV_CHARGING_POINT_AVAILABILITY", ON_CONFIRM, f"$.{ORDER_POINT}.tags[1].list[0].value", "Available",
         "Online"),
    case("a charging point's manufacturer by brand",
         append(ON_SEARCH, f"{POINT0}.tags[0].list", {"descriptor": {"code": "manufacturer"}, "value": "Acme Power"}),
         "L2_EV_CHARGING_POINT_MANUFACTURER", ON_SEARCH, f"$.{POINT0}.tags[0].list[2].value", "Acme Power", "EVSE"),
    case("a rating out of ten", put(RATING, "message.ratings[0].value", "9"),
         "L2_EV_RATING_VALUE", RATING, "$.message.ratings[0].value", "9", "0 to 5"),
    case("a rating in stars", put(RATING, "message.ratings[0].value", "4 stars"),
         "L2_EV_RATING_VALUE", RATING, "$.message.ratings[0].value", "4 stars", "0 to 5"),
]


@pytest.mark.parametrize("c", [pytest.param(c, id=f"{c.rule}: {c.name}") for c in FIRING])
def test_rule_fires_with_exactly_its_finding(c: Case, engine: Engine) -> None:
    [f] = findings(engine, *c.edits)
    assert (f.rule_id, f.severity, f.index, f.path, f.found) == (c.rule, Severity.ERROR, c.at, c.path, c.found)
    assert c.expected_has in str(f.expected) or c.expected_has in f.must, f.text()


PACK_RULES = [spec.id for spec in load_pack(PACK, SchemaSet.builtin()).rules]


def test_every_rule_of_the_pack_has_a_firing_case() -> None:
    assert sorted(set(PACK_RULES) - {c.rule for c in FIRING}) == []


@pytest.mark.parametrize("rule_id", PACK_RULES)
def test_rule_silent_on_the_clean_transaction(rule_id: str, engine: Engine) -> None:
    assert [f.text() for f in findings(engine) if f.rule_id == rule_id] == []


NEAR_MISSES = [
    pytest.param(put(ON_SEARCH, f"{CONNECTOR}[2].value", "iec_62196_t2_combo"),
                 id="L2_EV_CONNECTOR_TYPE: the lower case the guide's text asks for"),
    pytest.param(put(ON_SEARCH, f"{CONNECTOR}[2].value", "IEC_60309_2_single_16"),
                 id="L2_EV_CONNECTOR_TYPE: a list value in its own mixed case"),
    pytest.param(append(ON_SEARCH, f"{POINT0}.tags[0].list",
                        {"descriptor": {"code": "charger-type"}, "value": "AC/DC"}),
                 id="L2_EV_CHARGER_TYPE: a charging point's charger type (the table gives it no list)"),
    pytest.param(put(ON_SEARCH, f"{POINT0}.tags[0].list[1].descriptor.code", "Availability"),
                 id="L2_EV_CHARGING_POINT_AVAILABILITY: a tag code the taxonomy does not have is not read as its own"),
    pytest.param(append(SEARCH, "message.intent.fulfillment.tags[0].list",
                        {"descriptor": {"code": "availability"}, "value": "Available"}),
                 id="L2_EV_CHARGING_POINT_AVAILABILITY: a search's connector criteria (guide: intent.fulfillment)"),
    pytest.param(put(ON_END, f"{ORDER_POINT}.tags[0].list[0].descriptor.code", "charger-id"),
                 id="tag codes are open: another code in a charging point's group"),
    pytest.param(append(ON_END, f"{ORDER_POINT}.tags[1].list",
                        {"descriptor": {"code": "session-duration"}, "value": "PT42M"}),
                 id="tag codes are open: a charging detail the taxonomy does not list (its codes will evolve)"),
    pytest.param(put(RATING, "message.ratings[0].value", "5.0"), id="L2_EV_RATING_VALUE: five point zero"),
    pytest.param(put(RATING, "message.ratings[0].value", "0"), id="L2_EV_RATING_VALUE: zero"),
    pytest.param(put(RATING, "message.ratings[0].value", "3.75"), id="L2_EV_RATING_VALUE: a decimal"),
    pytest.param(drop(ON_CANCEL, "message.order.status"),
                 id="ORD_NOT_CANCELLED: order-cancelled is the pack's cancelled state, without order.status"),
]


@pytest.mark.parametrize("edit", NEAR_MISSES)
def test_near_miss_is_silent(edit: Edit, engine: Engine) -> None:
    found = findings(engine, edit)
    assert found == [], "\n\n".join(f.text() for f in found)


def test_on_cancel_needs_a_cancelled_state_of_the_pack(engine: Engine) -> None:
    """Without order.status, the fulfillment state must be the one the pack lists as cancelled: a code merely ending
    in 'cancelled' does for a use case without such a list only."""
    found = findings(engine, drop(ON_CANCEL, "message.order.status"),
                     put(ON_CANCEL, f"{ORDER_POINT}.state.descriptor.code", "session-cancelled"))
    assert sorted((f.rule_id, f.index, f.path) for f in found) == [
        ("L2_FULFILLMENT_STATE", ON_CANCEL, f"$.{ORDER_POINT}.state.descriptor.code"),
        ("ORD_NOT_CANCELLED", ON_CANCEL, "$.message.order")]
