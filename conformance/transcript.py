"""Captured traffic in, messages out: a folder of JSON files, JSON Lines, or a HAR file.

Whatever a file holds, every record becomes a `Message`; one that cannot be decoded keeps its error so
the report shows it, and so does a record of an unknown shape or a capture field that cannot be used
(`Message.capture_error`, `Message.capture_issues`): captured traffic is hostile input, and a record the
harness skipped without a word would make the verdict wrong. Only input that holds no record at all, or
that cannot be read (a missing path, an empty or unreadable folder, a link to nothing), is a ConfigError.
Every body goes through `decode_json`, so its size and depth limits hold here as on the wire.
"""
from __future__ import annotations

import binascii
import os
from base64 import b64decode
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence
from urllib.parse import urlsplit

import orjson

from conformance._perf import paused_gc
from conformance._types import PathPart
from conformance.errors import ConfigError
from conformance.findings import ABSENT, Violation
from conformance.messages import MAX_MESSAGE_BYTES, Message, SignatureCheck, decode_json, json_type, parse_timestamp

SUFFIXES = (".json", ".jsonl", ".ndjson", ".har")
MAX_HAR_BYTES = 512 * 1024 * 1024
WRAPPER_KEYS = frozenset({"received_at", "direction", "body", "endpoint", "url", "response", "latency", "signatures"})
"""A capture wrapper's keys; `latency` (seconds to the synchronous reply) and `signatures` (how the receiver's check
of each signature header went) are what a run's transcript.jsonl adds, so that validating it gives the findings
the run gave."""
BECKN_KEYS = frozenset({"context", "message", "error"})
"""The members of a Beckn message body: a record with any of them is read as a bare message."""
SKIP_CHUNK = 64 * 1024
"""How much of a line over MAX_MESSAGE_BYTES is held at a time while reading past it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST_SECOND = (datetime(9999, 12, 31, tzinfo=timezone.utc) - _EPOCH).total_seconds()
"""Seconds since 1970 beyond which a capture time is not a time (datetime ends in year 9999)."""
_IN_RECORD = "in the capture's record"


def load(paths: Sequence[Path]) -> list[Message]:
    """Every record under the given files and folders, numbered in input order."""
    messages: list[Message] = []
    found = files(paths)
    with paused_gc(sum(size_of(f) for f in found) // 1024):  # about a message per KiB
        for file in found:
            for msg in _read(file):
                msg.seq = len(messages)
                messages.append(msg)
    if not messages:
        raise ConfigError(f"no messages found in {', '.join(map(display, paths))}")
    return messages


def display(path: Path) -> str:
    """A path as text that prints anywhere, losing nothing: the bytes of a name that are not UTF-8 (which
    os.fsdecode keeps as lone surrogates, refused by UTF-8 output and by JSON) are written as `\\xNN`."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def size_of(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # _read reports it


def _files(path: Path) -> list[Path]:
    try:
        if path.is_dir():
            report = _report_folder(path)
            if report is not None:
                return report
            found = sorted(_walk(path))
            if not found:
                raise ConfigError(f"{display(path)}: no {', '.join(SUFFIXES)} files in this folder")
            return found
        if path.is_file():
            return [path]
        exists = path.exists()
    except OSError as exc:  # is_dir and is_file raise for some errors, e.g. a parent folder without permission
        raise ConfigError(f"{display(path)}: cannot read: {exc.strerror or exc}") from None
    raise ConfigError(f"{display(path)}: {'not a file or folder' if exists else 'no such file or folder'}")


def _report_folder(folder: Path) -> list[Path] | None:
    """A run's report folder holds one capture, its transcript.jsonl; its other files (summary.json, the Allure
    results' attachments) are reports about messages, and read as messages they would give false findings. None
    for a folder that is not a report folder."""
    if (folder / "summary.json").is_file() and (folder / "allure-results").is_dir():
        if (folder / "transcript.jsonl").is_file():
            return [folder / "transcript.jsonl"]
        raise ConfigError(f"{display(folder)}: the report folder of a run, not a capture, and it holds no "
                          "transcript.jsonl (runs write one beside their reports): nothing to validate here")
    if any(folder.glob("*-result.json")) and any(folder.glob("*-attachment*")):
        raise ConfigError(f"{display(folder)}: Allure results, not a capture: validate the run's transcript.jsonl, "
                          "in the folder above")
    return None


