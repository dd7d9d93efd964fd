"""Message schemas by action: the built-in Beckn core 1.1.0 document, or any Beckn OpenAPI file (`--spec`).

Both are compiled with jsonschema-rs. Formats are annotations here (as JSON Schema 2020-12 has them by
default): the context rules check the formats that matter (timestamp, ttl, ids) with their own ids and
severities, so one malformed field is reported once, by the rule that explains it best.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import jsonschema_rs

from conformance._types import JSONObject, PathPart
from conformance.errors import ConfigError, load_yaml
from conformance.findings import ABSENT
from conformance.messages import ACTIONS, json_type

BUILTIN_SCHEMA = Path(__file__).with_name("schemas") / "beckn-core-1.1.0.yaml"
_DRAFT = jsonschema_rs.Draft202012Validator


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One schema violation, reduced to what a finding needs."""

    path: tuple[PathPart, ...]
    keyword: str
    schema_path: tuple[PathPart, ...]
    expected: Any
    found: Any
    must: str


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class SchemaSet:
    """A compiled schema per action, plus the synchronous ACK/NACK response schema."""

    def __init__(self, root: JSONObject, *, origin: str, defs: tuple[str, ...],
                 action_pointer: Callable[[str], str], ack_pointer: str | None,
                 actions: frozenset[str]) -> None:
        self.root = root
        self.origin = origin
        self.defs = defs
        """Where the named core objects (Context, Order, Category, ...) live in `root`."""
        self.actions = actions
        self._action_pointer = action_pointer
        self._ack_pointer = ack_pointer
        self._validators: dict[str, Any] = {}

    @classmethod
    def builtin(cls) -> "SchemaSet":
        """The project's own Beckn core 1.1.0 schemas."""
        return cls.from_document(BUILTIN_SCHEMA)

    @classmethod
    def from_document(cls, path: Path) -> "SchemaSet":
        """Load either the project's schema document (`$defs`) or a Beckn OpenAPI document (`paths`)."""
        doc = load_yaml(path)
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, found {type(doc).__name__}")
        return cls.from_mapping(doc, str(path))

    @classmethod
    def from_mapping(cls, doc: JSONObject, origin: str) -> "SchemaSet":
        if isinstance(doc.get("paths"), dict):
            return cls._from_openapi(doc, origin)
        if isinstance(doc.get("$defs"), dict):
            actions = frozenset(a for a in doc["$defs"] if a in ACTIONS)
            return cls(doc, origin=origin, defs=("$defs",),
                       action_pointer=lambda a: f"#/$defs/{a}",
                       ack_pointer="#/$defs/AckResponse" if "AckResponse" in doc["$defs"] else None,
                       actions=actions)
        raise ConfigError(f"{origin}: neither an OpenAPI document (no 'paths') nor a schema document (no '$defs')")

    @classmethod
    def _from_openapi(cls, doc: JSONObject, origin: str) -> "SchemaSet":
        paths = doc["paths"]
        actions = frozenset(
            p[1:] for p, item in paths.items()
            if p[1:] in ACTIONS and isinstance(item, dict)
            and isinstance(_get(item, "post", "requestBody", "content", "application/json", "schema"), dict)
        )
        if not actions:
            raise ConfigError(f"{origin}: the OpenAPI document has no POST /<beckn action> with a JSON request schema")
        root = {"paths": paths, "components": doc.get("components") or {}}
        return cls(root, origin=origin, defs=("components", "schemas"),
                   action_pointer=lambda a: f"#/paths/{_escape('/' + a)}/post/requestBody/content/application~1json/schema",
                   ack_pointer=_openapi_ack_pointer(root, sorted(actions)),
                   actions=actions)

    def narrowed(self, overlays: JSONObject, origin: str) -> "SchemaSet":
        """This schema set with each named object narrowed by an overlay (core and overlay must both hold): a Layer 2.
        No overlay narrows nothing: the same set, whose validators are compiled once."""
        if not overlays:
            return self
        root = copy.copy(self.root)
        parent = root
        for key in self.defs:
            parent[key] = dict(parent[key])
            parent = parent[key]
        for name, overlay in overlays.items():
            if name not in parent:
                raise ConfigError(f"{origin}: narrows '{name}', which the core schemas do not define")
            # Appending to the object's own allOf (rather than wrapping it) keeps the pointers other
            # schemas use into it, such as `Category/properties/id`, valid.
            core = parent[name]
            parent[name] = {**core, "allOf": [*core.get("allOf", []), overlay]}
        return SchemaSet(root, origin=origin, defs=self.defs, action_pointer=self._action_pointer,
                         ack_pointer=self._ack_pointer, actions=self.actions)

    def validator(self, action: str) -> Any | None:
        """The compiled validator for an action's request body, or None when the document lacks it."""
        if action not in self.actions:
            return None
        found = self._validators.get(action)
        if found is None:
            found = self._validators[action] = self._compile(self._action_pointer(action))
        return found

    @cached_property
    def ack_validator(self) -> Any | None:
        return self._compile(self._ack_pointer) if self._ack_pointer else None

    def _compile(self, pointer: str) -> Any:
        try:
            return _DRAFT({**self.root, "$ref": pointer}, validate_formats=False, offline=True)
        except (ValueError, jsonschema_rs.ReferencingError) as exc:
            raise ConfigError(f"{self.origin}: cannot compile the schema at {pointer}: {exc}") from None

    def errors(self, validator: Any, instance: Any) -> list[SchemaError]:
        """Every violation of `validator` by `instance`, once per place and keyword, in a stable order.

        A schema may state one constraint twice (core 1.1.0 gives Ack.status its enum in two places);
        the participant needs to hear about it once.
        """
        if validator.is_valid(instance):
            return []
        unique: dict[tuple[tuple[PathPart, ...], str], SchemaError] = {}
        for err in map(_convert, validator.iter_errors(instance)):
            unique.setdefault((err.path, err.keyword), err)
        return sorted(unique.values(), key=lambda e: (tuple(map(str, e.path)), e.keyword))


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _openapi_ack_pointer(root: JSONObject, actions: list[str]) -> str | None:
    """The response schema of the first action that declares one, following one `$ref` as Beckn bundles do."""
    for action in actions:
        resp = _get(root["paths"], f"/{action}", "post", "responses", "default")
        base = f"#/paths/{_escape('/' + action)}/post/responses/default"
        if isinstance(resp, dict) and isinstance(resp.get("$ref"), str) and resp["$ref"].startswith("#/"):
            base = resp["$ref"]
            resp = _get(root, *[p.replace("~1", "/").replace("~0", "~") for p in base[2:].split("/")])
        if isinstance(_get(resp, "content", "application/json", "schema"), dict):
            return f"{base}/content/application~1json/schema"
    return None


def _convert(err: Any) -> SchemaError:
    kind = err.kind
    keyword = type(kind).__name__.lower()
    path = tuple(err.instance_path)
    schema_path = tuple(err.schema_path)
    instance = err.instance
    if keyword == "required":
        prop = getattr(kind, "property", None)
        return SchemaError(path + (prop,), keyword, schema_path, "present", ABSENT, "be present")
    if keyword == "type":
        names = list(getattr(kind, "types", None) or [])
        return SchemaError(path, keyword, schema_path, " or ".join(names), json_type(instance),
                           f"be of type {' or '.join(names)}")
    if keyword == "enum":
        options = list(getattr(kind, "options", []) or [])
        return SchemaError(path, keyword, schema_path, options, instance, "be one of the allowed values")
    if keyword == "pattern":
        pattern = getattr(kind, "pattern", None)
        return SchemaError(path, keyword, schema_path, f"a string matching {pattern}", instance,
                           "match the pattern")
    limits = ", ".join(f"{k}={v!r}" for k, v in sorted(kind.as_dict().items()))
    return SchemaError(path, keyword, schema_path, f"{keyword} ({limits})" if limits else keyword, instance,
                       f"satisfy: {err.message}")
