"""YAML scenarios: one whole transaction described as data, checked against its own schema before anything is sent.

A scenario names the fixtures its request bodies come from, what to change in them, what must come back
and what to remember for later steps. Everything here is pure: reading files, templating, and judging a
callback against an assertion. Sending and waiting belong to the runner.
"""
from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import jsonpath
import jsonschema_rs
import orjson
import yaml

from conformance.errors import ConfigError, load_yaml
from conformance.messages import parse_duration
from conformance import usecases
from conformance.shipped import FIXTURES

REQUIREMENTS = {
    "gateway": "a gateway (role bap: --gateway, or the reference network), since the scenario is about the fan-out "
               "of a search",
    "passive-drive": "--drive passive (a person at the BAP's controls), since the scenario judges a decision the "
                     "BAP makes itself: in trigger drive the harness would be the one asking for the request",
    "trigger-drive": "--drive trigger (the BAP's client endpoint), since the scenario asks the BAP for requests "
                     "a person could not be prompted to make",
}
"""What a scenario may require of the run, and why a scenario would: the text of a skip reason."""


@dataclass(frozen=True, slots=True)
class Assertion:
    """`path` (JSONPath) and one test: equals, exists, one_of, matches or contains. Templates work in both."""

    path: str
    op: str
    value: Any
    clause: str | None = None
    """The spec clause that makes this assertion a requirement, shown in its finding."""
    line: int | None = None
    """Where it is written in its scenario file: its finding points there."""

    def describe(self, variables: Mapping[str, Any] | None = None) -> str:
        """`path op value`, with templates filled in from `variables` when given."""
        value = self.value
        if variables is not None:
            try:
                value = render(value, variables)
            except ConfigError:
                pass
        return f"{self.where(variables)} {self.op} {value!r}"

    def where(self, variables: Mapping[str, Any] | None = None) -> str:
        """The path, with its templates filled in when they can be (a finding names the path it evaluated)."""
        if variables is None:
            return self.path
        try:
            return str(render(self.path, variables))
        except ConfigError:
            return self.path

    def failure(self, doc: Any, variables: Mapping[str, Any]) -> tuple[Any, Any] | None:
        """None when `doc` satisfies the assertion, else (expected, found) for the finding."""
        found = jsonpath.findall(str(render(self.path, variables)), doc)
        expected = render(self.value, variables)
        if self.op == "exists":
            return None if bool(found) == expected else (f"exists: {expected}", found or "(absent)")
        if self.op == "contains":
            return None if expected in found else (f"one match equal to {expected!r}", found)
        if not found:
            return (f"{self.op} {expected!r}", "(absent)")
        if self.op == "equals":
            ok = all(v == expected for v in found)
        elif self.op == "one_of":
            ok = all(v in expected for v in found)
        else:
            ok = all(isinstance(v, str) and re.search(expected, v) is not None for v in found)
        return None if ok else (f"{self.op} {expected!r}", found[0] if len(found) == 1 else found)


@dataclass(frozen=True, slots=True)
class Expect:
    outcome: str = "answered"
    error_code: str | None = None
    callback: str | None = None
    count: int | None = 1
    """None means every callback that arrives within the window."""
    min: int = 1
    within: timedelta | None = None
    """None means the request's ttl."""
    reason: str | None = None
    """Why `within` differs from the ttl: a finding about the window cites it."""
    unsupported: tuple[str, ...] = ()
    """BECKN-005 codes by which a BPP says it does not offer what the step asks (40005 Tracking not supported): a
    NACK or error callback with one of them skips the scenario, saying so, rather than failing it (role bap)."""


