"""Offline validation: `deg-conformance validate` as a whole process, against a ceiling measured in the same run.

Generates a JSON Lines transcript of demand-flexibility transactions (the conformant fixture with fresh ids,
every action; every tenth transaction orders an item the catalog does not have, so findings are produced too),
then measures, medians of `--repeat` interleaved runs:
  - ceiling: parse + core schema + Layer-2 validation alone, streaming (decode each line, validate it, drop it),
    in this process, CPU time: what no harness that validates every message can beat;
  - validate -j 1: the whole process (start-up, reading, every rule, writing the report), CPU time of the child;
    the figure is its rate as a ratio to the ceiling's (target >= 0.5);
  - validate -j N (N: the cores this process may use): wall time, as a speed-up over -j 1's wall time in the same
    run (target >= 0.8 N), with the findings of -j N checked equal to -j 1's; and the CPU time of all its
    processes against -j 1's, which bounds the speed-up when other work shares the cores;
  - peak RSS of -j 1 (target < 200 MiB at 1.2M messages: `--transactions 100000`) and of the largest process
    of -j N.

    .venv/bin/python benchmarks/validate_throughput.py [--transactions 10000] [--repeat 3] [--smoke]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from conformance import stream
from conformance.engine import Engine
from conformance.messages import Message

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "demand-flexibility" / "conformant-transaction"
CLI = [sys.executable, "-m", "conformance.cli"]
RATIO_TARGET = 0.5
SPEEDUP_TARGET = 0.8
RSS_TARGET_MIB = 200


def generate(path: Path, transactions: int) -> int:
    """Write `transactions` copies of the canonical flow with fresh ids; every tenth one is broken."""
    template = [json.loads(p.read_text()) for p in sorted(FIXTURE.glob("*.json"))]
    count = 0
    with path.open("wb") as out:
        for t in range(transactions):
            txn = str(uuid.uuid4())
            ids: dict[str, str] = {}
            for body in copy.deepcopy(template):
                ctx = body["context"]
                ctx["transaction_id"] = txn
                ctx["message_id"] = ids.setdefault(ctx["message_id"], str(uuid.uuid4()))
                if t % 10 == 0 and ctx["action"] == "on_init":
                    body["message"]["order"]["items"][0]["id"] = "not-in-catalog"
                out.write(orjson.dumps(body) + b"\n")
                count += 1
    return count


def ceiling(path: Path, engine: Engine) -> float:
    """CPU seconds to decode, schema-validate and Layer-2-validate every line, one at a time."""
    validation = engine.validation
    started = time.process_time()
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            validation.outcome(Message(orjson.loads(line), "bench", number))
    return time.process_time() - started


def validate(path: Path, jobs: int) -> tuple[float, float, float, bytes]:
    """(CPU seconds, wall seconds, peak RSS MiB of the largest process, stdout) of one whole `validate` process."""
    started = time.perf_counter()
    child = subprocess.Popen([*CLI, "validate", "-j", str(jobs), str(path)], stdout=subprocess.PIPE)
    out = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode not in (0, 1):
        raise SystemExit(f"validate -j {jobs} exited {child.returncode}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000, help="transactions to generate (12 messages each)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per measurement; medians reported")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run: 50 transactions, once")
    args = parser.parse_args()
    transactions, repeat = (50, 1) if args.smoke else (args.transactions, args.repeat)
    jobs = stream.cores()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transcript.jsonl"
        n = generate(path, transactions)
        engine = Engine()
        ceiling(path, engine)  # warm-up: the validators compile on first use
        ceilings, ones, twos = [], [], []
        for _ in range(repeat):  # interleaved, so that a busy moment of the machine hits each alike
            ceilings.append(ceiling(path, engine))
            ones.append(validate(path, 1))
            twos.append(validate(path, jobs))
        if any(out != ones[0][3] for *_, out in ones + twos):
            raise SystemExit(f"validate -j {jobs} and -j 1 disagree: the findings must be the same")

    ceiling_cpu = statistics.median(ceilings)
    one_cpu, one_wall = statistics.median(r[0] for r in ones), statistics.median(r[1] for r in ones)
    many_cpu, many_wall = statistics.median(r[0] for r in twos), statistics.median(r[1] for r in twos)
    one_rss, many_rss = max(r[2] for r in ones), max(r[2] for r in twos)
    ratio, speedup = ceiling_cpu / one_cpu, one_wall / many_wall
    findings = ones[0][3].decode().rstrip().rsplit("\n", 1)[-1]
    print(f"transcript: {n} messages in {transactions} transactions; {findings}")
    print(f"ceiling   parse + schema + Layer-2, streaming:  {n / ceiling_cpu:>10,.0f} messages/s (CPU)")
    print(f"validate  -j 1, whole process:                 {n / one_cpu:>10,.0f} messages/s (CPU)")
    print(f"ratio     validate -j 1 / ceiling:             {ratio:>10.2f}  (target >= {RATIO_TARGET}: "
          f"{'met' if ratio >= RATIO_TARGET else 'NOT met'})")
    print(f"speed-up  -j {jobs} over -j 1 (wall):               {speedup:>10.2f}  (target >= {SPEEDUP_TARGET * jobs:.1f}: "
          f"{'met' if speedup >= SPEEDUP_TARGET * jobs else 'NOT met'}; findings identical)")
    print(f"work      -j {jobs} CPU (all processes) / -j 1 CPU:      {many_cpu / one_cpu:>10.2f}  (the speed-up -j {jobs} "
          f"can reach on {jobs} idle cores: {jobs * one_cpu / many_cpu:.2f})")
    print(f"peak RSS  -j 1: {one_rss:,.0f} MiB; -j {jobs}, largest process: {many_rss:,.0f} MiB "
          f"(target < {RSS_TARGET_MIB} MiB at 1.2M messages: --transactions 100000)")


if __name__ == "__main__":
    main()
