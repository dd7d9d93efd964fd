"""junit.xml: one test case per scenario, for CI systems that read JUnit (GitLab, Jenkins, GitHub)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from conformance.runner.results import RunResult


def junit_xml(run: RunResult) -> bytes:
    statuses = [s.status for s in run.scenarios]
    suite = ET.Element("testsuite", name="deg-conformance", tests=str(len(run.scenarios) + len(run.setup_errors)),
                       failures=str(statuses.count("failed")),
                       errors=str(statuses.count("broken") + len(run.setup_errors)),
                       skipped=str(statuses.count("skipped")), time=f"{run.stopped - run.started:.3f}")
    for n, problem in enumerate(run.setup_errors, 1):
        case = ET.SubElement(suite, "testcase", classname="deg-conformance.setup", name=f"set-up {n}", time="0")
        ET.SubElement(case, "error", message=problem, type="setup")
    for s in run.scenarios:
        case = ET.SubElement(suite, "testcase", classname=f"{s.scenario.use_case}.{s.scenario.role}",
                             name=s.scenario.id, file=str(s.scenario.path), time=f"{s.stopped - s.started:.3f}")
        if s.status == "failed":
            ids = sorted({f.rule_id for f in s.errors})
            failure = ET.SubElement(case, "failure", message=f"{len(s.errors)} error(s): {', '.join(ids)}",
                                    type="conformance")
            failure.text = "\n\n".join(f.text() for f in s.findings)
        elif s.status == "broken":
            ET.SubElement(case, "error", message=s.why or "the scenario could not finish",
                          type="setup" if s.setup_error is not None else "scenario")
        elif s.status == "skipped":
            ET.SubElement(case, "skipped", message=s.skipped or "")
        lines = [f"transaction_id {s.transaction_id}"]
        for step in s.steps:
            ack = step.reply.ack if step.reply else None
            lines.append(f"{step.index}. {step.action} ({step.name}): {ack or 'no ACK/NACK'}, "
                         f"{len(step.callbacks)} callback(s), {len(step.findings)} finding(s)")
        ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