def _walk(folder: Path) -> Iterator[Path]:
    """Every capture file below a folder, following links to folders (each folder once: a link back up would
    otherwise be walked forever). Path.rglob quietly skips a subfolder it cannot list; here that, a subfolder
    gone during the walk, and a link to nothing are errors naming the path, since the messages there would be
    missing from the verdict without a word."""
    seen: set[tuple[int, int]] = set()
    todo = [folder]
    while todo:
        current = todo.pop()
        try:
            info = current.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(current) as listing:  # in name order: which path a folder linked twice is read
                entries = sorted(listing, key=lambda e: e.name)  # under must not depend on the file system
        except OSError as exc:
            raise ConfigError(f"{display(current)}: cannot read this folder: {exc.strerror or exc}") from None
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    todo.append(path)
                elif entry.is_file():
                    if path.suffix.lower() in SUFFIXES:
                        yield path
                elif entry.is_symlink() and not os.path.exists(entry.path):  # to nothing, or round in a loop
                    target = display(Path(os.readlink(path)))
                    raise ConfigError(f"{display(path)}: a symbolic link that leads to no file or folder ({target})")
            except OSError as exc:
                raise ConfigError(f"{display(path)}: cannot read: {exc.strerror or exc}") from None


def _read(file: Path) -> Iterator[Message]:
    suffix = file.suffix.lower()
    try:
        size = file.stat().st_size
        if suffix in (".jsonl", ".ndjson"):
            yield from _read_lines(file)
        elif suffix == ".har":
            yield from _read_har(file, size)
        else:
            yield _read_single(file, size)
    except OSError as exc:
        raise ConfigError(f"{display(file)}: cannot read: {exc.strerror or exc}") from None


def _decode(raw: bytes, source: str, index: int | None) -> Message:
    if len(raw) > MAX_MESSAGE_BYTES:
        return Message(None, source, index, size=len(raw))
    if not raw or raw.isspace():  # not raw.strip(), which copies the whole body
        return Message(None, source, index, decode_error="empty", size=len(raw))
    doc, error = decode_json(raw)
    return Message(doc, source, index, decode_error=error, size=len(raw))


def _read_single(file: Path, size: int) -> Message:
    with file.open("rb") as handle:  # at most one byte over the limit, even if the file grew since stat
        raw = handle.read(MAX_MESSAGE_BYTES + 1)
    if len(raw) > MAX_MESSAGE_BYTES:
        return Message(None, display(file), None, size=max(size, len(raw)))
    msg = _decode(raw, display(file), None)
    if _is_har(msg.body):
        raise ConfigError(f"{display(file)}: this is a HAR capture; name it *.har to read its entries")
    return _record(msg)


def _read_lines(file: Path) -> Iterator[Message]:
    for _, msg in lines(file):
        yield msg


def files(paths: Sequence[Path]) -> list[Path]:
    """The capture files under the given files and folders, in the order `load` reads them."""
    if not paths:
        raise ConfigError("no input: give one or more files or folders of captured messages")
    return [file for path in paths for file in _files(path)]


def readable_by_offset(file: Path) -> bool:
    """Whether each record of the file can be read again on its own, from where it starts (`lines`, `read_at`):
    JSON Lines and single JSON files can; a HAR file is one JSON document, read whole."""
    return file.suffix.lower() != ".har"


def lines(file: Path, start: int = 0, end: int | None = None, number: int = 0) -> Iterator[tuple[int, Message]]:
    """The records of a JSON Lines file, with the offset each starts at: from `start` (a line start, after `number`
    lines) to the first line starting at or after `end`."""
    try:
        with file.open("rb") as handle:
            handle.seek(start)
            yield from _lines_in(handle, display(file), start, end, number)
    except OSError as exc:
        raise ConfigError(f"{display(file)}: cannot read: {exc.strerror or exc}") from None


def _lines_in(handle: BinaryIO, source: str, offset: int, end: int | None,
              number: int) -> Iterator[tuple[int, Message]]:
    for at, number, line in raw_lines(handle, offset, end, number):
        yield at, record(line, source, number)


