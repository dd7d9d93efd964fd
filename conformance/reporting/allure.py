"""Allure results, through the Allure libraries: a scenario's result is described once, and either front end
hands that description to Allure.

`describe` decides what a scenario looks like in Allure: one test, a step per action with the request, the
synchronous response, each callback and the findings attached as JSON, labels, status and its details, as
allure-python-commons' own model (`allure_commons.model2`). The CLI writes it as it is, with Allure's file logger
(`write_results`); under pytest, `emit` gives the same title, labels, steps and attachments to allure-pytest
through Allure's dynamic API and step hooks, and allure-pytest writes them with the test pytest ran
(`pytest --alluredir DIR`). So a scenario looks the same whichever front end ran it, and what it shows is decided
here only. What the two cannot share: under pytest, the test's status and its details come from the pytest
outcome, its history id from the pytest node id, and each step's time from the moment it was emitted, not played.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allure
import orjson
from allure_commons import plugin_manager
from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (ATTACHMENT_PATTERN, Attachment, Label, Parameter, Status, StatusDetails,
                                   TestResult, TestStepResult)
from allure_commons.types import AttachmentType
from allure_commons.utils import md5, uuid4

from conformance.findings import Finding
from conformance.messages import Message
from conformance.reporting.run_summary import finding_record, message_record
from conformance.runner.results import RunResult, ScenarioResult, StepResult



@dataclass(slots=True)
class AllureTest:
    """A scenario's result as Allure shows it: the test, whose attachments name their files (`source`), and the
    bytes of each of those files."""

    result: TestResult
    files: dict[str, bytes] = field(default_factory=dict)

    def attach(self, name: str, content: Any) -> Attachment:
        """`content` as a JSON attachment (anything orjson cannot encode is shown as its str)."""
        source = ATTACHMENT_PATTERN.format(prefix=uuid4(), ext=AttachmentType.JSON.extension)
        self.files[source] = orjson.dumps(content, option=orjson.OPT_INDENT_2, default=str)
        return Attachment(name=name, source=source, type=AttachmentType.JSON.mime_type)


def describe(result: ScenarioResult, *, participant: str) -> AllureTest:
    """One scenario as an Allure test. Its history and test-case ids are those of `use_case/role/id`, so that
    Allure's history follows a scenario from run to run whatever its transaction or file."""
    s = result.scenario
    full_name = f"{s.use_case}/{s.role}/{s.id}"
    labels = [("severity", s.severity), ("epic", s.use_case), ("feature", f"{s.role.upper()} role"),
              # The suite tree is use case > role. Both levels are named (allure-pytest fills in those that are not
              # from the pytest node id), so that the tree is the same whichever front end wrote the results.
              ("story", s.name), ("parentSuite", s.use_case), ("suite", s.role), ("use_case", s.use_case),
              ("role", s.role), ("participant", participant), ("framework", "deg-conformance")]
    labels += [("tag", t) for t in s.tags]
    labels += [("rule", rid) for rid in sorted({f.rule_id for f in result.errors})]
    test = AllureTest(TestResult(
        uuid=uuid4(), historyId=md5(full_name), testCaseId=md5(full_name), fullName=full_name, name=s.name,
        description=s.description or None, status=result.status, statusDetails=_details(result.findings, result.why),
        stage="finished", start=_ms(result.started), stop=_ms(result.stopped),
        labels=[Label(name=n, value=v) for n, v in labels],
        # Excluded: Allure builds history ids from testCaseId plus every parameter not excluded, and these change
        # from run to run (and machine to machine).
        parameters=[Parameter(name="transaction_id", value=result.transaction_id, excluded=True),
                    Parameter(name="file", value=str(s.path), excluded=True)]))
    test.result.steps = [_step(test, step, result) for step in result.steps]
    if result.unexpected:
        test.result.steps.append(_unexpected(test, result))
    if result.harness_findings:
        test.result.attachments.append(test.attach("findings on the harness's own requests (not counted)",
                                                   [finding_record(result, f) for f in result.harness_findings]))
    return test


def write_results(run: RunResult, directory: Path, *, participant: str) -> None:
    """A run's Allure results in `directory` (made if missing): a test per scenario, one per set-up problem of the
    run, and the run's settings as `environment.properties`."""
    logger = AllureFileLogger(directory)
    for scenario in run.scenarios:
        test = describe(scenario, participant=participant)
        for source, content in test.files.items():
            logger.report_attached_data(body=content, file_name=source)
        logger.report_result(test.result)
    for n, problem in enumerate(run.setup_errors, 1):
        logger.report_result(TestResult(
            uuid=uuid4(), historyId=md5(f"run/setup-{n}"), testCaseId=md5(f"run/setup-{n}"),
            fullName=f"run/setup-{n}", name="Set-up of the run", status=Status.BROKEN, stage="finished",
            statusDetails=StatusDetails(message=f"set-up: {problem}"), start=_ms(run.started), stop=_ms(run.stopped),
            labels=[Label(name="suite", value="run")]))
    env = "\n".join(f"{k}={'' if v is None else v}" for k, v in run.settings.items())
    (directory / "environment.properties").write_text(env + "\n", encoding="utf-8")


