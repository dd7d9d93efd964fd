"""Captured traffic in every accepted shape; broken input becomes a finding or a clear error, never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from conformance import ConfigError, Engine, load_transcript
from conformance.messages import MAX_MESSAGE_BYTES
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "conformant-transaction"


def _bodies() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(CLEAN.glob("*.json"))]


def _rules(engine: Engine, paths: list[Path]) -> list[str]:
    return [f.rule_id for f in engine.check(load_transcript(paths)).findings]


def test_folder_of_json_files(engine: Engine) -> None:
    messages = load_transcript([CLEAN])
    assert [m.action for m in messages][:2] == ["search", "on_search"]
    assert all(m.index is None and m.source.endswith(".json") for m in messages)
    assert _rules(engine, [CLEAN]) == []


def test_plain_json_lines_are_numbered_by_line(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(b) for b in _bodies()) + b"\n\n")
    messages = load_transcript([path])
    assert [m.index for m in messages] == list(range(1, 13))
    assert _rules(engine, [path]) == []


def test_wrapped_json_lines_carry_arrival_direction_and_endpoint(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "capture.jsonl"
    lines = [{"received_at": f"2025-05-07T10:44:{i:02d}Z", "direction": "in", "url": f"http://bpp/{b['context']['action']}",
              "body": b} for i, b in enumerate(_bodies())]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    messages = load_transcript([path])
    assert messages[0].received_at is not None and messages[0].direction == "in"
    assert messages[0].endpoint == "/search"
    assert _rules(engine, [path]) == []


def test_har_entries_give_endpoint_arrival_and_sync_response(tmp_path: Path, engine: Engine) -> None:
    entries = []
    for i, body in enumerate(_bodies()):
        entries.append({
            "startedDateTime": f"2025-05-07T10:44:{i:02d}.000Z",
            "request": {"method": "POST", "url": f"https://bpp.example.com/{body['context']['action']}",
                        "postData": {"mimeType": "application/json", "text": json.dumps(body)}},
            "response": {"status": 200, "content": {"text": json.dumps({"message": {"ack": {"status": "ACK"}}})}},
        })
    entries.append({"request": {"method": "GET", "url": "https://bpp.example.com/health"}})
    path = tmp_path / "capture.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    messages = load_transcript([path])
    assert len(messages) == 12
    assert messages[2].endpoint == "/init" and messages[2].response == {"message": {"ack": {"status": "ACK"}}}
    assert _rules(engine, [path]) == []


def test_har_wrong_endpoint_and_bad_ack_are_findings(tmp_path: Path, engine: Engine) -> None:
    body = _bodies()[0]
    entry = {"request": {"method": "POST", "url": "https://gw.example.com/select", "postData": {"text": json.dumps(body)}},
             "response": {"content": {"text": json.dumps({"message": {"ack": {"status": "OK"}}})}}}
    path = tmp_path / "capture.har"
    path.write_text(json.dumps({"log": {"entries": [entry]}}))
    findings = Engine().check(load_transcript([path])).findings
    assert [(f.rule_id, f.path, f.expected, f.found) for f in findings] == [
        ("SCH_ACK_RESPONSE", "$.message.ack.status", ["ACK", "NACK"], "OK"),
        ("CTX_ACTION_PATH_MISMATCH", "$.context.action", "select", "search"),
    ]
    assert findings[0].must == "be one of the allowed values, in the synchronous ACK/NACK response"


@pytest.mark.parametrize("content, rule", [
    (b"{not json", "SCH_NOT_JSON"),
    (b"", "SCH_NOT_JSON"),
    (b"[1, 2]", "SCH_NOT_OBJECT"),
    (b"\"text\"", "SCH_NOT_OBJECT"),
    (b"{\"message\": {}}", "CTX_MISSING"),
    (b"{\"context\": {\"action\": \"dance\"}, \"message\": {}}", "CTX_ACTION_UNKNOWN"),
])
def test_unusable_records_are_findings(tmp_path: Path, engine: Engine, content: bytes, rule: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    findings = engine.check(load_transcript([path])).findings
    assert [(f.rule_id, f.source, f.index) for f in findings] == [(rule, str(path), None)]


def test_bad_lines_in_json_lines_keep_their_line_numbers(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "capture.jsonl"
    bodies = _bodies()
    path.write_bytes(orjson.dumps(bodies[0]) + b"\n{oops\n" + orjson.dumps(bodies[1]) + b"\n")
    findings = engine.check(load_transcript([path])).findings
    assert [(f.rule_id, f.index) for f in findings] == [("SCH_NOT_JSON", 2)]


def test_huge_record_is_reported_not_decoded(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.write(b"{\"pad\": \"")
        handle.write(b"x" * (MAX_MESSAGE_BYTES + 1))
        handle.write(b"\"}")
    findings = engine.check(load_transcript([path])).findings
    assert [f.rule_id for f in findings] == ["SCH_TOO_LARGE"]


@pytest.mark.parametrize("name, content, message", [
    ("missing.json", None, "no such file or folder"),
    ("", None, "no .json, .jsonl, .ndjson, .har files"),
    ("empty.jsonl", "", "no messages found"),
    ("blank.jsonl", "\n\n", "no messages found"),
    ("x.har", "{}", "not a HAR file \\(no log.entries\\)"),
    ("x.har", "{oops", "not a HAR file \\(not valid JSON"),
])
def test_unusable_input_is_a_clear_error(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_transcript([path])


def test_a_har_saved_as_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "capture.json"
    path.write_text(json.dumps({"log": {"entries": []}}))
    with pytest.raises(ConfigError, match="name it \\*.har"):
        load_transcript([path])


def test_messages_are_ordered_by_timestamp_within_a_transaction(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "shuffled.jsonl"
    bodies = _bodies()
    path.write_bytes(b"\n".join(orjson.dumps(b) for b in reversed(bodies)))
    assert _rules(engine, [path]) == []
