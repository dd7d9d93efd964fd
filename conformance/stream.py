"""Checking a capture transaction by transaction, on one process or several, in memory bounded by the transactions.

`Engine.check` holds every message of a capture at once (7.7 KB a message: 9 GiB for 1.2M). Here the capture is
read twice instead. The index pass reads every record once, a byte range (chunk) at a time, and keeps of each
only where it starts, its line and its transaction_id; a record that is no usable message is checked there and
then. The check pass reads each transaction's records back from where they start, checks the transaction as
`Engine.check` does, and lets it go. The findings come out in `Engine.check`'s order: the unusable records' in
input order, then each transaction's, transactions in the order their first message comes (those without a
transaction_id last, one each).

One rule looks across transactions: a callback whose request is in another transaction pairs with the first
request of that action and message_id anywhere in the capture (TXN_CALLBACK_TRANSACTION_ID). A transaction that
needs such a request is set aside; when all are checked, one more pass looks for the requests they need (an
index of those keys only), and the transactions set aside are checked again with them. A capture where every
callback answers a request of its own transaction never needs that pass.

With `jobs` above 1 both passes are shared out to worker processes, by chunk and by transaction; each worker
builds its own engine from a picklable factory (spawn-safe: nothing is inherited), and the findings are put back
in order, the same as with one. HAR files are one JSON document each: a capture with one is loaded whole.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import re
import signal
from array import array
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from conformance import transcript
from conformance.engine import Engine, Progress, Report
from conformance.errors import ConfigError
from conformance.findings import Finding
from conformance.messages import ACTIONS, Message, is_callback, request_of
from conformance.transaction import request_key, transaction

EngineFactory = Callable[[], Engine]
"""Builds the engine a worker process checks with: a module-level function (or a partial of one), so that it
pickles."""
Note = Callable[[str], None]
"""Where a one-line notice goes (the CLI: stderr)."""

BYTES_PER_JOB = 32 * 1024 * 1024
"""Below this much input per process (about 26,000 messages, a second of checking), another process costs more
than it saves: each starts Python and compiles the schemas, about half a second."""
BATCH_MESSAGES = 20_000
"""Messages per unit of work of the check pass: big enough that handing it to a worker costs little, small
enough that the workers stay busy to the end and a unit's messages fit in memory."""
WHOLE_NOTE_BYTES = 64 * 1024 * 1024
"""From this much input on, loading a capture whole is worth a notice (memory grows with it)."""

Key = tuple[str, str]
"""(action, message_id) of a request."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A byte range of one file, starting at a line start: the index pass's unit of work."""

    file_no: int
    start: int = 0
    end: int | None = None
    lines_before: int = 0
    exact: bool = False
    """Decode every record to find its transaction, rather than guess it from the bytes (see `_guess`)."""


@dataclass(slots=True)
class ChunkIndex:
    """What the index pass keeps of a chunk's records (numbered from 0 in the chunk)."""

    offsets: array = field(default_factory=lambda: array("q"))
    lines: array = field(default_factory=lambda: array("q"))
    """Each record's line (0 for a file that holds one message)."""
    groups: dict[str, array] = field(default_factory=dict)
    """transaction_id -> its usable records, transactions in first-seen order."""
    loose: array = field(default_factory=lambda: array("q"))
    """Usable records without a transaction_id: a transaction each."""
    findings: list[Finding] = field(default_factory=list)
    """The findings on records that are no usable message, in order."""


@dataclass(slots=True)
class Batch:
    """Transactions for the check pass: their rank in the report, and where each of their records is."""

    ranks: list[int] = field(default_factory=list)
    tids: list[str | None] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    """Where each transaction's records end in the arrays below."""
    files: array = field(default_factory=lambda: array("q"))
    offsets: array = field(default_factory=lambda: array("q"))
    lines: array = field(default_factory=lambda: array("q"))
    seqs: array = field(default_factory=lambda: array("q"))
    resolved: dict[Key, Message | None] = field(default_factory=dict)
    """The requests cross-transaction pairing needs, once they are known (None: no such request)."""


@dataclass(slots=True)
class BatchResult:
    findings: list[tuple[int, list[Finding]]]
    deferred: dict[int, set[Key]]
    """Rank -> the requests a transaction may need from another transaction, when one was not yet known."""
    messages: int


