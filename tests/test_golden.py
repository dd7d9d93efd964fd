"""The guide's own transaction yields exactly the findings docs/guide-positions.md implies; so do all DEG
1.1.0 examples (pinned in tests/golden/). Set UPDATE_GOLDEN=1 to rewrite the pinned files after a
deliberate change, and review the diff."""
from __future__ import annotations

import json
import os
from pathlib import Path

from conformance import Engine, Message, load_transcript
from tests.conftest import EXAMPLES, FIXTURES, guide_blocks, needs_shared

GOLDEN = Path(__file__).parent / "golden"

# What docs/guide-positions.md says the guide's transaction must yield: (rule, action, path).
GUIDE_FINDINGS = [
    ("CTX_ID_NOT_UUID", "search", "$.context.transaction_id"),
    ("CTX_ID_NOT_UUID", "search", "$.context.message_id"),
    ("TXN_CALLBACK_MESSAGE_ID", "on_search", "$.context.message_id"),
    ("L2_ACCEPTANCE_TYPE", "on_search", "$.message.catalog.providers[0].fulfillments[0].tags[0].list[0].value"),
    ("L2_ACCEPTANCE_TYPE", "on_search", "$.message.catalog.providers[1].fulfillments[0].tags[0].list[0].value"),
    ("CTX_ID_NOT_UUID", "init", "$.context.message_id"),
    ("TXN_DOMAIN_CHANGED", "init", "$.context.domain"),
    ("TXN_LOCATION_CHANGED", "init", "$.context.location.city.code"),
    ("L2_STOP_TYPE", "init", "$.message.order.fulfillments[0].stops[0].type"),
    ("L2_STOP_TYPE", "on_init", "$.message.order.fulfillments[0].stops[0].type"),
    ("CTX_ID_NOT_UUID", "confirm", "$.context.message_id"),
    ("L2_STOP_TYPE", "confirm", "$.message.order.fulfillments[0].stops[0].type"),
    ("L2_STOP_TYPE", "on_confirm", "$.message.order.fulfillments[0].stops[0].type"),
    ("CTX_ID_NOT_UUID", "status", "$.context.message_id"),
    ("L2_STOP_TYPE", "on_status", "$.message.order.fulfillments[0].stops[0].type"),
    ("CTX_ID_NOT_UUID", "cancel", "$.context.message_id"),
    ("L2_STOP_TYPE", "on_cancel", "$.message.order.fulfillments[0].stops[0].type"),
    ("CTX_ID_NOT_UUID", "support", "$.context.message_id"),
    ("ORD_SUPPORT_REF_ID", "support", "$.message.support.ref_id"),
]


def _triples(report) -> list[tuple[str, str | None, str]]:
    return [(f.rule_id, f.action, f.path) for f in report.findings]


def test_guide_fixture_yields_the_documented_findings(engine: Engine) -> None:
    report = engine.check(load_transcript([FIXTURES / "guide-transaction"]))
    assert _triples(report) == GUIDE_FINDINGS
    assert (report.errors, report.warnings) == (12, 7)


@needs_shared
def test_the_guide_itself_yields_the_documented_findings(engine: Engine) -> None:
    messages = [Message(body, "guide", i, seq=i) for i, body in enumerate(guide_blocks())]
    assert _triples(engine.check(messages)) == GUIDE_FINDINGS


@needs_shared
def test_fixture_restates_the_guide_facts() -> None:
    """The fixture rewords prose only: contexts, ids, codes and structure are the guide's."""
    def skeleton(value, key=None):
        if isinstance(value, dict):
            return {k: skeleton(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [skeleton(v) for v in value]
        return "<text>" if key in ("short_desc", "long_desc") else value

    fixture = [json.loads(p.read_text()) for p in sorted((FIXTURES / "guide-transaction").glob("*.json"))]
    guide = guide_blocks()
    for ours, theirs in zip(fixture, guide, strict=True):
        a, b = skeleton(ours), skeleton(theirs)
        # The catalog and provider short descriptions are reworded too.
        assert json.dumps(a["context"]) == json.dumps(b["context"])
        assert _codes(a) == _codes(b)


def _codes(value) -> list:
    """Every id, code, type and value field, in document order."""
    out: list = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("id", "code", "type", "value", "order_id", "ref_id") and not isinstance(v, (dict, list)):
                out.append((k, v))
            out.extend(_codes(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_codes(v))
    return out


def test_conformant_twin_has_no_findings(engine: Engine) -> None:
    report = engine.check(load_transcript([FIXTURES / "conformant-transaction"]))
    assert report.findings == []


def _transaction_folders() -> list[Path]:
    """Folders whose sub-folders are named after Beckn actions: one captured flow each."""
    actions = {"search", "select", "init", "confirm", "status", "cancel", "update", "support", "rating", "track"}
    return sorted({p.parent.parent for p in EXAMPLES.rglob("*.json") if p.parent.name in actions})


def _pinned_lines(engine: Engine, folder: Path) -> list[str]:
    report = engine.check(load_transcript([folder]))
    return [f"{f.severity.value} {f.rule_id} {Path(f.source or '').relative_to(folder)} {f.action} {f.path}"
            for f in report.findings]


@needs_shared
def test_every_deg_example_folder_is_pinned(engine: Engine) -> None:
    folders = _transaction_folders()
    assert len(folders) >= 15
    found = {str(folder.relative_to(EXAMPLES)): _pinned_lines(engine, folder) for folder in folders}
    golden = GOLDEN / "deg-examples.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(golden.read_text())
