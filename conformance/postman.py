"""Postman collections as scenarios: `deg-conformance import postman COLLECTION.json --out DIR`.

Networks hand their participants Postman collections (v2.x: nested folders of requests, each with a raw JSON
body, and the collection's `variable` list). The requests are what a BAP sends, usually to its protocol-server
client (`{{BAP_CLIENT_URL}}/select`), so the scenarios made from them play role `bap`: the harness sends these
bodies, signed, to the BPP or gateway under test, and judges what comes back with the whole catalogue.

How a collection becomes scenarios (docs/postman-import.md says why):

- Folders in order, a scenario per folder that holds Beckn requests, named from its folder path. A discovery
  folder (one that holds only searches) gives a scenario per search; when its parent folder goes on with
  select/init/confirm, the first search is the parent's first step instead, and only the others stand alone.
- `{{variables}}` take their value from the collection and `--env` (a Postman environment, which wins), where
  they are data. What is the BAP's own or the target's the harness owns or saves instead: the runner fills
  action, bap_id, bap_uri, transaction_id, message_id and timestamp; bpp_id and bpp_uri are saved from on_search,
  and the order id from on_confirm (conformance/recorded.py). A variable with no value anywhere becomes a scenario
  variable, for `--var`.
- Each body becomes a fixture beside its scenario. Requests that are not Beckn (a login, a CMS call) are skipped,
  and defects (a body that is not JSON, an action its URL contradicts, what the core requires and the body
  lacks) are noted per request; whatever can be imported is. Beckn 2.0 collections are refused whole.
"""
from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import orjson
import yaml

from conformance import recorded, scenario
from conformance.engine import Engine
from conformance.errors import ConfigError
from conformance.findings import Severity, plain
from conformance.messages import ACTIONS, REQUEST_ACTIONS, Message, format_timestamp, is_callback
from conformance.recorded import Linked, Recorded, slug, unique

SCHEMA = "schema.getpostman.com/json/collection/v2"
"""What a v2.0 or v2.1 collection's info.schema URL contains."""
BECKN_2_ACTIONS = frozenset({"discover", "on_discover", "publish", "on_publish"})
"""Endpoints and actions only Beckn 2.0 has: a collection using them is a 2.0 one, whatever its version says."""
REFUSED_2_0 = "Beckn 2.0 is not supported yet; this harness certifies 1.1.0"
OWNED_VARIABLES = {"bap_id": "{{ bap_id }}", "bap_uri": "{{ bap_uri }}", "transaction_id": "{{ transaction_id }}",
                   "message_id": "{{ uuid }}"}
"""Postman variables (any case) that stand for what the harness owns, as its templates: the harness is the BAP,
and each run its own transaction."""
DYNAMIC = {"$randomUUID": "{{ uuid }}", "$guid": "{{ uuid }}"}
"""Postman's dynamic variables that have a harness counterpart. Others (`$timestamp`, ...) in a field the runner
fills are dropped with it; anywhere else they are sent as written, with a note."""
STAND_INS = {"bap_id": "deg-conformance.local", "bap_uri": "https://harness.example.org/beckn",
             "bpp_id": "bpp.example.org", "bpp_uri": "https://bpp.example.org/beckn", "order_id": "order-1"}
"""Values a request is checked with on import, where the run would put the harness's own or saved ones."""
_VARIABLE = re.compile(r"\{\{([^{}]+)\}\}")
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DYNAMIC_LEFT = re.compile(r"\{\{\$[^{}]*\}\}")


@dataclass(frozen=True, slots=True)
class Request:
    """A request item of the collection, as Postman holds it."""

    folder: tuple[str, ...]
    name: str
    method: str
    url: str
    endpoint: str
    """The URL's last path segment: the action, for a Beckn request."""
    raw: str | None
    """The body, in raw mode; None for any other mode or none."""
    position: int
    """1-based, in the collection's order."""

    @property
    def where(self) -> str:
        return " / ".join((*self.folder, self.name))


@dataclass(slots=True)
class Folder:
    path: tuple[str, ...]
    entries: list["Folder | Request"] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Note:
    """What the importer tells about one request (or the collection, `where` its name): a skip or a defect."""

    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass(slots=True)
