"""Layer-2 packs: a use case's narrowing of the core schemas (enums, required fields), kept as data.

Two shapes are accepted, so that both the project's packs and the network's own files load:
- an *overlay*: `components.schemas.<CoreObject>` holds only the narrowing, which is applied to the core
  object as `allOf: [core, overlay]` (the project's packs, under `conformance/packs/`);
- a *full document*: a Beckn OpenAPI file with `paths`, as protocol-server loads them. Its findings are
  the violations the core schemas do not already report.

A constraint may carry `x-rule: <RULE_ID>`; the pack's `x-conformance.rules` describes each id (severity,
title, clause). Constraints without one are reported as `L2_CONSTRAINT`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance._types import PathPart
from conformance.errors import ConfigError, load_yaml
from conformance.findings import Severity
from conformance.schemas import SchemaSet

PACKS_DIR = Path(__file__).with_name("packs")
GENERIC_RULE = "L2_CONSTRAINT"


@dataclass(frozen=True, slots=True)
class PackRule:
    """A rule a pack declares: the catalogue lists it beside the built-in rules."""

    id: str
    severity: Severity
    title: str
    clause: str
    must: str


@dataclass(slots=True, eq=False)
class Layer2Pack:
    origin: str
    domains: tuple[str, ...]
    version: str | None
    rules: tuple[PackRule, ...]
    schemas: SchemaSet
    cancelled_states: frozenset[str] = frozenset()
    """Fulfillment state codes that mean the order is cancelled (`x-conformance.cancelled-states`)."""
    _rule_ids: dict[tuple[PathPart, ...], str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """What the pack is called in the rule catalogue: its use case (the folder under packs/ a built-in pack is
        in, as for the use case's fixtures), else its file."""
        path = Path(self.origin)
        return path.parent.name if path.parent.parent == PACKS_DIR else path.name

    def declared(self, rule_id: str) -> PackRule | None:
        """This pack's own description of a rule id: several packs may declare one id (the same check on another
        use case's taxonomy), each with its own clause and values."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def rule_id(self, schema_path: tuple[PathPart, ...]) -> str:
        """The `x-rule` nearest to the failing keyword along its schema path, else the generic id."""
        found = self._rule_ids.get(schema_path)
        if found is None:
            found = GENERIC_RULE
            node: Any = self.schemas.root
            for step in schema_path:
                if isinstance(node, list) and isinstance(step, int) and step < len(node):
                    node = node[step]
                elif isinstance(node, dict) and str(step) in node:
                    node = node[str(step)]
                else:
                    break
                if isinstance(node, dict) and isinstance(node.get("x-rule"), str):
                    found = node["x-rule"]
            self._rule_ids[schema_path] = found
        return found


def file_name(domain: str, version: str) -> str:
    """protocol-server's naming: `{domain with ':' and '/' as '_'}_{version}.yaml`."""
    return f"{domain.replace(':', '_').replace('/', '_')}_{version}.yaml"


def load_pack(path: Path, core: SchemaSet) -> Layer2Pack:
    """Load a Layer-2 file of either shape; any problem is a ConfigError naming the file (and line)."""
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a Layer-2 file must be a mapping, found {type(doc).__name__}")
    meta = doc.get("x-conformance") or {}
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: 'x-conformance' must be a mapping")
    if isinstance(doc.get("paths"), dict):
        schemas = SchemaSet.from_mapping(doc, str(path))
    else:
        components = doc.get("components")
        overlays = components.get("schemas") if isinstance(components, dict) else None
        # An empty overlay is a pack that narrows nothing yet claims its domains: a use case whose material states
        # no list (docs/positions-starter-kit.md), whose messages are then judged by the core, not L2_PACK_MISSING.
        if not isinstance(overlays, dict):
            raise ConfigError(f"{path}: a Layer-2 file needs 'paths' (a full document) or 'components.schemas' (an overlay)")
        schemas = core.narrowed(overlays, str(path))
    info = doc.get("info")
    version = info.get("version") if isinstance(info, dict) else None
    domains = meta.get("domains") or []
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ConfigError(f"{path}: 'x-conformance.domains' must be a list of domain codes")
    rules = _pack_rules(path, meta.get("rules") or [])
    undeclared = _rule_tags(doc) - {r.id for r in rules}
    if undeclared:
        raise ConfigError(f"{path}: x-rule ids {sorted(undeclared)} are not described in x-conformance.rules")
    cancelled = meta.get("cancelled-states") or []
    if not isinstance(cancelled, list) or not all(isinstance(c, str) for c in cancelled):
        raise ConfigError(f"{path}: 'x-conformance.cancelled-states' must be a list of state codes")
    return Layer2Pack(origin=str(path), domains=tuple(domains), version=str(version) if version else None,
                      rules=rules, schemas=schemas, cancelled_states=frozenset(cancelled))


def _rule_tags(node: Any) -> set[str]:
    """Every `x-rule` id used anywhere in a document."""
    if isinstance(node, dict):
        found = {node["x-rule"]} if isinstance(node.get("x-rule"), str) else set()
        return found.union(*(_rule_tags(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_rule_tags(v) for v in node))
    return set()


def _pack_rules(path: Path, raw: Any) -> tuple[PackRule, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: 'x-conformance.rules' must be a list")
    rules = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "title", "clause", "must")):
            raise ConfigError(f"{path}: x-conformance.rules[{i}] needs string 'id', 'title', 'clause' and 'must'")
        try:
            severity = Severity(item.get("severity", "error"))
        except ValueError:
            raise ConfigError(f"{path}: x-conformance.rules[{i}].severity must be 'error' or 'warning'") from None
        if not item["id"].startswith("L2_"):
            raise ConfigError(f"{path}: x-conformance.rules[{i}].id must start with 'L2_'")
        rules.append(PackRule(item["id"], severity, item["title"], item["clause"], item["must"]))
    return tuple(rules)


class Layer2:
    """Finds the pack for a message's domain and version: an explicit file, a folder, or the built-in packs."""

    def __init__(self, core: SchemaSet, *, file: Path | None = None, directory: Path | None = None,
                 builtin: bool = True) -> None:
        self.core = core
        self.directory = directory
        self._fixed = load_pack(file, core) if file else None
        self._builtin: list[Layer2Pack] = []
        if builtin and file is None and directory is None:
            self._builtin = [load_pack(p, core) for p in sorted(PACKS_DIR.glob("*/*.yaml"))]
        if directory is not None and not directory.is_dir():
            raise ConfigError(f"{directory}: --layer2-dir is not a folder")
        self._cache: dict[tuple[str, str], Layer2Pack | None] = {}

    def packs(self) -> list[Layer2Pack]:
        """The packs loaded so far (all of them for the built-in set), for the rule catalogue."""
        found = [self._fixed] if self._fixed else list(self._builtin)
        found += [p for p in self._cache.values() if p is not None and p not in found]
        return found

    def pack_for(self, domain: Any, version: Any) -> Layer2Pack | None:
        if self._fixed is not None:
            return self._fixed
        if not isinstance(domain, str) or not isinstance(version, str):
            return None
        key = (domain, version)
        if key not in self._cache:
            self._cache[key] = self._find(domain, version)
        return self._cache[key]

    def _find(self, domain: str, version: str) -> Layer2Pack | None:
        if self.directory is not None:
            candidate = self.directory / file_name(domain, version)
            return load_pack(candidate, self.core) if candidate.is_file() else None
        for pack in self._builtin:
            if domain in pack.domains and pack.version in (None, version):
                return pack
        return None
