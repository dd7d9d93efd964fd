"""Certification profiles: what `deg-conformance certify` plays and requires, per use case and role, as data.

A profile lives beside the use case it certifies (fixtures/<use case>/certification.yaml), so that a new use case
is still a folder, not code, and the profile is versioned (and digested into a certificate) with the rest of it.
For each role the harness plays, it names the scenarios (required and optional, by id: the file's stem in
scenarios/<use case>/), the probes (required and optional, by id or glob pattern: `signature/missing-header`,
`layer2/*`) and the actions the target must be seen to exercise (a request and its callback both crossed).
Whatever the profile leaves optional still counts when it runs (a failure fails the certification); only a
required step that did not run, or an action never exercised, is missing coverage.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import scenario, usecases
from conformance.errors import ConfigError, load_yaml
from conformance.messages import REQUEST_ACTIONS

FILE = "certification.yaml"
ROLES = ("bap", "bpp")


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One role's certification profile of one use case."""

    use_case: str
    role: str
    path: Path
    """The profile file (certificates digest it)."""
    required_scenarios: tuple[str, ...]
    optional_scenarios: tuple[str, ...]
    required_probes: tuple[str, ...]
    """Probe ids or glob patterns; a pattern requires every probe it matches, and at least one."""
    optional_probes: tuple[str, ...]
    actions: tuple[str, ...]
    """Request actions (search, init, ...) whose exchange the target must be seen in."""

    @property
    def scenario_ids(self) -> tuple[str, ...]:
        return self.required_scenarios + self.optional_scenarios

    def scenarios(self) -> list[scenario.Scenario]:
        """The profile's scenarios, loaded from the use case's folder (required first), each checked to play the
        profile's role."""
        found = {s.id: s for s in _of_role(self.use_case, self.role)}
        return [found[name] for name in self.scenario_ids]


def of(use_case: str, role: str, path: Path | None = None) -> Profile:
    """The profile for `role` of the shipped use case, or of the file at `path` (a network's own profile)."""
    found = usecases.named(use_case)
    return read(path or found.folder / FILE, use_case, role)


def read(path: Path, use_case: str, role: str) -> Profile:
    """A certification.yaml's profile for one role, checked against the use case's scenarios: every problem a
    ConfigError naming the file."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    doc = load_yaml(path)
    if not isinstance(doc, dict) or not set(doc) <= set(ROLES):
        raise ConfigError(f"{path}: a certification profile is a mapping of role (bap, bpp) to its profile")
    part = doc.get(role)
    if not isinstance(part, dict) or not set(part) <= {"scenarios", "probes", "actions"}:
        raise ConfigError(f"{path}: no profile for role {role} (a mapping of scenarios, probes and actions)")
    scenarios = _split(path, role, "scenarios", part.get("scenarios"))
    probes = _split(path, role, "probes", part.get("probes"))
    actions = _names(path, f"{role}.actions", part.get("actions"))
    unknown_actions = sorted(set(actions) - set(REQUEST_ACTIONS))
    if unknown_actions:
        raise ConfigError(f"{path}: {role}.actions names no Beckn request action: {', '.join(unknown_actions)}")
    known = {s.id for s in _of_role(use_case, role)}
    unknown = [name for name in scenarios[0] + scenarios[1] if name not in known]
    if unknown:
        raise ConfigError(f"{path}: {role}.scenarios names no {role} scenario of {use_case}: {', '.join(unknown)} "
                          f"(there are: {', '.join(sorted(known)) or 'none'})")
    twice = sorted(set(scenarios[0]) & set(scenarios[1]))
    if twice:
        raise ConfigError(f"{path}: {role}.scenarios lists {', '.join(twice)} as both required and optional")
    return Profile(use_case=use_case, role=role, path=path, required_scenarios=scenarios[0],
                   optional_scenarios=scenarios[1], required_probes=probes[0], optional_probes=probes[1],
                   actions=actions)


def _split(path: Path, role: str, key: str, value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(value, dict) or not set(value) <= {"required", "optional"}:
        raise ConfigError(f"{path}: {role}.{key} is a mapping of required and optional lists")
    return (_names(path, f"{role}.{key}.required", value.get("required")),
            _names(path, f"{role}.{key}.optional", value.get("optional")))


def _names(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: {where} is a list of names")
    return tuple(value)


def _of_role(use_case: str, role: str) -> list[scenario.Scenario]:
    folder = usecases.named(use_case).scenarios
    if not folder.is_dir():
        return []
    return [s for s in map(scenario.load, scenario.discover([folder])) if s.role == role]
