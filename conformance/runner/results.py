"""What a live run produced: per step, the messages both ways and the findings; per run, the verdict.

Reports (Allure, JUnit, summary.json, the terminal) are all drawn from these values, so they agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance.findings import Finding
from conformance.waivers import Policy
from conformance.messages import Message
from conformance.scenario import Scenario
from conformance.transport import Reply

from conformance.errors import (EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP, EXIT_UNREACHABLE,
                               EXIT_USAGE)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SETUP", "EXIT_UNREACHABLE", "EXIT_USAGE", "RunResult", "ScenarioResult",
           "StepResult"]


@dataclass(slots=True)
class StepResult:
    index: int
    name: str
    action: str
    started: float
    """Epoch seconds."""
    stopped: float = 0.0
    url: str | None = None
    request: Message | None = None
    reply: Reply | None = None
    callbacks: list[Message] = field(default_factory=list)
    """What the target sent for this step: its callbacks (harness as BAP) or its requests (harness as BPP)."""
    answers: list[Message] = field(default_factory=list)
    """Harness as BPP: the callbacks the harness sent, each with the target's reply to it."""
    findings: list[Finding] = field(default_factory=list)
    previewed: list[Finding] = field(default_factory=list)
    """What the rule catalogue found on the step's messages as soon as it ended (for the live line); the
    scenario's end-of-run check, over the whole transaction, is what counts."""

    def passed(self, policy: Policy) -> bool:
        """No finding of the step fails it under the run's policy (waivers, --fail-on), as its scenario's do."""
        return not any(policy.fails(f) for f in self.findings)


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    transaction_id: str
    started: float
    stopped: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    """Every finding about the target, in step order; findings on unexpected messages come last."""
    harness_findings: list[Finding] = field(default_factory=list)
    """Findings on the harness's own requests (a deliberately wrong probe, a scenario's own mistake):
    shown, never counted against the target."""
    unexpected: list[Message] = field(default_factory=list)
    """Messages of this transaction that no step claimed (duplicates, late or unasked-for callbacks)."""
    error: str | None = None
    """Why the scenario could not go on (a template naming nothing, a value not saved, a target already
    down): not a verdict on the target."""
    setup_error: str | None = None
    """Why no verdict is possible because of how the run is set up (the target cannot verify the harness's
    signature, the registry cannot be reached), naming the fix."""
    skipped: str | None = None
    """Why the scenario does not apply to this target or run (it needs a gateway, the target publishes no
    such offer): reported, never counted either way."""
    unreachable: bool = False
    internal_error: str | None = None
    """The traceback of a bug of the harness met while playing this scenario (exit 5)."""
    policy: Policy = field(default_factory=Policy)
    """Which findings count (waivers, --fail-on), as applied by `judge`."""

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the scenario: errors (warnings too, with --fail-on warning), unless waived."""
        return [f for f in self.findings if self.policy.fails(f)]

    def judge(self, policy: Policy) -> None:
        """Apply the run's policy: excluded rules' findings go, waived ones are marked; steps keep theirs alike."""
        self.policy = policy
        judged = {id(f): policy.judge(f, self.scenario.id) for f in self.findings}
        self.findings = [j for j in judged.values() if j is not None]
        for step in self.steps:
            step.findings = [j for f in step.findings if (j := judged.get(id(f), policy.judge(f, self.scenario.id)))]
            step.previewed = [j for f in step.previewed if (j := policy.judge(f, self.scenario.id))]
        self.harness_findings = [j for f in self.harness_findings if (j := policy.judge(f, self.scenario.id))]

    @property
    def status(self) -> str:
        """Allure's vocabulary: passed; failed (the target broke a rule); broken (no verdict: the run could not
        finish, or its set-up is wrong); skipped (the scenario does not apply)."""
        if self.errors:
            return "failed"
        if self.error is not None or self.setup_error is not None:
            return "broken"
        return "skipped" if self.skipped is not None else "passed"

    @property
    def why(self) -> str | None:
        """What the reports say about a scenario that has no verdict: set-up, broken or skipped."""
        if self.setup_error is not None:
            return f"set-up: {self.setup_error}"
        return self.error or (f"skipped: {self.skipped}" if self.skipped is not None else None)

    def report(self, finding: Finding, step: StepResult | None = None, *, line: int | None = None) -> Finding:
        """Record a finding on the step it belongs to (None: a message no step expected), located where a
        participant reads it: the scenario file, and the YAML line of the step (or `line`, an assertion's)."""
        located = self.locate(finding, step, line)
        if step is not None:
            step.findings.append(located)
        self.findings.append(located)
        return located

    def locate(self, finding: Finding, step: StepResult | None, line: int | None = None) -> Finding:
        """The finding at `scenario file:line`; one of a scenario without a file (a probe) keeps where it is."""
        steps = self.scenario.steps
        if not steps:
            return finding
        if line is None and step is not None and step.index <= len(steps):
            line = steps[step.index - 1].line
        return replace(finding, source=shown(self.scenario.path), index=line)


    def messages(self) -> list[Message]:
        """Every Beckn message of the scenario, once each: its steps' and the unexpected ones (a trigger of a BAP's
        client endpoint is no Beckn message)."""
        seen: dict[int, Message] = {}
        for step in self.steps:
            for msg in [step.request, *step.callbacks, *step.answers]:
                if msg is not None and msg.direction != "trigger":
                    seen.setdefault(id(msg), msg)
        for msg in self.unexpected:
            seen.setdefault(id(msg), msg)
        return list(seen.values())

    def step_of(self, finding: Finding) -> StepResult | None:
        return next((s for s in self.steps if any(f is finding for f in s.findings)), None)


@dataclass(slots=True)
class RunResult:
    run_id: str
    started: float
    stopped: float = 0.0
    scenarios: list[ScenarioResult] = field(default_factory=list)
    strays: list[Message] = field(default_factory=list)
    """Messages for transactions no scenario started, or that came after theirs was judged: nothing received
    is lost. They are also checked, as the last entry of `scenarios`."""
    settings: dict[str, Any] = field(default_factory=dict)
    setup_errors: list[str] = field(default_factory=list)
    """Set-up problems found before any scenario was played (the harness's key is not in the registry)."""
    interrupted: bool = False
    """Stopped by Ctrl-C: what finished is reported, the rest says it was not run."""

    @property
    def exit_code(self) -> int:
        """130 when interrupted; else 5 when the harness met a bug; else 4 when the set-up keeps the run from
        judging the target; else 3 when the target could not be reached at all; else 1 when it broke a rule;
        else 2 when a scenario could not be played to the end (it proves nothing about the target); else 0.
        Skipped scenarios count for nothing."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if any(s.internal_error is not None for s in self.scenarios):
            return EXIT_INTERNAL
        if self.setup_errors or any(s.setup_error is not None for s in self.scenarios):
            return EXIT_SETUP
        if any(s.unreachable for s in self.scenarios):
            return EXIT_UNREACHABLE
        if any(s.status == "failed" for s in self.scenarios):
            return EXIT_FAILED
        if any(s.status == "broken" for s in self.scenarios):
            return EXIT_USAGE
        return EXIT_OK


def shown(path: Path) -> str:
    """A file as a reader finds it: relative to the working folder when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)
