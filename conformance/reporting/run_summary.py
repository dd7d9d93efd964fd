"""summary.json: a live run for machines: counts, every scenario and step, and every finding in full."""
from __future__ import annotations

from typing import Any

from conformance.findings import ABSENT, Finding
from conformance.messages import Message
from conformance.runner.results import RunResult, ScenarioResult, StepResult
from conformance.waivers import Policy


def summary(run: RunResult) -> dict[str, Any]:
    statuses = [s.status for s in run.scenarios]
    return {
        "run_id": run.run_id,
        "started": run.started,
        "duration_s": round(run.stopped - run.started, 3),
        "settings": run.settings,
        "scenarios_total": len(run.scenarios),
        "passed": statuses.count("passed"),
        "failed": statuses.count("failed"),
        "broken": statuses.count("broken"),
        "skipped": statuses.count("skipped"),
        "setup_errors": run.setup_errors + [s.setup_error for s in run.scenarios if s.setup_error is not None],
        "interrupted": run.interrupted,
        "exit_code": run.exit_code,
        "scenarios": [_scenario(s) for s in run.scenarios],
        "findings": [finding_record(s, f) for s in run.scenarios for f in s.findings],
        "unexpected_messages": [message_record(m) for m in run.strays],
    }


def finding_record(scenario: ScenarioResult, finding: Finding) -> dict[str, Any]:
    step = scenario.step_of(finding)
    return {**finding.as_dict(), "scenario": scenario.scenario.id, "scenario_name": scenario.scenario.name,
            "step": step.index if step else None, "step_name": step.name if step else None}


def _scenario(s: ScenarioResult) -> dict[str, Any]:
    return {
        "id": s.scenario.id, "name": s.scenario.name, "file": str(s.scenario.path), "status": s.status,
        "transaction_id": s.transaction_id or None, "duration_s": round(s.stopped - s.started, 3), "error": s.error,
        "setup_error": s.setup_error, "skip_reason": s.skipped,
        "errors": len(s.errors), "warnings": len(s.findings) - len(s.errors),
        "steps": [_step(step, s.policy) for step in s.steps],
        "unexpected_messages": [message_record(m) for m in s.unexpected],
        "harness_findings": [finding_record(s, f) for f in s.harness_findings],
    }


def _step(step: StepResult, policy: Policy) -> dict[str, Any]:
    reply = step.reply
    return {
        "index": step.index, "name": step.name, "action": step.action, "passed": step.passed(policy), "url": step.url,
        "message_id": step.request.message_id if step.request else None,
        "http_status": reply.status if reply else None, "ack": reply.ack if reply else None,
        "ack_latency_ms": round(reply.latency * 1000, 1) if reply and reply.latency is not None else None,
        "callbacks": len(step.callbacks),
        "sent_callbacks": len(step.answers),
    }


def message_record(msg: Message) -> dict[str, Any]:
    """A message as it crossed: which way, where, its body, and the synchronous reply it got (when known)."""
    return {"received_at": msg.received_at.isoformat() if msg.received_at else None, "direction": msg.direction,
            "endpoint": msg.endpoint, "action": msg.action, "transaction_id": msg.transaction_id,
            "message_id": msg.message_id, "body": msg.body, "decode_error": msg.decode_error,
            **({"reply": msg.response} if msg.response is not ABSENT else {}),
            **({"reply_latency_ms": round(msg.latency * 1000, 1)} if msg.latency is not None else {})}
