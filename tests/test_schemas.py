"""The built-in core schemas give the same verdicts as the upstream Beckn 1.1.0 OpenAPI document (`--spec`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance import ConfigError, Engine, Layer2, SchemaSet, load_transcript
from conformance.messages import ACTIONS
from tests.conftest import DELETE, EXAMPLES, FIXTURES, UPSTREAM_CORE, changed, needs_shared

pytestmark = needs_shared


@pytest.fixture(scope="module")
def builtin() -> SchemaSet:
    return SchemaSet.builtin()


@pytest.fixture(scope="module")
def upstream() -> SchemaSet:
    return SchemaSet.from_document(UPSTREAM_CORE)


def _examples() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("*.json")):
        body = json.loads(path.read_text())
        action = body.get("context", {}).get("action") if isinstance(body, dict) else None
        if action in ACTIONS:
            out.append((path, body))
    return out


def _verdict(schemas: SchemaSet, body: Any, action: str | None = None) -> list[tuple[tuple, str]]:
    validator = schemas.validator(action or body["context"]["action"])
    return [(e.path, e.keyword) for e in schemas.errors(validator, body)]


def test_both_documents_cover_every_action(builtin: SchemaSet, upstream: SchemaSet) -> None:
    assert builtin.actions == upstream.actions == ACTIONS
    assert builtin.ack_validator is not None and upstream.ack_validator is not None


def test_same_verdicts_on_every_deg_example(builtin: SchemaSet, upstream: SchemaSet) -> None:
    examples = _examples()
    assert len(examples) >= 187
    invalid = 0
    for path, body in examples:
        ours, theirs = _verdict(builtin, body), _verdict(upstream, body)
        assert ours == theirs, path
        invalid += bool(ours)
    assert invalid > 0, "some upstream examples break the core schema; the comparison must include them"


def _mutants(body: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, replacement) pairs: each leaf made a number and an object, each object member dropped."""
    if isinstance(body, dict):
        for key, value in body.items():
            yield path + (key,), DELETE
            yield from _mutants(value, path + (key,))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            yield from _mutants(value, path + (i,))
    else:
        yield path, 42 if isinstance(body, str) else "text"
        yield path, {"unexpected": True}


def test_same_verdicts_on_mutants_of_the_guide_transaction(builtin: SchemaSet, upstream: SchemaSet) -> None:
    checked = 0
    for path in sorted((FIXTURES / "guide-transaction").glob("*.json")):
        body = json.loads(path.read_text())
        action = body["context"]["action"]
        for where, value in _mutants(body):
            mutant = changed(body, where, value)
            assert _verdict(builtin, mutant, action) == _verdict(upstream, mutant, action), (path.name, where, value)
            checked += 1
    assert checked > 1000


def test_ack_response_verdicts_agree(builtin: SchemaSet, upstream: SchemaSet) -> None:
    bodies = [
        {"message": {"ack": {"status": "ACK"}}},
        {"message": {"ack": {"status": "NACK"}}, "error": {"code": "30001", "message": "Provider not found"}},
        {"message": {"ack": {"status": "MAYBE"}}},
        {"message": {}},
        {"error": {"code": 30001}},
        [],
    ]
    for body in bodies:
        ours = [(e.path, e.keyword) for e in builtin.errors(builtin.ack_validator, body)]
        theirs = [(e.path, e.keyword) for e in upstream.errors(upstream.ack_validator, body)]
        assert ours == theirs, body
    assert builtin.errors(builtin.ack_validator, bodies[0]) == []


def test_spec_option_gives_the_same_findings_as_builtin() -> None:
    spec = SchemaSet.from_document(UPSTREAM_CORE)
    with_spec = Engine(schemas=spec, layer2=Layer2(spec))
    messages = load_transcript([EXAMPLES])
    ours = [(f.rule_id, f.source, f.path) for f in Engine().check(messages).findings]
    theirs = [(f.rule_id, f.source, f.path) for f in with_spec.check(messages).findings]
    assert ours == theirs


def test_a_document_that_is_neither_openapi_nor_schemas_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("title: nothing here\n")
    with pytest.raises(ConfigError, match="neither an OpenAPI document"):
        SchemaSet.from_document(bad)
