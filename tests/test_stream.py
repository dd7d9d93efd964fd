"""Checking a capture transaction by transaction (conformance/stream.py) gives exactly the report of loading it whole,
on one process or several: same findings, same order, same counts."""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from conformance import stream
from conformance.engine import Engine
from conformance.reporting import as_json
from conformance.transcript import load
from tests._live import ROOT
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "conformant-transaction"
SHIPPED = sorted([*ROOT.glob("tests/golden/*"), *(p for p in ROOT.glob("fixtures/*/*") if p.is_dir())])


def _generate(path: Path, transactions: int) -> int:
    """The benchmark's mix (benchmarks/validate_throughput.py), which must stream to the same report too."""
    spec = importlib.util.spec_from_file_location("validate_throughput", ROOT / "benchmarks" / "validate_throughput.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.generate(path, transactions)


def _flow(tid: str, prefix: str) -> list[dict[str, Any]]:
    """The conformant transaction with its own transaction_id and message_ids."""
    out = []
    for p in sorted(CLEAN.glob("*.json")):
        body = json.loads(p.read_text())
        body["context"]["transaction_id"] = tid
        body["context"]["message_id"] = f"{prefix}-{body['context']['message_id']}"
        out.append(body)
    return out


def _hostile(folder: Path) -> list[Path]:
    """A capture that exercises everything the streaming check must keep exact: interleaved transactions, a
    callback answering a request of another transaction (in an earlier and in a later one), an orphan, a relayed
    search answered twice by one BPP, a reused message_id, records that are no usable message, blank lines,
    messages without a transaction_id, wrapped records, and a second file of another shape."""
    a, b, c = _flow("txn-a", "a"), _flow("txn-b", "b"), _flow("txn-c", "c")
    stray = copy.deepcopy(b[3])  # on_init of b, sent in c's transaction: its request is in b, earlier in the file
    stray["context"]["transaction_id"] = "txn-c"
    early = copy.deepcopy(c[1])  # on_search of c, in a: its request comes later in the file
    early["context"]["transaction_id"] = "txn-a"
    orphan = copy.deepcopy(a[3])
    orphan["context"]["message_id"] = "nobody-asked"
    relayed = copy.deepcopy(a[1])
    relayed["context"]["bpp_id"] = "another-bpp"
    reused = copy.deepcopy(a[6])
    reused["context"]["message_id"] = a[4]["context"]["message_id"]
    loose = copy.deepcopy(a[6])
    del loose["context"]["transaction_id"]
    records: list[bytes] = []
    for i in range(12):
        records += [orjson.dumps(a[i]), orjson.dumps(b[i])]
        if i == 2:
            records += [b"{not json", b"[1, 2]", orjson.dumps({"context": {"action": "dance"}}), b"   ",
                        orjson.dumps(early), orjson.dumps(relayed), orjson.dumps(a[1]), orjson.dumps(loose)]
        if i == 5:
            records += [orjson.dumps(stray), orjson.dumps(orphan), orjson.dumps(reused), orjson.dumps(loose),
                        orjson.dumps({"received_at": "2025-01-01T00:00:00Z", "direction": "in", "body": a[7]})]
    records += [orjson.dumps(m) for m in c]
    (folder / "capture.jsonl").write_bytes(b"\n".join(records) + b"\n\n")
    (folder / "zz-one.json").write_text(json.dumps(a[0]))
    return [folder / "capture.jsonl", folder / "zz-one.json"]


def _whole(paths: list[Path]) -> dict[str, Any]:
    return as_json(Engine().check(load(paths)))


def _streamed(paths: list[Path], **options: Any) -> dict[str, Any]:
    return as_json(stream.check(paths, Engine(), **options))


def test_the_hostile_capture_is_checked_as_if_loaded_whole(tmp_path: Path) -> None:
    paths = _hostile(tmp_path)
    whole = _whole(paths)
    rules = whole["summary"]["by_rule"]
    for fired in ("TXN_CALLBACK_TRANSACTION_ID", "TXN_ORPHAN_CALLBACK", "TXN_DUPLICATE_CALLBACK",
                  "TXN_MESSAGE_ID_REUSED", "SCH_NOT_JSON", "SCH_NOT_OBJECT", "CTX_ACTION_UNKNOWN"):
        assert fired in rules  # the capture exercises what it should
    assert _streamed(paths) == whole
    assert _streamed([tmp_path]) == _whole([tmp_path])


def test_several_processes_give_the_same_report_as_one(tmp_path: Path) -> None:
    """Spawned workers, the JSON Lines file split in byte ranges, the cross-transaction pass in the workers."""
    paths = _hostile(tmp_path)
    assert _streamed(paths, jobs=2, factory=Engine, bytes_per_job=0) == _streamed(paths) == _whole(paths)


@pytest.mark.parametrize("capture", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_transcript_streams_to_the_same_report(capture: Path) -> None:
    assert _streamed([capture]) == _whole([capture])


def test_the_benchmark_mix_streams_to_the_same_report_on_one_process_and_two(tmp_path: Path) -> None:
    path = tmp_path / "mix.jsonl"
    _generate(path, 40)
    whole = _whole([path])
    assert whole["summary"]["errors"] > 0
    assert _streamed([path]) == whole
    assert _streamed([path], jobs=2, factory=Engine, bytes_per_job=0) == whole


def test_a_har_capture_is_loaded_whole_and_says_so_when_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"request": {"method": "POST", "url": f"http://bpp/{b['context']['action']}",
                            "postData": {"text": json.dumps(b)}}} for b in _flow("t", "m")]
    har = tmp_path / "capture.har"
    har.write_text(json.dumps({"log": {"entries": entries}}))
    said: list[str] = []
    assert _streamed([har], note=said.append) == _whole([har])
    assert said == []  # small: nothing worth a word
    monkeypatch.setattr(stream, "WHOLE_NOTE_BYTES", 0)
    assert _streamed([har], note=said.append) == _whole([har])
    assert said == ["a HAR capture is read whole, not transaction by transaction: memory grows with its size"]