@dataclass(frozen=True, slots=True)
class Offer:
    """Which offer of the catalogs the step received it goes on with (conformance/offers.py): the first whose
    view satisfies every `where`, and agrees with every variable pinned by whoever runs the scenario. When
    none does, the scenario does not apply to this target and is skipped, saying why."""

    where: tuple[Assertion, ...]
    save: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    send: str
    body: Path
    line: int
    set: Mapping[str, Any] = field(default_factory=dict)
    expect: Expect = field(default_factory=Expect)
    choose: Assertion | None = None
    offer: Offer | None = None
    asserts: tuple[Assertion, ...] = ()
    save: Mapping[str, str] = field(default_factory=dict)
    prompt: str | None = None
    """Role bpp, passive drive: what the person at the BAP is asked to do."""
    answer: tuple[str, str] | None = None
    """Role bpp: ("nack" | "error", BECKN-005 code), how the harness's BPP answers instead of as the reference
    BPP would."""
    payload: Mapping[str, Any] | None = None
    """A body given as it is instead of read from `body` (which then names where it was recorded): a request
    replayed from a capture, whose values are data and are not templated, whatever they look like. `set` still
    applies."""

    @property
    def callback(self) -> str:
        return self.expect.callback or f"on_{self.send}"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    path: Path
    steps: tuple[Step, ...]
    description: str = ""
    tags: tuple[str, ...] = ()
    role: str = "bap"
    use_case: str = usecases.DEFAULT
    severity: str = "critical"
    variables: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    """What the run must offer for the scenario to apply (REQUIREMENTS); else it is skipped, saying why."""

    @property
    def id(self) -> str:
        """Stable across runs: what Allure's history and JUnit's test names key on. The file's name without its
        extension, and without `.deg` (the naming that makes pytest collect a file as a scenario)."""
        return self.path.stem.removesuffix(".deg")


@lru_cache(maxsize=1)
def _validator() -> jsonschema_rs.Draft202012Validator:
    text = resources.files("conformance").joinpath("schemas/scenario.schema.yaml").read_text(encoding="utf-8")
    return jsonschema_rs.Draft202012Validator(yaml.safe_load(text))


def load(path: Path, fixtures: Path = FIXTURES) -> Scenario:
    """Read and check one scenario file. Every problem is a ConfigError naming the file, line and fault."""
    doc = load_yaml(path)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.instance_path)))
    if errors:
        lines = _lines(path)
        raise ConfigError("\n".join(
            f"{path}:{lines.get(_error_at(e), 1)}: {_where(e.instance_path)}{e.message}" for e in errors[:10]))
    assert isinstance(doc, dict)
    use_case = doc.get("use_case", usecases.DEFAULT)
    lines = _lines(path)
    steps = []
    known = {*doc.get("variables", {}), *RUNNER_VARIABLES, *BUILTINS}
    role = doc.get("role", "bap")
    for n, raw in enumerate(doc["steps"]):
        line = lines.get(("steps", n), 1)
        _role_fits(role, raw, f"{path}:{line}: steps/{n}")
        body = _fixture(path, fixtures / use_case, raw.get("body", f"requests/{raw['send']}.json"), line)
        _known_templates(read_fixture(body), known, f"{path}:{line}: steps/{n}: body {body}")
        for key in ("set", "choose", "offer", "assert", "prompt"):
            if key in raw:
                _known_templates(raw[key], known, f"{path}:{lines.get(('steps', n, key), line)}: steps/{n}/{key}")
        steps.append(Step(
            name=raw.get("name", raw["send"]), send=raw["send"], body=body, line=line, set=raw.get("set", {}),
            expect=_expect(raw.get("expect", {}), path, line),
            choose=_assertion(raw.get("choose"), path, lines.get(("steps", n, "choose"), line)),
            offer=_offer(raw.get("offer"), path, lambda k: lines.get(("steps", n, "offer", "where", k), line)),
            asserts=tuple(a for k, x in enumerate(raw.get("assert", []))
                          if (a := _assertion(x, path, lines.get(("steps", n, "assert", k), line))) is not None),
            save=raw.get("save", {}), prompt=raw.get("prompt"),
            answer=next(iter(raw["answer"].items())) if "answer" in raw else None))
        offered = steps[-1].offer.save if steps[-1].offer is not None else {}
        for query in [*steps[-1].save.values(), *offered.values()]:
            _compile(query, path, line)
        known |= set(steps[-1].save) | set(offered)
    return Scenario(name=doc["name"], path=path, steps=tuple(steps), description=doc.get("description", ""),
                    tags=tuple(doc.get("tags", ())), role=role, use_case=use_case,
                    severity=doc.get("severity", "critical"), variables=doc.get("variables", {}),
                    requires=tuple(doc.get("requires", ())))


