"""Which findings count: rules left out of a run, and waivers with their reasons.

A network certifying its participants sometimes accepts a known deviation for a while (a Layer-2 value the next
release fixes). A waiver keeps the finding in every report, marked with its reason, and stops it failing the run;
an excluded rule is not reported at all, and the run's settings say which. Both are the run's policy, applied to
findings after the rules ran, so that every front end (the command line, the pytest plugin) treats them alike.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from conformance.errors import ConfigError, load_yaml
from conformance.findings import Finding, Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    rule: str
    """A rule id, or a pattern (L2_*)."""
    reason: str
    scenario: str | None = None
    """Only in this scenario (its id, the file name without .yaml)."""
    path: str | None = None
    """Only at this JSON path (a pattern)."""
    until: date | None = None
    """Not after this day: an expired waiver waives nothing, so it cannot outlive the fix it waits for."""

    def covers(self, finding: Finding, scenario: str, today: date) -> bool:
        return (fnmatch.fnmatchcase(finding.rule_id, self.rule)
                and (self.scenario is None or self.scenario == scenario)
                and (self.path is None or fnmatch.fnmatchcase(finding.path, self.path))
                and (self.until is None or today <= self.until))


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    exclude: tuple[str, ...] = ()
    """Rule ids or patterns not reported."""
    waivers: tuple[Waiver, ...] = ()
    fail_on: Severity = Severity.ERROR
    """The least severe finding that fails a scenario (WARNING: warnings too)."""

    def judge(self, finding: Finding, scenario: str, today: date | None = None) -> Finding | None:
        """The finding as the run reports it: None when its rule is excluded, marked with the reason of the
        first waiver that covers it, or as it is."""
        if any(fnmatch.fnmatchcase(finding.rule_id, pattern) for pattern in self.exclude):
            return None
        if finding.waiver is not None:
            return finding
        today = today or date.today()
        waiver = next((w for w in self.waivers if w.covers(finding, scenario, today)), None)
        return finding if waiver is None else replace(finding, waiver=waiver.reason)

    def fails(self, finding: Finding) -> bool:
        """Whether a finding fails its scenario: not waived, and at least as severe as `fail_on`."""
        return finding.waiver is None and (finding.severity is Severity.ERROR or self.fail_on is Severity.WARNING)

    def describe(self) -> dict[str, object]:
        return {"excluded_rules": ", ".join(self.exclude), "waivers": len(self.waivers), "fail_on": self.fail_on.value}


def patterns(text: str | None) -> tuple[str, ...]:
    """`--exclude-rules L2_STOP_TYPE,TIM_*` as patterns."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def load(path: Path) -> tuple[Waiver, ...]:
    """A waiver file: a YAML list of {rule, reason, scenario?, path?, until?}; each needs a reason."""
    doc = load_yaml(path)
    if not isinstance(doc, list):
        raise ConfigError(f"--waivers {path}: write a list of {{rule, reason, scenario?, path?, until?}}")
    out = []
    for n, item in enumerate(doc, 1):
        if not isinstance(item, dict) or not isinstance(item.get("rule"), str) or not item["rule"] \
                or not isinstance(item.get("reason"), str) or not item["reason"].strip():
            raise ConfigError(f"--waivers {path}: waiver {n} needs a rule id and a reason")
        unknown = set(item) - {"rule", "reason", "scenario", "path", "until"}
        if unknown:
            raise ConfigError(f"--waivers {path}: waiver {n} has unknown keys {sorted(unknown)}")
        for key in ("scenario", "path"):
            if not isinstance(item.get(key), (str, type(None))):
                raise ConfigError(f"--waivers {path}: waiver {n}: {key} must be text")
        until = item.get("until")
        if isinstance(until, datetime):
            raise ConfigError(f"--waivers {path}: waiver {n}: until must be a date (2027-01-31), not a time")
        if isinstance(until, str):
            try:
                until = date.fromisoformat(until)
            except ValueError:
                pass
        if until is not None and not isinstance(until, date):
            raise ConfigError(f"--waivers {path}: waiver {n}: until must be a date (2027-01-31)")
        out.append(Waiver(rule=item["rule"], reason=item["reason"].strip(), scenario=item.get("scenario"),
                          path=item.get("path"), until=until))
    return tuple(out)