class Beckn:
    """A Beckn 1.1.0 request of the collection, parsed, with the notes about it."""

    request: Request
    recorded: Recorded
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Imported:
    """What an import wrote and said."""

    scenarios: list[Path] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    skipped: int = 0
    """Requests left out (not Beckn, a callback, a body that cannot be read)."""


def is_collection(path: Path) -> bool:
    """Whether `path` is a Postman collection (v2.x) rather than a capture: what `replay` asks of a .json file."""
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("info"), dict) and "item" in doc


def import_collection(path: Path, out: Path, *, env: Path | None = None, engine: Engine | None = None) -> Imported:
    """Write a scenario file (and its body fixtures) per flow of the collection at `path` into `out`; every
    scenario written loads (conformance.scenario.load). A ConfigError for a file that is not a v2.x collection,
    a Beckn 2.0 collection, or one with no Beckn request."""
    doc = _json(path, "Postman collection")
    info = doc.get("info") if isinstance(doc, dict) else None
    if not isinstance(info, dict) or not isinstance(doc.get("item"), list):
        raise ConfigError(f"{path}: not a Postman collection (no info and item list)")
    if SCHEMA not in str(info.get("schema", "")):
        raise ConfigError(f"{path}: not a Postman collection v2.x (info.schema {info.get('schema')!r}); export it from "
                          "Postman as Collection v2.1")
    variables = _variables(doc.get("variable"), f"{path}: variable")
    if env is not None:
        env_doc = _json(env, "Postman environment")
        if not isinstance(env_doc, dict) or not isinstance(env_doc.get("values"), list):
            raise ConfigError(f"{env}: not a Postman environment (no values list)")
        variables.update(_variables(env_doc["values"], f"{env}: values"))
    root = Folder(())
    _walk(doc["item"], root, itertools.count(1), f"{path}: item")
    result = Imported()
    parsed: dict[int, Beckn] = {}
    for request in _requests(root):
        outcome = _parse(request, variables, path)
        if isinstance(outcome, Beckn):
            parsed[request.position] = outcome
        else:
            result.skipped += 1
            result.notes.append(Note(request.where, outcome))
    groups = _groups(root, parsed)
    if not groups:
        raise ConfigError(f"{path}: no Beckn 1.1.0 request to import (every request was skipped: "
                          f"{'; '.join(map(str, result.notes[:3]))}{' ...' if len(result.notes) > 3 else ''})")
    title = str(info.get("name") or path.stem)
    engine = engine or Engine()
    taken: set[str] = set()
    for names, members in groups:
        stem = unique("--".join(slug(n) for n in names) or slug(title), taken)
        try:
            written = _write(out, stem, names, members, title, path, engine)
        except OSError as exc:
            raise ConfigError(f"{out}: cannot write the scenarios there: {exc.strerror or exc}") from None
        for member in members:
            result.notes += [Note(member.request.where, text) for text in member.notes]
        scenario.load(written)  # what `run` will do: a file the importer wrote must load
        result.scenarios.append(written)
    return result


def _json(path: Path, what: str) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a {what} (not valid JSON: {exc})") from None


