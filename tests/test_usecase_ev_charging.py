"""The EV charging use case (UEI, ev-charging:uei) end to end: the reference network serves it, the harness plays its
flow in both roles and probes it, every fault switch is caught, every shipped scenario fails against a target that
breaks it, and the guide's transaction gets exactly the findings docs/positions-ev-charging.md implies."""
from __future__ import annotations

import json
from pathlib import Path

from conformance import Engine, scenario
from conformance.runner import Harness, RunConfig
from tests._live import write
from tests.conftest import ROOT

USE_CASE = "ev-charging"
FIXTURES = ROOT / "fixtures" / USE_CASE
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
