"""Hostile captured traffic: `validate` never crashes, never hangs, never loses a record without a word.

Issue "Never hang, never crash, never lose a message" (offline part). Each case runs the command line
(`conformance.cli.main`, `--json` and text) on one hostile input, or on a near miss that must stay silent, and
checks: no traceback (never exit 5), the exit code the README's table gives (0: no errors, warnings allowed; 1:
errors found; 2: unusable input, one line on stderr naming the path), and every finding by rule id, source,
line or entry, and JSON path (the path of an SCH_CAPTURE_* finding is into the capture's record, not the
message).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tracemalloc
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from conformance import Engine, Message, load_transcript, messages, reporting, transcript
from conformance.cli import main
from conformance.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from conformance.rules import schema as schema_rules
from tests.conftest import DELETE, FIXTURES, changed

CLEAN = FIXTURES / "conformant-transaction"
SEARCH, ON_SEARCH = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(CLEAN.glob("*.json"))[:2])
ACK = {"message": {"ack": {"status": "ACK"}}}


Found = tuple[str, str, "int | None", str]
"""(rule id, file name, line or entry, JSON path) of a finding."""


def validate(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[Found], str]:
    """`validate --json` on the paths: exit code, findings, stderr. The text report is rendered too (both writers
    must print every source name), and must agree on the exit code and name each finding's place."""
    code = main(["validate", "--json", *map(str, paths)])
    out, err = capsys.readouterr()
    assert code != EXIT_INTERNAL and "Traceback" not in err, err
    findings = []
    if code == EXIT_USAGE:
        assert out == "" and err.startswith("deg-conformance: error: ") and err.count("\n") == 1, err
    else:
        findings = json.loads(out)["findings"]
    text_code = main(["validate", *map(str, paths)])
    text, text_err = capsys.readouterr()
    assert (text_code, text_err) == (code, err)
    for f in findings:
        where = f["source"] if f["index"] is None else f"{f['source']}:{f['index']}"
        assert f"{f['rule_id']}  {where}  " in text
    return code, [(f["rule_id"], Path(f["source"]).name, f["index"], f["path"]) for f in findings], err


def write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def wrapped(message: Any, second: int, **fields: Any) -> dict:
    """The message as a wrapped line, captured `second` seconds after 10:44; fields replace the wrapper's."""
    action = message["context"]["action"] if isinstance(message, dict) else "x"
    record = {"received_at": f"2025-05-07T10:44:0{second}Z", "direction": "in",
              "url": f"https://example.com/{action}", "response": ACK, "body": message}
    return {k: v for k, v in {**record, **fields}.items() if v is not DELETE}


def lines(*records: Any) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


# --------------------------------------------------------------------------------------------------------------
# Message values of a type no rule expected, and times near the year 9999 (found by fuzzing)
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("at, path, value, finding", [
    pytest.param(0, ("context", "domain"), [], ("L2_PACK_MISSING", 1, "$.context.domain"),
                 id="a list as domain (hashed by the Layer-2 rule)"),
    pytest.param(1, ("message", "catalog", "providers", 0, "locations", 0, "id"), [],
                 ("SCH_TYPE", 2, "$.message.catalog.providers[0].locations[0].id"), id="a list as a catalog id"),
    pytest.param(0, ("context", "ttl"), "P9999Y", ("CTX_TTL_FORMAT", 1, "$.context.ttl"),
                 id="a ttl past the year 9999"),
])
def test_values_of_unexpected_types_are_findings_not_crashes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             at: int, path: tuple, value: Any,
                                                             finding: tuple[str, int, str]) -> None:
    bodies = [SEARCH, ON_SEARCH]
    bodies[at] = changed(bodies[at], path, value)
    capture = write(tmp_path, "capture.jsonl", lines(*bodies))
    code, found, _ = validate(capsys, capture)
    rule, line, where = finding
    assert code == EXIT_FAILED and (rule, "capture.jsonl", line, where) in found