def _variables(entries: Any, where: str) -> dict[str, str]:
    """A collection's `variable` or an environment's `values`: name -> value, leaving out disabled ones."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: must be a list of {{key, value}}")
    out: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ConfigError(f"{where}: every entry needs a key, not {entry!r:.80}")
        if entry.get("enabled", True) is False or entry.get("disabled", False) is True:
            continue
        value = entry.get("value", "")
        out[entry["key"]] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out


def _walk(items: Any, folder: Folder, counter: Iterator[int], where: str) -> None:
    if not isinstance(items, list):
        raise ConfigError(f"{where}: must be a list")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}[{n}]: must be an object, not {type(item).__name__}")
        name = str(item.get("name") or f"item {n + 1}")
        if "item" in item:
            sub = Folder((*folder.path, name))
            _walk(item["item"], sub, counter, f"{where}[{n}].item")
            folder.entries.append(sub)
        elif "request" in item:
            folder.entries.append(_request(item["request"], folder.path, name, next(counter)))


def _request(raw: Any, folder: tuple[str, ...], name: str, position: int) -> Request:
    if isinstance(raw, str):  # a request may be written as its URL alone (a GET)
        raw = {"url": raw, "method": "GET"}
    if not isinstance(raw, dict):
        raw = {}
    url = raw.get("url")
    text = url if isinstance(url, str) else str(url.get("raw", "")) if isinstance(url, dict) else ""
    segments = [str(s.get("value") if isinstance(s, dict) else s) for s in url.get("path", [])] \
        if isinstance(url, dict) and isinstance(url.get("path"), list) else []
    if not segments:
        segments = text.split("?")[0].split("#")[0].split("/")
    endpoint = next((s for s in reversed(segments) if s), "")
    body = raw.get("body")
    mode_raw = isinstance(body, dict) and body.get("mode", "raw") == "raw" and isinstance(body.get("raw"), str)
    return Request(folder, name, str(raw.get("method", "GET")).upper(), text, endpoint,
                   body["raw"] if mode_raw else None, position)


def _requests(folder: Folder) -> Iterator[Request]:
    for entry in folder.entries:
        if isinstance(entry, Folder):
            yield from _requests(entry)
        else:
            yield entry


def _parse(request: Request, variables: dict[str, str], path: Path) -> Beckn | str:
    """The request as a Beckn 1.1.0 request to import, or why it is skipped. A ConfigError for Beckn 2.0."""
    beckn_url = request.endpoint in ACTIONS
    if request.method != "POST" or request.raw is None or not request.raw.strip():
        return (f"skipped: a Beckn request needs a POST with a raw JSON body ({request.method} {request.url})"
                if beckn_url else f"skipped: not a Beckn request ({request.method} {request.url})")
    notes = []
    text, commented = without_comments(request.raw)
    if commented:
        notes.append("its body has comments (// or /* */), which JSON does not allow; Postman strips them before "
                     "sending, and so does the importer")
    try:
        body = orjson.loads(_VARIABLE.sub(lambda m: _value(m.group(1), variables), text))
    except orjson.JSONDecodeError as exc:
        if not beckn_url and request.endpoint not in BECKN_2_ACTIONS:
            return f"skipped: not a Beckn request ({request.method} {request.url}; the body is not JSON)"
        return f"skipped: its body is not JSON even without comments ({exc})"
    context = body.get("context") if isinstance(body, dict) else None
    action = context.get("action") if isinstance(context, dict) else None
    action = action if isinstance(action, str) else None  # a list or object there names no action
    version = str(context.get("version", "")) if isinstance(context, dict) else ""
    if request.endpoint in BECKN_2_ACTIONS or action in BECKN_2_ACTIONS or version.startswith("2."):
        raise ConfigError(f"{path}: {REFUSED_2_0} (request {request.where!r}: POST /{request.endpoint}, "
                          f"context.action {action!r}, context.version {version!r})")
    send = request.endpoint if beckn_url else action if action in ACTIONS else None
    if send is None or not isinstance(context, dict):
        return f"skipped: not a Beckn request ({request.method} {request.url}; no context.action it names)"
    if is_callback(send):
        return (f"skipped: {send} is a callback, what a BPP sends; the imported scenarios play the BAP and send "
                "requests")
    if action != send:
        notes.append(f"context.action is {action!r} but the request goes to /{send}: the step sends {send} (the "
                     "URL is what Postman, and a protocol-server client, act on), with context.action set to match")
    if version != "1.1.0":
        notes.append(f"context.version is {version!r}, not 1.1.0: imported as written")
    assert send in REQUEST_ACTIONS
    return Beckn(request, Recorded(send, request.name, body, request.position), notes)


def _value(name: str, variables: dict[str, str]) -> str:
    """What a Postman variable becomes in a body: the harness's template for what it owns, the value given in
    the collection or the environment for data, and else a template of a scenario variable of that name."""
    name = name.strip()
    if name.lower() in OWNED_VARIABLES:
        return OWNED_VARIABLES[name.lower()]
    if name in DYNAMIC:
        return DYNAMIC[name]
    if name in variables:
        return variables[name]
    if name.startswith("$"):
        return f"{{{{{name}}}}}"
    return f"{{{{ {re.sub(r'[^A-Za-z0-9_]', '_', name).lstrip('0123456789') or 'unnamed'} }}}}"


def without_comments(text: str) -> tuple[str, bool]:
    """`text` without // and /* */ comments outside strings (Postman allows them in raw JSON bodies, and strips
    them before sending), and whether there were any."""
    out: list[str] = []
    i, n, found = 0, len(text), False
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            found = True
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            found = True
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out), found


Group = tuple[tuple[str, ...], list[Beckn]]
"""A scenario to be: its name's path (folder path, and a search's name when it stands alone), its requests."""


def _groups(folder: Folder, parsed: dict[int, Beckn]) -> list[Group]:
    """The scenarios of a folder and of its sub-folders, in order: see the module's docstring."""
    def beckn(f: Folder) -> list[Beckn]:
        return [parsed[e.position] for e in f.entries if isinstance(e, Request) and e.position in parsed]

    def discovery(f: Folder) -> bool:
        mine = beckn(f)
        return bool(mine) and all(b.recorded.send == "search" for b in mine) and not any(
            _groups(e, parsed) for e in f.entries if isinstance(e, Folder))

    own: list[Beckn] = []
    others: list[Group] = []
    continues = any(b.recorded.send != "search" for b in beckn(folder))
    joined = False
    for entry in folder.entries:
        if isinstance(entry, Request):
            if entry.position in parsed:
                own.append(parsed[entry.position])
        elif continues and not joined and discovery(entry):
            first, *rest = beckn(entry)
            own.append(first)
            joined = True
            others += [((*entry.path, s.request.name), [s]) for s in rest]
        else:
            others += _groups(entry, parsed)
    if len(own) > 1 and not continues:  # searches alone are alternatives, not a flow: each a scenario of its own
        return [((*folder.path, s.request.name), [s]) for s in own] + others
    return ([(folder.path, own)] if own else []) + others


