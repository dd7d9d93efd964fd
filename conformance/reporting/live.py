"""Reports of a live run: a line per step as it happens, the findings and verdict, and the report files."""
from __future__ import annotations

from pathlib import Path

import orjson

from conformance.reporting.allure import write_results
from conformance.reporting import run_transcript
from conformance.reporting.junit import junit_xml
from conformance.reporting.run_summary import summary
from conformance.runner.results import RunResult, ScenarioResult, StepResult


def step_line(scenario: ScenarioResult, step: StepResult | None) -> str:
    """`manual-optin  3/6 confirm   ACK 4 ms · on_confirm ×1 · ok`; for a scenario that ends without a step,
    `manual-optin  SKIPPED: it needs ...`."""
    if step is None:
        return f"{scenario.scenario.id:34} {scenario.status.upper()}: {scenario.why or ''}"
    total = len(scenario.scenario.steps) or len(scenario.steps)  # a probe has no scenario file, only its sends
    reply = step.reply
    if reply is None:
        sent = "not sent"
    elif reply.error is not None:
        sent = reply.error
    else:
        code = f" {reply.error_code}" if reply.error_code else ""
        latency = f" {reply.latency * 1000:.0f} ms" if reply.latency is not None else ""
        sent = f"{reply.ack or f'HTTP {reply.status}'}{code}{latency}"
    got = f" · {step.callbacks[0].action or 'callback'} ×{len(step.callbacks)}" if step.callbacks else ""
    errors = sorted({f.rule_id for f in step.findings + step.previewed if scenario.policy.fails(f)})
    verdict = "FAIL " + ", ".join(errors) if errors else "ok"
    if not errors and step is scenario.steps[-1] and scenario.why is not None:
        verdict = scenario.why
    elif step.request is None and scenario.error is not None:
        verdict = "BROKEN (the scenario cannot go on)"
    return f"{scenario.scenario.id:34} {step.index}/{total} {step.action:8} {sent}{got} · {verdict}"


def scenario_text(s: ScenarioResult) -> str:
    """A scenario's verdict, why it could not finish (if so), and its findings."""
    mark = {"passed": "PASS", "failed": "FAIL", "broken": "BROKEN", "skipped": "SKIP"}[s.status]
    transaction = f"; transaction {s.transaction_id}" if s.transaction_id else ""
    out = [f"{mark:6} {s.scenario.id}  ({s.scenario.name}{transaction})"]
    if s.why:
        out.append(f"  {s.why}")
    out += ["  " + f.text().replace("\n", "\n  ") for f in s.findings]
    if s.harness_findings:
        out.append(f"  ({len(s.harness_findings)} finding(s) on the harness's own requests, not counted: "
                   f"{', '.join(sorted({f.rule_id for f in s.harness_findings}))})")
    return "\n".join(out)


def run_text(run: RunResult) -> str:
    """Every scenario's verdict and findings, then the totals."""
    out = [f"SET-UP {error}" for error in run.setup_errors]
    out += [scenario_text(s) for s in run.scenarios]
    statuses = [s.status for s in run.scenarios]
    out.append(f"{statuses.count('passed')} passed, {statuses.count('failed')} failed, {statuses.count('broken')} "
               f"broken, {statuses.count('skipped')} skipped of {len(statuses)} in {run.stopped - run.started:.1f} s"
               f" (exit code {run.exit_code})")
    return "\n".join(out)


def write_reports(run: RunResult, directory: Path, *, participant: str) -> None:
    """summary.json, junit.xml, transcript.jsonl and the Allure results under `directory` (made if missing), each
    on its own: one that fails (a bug) does not keep the others from being written; the first failure is raised
    after."""
    directory.mkdir(parents=True, exist_ok=True)
    failures: list[Exception] = []
    for write in (lambda: (directory / "summary.json").write_bytes(
                      orjson.dumps(summary(run), option=orjson.OPT_INDENT_2, default=str)),
                  lambda: (directory / "junit.xml").write_bytes(junit_xml(run)),
                  lambda: run_transcript.write(run, directory),
                  lambda: write_results(run, directory / "allure-results", participant=participant)):
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - raised below, once every report has been tried
            failures.append(exc)
    internal = [s.internal_error for s in run.scenarios if s.internal_error is not None]
    if internal:
        (directory / "harness-error.log").write_text("\n".join(internal), encoding="utf-8")
    if failures:
        raise failures[0]
