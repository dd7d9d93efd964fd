"""Captured traffic in, messages out: a folder of JSON files, JSON Lines, or a HAR file.

Whatever a file holds, every record becomes a `Message`; one that cannot be decoded keeps its error so
the report shows it. Only input that holds no record at all, or that cannot be read (a missing path, an empty
or unreadable folder, a link to nothing), is a ConfigError: a record skipped without a word would make the
verdict wrong.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence
from urllib.parse import urlsplit

import orjson

from conformance._perf import paused_gc
from conformance.errors import ConfigError
from conformance.findings import ABSENT
from conformance.messages import MAX_MESSAGE_BYTES, Message, decode_json, parse_timestamp

SUFFIXES = (".json", ".jsonl", ".ndjson", ".har")
MAX_HAR_BYTES = 512 * 1024 * 1024
WRAPPER_KEYS = frozenset({"received_at", "direction", "body", "endpoint", "url", "response"})
SKIP_CHUNK = 64 * 1024
"""How much of a line over MAX_MESSAGE_BYTES is held at a time while reading past it."""


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
        raise ConfigError(f"no messages found in {', '.join(map(display, paths))}")
    return messages


def display(path: Path) -> str:
    """A path as text that prints anywhere, losing nothing: the bytes of a name that are not UTF-8 (which
    os.fsdecode keeps as lone surrogates, refused by UTF-8 output and by JSON) are written as `\\xNN`."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # _read reports it


def _files(path: Path) -> list[Path]:
    try:
        if path.is_dir():
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
    return _unwrap(msg) if _is_wrapped(msg.body) else msg


def _read_lines(file: Path) -> Iterator[Message]:
    """One message per line. A line over MAX_MESSAGE_BYTES is read past in chunks of SKIP_CHUNK and reported
    with its size, never held whole (a 1 GB line took 2 GB of memory)."""
    source = display(file)
    with file.open("rb") as handle:
        number = 0
        while line := handle.readline(MAX_MESSAGE_BYTES + 1):
            number += 1
            if len(line) > MAX_MESSAGE_BYTES:
                yield Message(None, source, number, size=_rest_of_line(handle, line))
            elif not line.isspace():
                msg = _decode(line, source, number)
                yield _unwrap(msg) if _is_wrapped(msg.body) else msg


def _rest_of_line(handle: BinaryIO, start: bytes) -> int:
    """Read to the end of the line that begins with `start`, a chunk at a time; its size."""
    size, chunk = len(start), start
    while not chunk.endswith(b"\n") and (chunk := handle.readline(SKIP_CHUNK)):
        size += len(chunk)
    return size


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
        raise ConfigError(f"{display(file)}: {size} bytes is more than the {MAX_HAR_BYTES} a HAR file may have")
    try:
        har = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{display(file)}: not a HAR file (not valid JSON: {exc})") from None
    if not _is_har(har) or not isinstance(har["log"]["entries"], list):
        raise ConfigError(f"{display(file)}: not a HAR file (no log.entries)")
    source = display(file)
    for number, entry in enumerate(har["log"]["entries"], start=1):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or str(request.get("method", "")).upper() != "POST":
            continue
        text = (request.get("postData") or {}).get("text", "")
        msg = _decode(text.encode() if isinstance(text, str) else b"", source, number)
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