def raw_lines(handle: BinaryIO, offset: int, end: int | None, number: int) -> Iterator[tuple[int, int, bytes | int]]:
    """(offset, line number, bytes) of each line that is not blank, from `offset` (where the handle is, after
    `number` lines) to the first line starting at or after `end`. A line over MAX_MESSAGE_BYTES is read past in
    chunks of SKIP_CHUNK, never held whole (a 1 GB line took 2 GB of memory): its size stands for its bytes."""
    while (end is None or offset < end) and (line := handle.readline(MAX_MESSAGE_BYTES + 1)):
        number += 1
        at = offset
        if len(line) > MAX_MESSAGE_BYTES:
            size = _rest_of_line(handle, line)
            offset += size
            yield at, number, size
            continue
        offset += len(line)
        if not line.isspace():
            yield at, number, line


def record(line: bytes | int, source: str, number: int) -> Message:
    """The message of one line of JSON Lines (`raw_lines`), number `number` of the file `source`."""
    if isinstance(line, int):
        return Message(None, source, number, size=line)
    return _record(_decode(line, source, number))


class Records:
    """Reads records of files `readable_by_offset` back from where they start, as `load` read them, keeping each
    file open while it is read from. A context manager: leaving it closes them."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = files
        self._handles: dict[int, BinaryIO] = {}
        self._sources = [display(f) for f in files]
        self._lines = [f.suffix.lower() in (".jsonl", ".ndjson") for f in files]

    def __enter__(self) -> "Records":
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def at(self, file_no: int, offset: int, number: int) -> Message:
        """The record of file `file_no` starting at `offset`, line `number` (ignored for a file of one message)."""
        file = self.files[file_no]
        try:
            if not self._lines[file_no]:
                return next(_read(file))
            handle = self._handles.get(file_no)
            if handle is None:
                handle = self._handles[file_no] = file.open("rb")
            handle.seek(offset)
            line = handle.readline(MAX_MESSAGE_BYTES + 1)
            if len(line) > MAX_MESSAGE_BYTES:
                return Message(None, self._sources[file_no], number, size=_rest_of_line(handle, line))
        except OSError as exc:
            raise ConfigError(f"{display(file)}: cannot read: {exc.strerror or exc}") from None
        return record(line, self._sources[file_no], number)


def line_starts(file: Path, parts: int) -> list[tuple[int, int]]:
    """About `parts` equal byte ranges of a JSON Lines file, as (offset of a line start, lines before it), the
    first (0, 0). Read a block at a time: a long line is never held whole."""
    size = size_of(file)
    starts = [(0, 0)]
    try:
        with file.open("rb") as handle:
            counted, offset = 0, 0
            for k in range(1, parts):
                target = max(size * k // parts, starts[-1][0] + 1)
                while offset < target:  # count the lines up to the target
                    block = handle.read(min(SKIP_CHUNK, target - offset))
                    if not block:
                        return starts
                    counted += block.count(b"\n")
                    offset += len(block)
                while True:  # then read on to the end of the line the target is in
                    block = handle.read(SKIP_CHUNK)
                    if not block:
                        return starts
                    end = block.find(b"\n")
                    if end >= 0:
                        offset += end + 1
                        counted += 1
                        handle.seek(offset)
                        break
                    offset += len(block)
                if offset >= size:
                    return starts
                starts.append((offset, counted))
    except OSError as exc:
        raise ConfigError(f"{display(file)}: cannot read: {exc.strerror or exc}") from None
    return starts


def _rest_of_line(handle: BinaryIO, start: bytes) -> int:
    """Read to the end of the line that begins with `start`, a chunk at a time; its size."""
    size, chunk = len(start), start
    while not chunk.endswith(b"\n") and (chunk := handle.readline(SKIP_CHUNK)):
        size += len(chunk)
    return size


def _is_har(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("log"), dict) and "entries" in body["log"]


def _record(msg: Message) -> Message:
    """What a decoded record holds. A bare Beckn message: any of its members (context, message, error), or
    no object at all, or an empty one (the schema and context rules say what is wrong). A capture wrapper
    around one: `body`. Anything else holds no message the harness can find (`{"ts": ..., "payload": ...}`):
    reading it as a message without a context would report a missing context, not the unknown format, so it is
    SCH_CAPTURE_RECORD, an error: no verdict may pass over a record nobody checked."""
    record = msg.body
    if not isinstance(record, dict) or not record or not BECKN_KEYS.isdisjoint(record):
        return msg
    if "body" in record:
        return _unwrap(msg)
    found = Violation((), f"a Beckn message ({', '.join(sorted(BECKN_KEYS))}) or a capture wrapper "
                          f"{{{', '.join(sorted(WRAPPER_KEYS))}}}", sorted(record),
                      "be a Beckn message or a capture wrapper with a body; these keys are neither")
    return Message(None, msg.source, msg.index, size=msg.size, capture_error=found)


def _unwrap(msg: Message) -> Message:
    """`{"received_at", "direction", "endpoint" or "url", "response", "body"}` as one message. A field that
    cannot be used is left unknown, with a finding (SCH_CAPTURE_FIELD, a warning: the message is still checked,
    only the rules that need the field cannot be); so are keys no wrapper has (`headers`), which are ignored."""
    wrapper = msg.body
    issues: list[Violation] = []
    unknown = sorted(wrapper.keys() - WRAPPER_KEYS)
    if unknown:
        issues.append(Violation((), sorted(WRAPPER_KEYS), unknown,
                                f"hold only the capture wrapper's keys, {_IN_RECORD} (the others are ignored)"))
    body, decode_error = wrapper["body"], None
    if isinstance(body, str):
        body, decode_error = decode_json(body.encode())
    received_at = _instant(wrapper.get("received_at"), ("received_at",), issues)
    direction = wrapper.get("direction")
    if direction not in (None, "in", "out"):
        issues.append(Violation(("direction",), ["in", "out"], _scalar(direction),
                                f"be in or out, {_IN_RECORD} (the direction is unknown)"))
        direction = None
    key = "url" if wrapper.get("endpoint") is None else "endpoint"
    endpoint = _url_path(wrapper.get(key), (key,), issues)
    latency = wrapper.get("latency")
    if latency is not None and (not isinstance(latency, (int, float)) or isinstance(latency, bool) or latency < 0):
        issues.append(Violation(("latency",), "seconds to the synchronous reply", _scalar(latency),
                                f"be a number of seconds, {_IN_RECORD} (the reply's latency is unknown)"))
        latency = None
    return Message(body, msg.source, msg.index, received_at=received_at, direction=direction, endpoint=endpoint,
                   response=wrapper.get("response", ABSENT), decode_error=decode_error, size=msg.size,
                   latency=latency, signatures=_signatures(wrapper.get("signatures"), issues),
                   capture_issues=tuple(issues))


def _signatures(value: Any, issues: list[Violation]) -> tuple[SignatureCheck, ...]:
    """How the receiver's check of each signature header went: [{header, reason (null: verified), detail}]."""
    if value is None:
        return ()
    checks = [SignatureCheck(v["header"], v.get("reason"), str(v.get("detail") or ""))
              for v in value if isinstance(v, dict) and isinstance(v.get("header"), str)
              and isinstance(v.get("reason"), (str, type(None)))] if isinstance(value, list) else []
    if not isinstance(value, list) or len(checks) != len(value):
        issues.append(Violation(("signatures",), "[{header, reason, detail}, ...]", _scalar(value),
                                f"list the signature checks, {_IN_RECORD} (those that do not are ignored)"))
    return tuple(checks)


