"""Allure results: one test per scenario, one step per action, every message attached as JSON.

Written in the Allure results format (`<uuid>-result.json` plus `<uuid>-attachment.*` files), which the
`allure` command renders to HTML. A scenario's results are written as soon as it ends, so a run cut short
still leaves the scenarios it finished, and pytest-xdist workers can share one folder.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import orjson

from conformance.findings import Finding, Severity
from conformance.messages import Message
from conformance.reporting.run_summary import finding_record, message_record
from conformance.runner.results import RunResult, ScenarioResult, StepResult


class AllureWriter:
    def __init__(self, directory: Path, *, participant: str) -> None:
        self.directory = directory
        self.participant = participant
        directory.mkdir(parents=True, exist_ok=True)

    def scenario(self, result: ScenarioResult) -> Path:
        """Write one scenario's test result; returns the result file."""
        s = result.scenario
        full_name = f"{s.use_case}/{s.role}/{s.id}"
        labels = [("severity", s.severity), ("epic", s.use_case), ("feature", f"{s.role.upper()} role"),
                  ("story", s.name), ("suite", s.use_case), ("subSuite", s.role), ("use_case", s.use_case),
                  ("role", s.role), ("participant", self.participant), ("framework", "deg-conformance")]
        labels += [("tag", t) for t in s.tags]
        labels += [("rule", rid) for rid in sorted({f.rule_id for f in result.errors})]
        doc: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "historyId": _digest(full_name), "testCaseId": _digest(full_name),
            "fullName": full_name, "name": s.name, "description": s.description,
            "status": result.status, "statusDetails": _details(result.findings, result.why),
            "stage": "finished", "start": _ms(result.started), "stop": _ms(result.stopped),
            "labels": [{"name": n, "value": v} for n, v in labels],
            # Excluded: Allure 3 builds history ids from testCaseId plus every parameter not excluded, and
            # these change from run to run (and machine to machine).
            "parameters": [{"name": "transaction_id", "value": result.transaction_id, "excluded": True},
                           {"name": "file", "value": str(s.path), "excluded": True}],
            "steps": [self._step(step, result) for step in result.steps],
            "attachments": [],
        }
        if result.unexpected:
            doc["steps"].append(self._unexpected(result))
        if result.harness_findings:
            doc["attachments"].append(self._attach("findings on the harness's own requests (not counted)",
                                                   [finding_record(result, f) for f in result.harness_findings]))
        path = self.directory / f"{doc['uuid']}-result.json"
        path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return path

    def run(self, run: RunResult) -> None:
        """What belongs to the run rather than a scenario: its settings, and its set-up problems (messages no
        scenario owned are a scenario result of their own)."""
        env = "\n".join(f"{k}={'' if v is None else v}" for k, v in run.settings.items())
        (self.directory / "environment.properties").write_text(env + "\n", encoding="utf-8")
        for n, problem in enumerate(run.setup_errors, 1):
            doc = {"uuid": str(uuid.uuid4()), "historyId": _digest(f"run/setup-{n}"),
                   "testCaseId": _digest(f"run/setup-{n}"), "fullName": f"run/setup-{n}",
                   "name": "Set-up of the run", "status": "broken", "stage": "finished",
                   "statusDetails": {"message": f"set-up: {problem}"},
                   "start": _ms(run.started), "stop": _ms(run.stopped), "labels": [{"name": "suite", "value": "run"}],
                   "steps": [], "attachments": []}
            (self.directory / f"{doc['uuid']}-result.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))

    def _step(self, step: StepResult, result: ScenarioResult) -> dict[str, Any]:
        attachments = []
        asked = "request" if result.scenario.role == "bap" else "trigger (the BAP's client endpoint)"
        if step.request is not None:
            attachments.append(self._attach(f"{asked}: {step.action}", {"url": step.url, "body": step.request.body}))
        if step.reply is not None:
            reply = step.reply
            attachments.append(self._attach(f"{asked}: synchronous response", {
                "http_status": reply.status, "latency_ms": None if reply.latency is None else round(reply.latency * 1000, 1),
                "body": reply.body, "error": reply.error}))
        for n, received in enumerate(step.callbacks, 1):
            attachments.append(self._attach(f"received: {received.action or '?'} #{n}", _received(received)))
        for n, sent in enumerate(step.answers, 1):
            attachments.append(self._attach(f"sent: {sent.action or '?'} #{n}, with the target's reply", _received(sent)))
        if step.findings:
            attachments.append(self._attach("findings", [finding_record(result, f) for f in step.findings]))
        return {"name": f"{step.index}. {step.action}: {step.name}", "status": "passed" if step.passed else "failed",
                "statusDetails": _details(step.findings, None), "stage": "finished",
                "start": _ms(step.started), "stop": _ms(step.stopped or step.started),
                "attachments": attachments, "steps": [], "parameters": []}

    def _unexpected(self, result: ScenarioResult) -> dict[str, Any]:
        unexpected_findings = [f for f in result.findings if result.step_of(f) is None]
        return {"name": "messages no step expected", "status": "failed" if any(
                    f.severity is Severity.ERROR for f in unexpected_findings) else "passed",
                "statusDetails": _details(unexpected_findings, None), "stage": "finished",
                "start": _ms(result.stopped), "stop": _ms(result.stopped), "steps": [], "parameters": [],
                "attachments": [self._attach(f"{m.action or 'message'} #{m.index}", _received(m))
                                for m in result.unexpected]}

    def _attach(self, name: str, content: Any) -> dict[str, str]:
        source = f"{uuid.uuid4()}-attachment.json"
        (self.directory / source).write_bytes(orjson.dumps(content, option=orjson.OPT_INDENT_2, default=str))
        return {"name": name, "source": source, "type": "application/json"}


def _received(msg: Message) -> dict[str, Any]:
    return {**message_record(msg),
            "signatures": [{"header": c.header, "verified": c.reason is None, "reason": c.reason, "detail": c.detail}
                           for c in msg.signatures]}


def _details(findings: list[Finding], error: str | None) -> dict[str, str]:
    if not findings and error is None:
        return {}
    message = ", ".join(sorted({f.rule_id for f in findings})) if findings else (error or "")
    return {"message": message, "trace": "\n\n".join(([error] if error else []) + [f.text() for f in findings])}


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _digest(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