def members(doc: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path of every member and array element in a JSON document, depth first."""
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in children:
        yield (*path, key)
        yield from members(value, (*path, key))


TRANSACTION = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CLEAN.glob("*.json"))]


@pytest.mark.parametrize("at", range(len(TRANSACTION)), ids=[b["context"]["action"] for b in TRANSACTION])
def test_a_value_of_another_type_anywhere_is_never_a_crash(engine: Engine, at: int) -> None:
    """Rules hashed or compared values they took for strings (a list as domain, catalog id or state): every
    member of each message of the clean transaction, replaced in turn by null, [], {} and a number, is checked
    and reported without an exception."""
    for path in members(TRANSACTION[at]):
        for value in (None, [], {}, 1.5):
            bodies = [*TRANSACTION[:at], changed(TRANSACTION[at], path, value), *TRANSACTION[at + 1:]]
            report = engine.check([Message(body, "sweep", i, seq=i) for i, body in enumerate(bodies)])
            reporting.as_text(report)
            orjson.dumps(reporting.as_json(report))


def test_a_fulfillment_state_that_is_a_list_is_no_cancelled_state(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    shutil.copytree(CLEAN, tmp_path / "captures")
    on_cancel = tmp_path / "captures" / "12-on_cancel.json"
    state = ("message", "order", "fulfillments", 0, "state", "descriptor", "code")
    on_cancel.write_text(json.dumps(changed(json.loads(on_cancel.read_text()), state, ["CANCELLED"])))
    code, found, _ = validate(capsys, tmp_path / "captures")
    assert code == EXIT_FAILED and ("ORD_NOT_CANCELLED", "12-on_cancel.json", None, "$.message.order") in found


@pytest.mark.parametrize("sent, arrived, found", [
    pytest.param("9999-12-31T23:59:45Z", "9999-12-31T23:59:59Z", [], id="within the ttl, which ends past 9999"),
    pytest.param("9999-12-31T23:59:00Z", "9999-12-31T23:59:59Z",
                 [("TXN_CALLBACK_AFTER_TTL", "capture.jsonl", 2, "$.context.timestamp")], id="after the ttl"),
])
def test_the_ttl_rule_holds_up_to_the_year_9999(capsys: pytest.CaptureFixture[str], tmp_path: Path, sent: str,
                                                arrived: str, found: list) -> None:
    """request + ttl past the year 9999 overflowed (a traceback); the rule now compares differences."""
    capture = write(tmp_path, "capture.jsonl", lines(wrapped(SEARCH, 0, received_at=sent),
                                                     wrapped(ON_SEARCH, 1, received_at=arrived)))
    assert validate(capsys, capture)[:2] == (EXIT_FAILED if found else EXIT_OK, found)


# --------------------------------------------------------------------------------------------------------------
# Names that are not UTF-8
# --------------------------------------------------------------------------------------------------------------

def test_a_file_name_that_is_not_utf8_prints_readably_in_text_and_json(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    try:
        with open(folder + b"/caf\xe9.json", "wb") as handle:
            handle.write(json.dumps(changed(SEARCH, ("context", "action"), "serch")).encode())
    except OSError as exc:  # a file system that refuses such names (not Linux's)
        pytest.skip(f"cannot create a file whose name is not UTF-8 here: {exc}")
    name = os.fsdecode(folder + b"/caf\xe9.json")
    for given in (name, str(tmp_path)):
        code = main(["validate", "--json", given])
        out, err = capsys.readouterr()
        assert code == EXIT_FAILED and err == ""
        assert [f["source"] for f in json.loads(out)["findings"]] == [f"{tmp_path}/caf\\xe9.json"]
        code = main(["validate", given])
        out, err = capsys.readouterr()
        assert code == EXIT_FAILED and f"CTX_ACTION_UNKNOWN  {tmp_path}/caf\\xe9.json  serch" in out


# --------------------------------------------------------------------------------------------------------------
# Folders: nothing in them is skipped without a word
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The clean transaction, its first two messages in a subfolder."""
    root = tmp_path / "captures"
    shutil.copytree(CLEAN, root)
    (root / "sub").mkdir()
    for path in sorted(root.glob("*.json"))[:2]:
        path.rename(root / "sub" / path.name)
    return root


def test_an_unreadable_subfolder_is_unusable_input(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    (folder / "sub").chmod(0)
    try:
        if os.access(folder / "sub", os.R_OK):
            pytest.skip("permissions do not restrict this user (root); "
                        "test_a_subfolder_that_cannot_be_listed_is_unusable_input simulates the refusal")
        code, _, err = validate(capsys, folder)
    finally:
        (folder / "sub").chmod(0o755)
    assert code == EXIT_USAGE and f"{folder / 'sub'}: cannot read this folder: Permission denied" in err


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), OSError(5, "Input/output error")])
def test_a_subfolder_that_cannot_be_listed_is_unusable_input(capsys: pytest.CaptureFixture[str], folder: Path,
                                                             monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    """As root, chmod restricts nothing: the listing fails as it would for another user, or on a bad disk."""
    scandir = os.scandir

    def refusing(path: Any) -> Any:
        if isinstance(path, (str, Path)) and Path(path) == folder / "sub":
            raise error
        return scandir(path)

    monkeypatch.setattr(transcript.os, "scandir", refusing)
    code, _, err = validate(capsys, folder)
    assert code == EXIT_USAGE and f"{folder / 'sub'}: cannot read this folder: {error.strerror}" in err


def test_a_subfolder_that_vanishes_during_the_walk_is_unusable_input(
        capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scandir = os.scandir

    def vanishing(path: Any) -> Any:  # shutil.rmtree lists by file descriptor, through here too
        if isinstance(path, (str, Path)) and Path(path) == folder / "sub":
            shutil.rmtree(path)  # another process cleans up between the parent's listing and this one
        return scandir(path)

    monkeypatch.setattr(transcript.os, "scandir", vanishing)
    code = main(["validate", str(folder)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and f"{folder / 'sub'}: cannot read this folder: No such file or directory" in err


def test_a_link_to_nothing_in_a_folder_is_unusable_input(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    (folder / "sub" / "13-late.json").symlink_to(folder / "gone.json")
    code, _, err = validate(capsys, folder)
    link = folder / "sub" / "13-late.json"
    assert code == EXIT_USAGE and f"{link}: a symbolic link that leads to no file or folder" in err


def test_links_to_folders_are_followed_and_each_folder_read_once(capsys: pytest.CaptureFixture[str],
                                                                 folder: Path) -> None:
    (folder / "sub" / "up").symlink_to(folder)  # a loop: walked forever, or read twice, without the check
    outside = folder.parent / "outside"
    (folder / "sub").rename(outside)
    (folder / "sub").symlink_to(outside)
    assert validate(capsys, folder)[:2] == (EXIT_OK, [])
    assert len(load_transcript([folder])) == 12


def test_a_pipe_is_refused_not_waited_on(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(tmp_path / "capture.jsonl")
    code, _, err = validate(capsys, tmp_path / "capture.jsonl")
    assert code == EXIT_USAGE and "capture.jsonl: not a file or folder" in err
    shutil.copy(CLEAN / "01-search.json", tmp_path)
    assert validate(capsys, tmp_path)[:2] == (EXIT_OK, [])  # in a folder it is not a capture file: skipped


# --------------------------------------------------------------------------------------------------------------
# Lines over the size limit: reported with their size, never held whole
# --------------------------------------------------------------------------------------------------------------

CAP = 4096


def limit_messages_to(monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    """MAX_MESSAGE_BYTES at `cap` wherever it is read, so that an oversize line costs little to make."""
    for module in (messages, transcript, schema_rules):
        monkeypatch.setattr(module, "MAX_MESSAGE_BYTES", cap)


def padded(body: dict, size: int) -> bytes:
    """The body as one line of exactly `size` bytes, newline included."""
    line = json.dumps({**body, "pad": ""}).encode()
    return line[:-2] + b"x" * (size - len(line) - 1) + b'"}\n'


def test_a_line_over_the_limit_is_reported_with_its_size_and_reading_goes_on(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines 3 and 4 are on either side of the limit (newline included); line 5 ends the file without one."""
    limit_messages_to(monkeypatch, CAP)
    other = changed(changed(SEARCH, ("context", "transaction_id"), "0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b"),
                    ("context", "message_id"), "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    capture = write(tmp_path, "capture.jsonl", json.dumps(SEARCH).encode() + b"\n" + padded(ON_SEARCH, 1_000_000)
                    + padded(other, CAP) + padded(other, CAP + 1) + b"x" * 50_000)
    code, found, _ = validate(capsys, capture)
    assert (code, found) == (EXIT_FAILED, [("SCH_TOO_LARGE", "capture.jsonl", n, "$") for n in (2, 4, 5)])
    assert [m.action for m in load_transcript([capture])] == ["search", None, "search", None, None]
    main(["validate", "--json", str(capture)])
    sizes = [(f["expected"], f["found"]) for f in json.loads(capsys.readouterr().out)["findings"][:3]]
    assert sizes == [(f"<= {CAP} bytes", f"{size} bytes") for size in (1_000_000, CAP + 1, 50_000)]


def test_a_line_over_the_limit_is_never_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An 8 MiB line under a 64 KiB limit: reading holds the limit and a chunk, not the line (the limit applied
    after the whole line was read, so a 1 GB line took 2 GB)."""
    cap, line = 64 * 1024, 8 * 1024 * 1024
    limit_messages_to(monkeypatch, cap)
    capture = write(tmp_path, "capture.jsonl", padded(ON_SEARCH, line) + json.dumps(SEARCH).encode())
    tracemalloc.start()
    try:
        loaded = load_transcript([capture])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(m.size, m.action) for m in loaded] == [(line, None), (len(json.dumps(SEARCH)), "search")]
    assert peak < cap + transcript.SKIP_CHUNK + 256 * 1024, f"peak {peak} bytes for a {line}-byte line"


# --------------------------------------------------------------------------------------------------------------
# HAR: entry 1 a clean search, entry 2 its on_search with one part of another shape
# --------------------------------------------------------------------------------------------------------------

def har_entry(body: dict, second: int) -> dict:
    action = body["context"]["action"]
    return {"startedDateTime": f"2025-05-07T10:44:0{second}.000Z",
            "request": {"method": "POST", "url": f"https://example.com/{action}", "headers": [],
                        "postData": {"mimeType": "application/json", "text": json.dumps(body)}},
            "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json",
                                                                   "text": json.dumps(ACK)}}}


def har(*entries: Any) -> str:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}})


FIRST, SECOND = har_entry(SEARCH, 0), har_entry(ON_SEARCH, 1)


def b64(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


RECORD, FIELD = "SCH_CAPTURE_RECORD", "SCH_CAPTURE_FIELD"

HAR_ENTRIES = [
    # No message in the entry: an error, so that no verdict passes over it.
    *[pytest.param((), odd, EXIT_FAILED, RECORD, "$", id=f"entry is {odd!r}") for odd in ("text", 42, None, [])],
    *[pytest.param(("request",), odd, EXIT_FAILED, RECORD, "$.request", id=f"request is {odd!r}")
      for odd in ("text", None, [1], DELETE)],
    *[pytest.param(("request", "postData"), odd, EXIT_FAILED, RECORD, "$.request.postData",
                   id=f"postData is {odd!r}") for odd in ("text", 5, [])],
    *[pytest.param(("request", "postData", "text"), odd, EXIT_FAILED, RECORD, "$.request.postData.text",
                   id=f"postData.text is {odd!r}") for odd in (5, {})],
    pytest.param(("request", "postData"), {"text": "%%%", "encoding": "base64"}, EXIT_FAILED, RECORD,
                 "$.request.postData.text", id="postData.text is not the base64 it says"),
    pytest.param(("request", "postData"), {"text": json.dumps(ON_SEARCH), "encoding": "gzip"}, EXIT_FAILED, RECORD,
                 "$.request.postData.encoding", id="postData.encoding gzip"),
    # The message is checked without the part: a warning.
    *[pytest.param(("response",), odd, EXIT_OK, FIELD, "$.response", id=f"response is {odd!r}")
      for odd in ("text", 5, [])],
    pytest.param(("response", "content"), "text", EXIT_OK, FIELD, "$.response.content", id="content is a string"),
    pytest.param(("response", "content", "text"), 5, EXIT_OK, FIELD, "$.response.content.text",
                 id="content.text is a number"),
    pytest.param(("response", "content"), {"text": "%%%", "encoding": "base64"}, EXIT_OK, FIELD,
                 "$.response.content.text", id="content.text is not the base64 it says"),
    pytest.param(("response", "content", "encoding"), "br", EXIT_OK, FIELD, "$.response.content.encoding",
                 id="content.encoding br"),
    *[pytest.param(("startedDateTime",), odd, EXIT_OK, FIELD, "$.startedDateTime", id=f"startedDateTime {odd!r}")
      for odd in ("yesterday", 1e20, True)],
    *[pytest.param(("request", "url"), odd, EXIT_OK, FIELD, "$.request.url", id=f"url {odd!r}")
      for odd in (5, "http://[::1/on_search")],
]


@pytest.mark.parametrize("path, odd, code, rule, where", HAR_ENTRIES)
def test_a_har_entry_of_another_shape_is_a_finding_on_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         path: tuple[str, ...], odd: Any, code: int, rule: str,
                                                         where: str) -> None:
    capture = write(tmp_path, "capture.har", har(FIRST, changed(SECOND, path, odd)))
    assert validate(capsys, capture)[:2] == (code, [(rule, "capture.har", 2, where)])


@pytest.mark.parametrize("path, odd", [
    pytest.param(("request", "headers"), "text", id="request headers a string"),
    pytest.param(("response", "headers"), 5, id="response headers a number"),
    pytest.param(("response",), DELETE, id="no response"),
    pytest.param(("response", "content"), None, id="response content null"),
    pytest.param(("startedDateTime",), DELETE, id="no startedDateTime"),
])
def test_har_parts_no_rule_reads_may_be_anything(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  path: tuple[str, ...], odd: Any) -> None:
    capture = write(tmp_path, "capture.har", har(FIRST, changed(SECOND, path, odd)))
    assert validate(capsys, capture)[:2] == (EXIT_OK, [])


def test_a_har_entry_that_is_not_a_post_is_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Page loads and health checks are not Beckn messages; neither is an entry whose method is no string."""
    capture = write(tmp_path, "capture.har", har(FIRST, changed(SECOND, ("request", "method"), 5),
                                                 changed(SECOND, ("request", "method"), "GET")))
    assert validate(capsys, capture)[:2] == (EXIT_OK, [])
    assert [m.action for m in load_transcript([capture])] == ["search"]


def test_har_bodies_in_base64_are_decoded_before_they_are_read(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    """Read undecoded, a base64 ACK was a false SCH_ACK_RESPONSE."""
    entry = changed(SECOND, ("request", "postData"), {"text": b64(ON_SEARCH), "encoding": "base64"})
    good = changed(entry, ("response", "content"), {"text": b64(ACK), "encoding": "base64"})
    capture = write(tmp_path, "capture.har", har(FIRST, good))
    assert validate(capsys, capture)[:2] == (EXIT_OK, [])
    assert load_transcript([capture])[1].response == ACK
    bad = changed(entry, ("response", "content"), {"text": b64({"message": {"ack": {"status": "OK"}}}),
                                                   "encoding": "base64"})
    write(tmp_path, "capture.har", har(FIRST, bad))
    assert validate(capsys, capture)[:2] == (EXIT_FAILED,
                                             [("SCH_ACK_RESPONSE", "capture.har", 2, "$.message.ack.status")])


@pytest.mark.parametrize("doc", [
    {"log": {"entries": "text"}}, {"log": {"entries": {}}}, {"log": {"entries": None}}, {"log": []}, [],
])
def test_a_har_without_a_list_of_entries_is_unusable_input(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           doc: Any) -> None:
    capture = write(tmp_path, "capture.har", json.dumps(doc))
    code, _, err = validate(capsys, capture)
    assert code == EXIT_USAGE and f"{capture}: not a HAR file (no log.entries)" in err


# --------------------------------------------------------------------------------------------------------------
# Wrapped JSON Lines: line 1 a clean search, line 2 its on_search with one field of another kind
# --------------------------------------------------------------------------------------------------------------

WRAPPED_FIELDS = [
    *[pytest.param({"received_at": odd}, EXIT_OK, [(FIELD, 2, "$.received_at")], id=f"received_at {odd!r}")
      for odd in (1e20, -1, True, False, "yesterday", "2025-13-01T00:00:00Z", "2025-05-07 10:44:01", {}, [])],
    *[pytest.param({"direction": odd}, EXIT_OK, [(FIELD, 2, "$.direction")], id=f"direction {odd!r}")
      for odd in ("sideways", "IN", 1, [])],
    *[pytest.param({"url": odd}, EXIT_OK, [(FIELD, 2, "$.url")], id=f"url {odd!r}")
      for odd in (5, ["https://example.com/on_search"], "http://[::1/on_search")],
    pytest.param({"url": DELETE, "endpoint": {}}, EXIT_OK, [(FIELD, 2, "$.endpoint")], id="endpoint an object"),
    pytest.param({"received_at": "nope", "direction": 7}, EXIT_OK,
                 [(FIELD, 2, "$.received_at"), (FIELD, 2, "$.direction")], id="two fields, two findings"),
    *[pytest.param({"body": odd}, EXIT_FAILED, [("SCH_NOT_JSON", 2, "$")], id=f"body string {odd!r}")
      for odd in ("{not json", "", "[1,")],
    # Silent: what each field may be.
    *[pytest.param({"received_at": ok}, EXIT_OK, [], id=f"received_at {ok!r}")
      for ok in (1746614641, 1746614641.5, "2025-05-07T12:44:01+02:00", None, DELETE)],
    *[pytest.param({"direction": ok}, EXIT_OK, [], id=f"direction {ok!r}") for ok in ("out", None, DELETE)],
    *[pytest.param({"url": ok}, EXIT_OK, [], id=f"url {ok!r}") for ok in ("/bap/on_search", None, DELETE)],
    pytest.param({"body": json.dumps(ON_SEARCH)}, EXIT_OK, [], id="body a JSON string"),
]


@pytest.mark.parametrize("fields, code, expected", WRAPPED_FIELDS)
def test_a_wrapper_field_of_another_kind_leaves_it_unknown_and_says_why(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, fields: dict, code: int, expected: list) -> None:
    capture = write(tmp_path, "capture.jsonl", lines(wrapped(SEARCH, 0), wrapped(ON_SEARCH, 1, **fields)))
    assert validate(capsys, capture)[:2] == (code, [(rule, "capture.jsonl", n, path) for rule, n, path in expected])


def test_an_unusable_capture_time_is_unknown_not_guessed(tmp_path: Path) -> None:
    capture = write(tmp_path, "capture.jsonl", lines(wrapped(SEARCH, 0, received_at=1746614640.25),
                                                     wrapped(ON_SEARCH, 1, received_at=1e20)))
    search, on_search = load_transcript([capture])
    assert search.received_at is not None and search.received_at.isoformat() == "2025-05-07T10:44:00.250000+00:00"
    assert on_search.received_at is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_capture_time_json_cannot_hold_makes_the_line_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                  literal: str) -> None:
    line = json.dumps(wrapped(ON_SEARCH, 1)).replace('"2025-05-07T10:44:01Z"', literal)
    capture = write(tmp_path, "capture.jsonl", lines(wrapped(SEARCH, 0), line))
    assert validate(capsys, capture)[:2] == (EXIT_FAILED, [("SCH_NOT_JSON", "capture.jsonl", 2, "$")])


# --------------------------------------------------------------------------------------------------------------
# Records of keys no capture format has
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("record, code, rule, found", [
    pytest.param({"ts": "2025-05-07T10:44:01Z", "payload": ON_SEARCH}, EXIT_FAILED, RECORD, ["payload", "ts"],
                 id="ts and payload: no message"),
    pytest.param({"received_at": "2025-05-07T10:44:01Z", "direction": "in"}, EXIT_FAILED, RECORD,
                 ["direction", "received_at"], id="a wrapper without its body: no message"),
    pytest.param({"body": ON_SEARCH, "headers": {"Authorization": "x"}}, EXIT_OK, FIELD, ["headers"],
                 id="body and headers: the body is checked, headers ignored"),
])
def test_a_record_of_unknown_keys_is_never_read_as_a_bare_message(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, record: dict, code: int, rule: str, found: list) -> None:
    """Read as a bare message, such a record was a CTX_MISSING (or, with a context in it, a silent pass)."""
    capture = write(tmp_path, "capture.jsonl", lines(wrapped(SEARCH, 0), record))
    code_found, findings, _ = validate(capsys, capture)
    assert (code_found, findings) == (code, [(rule, "capture.jsonl", 2, "$")])
    main(["validate", "--json", str(capture)])
    finding = json.loads(capsys.readouterr().out)["findings"][0]
    assert finding["found"] == found


def test_a_json_file_of_unknown_keys_is_a_finding_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    capture = write(tmp_path, "capture.json", json.dumps({"ts": 1, "payload": ON_SEARCH}))
    assert validate(capsys, capture)[:2] == (EXIT_FAILED, [(RECORD, "capture.json", None, "$")])


# --------------------------------------------------------------------------------------------------------------
# Nesting past MAX_DEPTH, wherever JSON enters
# --------------------------------------------------------------------------------------------------------------

def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("name, content, index", [
    pytest.param("deep.json", nested(300), None, id="a JSON file"),
    pytest.param("deep.json", nested(5000), None, id="a JSON file deeper than orjson parses"),
    pytest.param("deep.jsonl", lines(SEARCH, nested(300)), 2, id="a JSON Lines line"),
    pytest.param("deep.jsonl", lines(wrapped(SEARCH, 0), wrapped(nested(300), 1)), 2, id="a wrapped body string"),
    pytest.param("deep.har", har(FIRST, changed(SECOND, ("request", "postData", "text"), nested(300))), 2,
                 id="a HAR entry's body"),
    pytest.param("deep.har", har(FIRST, changed(SECOND, ("request", "postData"),
                                                {"text": base64.b64encode(nested(300).encode()).decode(),
                                                 "encoding": "base64"})), 2, id="a HAR entry's base64 body"),
])
def test_nesting_past_the_limit_is_one_finding(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str,
                                               content: str, index: int | None) -> None:
    capture = write(tmp_path, name, content)
    assert validate(capsys, capture)[:2] == (EXIT_FAILED, [("SCH_TOO_DEEP", name, index, "$")])


def test_a_har_response_nested_past_the_limit_is_not_an_ack(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    """It is read as text, never decoded whole into something a schema validator recurses through."""
    capture = write(tmp_path, "deep.har", har(FIRST, changed(SECOND, ("response", "content", "text"),
                                                             "{\"a\":" * 300 + "1" + "}" * 300)))
    assert validate(capsys, capture)[:2] == (EXIT_FAILED, [("SCH_ACK_RESPONSE", "deep.har", 2, "$")])


def test_a_har_nested_past_what_orjson_parses_is_unusable_input(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    """The HAR is one JSON document, read whole: an entry 2000 levels deep leaves no document to take entries
    from (the limit is orjson's, 1024 levels)."""
    capture = write(tmp_path, "deep.har", har(FIRST)[:-3] + ", " + nested(2000) + "]}}")
    code, _, err = validate(capsys, capture)
    assert code == EXIT_USAGE and f"{capture}: not a HAR file (not valid JSON: depth limit exceeded" in err
