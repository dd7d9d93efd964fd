"""Hostile captured traffic: `validate` never crashes, never hangs, never loses a record without a word.

Issue "Never hang, never crash, never lose a message" (offline part). Each case runs the command line
(`conformance.cli.main`, `--json` and text) on one hostile input, or on a near miss that must stay silent, and
checks: no traceback (never exit 5), the exit code the README's table gives (0: no errors, warnings allowed; 1:
errors found; 2: unusable input, one line on stderr naming the path), and every finding by rule id, source,
line or entry, and JSON path.
"""
from __future__ import annotations

import copy
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
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "conformant-transaction"
SEARCH, ON_SEARCH = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(CLEAN.glob("*.json"))[:2])
ACK = {"message": {"ack": {"status": "ACK"}}}


class _Delete:
    def __repr__(self) -> str:  # a stable test id, the same in every xdist worker
        return "deleted"


DELETE = _Delete()
"""In a change: remove the key."""

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


def changed(doc: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of a JSON document with the value at path replaced (DELETE: removed); path () replaces it all."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


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