def _role_fits(role: str, raw: dict[str, Any], where: str) -> None:
    """Fields that mean something for one role only: refused for the other rather than silently ignored."""
    if role == "bap" and "prompt" in raw:
        raise ConfigError(f"{where}: prompt is for role bpp (the person at the BAP's controls); this scenario plays bap")
    if role == "bap" and ("answer" in raw or raw.get("expect", {}).get("outcome") == "not-sent"):
        raise ConfigError(f"{where}: answer and outcome not-sent are for role bpp (the harness answers the BAP); "
                          "this scenario plays bap")
    if role == "bpp" and "callback" in raw.get("expect", {}):
        raise ConfigError(f"{where}: expect.callback is for role bap; as BPP the harness sends on_<send> itself")
    if role == "bpp" and "unsupported" in raw.get("expect", {}):
        raise ConfigError(f"{where}: expect.unsupported is for role bap; as BPP the harness offers every action")
    if "offer" in raw and "choose" in raw:
        raise ConfigError(f"{where}: offer and choose both pick what the step reads; keep one")


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files named on the command line, folders searched for *.yaml / *.yml, in a stable order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise ConfigError(f"{p}: no such scenario file or folder")
    if not found:
        raise ConfigError(f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    return found


def _error_at(error: jsonschema_rs.ValidationError) -> tuple[str | int, ...]:
    """Where a schema error is in the file: for an unknown key, the key itself rather than its mapping."""
    at = tuple(error.instance_path)
    unexpected = getattr(error.kind, "unexpected", None)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and unexpected:
        return at + (str(unexpected[0]),)
    return at


def _where(path: Any) -> str:
    return "/".join(map(str, path)) + ": " if len(path) else ""


def _lines(path: Path) -> dict[tuple[str | int, ...], int]:
    """1-based line of every mapping entry (its key) and sequence item, by its path: where errors point."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    out: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[str | int, ...]) -> None:
        out[at] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, at + (str(key.value),))
                out[at + (str(key.value),)] = key.start_mark.line + 1  # `expect:` not the line after it
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, at + (i,))

    if root is not None:
        walk(root, ())
    return out


def _fixture(scenario: Path, root: Path, name: str, line: int) -> Path:
    for candidate in (scenario.parent / name, root / name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{scenario}:{line}: body {name!r} is neither next to the scenario nor in {root}")


def _expect(raw: dict[str, Any], path: Path, line: int) -> Expect:
    within = None
    if "within" in raw:
        within = parse_duration(raw["within"])
        if within is None:
            raise ConfigError(f"{path}:{line}: expect.within {raw['within']!r} is not an ISO 8601 duration")
    outcome = raw.get("outcome", "answered")
    if outcome == "nacked" and ("callback" in raw or "count" in raw):
        raise ConfigError(f"{path}:{line}: a nacked step expects no callback; drop expect.callback/count")
    count = raw.get("count", 1)
    return Expect(outcome=outcome, error_code=raw.get("error_code"), callback=raw.get("callback"),
                  count=None if count == "all" else count, min=raw.get("min", 1), within=within,
                  reason=raw.get("reason"), unsupported=tuple(raw.get("unsupported", ())))


def _assertion(raw: dict[str, Any] | None, path: Path, line: int) -> Assertion | None:
    if raw is None:
        return None
    _compile(raw["path"], path, line)
    op = next(k for k in raw if k not in ("path", "clause"))
    if op == "matches":
        try:
            re.compile(raw[op])
        except re.error as exc:
            raise ConfigError(f"{path}:{line}: matches {raw[op]!r} is not a regular expression: {exc}") from None
    return Assertion(raw["path"], op, raw[op], raw.get("clause"), line)


def _offer(raw: dict[str, Any] | None, path: Path, line_of: Callable[[int], int]) -> Offer | None:
    if raw is None:
        return None
    where = tuple(a for k, x in enumerate(raw.get("where", []))
                  if (a := _assertion(x, path, line_of(k))) is not None)
    return Offer(where=where, save=raw.get("save", {}))


def _compile(query: str, path: Path, line: int) -> None:
    """Refuse a JSONPath that does not parse. Templates are filled in when the step is played, so each is tried
    as a string and as a number here: `[?@.id == '{{ item_id }}']` and `items[{{ n }}]` both parse."""
    last: jsonpath.JSONPathError | None = None
    for stand_in in ("x", "0"):
        try:
            jsonpath.compile(_TEMPLATE.sub(stand_in, query))
            return
        except jsonpath.JSONPathError as exc:
            last = exc
    raise ConfigError(f"{path}:{line}: {query!r} is not a JSONPath: {str(last).splitlines()[0]}") from None


# Templating: "{{ name }}" is replaced by a variable. A string that is one whole template keeps the value's
# type (a saved list stays a list); built-ins give fresh values each time they are used.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A variable's name, as templates write it."""
_TEMPLATE = re.compile(r"\{\{\s*(" + NAME.pattern + r")\s*\}\}")
BUILTINS = {"uuid": lambda: str(uuid.uuid4())}
RUNNER_VARIABLES = ("transaction_id", "bap_id", "bap_uri")
"""What the runner adds to a scenario's variables when it plays it."""


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with every template replaced; an unknown name is a ConfigError naming it."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(whole.group(1), variables)
        return _TEMPLATE.sub(lambda m: str(_lookup(m.group(1), variables)), value)
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    return value


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name in variables:
        return variables[name]
    if name in BUILTINS:
        return BUILTINS[name]()
    raise ConfigError(f"template {{{{ {name} }}}} names nothing: known are {', '.join(sorted([*variables, *BUILTINS]))}")


def _known_templates(value: Any, known: set[str], where: str) -> None:
    """A ConfigError at `where` when a template in `value` names no variable in `known`: found when the
    scenario is loaded, before anything is sent, rather than half-way through playing it."""
    if isinstance(value, str):
        for m in _TEMPLATE.finditer(value):
            if m.group(1) not in known:
                raise ConfigError(f"{where}: template {{{{ {m.group(1)} }}}} names nothing: known here are "
                                  f"{', '.join(sorted(known))}")
    elif isinstance(value, list):
        for v in value:
            _known_templates(v, known, where)
    elif isinstance(value, dict):
        for v in value.values():
            _known_templates(v, known, where)


def read_fixture(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON fixture: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a body fixture must be an object of {{context, message}}")
    return doc


def build_body(step: Step, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The step's fixture, rendered (or its payload, as it is), with its `set` overrides applied (dotted paths;
    lists by index)."""
    body: dict[str, Any] = (copy.deepcopy(dict(step.payload)) if step.payload is not None
                            else render(read_fixture(step.body), variables))
    for dotted, value in step.set.items():
        try:
            put(body, dotted, render(copy.deepcopy(value), variables))
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{step.body}: set {dotted}: the body has no place for it "
                              f"({type(exc).__name__}: {exc})") from None
    body.setdefault("context", {})
    body.setdefault("message", {})
    return body


def put(doc: Any, dotted: str, value: Any) -> None:
    """Set doc[a][b]... = value for the dotted path `a.b...`, making objects on the way; a digit part indexes an
    existing list. What a step's `set` does, and how recorded requests are linked to saved values."""
    parts = dotted.split(".")
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc.setdefault(part, {})
    if isinstance(doc, list):
        doc[int(parts[-1])] = value
    else:
        doc[parts[-1]] = value
