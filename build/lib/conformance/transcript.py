"""Captured traffic in, messages out: a folder of JSON files, JSON Lines, or a HAR file.

Whatever a file holds, every record becomes a `Message`; one that cannot be decoded keeps its error so
the report shows it. Only input that holds no record at all (a missing path, an empty folder) is a
ConfigError.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import orjson

from conformance._perf import paused_gc
from conformance.errors import ConfigError
from conformance.findings import ABSENT
from conformance.messages import MAX_MESSAGE_BYTES, Message, decode_json, parse_timestamp

SUFFIXES = (".json", ".jsonl", ".ndjson", ".har")
MAX_HAR_BYTES = 512 * 1024 * 1024
WRAPPER_KEYS = frozenset({"received_at", "direction", "body", "endpoint", "url", "response"})


def load(paths: Sequence[Path]) -> list[Message]:
    """Every record under the given files and folders, numbered in input order."""
    if not paths:
        raise ConfigError("no input: give one or more files or folders of captured messages")
    messages: list[Message] = []
    files = [file for path in paths for file in _files(path)]
    with paused_gc(sum(_size(f) for f in files) // 1024):  # about a message per KiB
        for file in files:
            for msg in _read(file):
                msg.seq = len(messages)
                messages.append(msg)
    if not messages:
        raise ConfigError(f"no messages found in {', '.join(map(str, paths))}")
    return messages


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # _read reports it


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise ConfigError(f"{path}: no {', '.join(SUFFIXES)} files in this folder")
        return found
    if path.is_file():
        return [path]
    raise ConfigError(f"{path}: no such file or folder")


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
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None


def _decode(raw: bytes, source: str, index: int | None) -> Message:
    if len(raw) > MAX_MESSAGE_BYTES:
        return Message(None, source, index, size=len(raw))
    if not raw.strip():
        return Message(None, source, index, decode_error="empty", size=len(raw))
    doc, error = decode_json(raw)
    return Message(doc, source, index, decode_error=error, size=len(raw))


def _read_single(file: Path, size: int) -> Message:
    if size > MAX_MESSAGE_BYTES:
        return Message(None, str(file), None, size=size)
    msg = _decode(file.read_bytes(), str(file), None)
    if _is_har(msg.body):
        raise ConfigError(f"{file}: this is a HAR capture; name it *.har to read its entries")
    return _unwrap(msg) if _is_wrapped(msg.body) else msg


def _read_lines(file: Path) -> Iterator[Message]:
    with file.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            msg = _decode(line, str(file), number)
            yield _unwrap(msg) if _is_wrapped(msg.body) else msg


def _is_wrapped(body: Any) -> bool:
    return isinstance(body, dict) and "body" in body and "context" not in body and body.keys() <= WRAPPER_KEYS


def _is_har(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("log"), dict) and "entries" in body["log"]


def _unwrap(msg: Message) -> Message:
    """`{"received_at", "direction", "endpoint" or "url", "response", "body"}` as one message."""
    wrapper = msg.body
    body = wrapper["body"]
    decode_error = None
    if isinstance(body, str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            body, decode_error = None, str(exc)
    endpoint = wrapper.get("endpoint") or wrapper.get("url")
    return Message(body, msg.source, msg.index, received_at=_instant(wrapper.get("received_at")),
                   direction=wrapper.get("direction") if isinstance(wrapper.get("direction"), str) else None,
                   endpoint=urlsplit(endpoint).path if isinstance(endpoint, str) else None,
                   response=wrapper.get("response", ABSENT), decode_error=decode_error, size=msg.size)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return parse_timestamp(value)


def _read_har(file: Path, size: int) -> Iterator[Message]:
    if size > MAX_HAR_BYTES:
        raise ConfigError(f"{file}: {size} bytes is more than the {MAX_HAR_BYTES} a HAR file may have")
    try:
        har = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not a HAR file (not valid JSON: {exc})") from None
    if not _is_har(har) or not isinstance(har["log"]["entries"], list):
        raise ConfigError(f"{file}: not a HAR file (no log.entries)")
    for number, entry in enumerate(har["log"]["entries"], start=1):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or str(request.get("method", "")).upper() != "POST":
            continue
        text = (request.get("postData") or {}).get("text", "")
        msg = _decode(text.encode() if isinstance(text, str) else b"", str(file), number)
        response: Any = ABSENT
        content = ((entry.get("response") or {}).get("content") or {}).get("text")
        if isinstance(content, str) and content.strip():
            try:
                response = orjson.loads(content)
            except orjson.JSONDecodeError:
                response = content
        url = request.get("url")
        msg.received_at = _instant(entry.get("startedDateTime"))
        msg.endpoint = urlsplit(url).path if isinstance(url, str) else None
        msg.response = response
        yield msg
