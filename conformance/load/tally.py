"""What a load run counts, as plain JSON values that cross process boundaries (player -> Locust worker -> master).

A played scenario becomes a flow outcome (its steps' ACK and callback latencies, what was lost, duplicated or
misrouted, its findings); a Tally adds outcomes up, and tallies from several workers add up the same way. Both are
pure data, so that the master's verdict is the sum of what every worker's player judged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_SETUP, EXIT_UNREACHABLE, EXIT_USAGE
from conformance.findings import Finding, Severity
from conformance.messages import Message
from conformance.runner.results import ScenarioResult

Outcome = dict[str, Any]
"""One flow, as `outcome()` makes it."""
LOST_RULE = "TIM_CALLBACK_MISSING"
"""A request the target ACKed whose callback never came within its window: a lost callback."""
EXAMPLES = 3
"""Findings shown per rule in the summary (every one is counted)."""


def outcome(result: ScenarioResult) -> Outcome:
    """One played scenario as the load report counts it: per step the ACK latency and each callback's delay after
    its request; callbacks lost (TIM_CALLBACK_MISSING), duplicated (the same action and message_id from the same
    sender again) and misrouted (filed under another transaction than the request's); the findings against the
    target; and why there is no verdict, when there is none."""
    steps, received = [], []
    for step in result.steps:
        request, reply = step.request, step.reply
        if request is None or reply is None:
            continue
        sent_at = request.received_at
        delays = [(m.action, (m.received_at - sent_at).total_seconds()) for m in step.callbacks
                  if m.received_at is not None and sent_at is not None]
        answer = reply.error or (reply.ack if reply.status == 200 or reply.ack else None) or f"HTTP {reply.status}"
        steps.append({"action": step.action, "ack": reply.latency, "answer": answer, "callbacks": delays})
        received += step.callbacks
    received += result.unexpected
    return {"scenario": result.scenario.id, "transaction_id": result.transaction_id,
            "duration": max(0.0, result.stopped - result.started), "status": result.status, "steps": steps,
            "lost": sum(f.rule_id == LOST_RULE for f in result.findings), "duplicated": duplicates(received),
            "misrouted": sum(m.transaction_id != result.transaction_id for m in received if m.direction == "in"),
            "findings": [brief(f) for f in result.findings if f.waiver is None],
            "error": result.error, "setup_error": result.setup_error, "skipped": result.skipped,
            "unreachable": result.unreachable, "internal_error": result.internal_error}


def duplicates(messages: list[Message]) -> int:
    """Copies beyond the first of a callback: the same action and message_id from the same sender (a gateway's
    search is answered once per BPP, each its own sender)."""
    seen: set[tuple[Any, ...]] = set()
    copies = 0
    for m in messages:
        if m.direction != "in":
            continue
        key = (m.action, m.message_id, m.context.get("bpp_id"))
        copies += key in seen
        seen.add(key)
    return copies


def brief(finding: Finding) -> dict[str, Any]:
    return {"rule_id": finding.rule_id, "severity": finding.severity.value, "action": finding.action,
            "transaction_id": finding.transaction_id, "text": finding.text()}


@dataclass(slots=True)
class Tally:
    """Outcomes added up; `merge` adds another tally's `as_dict()` (a worker's) to this one."""

    flows: dict[str, int] = field(default_factory=dict)
    """By status: passed, failed, broken, skipped."""
    lost: int = 0
    duplicated: int = 0
    misrouted: int = 0
    late: int = 0
    """Callbacks that came after their flow was judged (RUN_UNCLAIMED)."""
    orphans: int = 0
    """Callbacks for transactions no flow started (TXN_ORPHAN_CALLBACK), counted as misrouted too."""
    unreachable: int = 0
    unfinished: int = 0
    """Flows under way when the run stopped: not judged, so neither counted nor blamed."""
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """rule id -> {severity, count, examples}."""
    problems: dict[str, list[str]] = field(default_factory=dict)
    """usage / setup / broken / internal / skipped -> what kept a flow (or the run) from a verdict, each text once."""

    def add(self, flow: Outcome) -> None:
        self.flows[flow["status"]] = self.flows.get(flow["status"], 0) + 1
        self.lost += flow["lost"]
        self.duplicated += flow["duplicated"]
        self.misrouted += flow["misrouted"]
        self.unreachable += bool(flow["unreachable"])
        self.count_findings(flow["findings"])
        for kind, text in (("setup", flow["setup_error"]), ("internal", flow["internal_error"]),
                           ("broken", flow["error"] if flow["status"] == "broken" else None),
                           ("skipped", flow["skipped"])):
            if text:
                self.problem(kind, text)

    def count_findings(self, findings: list[dict[str, Any]]) -> None:
        for f in findings:
            entry = self.findings.setdefault(f["rule_id"], {"severity": f["severity"], "count": 0, "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < EXAMPLES:
                entry["examples"].append(f["text"])

    def problem(self, kind: str, text: str) -> None:
        known = self.problems.setdefault(kind, [])
        if text not in known:
            known.append(text)

    def merge(self, other: dict[str, Any]) -> None:
        for status, n in other.get("flows", {}).items():
            self.flows[status] = self.flows.get(status, 0) + n
        for name in ("lost", "duplicated", "misrouted", "late", "orphans", "unreachable", "unfinished"):
            setattr(self, name, getattr(self, name) + other.get(name, 0))
        for rule_id, entry in other.get("findings", {}).items():
            mine = self.findings.setdefault(rule_id, {"severity": entry["severity"], "count": 0, "examples": []})
            mine["count"] += entry["count"]
            mine["examples"] = (mine["examples"] + entry["examples"])[:EXAMPLES]
        for kind, texts in other.get("problems", {}).items():
            for text in texts:
                self.problem(kind, text)

    def as_dict(self) -> dict[str, Any]:
        return {"flows": dict(self.flows), "lost": self.lost, "duplicated": self.duplicated,
                "misrouted": self.misrouted, "late": self.late, "orphans": self.orphans,
                "unreachable": self.unreachable, "unfinished": self.unfinished,
                "findings": {k: dict(v) for k, v in self.findings.items()},
                "problems": {k: list(v) for k, v in self.problems.items()}}

    @property
    def judged(self) -> int:
        """Flows played to a verdict (passed or failed)."""
        return self.flows.get("passed", 0) + self.flows.get("failed", 0)

    @property
    def errors(self) -> int:
        return sum(e["count"] for e in self.findings.values() if e["severity"] == Severity.ERROR.value)

    def exit_code(self) -> int:
        """As `run`'s (README, exit codes): a harness bug, then set-up, then a target never reached, then the
        target's errors, then flows that could not be played to the end (or none was, within the run time)."""
        if "internal" in self.problems:
            return EXIT_INTERNAL
        if "usage" in self.problems:
            return EXIT_USAGE
        if "setup" in self.problems:
            return EXIT_SETUP
        if self.unreachable and not self.judged:
            return EXIT_UNREACHABLE
        if self.errors:  # lost, duplicated and misrouted callbacks are findings too (TIM_*, TXN_*)
            return EXIT_FAILED
        if "broken" in self.problems or not self.judged:
            return EXIT_USAGE
        return EXIT_OK
