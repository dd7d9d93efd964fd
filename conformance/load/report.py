"""The load run's own report: load-summary.json and a few lines on stdout, from the run's tally and Locust's
statistics (aggregated over every worker). Locust's CSV and HTML are written beside it by Locust itself."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from conformance.load.tally import Tally

PERCENTILES = (0.5, 0.95, 0.99)
KINDS = ("ACK", "CALLBACK", "FLOW")
"""The request types a simulated user reports to Locust (locustfile.py)."""


def latencies(stats: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per request type, per action (or scenario): count, failures and the p50/p95/p99 in milliseconds, as Locust
    aggregated them."""
    table: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    for (name, kind), entry in sorted(stats.entries.items()):
        if kind in table and entry.num_requests:
            table[kind][name] = {"count": entry.num_requests, "failures": entry.num_failures,
                                 **{f"p{round(p * 100)}_ms": entry.get_response_time_percentile(p)
                                    for p in PERCENTILES}}
    return table


def summary(tally: Tally, stats: Any) -> dict[str, Any]:
    table = latencies(stats)
    flows = sum(row["count"] for row in table["FLOW"].values())
    start, last = stats.start_time, stats.last_request_timestamp
    seconds = (last - start) if start and last and last > start else 0.0
    return {"exit_code": tally.exit_code(), "flows_per_s": round(flows / seconds, 2) if seconds else 0.0,
            "seconds": round(seconds, 2), "latency_ms": table, **tally.as_dict()}


def write(folder: Path, tally: Tally, stats: Any) -> int:
    """Write load-summary.json in `folder`, print the verdict; the exit code."""
    doc = summary(tally, stats)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "load-summary.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(text(doc))
    return int(doc["exit_code"])


def text(doc: dict[str, Any]) -> str:
    flows = ", ".join(f"{n} {status}" for status, n in sorted(doc["flows"].items())) or "none"
    lines = [f"flows: {flows} ({doc['flows_per_s']}/s over {doc['seconds']} s; {doc['unfinished']} under way at the "
             f"stop, not judged)",
             f"callbacks: {doc['lost']} lost, {doc['duplicated']} duplicated, {doc['misrouted']} misrouted "
             f"({doc['orphans']} for no flow), {doc['late']} late"]
    for kind, rows in doc["latency_ms"].items():
        for name, row in rows.items():
            lines.append(f"{kind:8} {name:24} n={row['count']:<6} p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms  "
                         f"p99 {row['p99_ms']} ms")
    for rule_id, entry in sorted(doc["findings"].items()):
        lines.append(f"{entry['severity'].upper():7} {rule_id} x{entry['count']}")
        lines += [f"    {example.splitlines()[0]}" for example in entry["examples"][:1]]
    for kind, texts in doc["problems"].items():
        lines += [f"{kind}: {t}" for t in texts]
    verdict = {0: "PASS", 1: "FAIL: the target broke rules under load"}.get(doc["exit_code"], "NO VERDICT")
    lines.append(f"{verdict} (exit {doc['exit_code']})")
    return "\n".join(lines)
