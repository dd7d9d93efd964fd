"""The EV charging use case (UEI, ev-charging:uei) end to end: the reference network serves it, the harness plays its
flow in both roles and probes it, every fault switch is caught, every shipped scenario fails against a target that
breaks it, and the guide's transaction gets exactly the findings docs/positions-ev-charging.md implies."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conformance import Engine, Layer2, Message, SchemaSet, load_transcript, scenario
from conformance.messages import decode_json
from conformance.runner import Harness, RunConfig
from tests._live import write
from tests.conftest import REFERENCE, ROOT

USE_CASE = "ev-charging"
FIXTURES = ROOT / "fixtures" / USE_CASE
GUIDE = REFERENCE / "deg" / "beckn-missions" / "UEI" / "implementation-guides" / "EV-charging" / \
    "implementation_guide_charging.md"
LINKED_LAYER2 = REFERENCE / "layer2" / "beckn-missions" / "UEI" / "layer2" / "EV-charging"
needs_guide = pytest.mark.skipif(not GUIDE.is_file(), reason="../shared/reference is not beside the checkout")
WINDOW = 1.5
"""Seconds to wait for a callback where none is late: the reference BPPs answer in milliseconds."""


# ---- the reference BPP in this use case ------------------------------------------------------------------------

FIND_CHARGERS = """
          - name: find chargers
            send: search
            expect: {count: all, min: 1}
            offer:
              save: {provider_id: $.provider.id, item_id: $.item.id, fulfillment_id: $.fulfillment.id,
                     bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}"""


def test_an_update_naming_no_order_is_about_the_order_of_its_transaction(engine: Engine, tmp_path: Path) -> None:
    """The guide's updates carry no order id (docs/positions-ev-charging.md #13): the reference BPP takes them for
    the order confirmed in their transaction, and refuses them (30010) in a transaction without one."""
    body = json.loads((FIXTURES / "requests" / "update.json").read_text(encoding="utf-8"))
    del body["message"]["order"]["id"]
    write(tmp_path, "update-naming-no-order.json", json.dumps(body))
    confirmed = scenario.load(write(tmp_path, "confirmed.yaml", """
        name: start charging a confirmed session without naming it
        use_case: ev-charging
        steps:""" + FIND_CHARGERS + """
          - {send: select}
          - {send: init}
          - {send: confirm, save: {order_id: $.message.order.id}}
          - name: start charging
            send: update
            body: update-naming-no-order.json
            assert:
              - {path: $.message.order.id, equals: "{{ order_id }}"}
              - {path: "$.message.order.fulfillments[*].state.descriptor.code", contains: charging-started}
    """))
    unconfirmed = scenario.load(write(tmp_path, "unconfirmed.yaml", """
        name: start charging without a session
        use_case: ev-charging
        steps:""" + FIND_CHARGERS + """
          - name: start charging
            send: update
            body: update-naming-no-order.json
            expect: {outcome: refused, error_code: "30010"}
    """))
    config = RunConfig(use_case=USE_CASE, concurrency=2, callback_timeout=WINDOW, settle=0.2)
    with Harness(config, engine=engine) as harness:
        run = harness.run([confirmed, unconfirmed])
    for s in run.scenarios:
        assert s.status == "passed" and not s.findings, (s.scenario.id, [f.text() for f in s.findings])


# ---- the guide's transaction: the findings docs/positions-ev-charging.md implies -------------------------------

GUIDE_FINDINGS = [  # (rule, action, path), in the order the engine walks the transactions
    ("CTX_ACTION_UNKNOWN", "get_rating_categories", "$.context.action"),
    ("CTX_ACTION_UNKNOWN", "get_rating_categories", "$.context.action"),
    ("L2_EV_CONNECTOR_TYPE", "search", "$.message.intent.fulfillment.tags[0].list[0].value"),
    ("TXN_ORPHAN_CALLBACK", "on_search", "$.context.message_id"),
    ("L2_EV_CONNECTOR_TYPE", "on_search", "$.message.catalog.providers[0].items[0].tags[0].list[2].value"),
    ("L2_EV_CONNECTOR_TYPE", "on_search", "$.message.catalog.providers[0].items[1].tags[0].list[2].value"),
    ("ORD_CALLBACK_ITEMS", "on_select", "$.message.order.items"),
    ("L2_EV_CONNECTOR_TYPE", "on_select", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "init", "$.context.message_id"),
    ("L2_EV_FULFILLMENT_STATE", "on_init", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_init", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "confirm", "$.context.message_id"),
    ("L2_EV_PAYMENT_COLLECTED_BY", "confirm", "$.message.order.payments[0].collected_by"),
    ("L2_EV_FULFILLMENT_STATE", "on_confirm", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_confirm", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "status", "$.context.message_id"),
    ("L2_EV_FULFILLMENT_STATE", "on_status", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_FULFILLMENT_STATE", "on_status", "$.message.order.fulfillments[0].state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_status", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "cancel", "$.context.message_id"),
    ("L2_EV_FULFILLMENT_STATE", "on_cancel", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_cancel", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "update", "$.context.message_id"),
    ("TXN_MESSAGE_ID_REUSED", "update", "$.context.message_id"),
    ("L2_EV_FULFILLMENT_STATE", "on_update", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_FULFILLMENT_STATE", "on_update", "$.message.order.fulfillments[0].state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_update", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_DUPLICATE_CALLBACK", "on_update", "$.context.message_id"),
    ("L2_EV_FULFILLMENT_STATE", "on_update", "$.message.order.cancellation_terms[0].fulfillment_state.descriptor.code"),
    ("L2_EV_CONNECTOR_TYPE", "on_update", "$.message.order.items[0].tags[0].list[2].value"),
    ("TXN_MESSAGE_ID_REUSED", "rating", "$.context.message_id"),
    ("TXN_MESSAGE_ID_REUSED", "support", "$.context.message_id"),
    ("CTX_VERSION", "track", "$.context.version"),
    ("L2_PACK_MISSING", "track", "$.context.domain"),
    ("CTX_VERSION", "on_track", "$.context.version"),
    ("TXN_LOCATION_CHANGED", "on_track", "$.context.location.country.name"),
]
NOT_JSON = ["on_search", "on_select", "on_init", "on_update (start charging)", "on_update (end charging)", "on_cancel",
            "rating_categories"]
"""The guide's examples that do not parse as published (docs/positions-ev-charging.md #1)."""
BLOCK_NAMES = ["search", "on_search", "select", "on_select", "init", "on_init", "confirm", "on_confirm", "status",
               "on_status", "update (start charging)", "on_update (start charging)", "update (end charging)",
               "on_update (end charging)", "support", "on_support", "track", "on_track", "cancel", "on_cancel",
               "get_rating_categories", "rating_categories", "rating", "on_rating"]