class _Unresolved(Exception):
    """A transaction needs a request of another transaction that the index pass did not look for."""


class _Misread(Exception):
    """A record's transaction was guessed wrong from its bytes: the index must be made again, decoding each."""


def check(paths: Sequence[Path], engine: Engine, *, jobs: int = 1, factory: EngineFactory | None = None,
          progress: Progress | None = None, note: Note | None = None,
          bytes_per_job: int | None = None) -> Report:
    """The report `engine.check(transcript.load(paths))` gives, read transaction by transaction; with `jobs` > 1
    (and `factory`) on up to that many processes, as many as the input's size makes worth it."""
    files = transcript.files(paths)
    sizes = [transcript.size_of(f) for f in files]
    if not all(transcript.readable_by_offset(f) for f in files):
        if note is not None and sum(sizes) >= WHOLE_NOTE_BYTES:
            note("a HAR capture is read whole, not transaction by transaction: memory grows with its size")
        return engine.check(transcript.load(paths), progress=progress)
    per_job = max(BYTES_PER_JOB if bytes_per_job is None else bytes_per_job, 1)
    jobs = max(1, min(jobs, sum(sizes) // per_job)) if factory is not None else 1
    chunks = _chunks(files, sizes, 1 if jobs == 1 else 2 * jobs)
    if jobs == 1:
        return _checked(_Run(engine, paths, files, map, progress), chunks)
    assert factory is not None
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=functools.partial(_start_worker, factory, files))
    try:
        return _checked(_Run(engine, paths, files, functools.partial(_in_order, pool, 2 * jobs), progress), chunks)
    finally:
        # A worker that dies (or cannot start) breaks the pool: its tasks fail at once rather than wait forever.
        pool.shutdown(wait=False, cancel_futures=True)


def _in_order(pool: Executor, ahead: int, task: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
    """`map` on the pool, in order, with at most `ahead` tasks handed out and not yet collected: the tasks are
    made as the workers take them, not all at once (a check pass's batches hold the index over again)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(task, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _checked(run: "_Run", chunks: list[Chunk]) -> Report:
    """The report, from an index that guesses each record's transaction from its bytes; if a guess proves wrong
    when the record is decoded, from one that decodes every record (exact, and slower)."""
    try:
        return run.report(chunks)
    except _Misread:
        pass
    try:
        return run.report([replace(c, exact=True) for c in chunks])
    except _Misread:
        raise ConfigError(f"{', '.join(map(transcript.display, run.files))}: changed while it was read") from None


Mapper = Callable[..., Iterator]


class _Run:
    """One check of a capture: the index pass, the check pass, and (when needed) the pairing pass."""

    def __init__(self, engine: Engine, paths: Sequence[Path], files: list[Path], mapper: Mapper,
                 progress: Progress | None) -> None:
        self.engine, self.paths, self.files, self.mapper, self.progress = engine, paths, files, mapper, progress
        if mapper is map:  # on this process
            _WORKER.update(engine=engine, files=files)
        self.offsets, self.lines, self.file_nos = array("q"), array("q"), array("q")
        self.transactions: list[Sequence[int]] = []
        """Each transaction's records, in report order."""
        self.tids: list[str | None] = []

    def report(self, chunks: list[Chunk]) -> Report:
        findings = self._index(chunks)
        by_rank: dict[int, list[Finding]] = {}
        deferred: dict[int, set[Key]] = {}
        done = 0
        for result in self.mapper(_check_batch, self._batches(range(len(self.transactions)))):
            by_rank.update(result.findings)
            deferred.update(result.deferred)
            done += result.messages
            if self.progress is not None:
                self.progress(done)
        if deferred:
            self._pair_across(deferred, chunks, by_rank)
        for rank in sorted(by_rank):
            findings.extend(by_rank[rank])
        return Report(findings, len(self.offsets), len(self.transactions), self.engine.rules)

    def _index(self, chunks: list[Chunk]) -> list[Finding]:
        """Where every record is and which transaction it belongs to; the findings on the unusable ones."""
        findings: list[Finding] = []
        groups: dict[str, list[array]] = {}
        loose: list[int] = []
        self.offsets, self.lines, self.file_nos = array("q"), array("q"), array("q")
        for chunk, index in zip(chunks, self.mapper(_index_chunk, chunks)):
            base = len(self.offsets)
            self.offsets.extend(index.offsets)
            self.lines.extend(index.lines)
            self.file_nos.extend(array("q", [chunk.file_no]) * len(index.offsets))
            findings.extend(index.findings)
            for tid, local in index.groups.items():
                groups.setdefault(tid, []).append(array("q", (k + base for k in local)) if base else local)
            loose.extend(k + base for k in index.loose)
        if not self.offsets:
            raise ConfigError(f"no messages found in {', '.join(map(transcript.display, self.paths))}")
        self.transactions = [parts[0] if len(parts) == 1 else array("q", chain.from_iterable(parts))
                             for parts in groups.values()]
        self.transactions += [(k,) for k in loose]
        self.tids = [*groups, *(None for _ in loose)]
        return findings

    def _batches(self, ranks: Iterable[int], resolved: dict[Key, Message | None] | None = None,
                 wants: dict[int, set[Key]] | None = None) -> Iterator[Batch]:
        """The transactions of `ranks`, a batch at a time; each batch with the requests its transactions `want`
        from other transactions, of those `resolved`."""
        batch = Batch()
        for rank in ranks:
            records = self.transactions[rank]
            batch.files.extend(map(self.file_nos.__getitem__, records))
            batch.offsets.extend(map(self.offsets.__getitem__, records))
            batch.lines.extend(map(self.lines.__getitem__, records))
            batch.seqs.extend(records)
            batch.ranks.append(rank)
            batch.tids.append(self.tids[rank])
            batch.ends.append(len(batch.seqs))
            if resolved is not None and wants is not None:
                batch.resolved.update((key, resolved[key]) for key in wants[rank])
            if len(batch.seqs) >= BATCH_MESSAGES:
                yield batch
                batch = Batch()
        if batch.ranks:
            yield batch

    def _pair_across(self, deferred: dict[int, set[Key]], chunks: list[Chunk],
                     by_rank: dict[int, list[Finding]]) -> None:
        """Find the first request of each key the deferred transactions want, then check them again with it."""
        wanted = set().union(*deferred.values())
        resolved: dict[Key, Message | None] = dict.fromkeys(wanted)
        for found in self.mapper(_find_requests, [(chunk, wanted) for chunk in chunks]):
            for key, msg in found.items():
                if resolved[key] is None:
                    resolved[key] = msg
        for result in self.mapper(_check_batch, self._batches(sorted(deferred), resolved, deferred)):
            assert not result.deferred  # every key a deferred transaction can ask for is resolved
            by_rank.update(result.findings)


def _chunks(files: list[Path], sizes: list[int], parts: int) -> list[Chunk]:
    """The index pass's units of work: a JSON Lines file split in about `parts` shares of the input's bytes
    (at line starts), any other file whole."""
    total = max(sum(sizes), 1)
    out = []
    for file_no, (file, size) in enumerate(zip(files, sizes)):
        shares = max(1, round(parts * size / total)) if parts > 1 else 1
        if shares == 1 or file.suffix.lower() not in (".jsonl", ".ndjson"):
            out.append(Chunk(file_no))
            continue
        starts = transcript.line_starts(file, shares)
        for (start, before), (end, _) in zip(starts, starts[1:] + [(-1, 0)]):
            out.append(Chunk(file_no, start, None if end < 0 else end, before))
    return out


_WORKER: dict = {}
"""The engine and files of this process: set once in a worker, or by a run on this process."""


def _start_worker(factory: EngineFactory, files: list[Path]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it stops the workers
    _WORKER.update(engine=factory(), files=files)


def cores() -> int:
    """The cores this process may run on (fewer than the machine's when it is pinned)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _records(chunk: Chunk) -> Iterator[tuple[int, Message]]:
    file = _WORKER["files"][chunk.file_no]
    if file.suffix.lower() in (".jsonl", ".ndjson"):
        return transcript.lines(file, chunk.start, chunk.end, chunk.lines_before)
    with transcript.Records(_WORKER["files"]) as records:
        return iter([(0, records.at(chunk.file_no, 0, 0))])


def _raw_records(chunk: Chunk) -> Iterator[tuple[int, int, bytes | int | Message]]:
    """(offset, line, the line's bytes or size) of each record of a JSON Lines chunk; (0, 0, the message) of a file
    of one message."""
    files: list[Path] = _WORKER["files"]
    file = files[chunk.file_no]
    try:
        if file.suffix.lower() in (".jsonl", ".ndjson"):
            with file.open("rb") as handle:
                handle.seek(chunk.start)
                yield from transcript.raw_lines(handle, chunk.start, chunk.end, chunk.lines_before)
            return
    except OSError as exc:
        raise ConfigError(f"{transcript.display(file)}: cannot read: {exc.strerror or exc}") from None
    with transcript.Records(files) as records:
        yield 0, 0, records.at(chunk.file_no, 0, 0)


_TID = re.compile(rb'"transaction_id"\s*:\s*"([^"\\]*)"')
_ACTION = re.compile(rb'"action"\s*:\s*"([a-z_]{1,16})"')


def _guess(line: bytes | int | Message) -> str | None:
    """The transaction_id of a line that looks like a usable message, read from its bytes: what decoding it
    will nearly always confirm, at a fraction of the cost. None: decode it to know. The check pass decodes every
    record anyway and refuses a guess it does not confirm (`_Misread`)."""
    if not isinstance(line, bytes):
        return None
    action = _ACTION.search(line)
    if action is None or action.group(1).decode() not in ACTIONS:
        return None
    tid = _TID.search(line)
    if tid is None:
        return None
    try:
        return tid.group(1).decode()
    except UnicodeDecodeError:
        return None


def _index_chunk(chunk: Chunk) -> ChunkIndex:
    engine: Engine = _WORKER["engine"]
    source = transcript.display(_WORKER["files"][chunk.file_no])
    index = ChunkIndex()
    groups = index.groups
    for k, (offset, number, line) in enumerate(_raw_records(chunk)):
        index.offsets.append(offset)
        index.lines.append(number)
        tid = None if chunk.exact else _guess(line)
        if tid is None:
            msg = line if isinstance(line, Message) else transcript.record(line, source, number)
            if not msg.usable:
                index.findings.extend(engine.check_unusable(msg))
                continue
            if msg.transaction_id is None:
                index.loose.append(k)
                continue
            tid = msg.transaction_id
        records = groups.get(tid)
        if records is None:
            records = groups[tid] = array("q")
        records.append(k)
    return index


def _check_batch(batch: Batch) -> BatchResult:
    engine: Engine = _WORKER["engine"]
    result = BatchResult([], {}, len(batch.seqs))
    with transcript.Records(_WORKER["files"]) as records:
        begin = 0
        for rank, tid, end in zip(batch.ranks, batch.tids, batch.ends):
            messages = []
            for i in range(begin, end):
                msg = records.at(batch.files[i], batch.offsets[i], batch.lines[i])
                if not msg.usable or msg.transaction_id != tid:
                    raise _Misread()
                msg.seq = batch.seqs[i]
                messages.append(msg)
            begin = end
            txn = transaction(tid, messages, _lookup(tid, batch.resolved))
            try:
                found = engine.check_transaction(txn)
            except _Unresolved:
                result.deferred[rank] = {(request_of(m.action or ""), m.message_id) for m in messages
                                         if m.message_id is not None and is_callback(m.action or "")}
                continue
            if found:
                result.findings.append((rank, found))
    return result


def _lookup(tid: str | None, resolved: dict[Key, Message | None]) -> Callable[[str, str], Message | None]:
    def foreign(action: str, message_id: str) -> Message | None:
        key = (action, message_id)
        if key not in resolved:
            raise _Unresolved(key)
        found = resolved[key]
        return found if found is not None and found.transaction_id != tid else None
    return foreign


def _find_requests(job: tuple[Chunk, set[Key]]) -> dict[Key, Message]:
    """The first usable request of each wanted key in a chunk."""
    chunk, wanted = job
    found: dict[Key, Message] = {}
    for _, msg in _records(chunk):
        key = request_key(msg) if msg.usable else None
        if key is not None and key in wanted and key not in found:
            found[key] = msg
    return found
