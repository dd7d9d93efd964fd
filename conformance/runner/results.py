"""What a live run produced: per step, the messages both ways and the findings; per run, the verdict.

Reports (Allure, JUnit, summary.json, the terminal) are all drawn from these values, so they agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.findings import Finding, Severity
from conformance.messages import Message
from conformance.scenario import Scenario
from conformance.transport import Reply

from conformance.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "RunResult", "ScenarioResult", "StepResult"]


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

    @property
    def passed(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)


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
    """Why the scenario could not go on (a template naming nothing, a value not saved): the scenario's
    fault, not necessarily the target's."""
    unreachable: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def status(self) -> str:
        """Allure's vocabulary: passed, failed (the target broke a rule), broken (the run could not finish)."""
        if self.errors:
            return "failed"
        return "broken" if self.error is not None else "passed"

    def step_of(self, finding: Finding) -> StepResult | None:
        return next((s for s in self.steps if any(f is finding for f in s.findings)), None)


@dataclass(slots=True)
class RunResult:
    run_id: str
    started: float
    stopped: float = 0.0
    scenarios: list[ScenarioResult] = field(default_factory=list)
    strays: list[Message] = field(default_factory=list)
    """Messages for transactions no scenario started: nothing received is lost."""
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """3 when the target could not be reached, else 1 when it broke a rule, else 2 when a scenario could
        not be played to the end (the scenario's fault: it proves nothing about the target), else 0."""
        if any(s.unreachable for s in self.scenarios):
            return EXIT_UNREACHABLE
        if any(s.status == "failed" for s in self.scenarios):
            return EXIT_FAILED
        if any(s.status == "broken" for s in self.scenarios):
            return EXIT_USAGE
        return EXIT_OK