def _write(out: Path, stem: str, names: tuple[str, ...], members: list[Beckn], title: str, source: Path,
           engine: Engine) -> Path:
    """The scenario file `out/<stem>.yaml` and its bodies in `out/<stem>/`; what the importer finds on the way
    is added to each request's notes."""
    linked, variables = recorded.link(_one_context(members))
    bodies = out / stem
    bodies.mkdir(parents=True, exist_ok=True)
    fixtures = [_fixture(step) for step in linked]
    known = {*scenario.RUNNER_VARIABLES, *scenario.BUILTINS, *variables, "bpp_id", "bpp_uri", "order_id"}
    unknown: dict[str, str] = {}
    files = []
    for n, (member, step, fixture) in enumerate(zip(members, linked, fixtures), start=1):
        file = bodies / f"{n:02d}-{step.recorded.send}.json"
        file.write_bytes(orjson.dumps(fixture, option=orjson.OPT_INDENT_2) + b"\n")
        files.append(f"{stem}/{file.name}")
        text = file.read_text(encoding="utf-8")
        for name in sorted({m.group(1) for m in _TEMPLATE.finditer(text)} - known - set(unknown)):
            unknown[name] = ""
            member.notes.append(f"{{{{{name}}}}} has no value in the collection or the environment: a scenario "
                                f"variable, empty unless given (--var {name}=VALUE)")
        for left in sorted(set(_DYNAMIC_LEFT.findall(text))):
            member.notes.append(f"Postman's dynamic variable {left} has no counterpart in the harness: sent as written")
        if step.recorded.send != "search" and "context.bpp_id" in step.uses and \
                "bpp_id" not in member.recorded.body.get("context", {}):
            member.notes.append("context has no bpp_id and bpp_uri, which core 1.1.0 requires on every request but "
                                "search (CTX_REQUIRED): the step adds them")
        if step.recorded.send == "confirm" and not any(s.recorded.send == "init" for s in linked[:n - 1]):
            member.notes.append("a confirm with no init before it in the flow (Beckn core 1.1.0: init, then "
                                "confirm): a BPP may refuse it, as the reference BPP does (30000)")
    _defects(members, fixtures, {**variables, **unknown}, engine)
    domain = members[0].recorded.body.get("context", {}).get("domain")
    use_case = recorded.use_case_of(domain)
    doc: dict[str, Any] = {"name": " / ".join(names) or title,
                           "description": f"{len(members)} request(s) of the Postman collection {title!r}, played as "
                                          f"the collection sends them: {', '.join(m.request.name for m in members)}.",
                           "tags": ["postman", slug(title)], "role": "bap"}
    if use_case is not None:
        doc["use_case"] = use_case
    if variables or unknown:
        doc["variables"] = {**variables, **unknown}
    lines = [f"# Imported by `deg-conformance import postman` from the Postman collection {title!r}",
             f"# ({source.name}): {' / '.join(names) or 'its top level'}. The harness fills action, bap_id, bap_uri,",
             "# transaction_id, message_id and timestamp; bpp_id and bpp_uri come from on_search (with no search first,",
             "# from the collection, as variables), the order id from on_confirm (docs/postman-import.md)."]
    if use_case is None:
        lines.append(f"# use_case: no shipped use case has the domain {domain!r} (fixtures/<use case>/use-case.yaml), "
                     "so the default applies.")
    lines += [_dump(doc).rstrip("\n"), "steps:"]
    for member, step, body in zip(members, linked, files):
        lines += [f"  # {member.request.name}: {note}" for note in member.notes]
        lines += ["  " + line for line in _dump([_step(step, body)]).rstrip("\n").split("\n")]
    path = out / f"{stem}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_context(members: list[Beckn]) -> list[Recorded]:
    """The requests with the domain, version and location of the first: a transaction keeps them (TXN_*_CHANGED),
    and a target echoes each request's context in its callback, so a collection that changes them would have its
    own inconsistency reported against the target. Each change is a note."""
    first = members[0].recorded.body.get("context", {})
    transaction = next((t for m in members if recorded.literal(t := m.recorded.body["context"].get("transaction_id"))),
                       None)
    out = []
    for member in members:
        context = member.recorded.body.get("context", {})
        given = context.get("transaction_id")
        if recorded.literal(given) and given != transaction:
            member.notes.append(f"context.transaction_id is {given!r}, not the flow's {transaction!r}: the harness "
                                "plays the folder as one transaction, under an id of its own")
        changed = {k: first[k] for k in ("domain", "version", "location") if k in first and context.get(k) != first[k]}
        for key in changed:
            was = f"is {_short(context[key])}, not" if key in context else "is absent, not"
            member.notes.append(f"context.{key} {was} the first request's {_short(first[key])}: a transaction keeps "
                                f"one (TXN_{key.upper()}_CHANGED), so the step sends the first request's")
        body = {**member.recorded.body, "context": {**context, **changed}} if changed else member.recorded.body
        out.append(replace(member.recorded, body=body))
    return out