def triples(messages: list[Message], engine: Engine) -> list[tuple[str, str | None, str]]:
    return [(f.rule_id, f.action, f.path) for f in engine.check(messages).findings]


def guide_blocks() -> list[str]:
    """The guide's example messages, as published, in its order (the API section's code blocks)."""
    text = GUIDE.read_text(encoding="utf-8")
    return re.findall(r"```\n(.*?)\n```", text[text.index("## API Calls and Schema"):], re.S)


def repaired(block: str) -> Any:
    """An example with the syntax slips of position #1 mended: a comma missing before a key, trailing commas,
    bare words in a list. Nothing else changes."""
    block = re.sub(r'([\]}])(\s*\n\s*")', r"\1,\2", block)
    block = re.sub(r",(\s*[\]}])", r"\1", block)
    block = re.sub(r"^(\s*)(Item|Order|Fulfillment|Provider)(,?)$", r'\1"\2"\3', block, flags=re.M)
    return json.loads(block)


def test_guide_fixture_yields_the_documented_findings(engine: Engine) -> None:
    report = engine.check(load_transcript([FIXTURES / "guide-transaction"]))
    assert [(f.rule_id, f.action, f.path) for f in report.findings] == GUIDE_FINDINGS
    assert (report.errors, report.warnings, report.transactions) == (35, 1, 3)


@needs_guide
def test_the_guide_as_published_does_not_all_parse(engine: Engine) -> None:
    blocks = guide_blocks()
    assert len(blocks) == len(BLOCK_NAMES)
    messages = []
    for n, block in enumerate(blocks):
        body, error = decode_json(block.encode())
        messages.append(Message(body, "guide", n, seq=n, decode_error=error))
    report = engine.check(messages)
    assert [BLOCK_NAMES[f.index or 0] for f in report.findings if f.rule_id == "SCH_NOT_JSON"] == NOT_JSON
    assert (report.errors, report.warnings) == (26, 1)


@needs_guide
def test_the_guide_mended_yields_the_documented_findings(engine: Engine) -> None:
    messages = [Message(repaired(b), "guide", n, seq=n) for n, b in enumerate(guide_blocks())]
    assert triples(messages, engine) == GUIDE_FINDINGS


@needs_guide
def test_fixture_restates_the_guide_facts() -> None:
    """The restatement has names, ids and values of its own; each message keeps the guide's actions, codes, types,
    states and versions (the facts every position is about)."""
    def facts(value: Any) -> list[tuple[str, Any]]:
        keys = ("code", "type", "status", "collected_by", "rating_category", "update_target", "action", "version",
                "domain")
        out: list[tuple[str, Any]] = []
        if isinstance(value, dict):
            for k, v in value.items():
                out += [(k, v)] if k in keys and not isinstance(v, (dict, list)) else facts(v)
        elif isinstance(value, list):
            for v in value:
                out += facts(v)
        return out

    ours = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((FIXTURES / "guide-transaction").glob("*.json"))]
    for name, restated, original in zip(BLOCK_NAMES, ours, map(repaired, guide_blocks()), strict=True):
        assert Counter(facts(restated)) == Counter(facts(original)), name


@needs_guide
def test_the_layer2_file_the_guide_links_refuses_the_conformant_transaction() -> None:
    """Position #19: the linked file is another use case's template; the older 3.0 file narrows nothing the twin
    breaks."""
    def report(path: Path) -> Counter[tuple[str, str | None]]:
        engine = Engine(layer2=Layer2(SchemaSet.builtin(), file=path))
        return Counter((f.rule_id, f.action) for f in engine.check(
            load_transcript([FIXTURES / "conformant-transaction"])).findings)

    linked = report(LINKED_LAYER2 / "3.1" / "energy_EV_1.1.0_openapi_3.1.yaml")
    assert set(rule for rule, _ in linked) == {"L2_CONSTRAINT"} and sum(linked.values()) == 148
    assert report(LINKED_LAYER2 / "3.0" / "ev-charging_uei_1.1.0.yaml") == Counter()
