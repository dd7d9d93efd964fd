"""Rendering findings for people (text) and machines (JSON)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from conformance.engine import Report
from conformance.rules import Rule


def summary(report: Report) -> dict[str, Any]:
    by_rule = Counter(f.rule_id for f in report.findings)
    return {
        "messages": report.messages,
        "transactions": report.transactions,
        "errors": report.errors,
        "warnings": report.warnings,
        "passed": report.passed,
        "by_rule": dict(sorted(by_rule.items())),
    }


def as_json(report: Report) -> dict[str, Any]:
    return {"summary": summary(report), "findings": [f.as_dict() for f in report.findings]}


def as_text(report: Report) -> str:
    lines = [f.text() + "\n" for f in report.findings]
    s = summary(report)
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{verdict}: {_count(s['messages'], 'message')} in {_count(s['transactions'], 'transaction')}, "
                 f"{_count(s['errors'], 'error')}, {_count(s['warnings'], 'warning')}")
    return "\n".join(lines)


def rules_text(rules: Iterable[Rule]) -> str:
    """One row per rule, in columns as wide as the longest id (a pack may declare long ones)."""
    rules = list(rules)
    width = max([30, *(len(r.id) for r in rules)])
    rows = []
    group = None
    for r in rules:
        if r.group != group:
            group = r.group
            rows.append(f"\n[{group}]")
        rows.append(f"{r.id:{width}} {r.severity.value:7} {r.title}\n{'':{width + 8}} {r.clause}")
    return "\n".join(rows).lstrip("\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