def _fixture(step: Linked) -> dict[str, Any]:
    """The recorded body as a fixture: without the context fields the runner fills, and with the saved values'
    templates where the recorded ones were."""
    body = orjson.loads(orjson.dumps(step.recorded.body))
    context = body.setdefault("context", {})
    for name in recorded.OWNED_CONTEXT:
        context.pop(name, None)
    for dotted, name in step.uses.items():
        scenario.put(body, dotted, f"{{{{ {name} }}}}")
    return dict(body)


def _step(step: Linked, body: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": step.recorded.name, "send": step.recorded.send, "body": body}
    if step.collect_all:
        out["expect"] = {"count": "all", "min": 1}
    if step.offer is not None:
        out["offer"] = {"where": [{"path": p, "equals": v} for p, v in step.offer.items()], "save": dict(step.save)}
    elif step.save:
        out["save"] = dict(step.save)
    return out


def _defects(members: list[Beckn], fixtures: list[dict[str, Any]], variables: dict[str, Any], engine: Engine) -> None:
    """What the rule catalogue finds on the requests as the harness would send them, in one transaction (with
    stand-ins for what the harness fills or saves): the collection's own defects. A run shows findings on the
    harness's requests apart and never counts them against the target, but a target may refuse such a request."""
    values = {**STAND_INS, "transaction_id": str(uuid.uuid4()), **variables}
    sent = []
    for n, (member, fixture) in enumerate(zip(members, fixtures)):
        body = scenario.render(fixture, values)
        body["context"].update({"action": member.recorded.send, "bap_id": values["bap_id"],
                                "bap_uri": values["bap_uri"], "transaction_id": values["transaction_id"],
                                "message_id": str(uuid.uuid4()), "timestamp": format_timestamp()})
        sent.append(Message(body, member.request.where, n, seq=n))
    for finding in engine.check(sent).findings:
        if finding.severity is Severity.ERROR and finding.index is not None:
            members[finding.index].notes.append(
                f"{finding.rule_id}: {finding.path} must {finding.must} (found {_short(plain(finding.found))})")


def _short(value: Any, width: int = 100) -> str:
    """A value from a body, as one line of a note."""
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= width else text[:width - 1] + "…"


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=116, default_flow_style=None)
