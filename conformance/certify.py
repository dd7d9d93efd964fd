"""Certification: a profile's run (its scenarios, then every probe, in one run and one report folder) measured for
coverage, and its verdict.

The CLI plays the run with the runner as `run` does (conformance/runner); this module turns the run into what the
coverage needs (coverage.Played), measures the run's transcript as `validate` would read it, and writes the
coverage beside the other reports: coverage.json, and `coverage` and `certification` in summary.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from conformance import coverage, transcript, usecases
from conformance.engine import Engine
from conformance.profiles import Profile
from conformance.runner import UNMET
from conformance.runner.results import RunResult, ScenarioResult


def played(run: RunResult, profile: Profile) -> coverage.Played:
    """The run's scenarios of the profile and its probes, as coverage sees them."""
    wanted = set(profile.scenario_ids)
    settings = run.settings
    return coverage.Played(
        scenarios=tuple(_step(s, s.scenario.id) for s in run.scenarios if s.scenario.id in wanted
                        and not _is_probe(s)),
        probes=tuple(_step(s, probe_id(s)) for s in run.scenarios if _is_probe(s)),
        probes_to_gateway=(settings.get("role") == "bap" and settings.get("target") is None
                           and settings.get("gateway") is not None and not settings.get("reference_network")))


def probe_id(result: ScenarioResult) -> str:
    """A probe's id back from its report entry (probes/<group>-<name>.probe: a group has no dash)."""
    return result.scenario.id.replace("-", "/", 1)


def _is_probe(result: ScenarioResult) -> bool:
    return result.scenario.path.suffix == ".probe"


def _step(result: ScenarioResult, name: str) -> coverage.Step:
    setup = result.setup_error is not None or (result.skipped or "").startswith(UNMET)
    return coverage.Step(name=name, status=result.status, why=result.why, setup=setup,
                         actions=tuple(step.send for step in result.scenario.steps))


def measure(run: RunResult, profile: Profile, engine: Engine, report_dir: Path) -> dict[str, Any]:
    """The certification's coverage, from the transcript the run wrote (the messages `validate` would judge)."""
    path = report_dir / "transcript.jsonl"
    messages = transcript.load([path]) if path.is_file() and path.stat().st_size else []
    use_case = usecases.named(profile.use_case)
    subject = coverage.Subject(use_case=use_case.name, domain=use_case.domain, role=profile.role, profile=profile,
                               played=played(run, profile))
    doc = coverage.measure(messages, engine, coverage.evaluated(engine, messages), subject)
    coverage.check(doc)
    return doc


def write(report_dir: Path, doc: dict[str, Any], profile: Profile, exit_code: int) -> None:
    """coverage.json, and the coverage and the certification's verdict in summary.json (whose exit_code becomes
    the certification's)."""
    (report_dir / "coverage.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    summary_path = report_dir / "summary.json"
    summary = orjson.loads(summary_path.read_bytes())
    summary["exit_code"] = exit_code
    summary["certification"] = {"use_case": profile.use_case, "role": profile.role, "profile": str(profile.path),
                                "certified": exit_code == 0, "complete": doc["complete"]}
    summary["coverage"] = doc
    summary_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