def _instant(value: Any, path: tuple[PathPart, ...], issues: list[Violation]) -> datetime | None:
    """A capture time: an RFC 3339 date-time or seconds since 1970. Anything else (a bool, a negative or
    overflowing number, a string that is no date-time) leaves it unknown, and says so; null says nothing."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= _LAST_SECOND:
        return _EPOCH + timedelta(seconds=value)
    moment = parse_timestamp(value)
    if moment is None and value is not None:
        issues.append(Violation(path, "an RFC 3339 date-time, or seconds since 1970 (up to the year 9999)",
                                _scalar(value), f"be a capture time, {_IN_RECORD} (the capture time is unknown)"))
    return moment


def _url_path(value: Any, path: tuple[PathPart, ...], issues: list[Violation]) -> str | None:
    """The path of the URL a message was POSTed to; a URL that does not parse (not a string, a broken IPv6
    host) leaves it unknown, and says so; null says nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return urlsplit(value).path
        except ValueError:
            pass
    issues.append(Violation(path, "a URL or URL path", _scalar(value),
                            f"be the URL the message was POSTed to, {_IN_RECORD} (the endpoint is unknown)"))
    return None


def _scalar(value: Any) -> Any:
    """A found value as a finding may show it: a scalar as it is, anything else by its JSON type (a HAR can nest
    deeper than a finding can be printed)."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else json_type(value)


def _read_har(file: Path, size: int) -> Iterator[Message]:
    if size > MAX_HAR_BYTES:
        raise ConfigError(f"{display(file)}: {size} bytes is more than the {MAX_HAR_BYTES} a HAR file may have")
    try:
        har = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{display(file)}: not a HAR file (not valid JSON: {exc})") from None
    if not _is_har(har) or not isinstance(har["log"]["entries"], list):
        raise ConfigError(f"{display(file)}: not a HAR file (no log.entries)")
    source = display(file)
    for number, entry in enumerate(har["log"]["entries"], start=1):
        msg = _har_entry(entry, source, number)
        if msg is not None:
            yield msg


def _har_entry(entry: Any, source: str, number: int) -> Message | None:
    """One HAR entry as a message, or None when it is not a POST (a page load, a health check). An entry,
    request or postData of another shape holds no message to check (SCH_CAPTURE_RECORD); a response, content
    or capture time of another shape is reported and left unknown (SCH_CAPTURE_FIELD). Bodies may be base64
    (HAR 1.2 `encoding`), and are decoded before they are read."""
    def unread(path: Sequence[PathPart], expected: str, found: Any) -> Message:
        why = Violation(path, expected, _scalar(found), f"be {expected}, {_IN_RECORD} (no message could be read)")
        return Message(None, source, number, capture_error=why)

    if not isinstance(entry, dict):
        return unread((), "a HAR entry (an object with a request)", entry)
    request = entry.get("request")
    if not isinstance(request, dict):
        return unread(("request",), "a HAR request (an object with method, url and postData)", request)
    method = request.get("method")
    if not isinstance(method, str) or method.upper() != "POST":
        return None
    post = request.get("postData")
    if post is not None and not isinstance(post, dict):
        return unread(("request", "postData"), "a HAR postData (an object with the body in text)", post)
    raw = _har_text(post or {}, ("request", "postData"))
    if isinstance(raw, Violation):
        return unread(raw.path, raw.expected, raw.found)
    msg = _decode(raw, source, number)
    issues: list[Violation] = []
    msg.received_at = _instant(entry.get("startedDateTime"), ("startedDateTime",), issues)
    msg.endpoint = _url_path(request.get("url"), ("request", "url"), issues)
    msg.response = _har_response(entry.get("response"), issues)
    msg.capture_issues = tuple(issues)
    return msg


def _har_response(response: Any, issues: list[Violation]) -> Any:
    """The synchronous reply's body: decoded JSON, else its text (the ACK rule says it is not an ACK);
    ABSENT when the entry has none, or one that cannot be read (which is reported)."""
    def unknown(why: Violation) -> Any:
        issues.append(Violation(why.path, why.expected, why.found,
                                f"be {why.expected}, {_IN_RECORD} (the synchronous response is unknown)"))
        return ABSENT

    if response is None:
        return ABSENT
    if not isinstance(response, dict):
        return unknown(Violation(("response",), "an object", _scalar(response)))
    content = response.get("content")
    if content is None:
        return ABSENT
    if not isinstance(content, dict):
        return unknown(Violation(("response", "content"), "an object", _scalar(content)))
    raw = _har_text(content, ("response", "content"))
    if isinstance(raw, Violation):
        return unknown(raw)
    if not raw or raw.isspace():
        return ABSENT
    doc, error = decode_json(raw)
    return doc if error is None else raw.decode("utf-8", "replace")


def _har_text(holder: dict[str, Any], path: tuple[PathPart, ...]) -> bytes | Violation:
    """The bytes of a postData's or content's `text`, base64-decoded when its `encoding` says so; b"" when it
    has none; else why not."""
    text, encoding = holder.get("text"), holder.get("encoding")
    if text is None:
        return b""
    if not isinstance(text, str):
        return Violation((*path, "text"), "a string", json_type(text))
    if encoding is None:
        return text.encode()
    if encoding != "base64":
        return Violation((*path, "encoding"), "base64 or none", _scalar(encoding))
    try:
        return b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Violation((*path, "text"), "base64, as its encoding says", f"{len(text)} characters that are not")