def test_byte_ranges_start_at_line_starts_and_count_the_lines_before(tmp_path: Path) -> None:
    from conformance.transcript import line_starts

    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"a\n" + b"x" * 200_000 + b"\nbb\n\nccc\n")
    starts = line_starts(path, 4)
    data = path.read_bytes()
    assert starts[0] == (0, 0)
    for offset, before in starts:
        assert offset == 0 or data[offset - 1:offset] == b"\n"
        assert data[:offset].count(b"\n") == before
    assert len(starts) == len(set(starts))


def test_a_record_whose_bytes_mislead_the_index_is_still_grouped_exactly(tmp_path: Path) -> None:
    """The index guesses each record's transaction from its bytes; a record where the first `transaction_id` is
    not the context's (a key of its message, before the context) proves the guess wrong, and the index is made
    again by decoding."""
    a, b = _flow("txn-a", "a"), _flow("txn-b", "b")
    decoy = {"message": {"note": {"transaction_id": "txn-b"}, **a[8]["message"]}, "context": a[8]["context"]}
    lines = [orjson.dumps(m) for m in a[:8] + [decoy] + a[9:] + b]
    path = tmp_path / "decoy.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    whole = _whole([path])
    assert _streamed([path]) == whole
    assert _streamed([path], jobs=2, factory=Engine, bytes_per_job=0) == whole


def test_validate_gives_the_same_output_with_any_number_of_processes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command line: the workers build their engine from the same options (here a use case's pack)."""
    from conformance.cli import main

    paths = [str(p) for p in _hostile(tmp_path)]
    monkeypatch.setattr(stream, "BYTES_PER_JOB", 1)
    outputs = []
    for jobs in ("1", "2"):
        code = main(["validate", "--json", "-j", jobs, "--use-case", "demand-flexibility", *paths])
        out, err = capsys.readouterr()
        outputs.append((code, out, err))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 1 and outputs[0][2] == ""


@pytest.mark.parametrize("jobs", ["0", "-3", "many"])
def test_a_number_of_processes_that_is_none_is_bad_usage(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["validate", "-j", jobs, str(CLEAN)])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "is not a number of processes (1 or more)" in err and "Traceback" not in err