def emit(test: AllureTest) -> None:
    """Give a described scenario to the Allure adapter of the test now running (allure-pytest, under `pytest
    --alluredir`): its title, description, labels, parameters, steps and attachments. Without one listening,
    Allure's hooks have no implementation and this does nothing."""
    result = test.result
    allure.dynamic.title(result.name)
    if result.description:
        allure.dynamic.description(result.description)
    for label in result.labels:
        allure.dynamic.label(label.name, label.value)
    for parameter in result.parameters:
        allure.dynamic.parameter(parameter.name, parameter.value, excluded=parameter.excluded)
    for step in result.steps:
        _emit_step(test, step)
    for attachment in result.attachments:
        _emit_attachment(test, attachment)


def _emit_step(test: AllureTest, step: TestStepResult) -> None:
    """A step through Allure's step hooks, which `allure.step` also calls: a failed step is told as an
    AssertionError (what Allure's adapters read as failed), carrying the step's details."""
    uuid = uuid4()
    plugin_manager.hook.start_step(uuid=uuid, title=step.name, params={})
    for attachment in step.attachments:
        _emit_attachment(test, attachment)
    failure = None
    if step.status == Status.FAILED:
        details = step.statusDetails
        failure = AssertionError("\n\n".join(filter(None, [details.message, details.trace])) if details else "")
    plugin_manager.hook.stop_step(uuid=uuid, exc_type=type(failure) if failure else None, exc_val=failure,
                                  exc_tb=None)


def _emit_attachment(test: AllureTest, attachment: Attachment) -> None:
    allure.attach(test.files[attachment.source], name=attachment.name, attachment_type=AttachmentType.JSON)


def _step(test: AllureTest, step: StepResult, result: ScenarioResult) -> TestStepResult:
    attachments = []
    asked = "request" if result.scenario.role == "bap" else "trigger (the BAP's client endpoint)"
    if step.request is not None:
        attachments.append(test.attach(f"{asked}: {step.action}", {"url": step.url, "body": step.request.body}))
    if step.reply is not None:
        reply = step.reply
        attachments.append(test.attach(f"{asked}: synchronous response", {
            "http_status": reply.status, "latency_ms": None if reply.latency is None else round(reply.latency * 1000, 1),
            "body": reply.body, "error": reply.error}))
    for n, received in enumerate(step.callbacks, 1):
        attachments.append(test.attach(f"received: {received.action or '?'} #{n}", _received(received)))
    for n, sent in enumerate(step.answers, 1):
        attachments.append(test.attach(f"sent: {sent.action or '?'} #{n}, with the target's reply", _received(sent)))
    if step.findings:
        attachments.append(test.attach("findings", [finding_record(result, f) for f in step.findings]))
    return TestStepResult(name=f"{step.index}. {step.action}: {step.name}",
                          status=Status.PASSED if step.passed(result.policy) else Status.FAILED,
                          statusDetails=_details(step.findings, None), stage="finished", start=_ms(step.started),
                          stop=_ms(step.stopped or step.started), attachments=attachments)


def _unexpected(test: AllureTest, result: ScenarioResult) -> TestStepResult:
    unexpected_findings = [f for f in result.findings if result.step_of(f) is None]
    failed = any(result.policy.fails(f) for f in unexpected_findings)
    return TestStepResult(name="messages no step expected", status=Status.FAILED if failed else Status.PASSED,
                          statusDetails=_details(unexpected_findings, None), stage="finished",
                          start=_ms(result.stopped), stop=_ms(result.stopped),
                          attachments=[test.attach(f"{m.action or 'message'} #{m.index}", _received(m))
                                       for m in result.unexpected])


def _received(msg: Message) -> dict[str, Any]:
    return {**message_record(msg),
            "signatures": [{"header": c.header, "verified": c.reason is None, "reason": c.reason, "detail": c.detail}
                           for c in msg.signatures]}


def _details(findings: list[Finding], error: str | None) -> StatusDetails | None:
    if not findings and error is None:
        return None
    message = ", ".join(sorted({f.rule_id for f in findings})) if findings else (error or "")
    return StatusDetails(message=message,
                         trace="\n\n".join(([error] if error else []) + [f.text() for f in findings]) or None)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
