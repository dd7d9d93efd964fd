"""The signed certificate of a conformance run (certificate.json), and its verification.

A run's reports say what the harness found, but anyone can edit them before they reach the network's operator. The
certificate states who was judged, by which harness (with digests of its rules, schemas, packs, scenarios,
fixtures and profile), when, every scenario and probe verdict, the coverage the certification states, and a digest
of every report file; the operator signs it with their Ed25519 key (the key file `--key-file` reads). Whoever holds
the operator's public key, given or looked up in the network's registry, can then tell an intact certificate and
report folder from an edited one, and which file changed.

What is signed: the base64 BLAKE2b-512 digest (`signing.body_digest`, as BECKN-006 digests bodies) of the
certificate without its `signature` member, serialised as JSON with keys sorted and no whitespace (UTF-8). The
file itself is that document with its signature, indented by two spaces, keys sorted: verification also checks the
file's bytes are exactly that, so that no byte of it can change unnoticed (a reformatted certificate fails too).

The badge (certificate.svg) and the one-page summary (certificate.html) are written before the files are digested,
so they are covered too.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import jsonschema_rs
import orjson
import yaml

from conformance import __version__
from conformance.errors import EXIT_FAILED, EXIT_OK, ConfigError, SetupError
from conformance.messages import dig, format_timestamp
from conformance.reporting.badge import badge_svg
from conformance.reporting.certificate_page import page_html
from conformance.signing import ALGORITHM, KeyPair, body_digest, sign_detached, signature_valid

FORMAT = "deg-conformance-certificate/1"
NAME = "certificate.json"
BADGE = "certificate.svg"
PAGE = "certificate.html"
CANONICALIZATION = "json-sorted-keys-no-whitespace-utf8"
LOOKUP_TIMEOUT = 5.0
"""Seconds a registry lookup of the operator's key may take, whole."""
SHIPPED: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "rules": ("rules", ("*.py",)),
    "schemas": ("schemas", ("*.yaml", "*.json")),
    "packs": ("packs", ("*.yaml",)),
    "scenarios": ("data/scenarios", ("*.yaml", "*.json")),
    "fixtures": ("data/fixtures", ("*.yaml", "*.json")),
}
"""The parts of the package a certificate digests: a folder of the package and the files of it that count, the
ones pyproject.toml ships (a checkout holds others, such as .gitkeep, that a wheel does not)."""


@dataclass(frozen=True, kw_only=True)
class Participant:
    """Who a certificate is about."""

    subscriber_id: str | None
    """The participant's subscriber id; None when the run did not establish one."""
    role: str
    """bap or bpp: the participant's role (the harness played the other)."""
    target: str | None
    """The URL played against; None for the reference network."""
    domain: str
    use_case: str

    def as_dict(self) -> dict[str, Any]:
        return {"subscriber_id": self.subscriber_id, "role": self.role, "target": self.target,
                "domain": self.domain, "use_case": self.use_case}


# ---- issuing ---------------------------------------------------------------------------------------------------

def issue(report_dir: Path, *, participant: Participant, key: KeyPair, profile: Path | None = None,
          now: datetime | None = None) -> Path:
    """Sign the report folder of a finished run (its summary.json, and coverage.json when the certification wrote
    one): write the badge and the HTML summary beside it, then `report_dir`/certificate.json. A ConfigError when
    the folder holds no run's summary."""
    summary = _read_json(report_dir / "summary.json", "summary.json")
    if summary is None:
        raise ConfigError(f"{report_dir}: no summary.json: not the report folder of a run")
    coverage = _read_json(report_dir / "coverage.json", "coverage.json")
    body = _body(summary, coverage, participant=participant, key=key, profile=profile, now=now)
    (report_dir / BADGE).write_text(badge_svg(body), encoding="utf-8")
    (report_dir / PAGE).write_text(page_html(body), encoding="utf-8")
    body["files"] = report_digests(report_dir)
    document = {**body, "signature": {"algorithm": ALGORITHM, "digest": "BLAKE2b-512",
                                      "canonicalization": CANONICALIZATION,
                                      "value": sign_detached(signed_message(body), key)}}
    problems = schema_problems(document)
    if problems:  # the harness wrote something its own schema refuses: a bug, never the participant's
        raise AssertionError(f"the certificate breaks its schema: {'; '.join(problems)}")
    path = report_dir / NAME
    temporary = path.with_name(f".{NAME}.{os.getpid()}")
    temporary.write_bytes(written(document))
    temporary.replace(path)
    return path


def participant_of(report_dir: Path, *, role: str, target: str | None, use_case: str, domain: str) -> Participant:
    """The participant a plain run judged, as its transcript shows: the one subscriber id its messages came from
    (bpp_id of the callbacks a BPP sent, bap_id of the requests a BAP sent); None when there were none or
    several (a gateway's BPPs)."""
    sender = "bpp_id" if role == "bpp" else "bap_id"
    seen: set[str] = set()
    try:
        with (report_dir / "transcript.jsonl").open("rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                found = dig(record.get("body"), "context", sender) if record.get("direction") == "in" else None
                if isinstance(found, str):
                    seen.add(found)
    except (OSError, orjson.JSONDecodeError):
        seen = set()
    return Participant(subscriber_id=seen.pop() if len(seen) == 1 else None, role=role, target=target,
                       domain=domain, use_case=use_case)


def _body(summary: dict[str, Any], coverage: Any, *, participant: Participant, key: KeyPair, profile: Path | None,
          now: datetime | None) -> dict[str, Any]:
    """Everything a certificate states but its file digests and signature."""
    started = float(summary["started"])
    fail_on_warnings = dig(summary, "settings", "fail_on") == "warning"
    failing = [f for f in summary.get("findings", []) if f.get("waiver") is None
               and (f.get("severity") == "error" or (fail_on_warnings and f.get("severity") == "warning"))]
    verdict, reason = _verdict(summary, coverage, failing)
    return {
        "format": FORMAT, "verdict": verdict, "verdict_reason": reason, "participant": participant.as_dict(),
        "harness": {"name": "deg-conformance", "version": __version__, "digests": harness_digests(profile)},
        "issuer": {"subscriber_id": key.subscriber_id, "key_id": key.unique_key_id, "public_key": key.public_key},
        "issued_at": format_timestamp(now),
        "run": {"run_id": summary["run_id"], "started": _moment(started),
                "ended": _moment(started + float(summary.get("duration_s", 0))),
                "exit_code": summary["exit_code"], "interrupted": bool(summary.get("interrupted")),
                "setup_errors": [str(e) for e in summary.get("setup_errors", [])],
                "settings": summary.get("settings", {})},
        "results": [_result(s, failing) for s in summary.get("scenarios", [])],
        "failed_rules": _failed_rules(failing),
        "coverage": coverage,
    }


def _verdict(summary: dict[str, Any], coverage: Any, failing: list[dict[str, Any]]) -> tuple[str, str]:
    """pass, fail or no verdict, and why: from the run's exit code (a certification's summary carries its own,
    which counts missing coverage) and, when a coverage table is given, whether it is complete."""
    code = summary["exit_code"]
    missing = isinstance(coverage, dict) and coverage.get("complete") is not True
    rules = len({f["rule_id"] for f in failing})
    why = [f"the participant broke {rules} rule(s)"] if rules else []
    if missing:
        gaps = [f"{m.get('kind', '?')} {m.get('name', '?')}" for m in coverage.get("missing") or []
                if isinstance(m, dict)]
        why.append(f"required coverage is missing ({', '.join(gaps[:5]) or 'see the coverage table'}"
                   f"{', ...' if len(gaps) > 5 else ''})")
    if code not in (EXIT_OK, EXIT_FAILED):
        return "no verdict", (f"the run could not judge the participant (exit code {code}; see the README's table)"
                              + "".join(f"; {w}" for w in why))
    if code == EXIT_FAILED or missing:
        return "fail", "; ".join(why) or "the run failed (exit code 1)"
    if coverage is None:
        return "pass", "every scenario and probe played passed or was skipped with its reason (no coverage stated)"
    return "pass", ("every scenario and probe passed or was skipped with its reason, and the required coverage is "
                    "complete")


def _result(scenario: dict[str, Any], failing: list[dict[str, Any]]) -> dict[str, Any]:
    # A probe has no scenario file: the runner names it probes/<id>.probe (conformance/runner/probe.py).
    kind = "probe" if str(scenario.get("file", "")).endswith(".probe") else "scenario"
    return {"id": scenario["id"], "name": scenario["name"], "kind": kind, "status": scenario["status"],
            "reason": scenario.get("skip_reason") or scenario.get("setup_error") or scenario.get("error"),
            "errors": int(scenario.get("errors", 0)),
            "rules": sorted({f["rule_id"] for f in failing if f.get("scenario") == scenario["id"]})}


def _failed_rules(failing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in failing:
        by_rule[f["rule_id"]].append(f)
    return [{"rule_id": rule, "severity": found[0]["severity"], "title": found[0].get("title"),
             "clause": found[0].get("clause"), "findings": len(found),
             "scenarios": sorted({str(f.get("scenario")) for f in found})} for rule, found in sorted(by_rule.items())]


def _moment(epoch: float) -> str:
    return format_timestamp(datetime.fromtimestamp(epoch, tz=timezone.utc))


def _read_json(path: Path, name: str) -> Any:
    """A report file's JSON; None when the file is absent."""
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: {name} is not JSON ({exc})") from None


# ---- digests ---------------------------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    """Base64 BLAKE2b-512 of a file's bytes, as BECKN-006 digests a body."""
    return body_digest(path.read_bytes())


def report_digests(report_dir: Path) -> dict[str, str]:
    """Every file under the report folder but the certificate, by its relative path (with /), to its digest."""
    return {relative: file_digest(report_dir / relative) for relative in _files(report_dir)
            if relative != NAME}


def _files(root: Path, patterns: tuple[str, ...] = ("*",), *, follow: bool = False) -> list[str]:
    """Relative paths (with /) of the files under `root` matching a pattern, sorted, leaving out byte code and our
    own temporary files. `follow`: through symlinked folders, as the package's data/ links to the shipped
    scenarios and fixtures (a report folder's links are not followed, so a link cycle cannot trap the walk)."""
    found = []
    for folder, dirs, names in os.walk(root, followlinks=follow):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(folder, name)
            if any(path.match(p) for p in patterns) and not name.startswith(f".{NAME}.") and path.is_file():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def tree_digest(root: Path, patterns: tuple[str, ...]) -> str:
    """One digest of the files under `root` matching `patterns`: each `path` NUL digest newline, in path order,
    with CRLF read as LF, so that a checkout on Windows and a wheel anywhere give the same digest."""
    listing = b"".join(f"{relative}\0".encode() + body_digest((root / relative).read_bytes().replace(b"\r\n", b"\n"))
                       .encode() + b"\n" for relative in _files(root, patterns, follow=True))
    return body_digest(listing)


def harness_digests(profile: Path | None = None) -> dict[str, str | None]:
    """Digests of what the harness judges with (SHIPPED), and of the certification profile."""
    profiled = None if profile is None else body_digest(profile.read_bytes().replace(b"\r\n", b"\n"))
    return {**_shipped_digests(), "profile": profiled}


@lru_cache(maxsize=1)
def _shipped_digests() -> dict[str, str]:
    """Once a process: what the package ships does not change under it."""
    package = Path(str(resources.files("conformance")))
    return {part: tree_digest(package / folder, patterns) for part, (folder, patterns) in SHIPPED.items()}


# ---- the signature and the file's form --------------------------------------------------------------------------

def canonical(document: Mapping[str, Any]) -> bytes:
    """The certificate without its signature, as signed: JSON, keys sorted, no whitespace, UTF-8."""
    return orjson.dumps({k: v for k, v in document.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def signed_message(document: Mapping[str, Any]) -> bytes:
    """What the operator's key signs: the base64 BLAKE2b-512 digest of the canonical form, as ASCII."""
    return body_digest(canonical(document)).encode()


def written(document: Mapping[str, Any]) -> bytes:
    """certificate.json's exact bytes: indented for people to read, keys sorted, one final newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


@lru_cache(maxsize=1)
def _validator() -> jsonschema_rs.Draft202012Validator:
    text = resources.files("conformance").joinpath("schemas/certificate.schema.yaml").read_text(encoding="utf-8")
    return jsonschema_rs.Draft202012Validator(yaml.safe_load(text))


def schema_problems(document: Any) -> list[str]:
    """What in `document` breaks the certificate schema (conformance/schemas/certificate.schema.yaml), each as
    `path: message`; empty when it conforms."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.instance_path)))
    return [f"/{'/'.join(map(str, e.instance_path))}: {e.message}" for e in errors[:5]]


# ---- verifying -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    """What verifying a certificate found: `problems` name each change (empty: valid); `notes` say what it did not
    cover, which is no change (files added to the folder after it was signed)."""

    certificate: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_files: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems


def public_key_argument(value: str) -> str:
    """`--public-key`: a base64 Ed25519 public key, or a file holding one on its first line that is not a
    comment. A ConfigError when it is neither."""
    from conformance.keys import load_key_file

    key = load_key_file(Path(value), flag="--public-key") if Path(value).is_file() else value.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"--public-key {value}: not a base64 Ed25519 public key (32 bytes), nor a file holding one")
    return key


OperatorKey = Callable[[Mapping[str, Any]], str]
"""The operator's base64 public key for a certificate (it may look up the key id the certificate's issuer names):
asked only once the certificate reads as one, so that a damaged certificate needs no registry to be refused."""


def verify(path: Path, *, key: OperatorKey, report_dir: Path | None = None) -> Verification:
    """Check the certificate at `path` against the operator's key, and the report folder (default: the
    certificate's own) against its digests. A ConfigError when the file cannot be read at all; whatever `key`
    raises (a SetupError for a registry that cannot be asked)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return verify_bytes(data, name=str(path), key=key, report_dir=path.parent if report_dir is None else report_dir)


def verify_bytes(data: bytes, *, name: str, key: OperatorKey, report_dir: Path) -> Verification:
    """`verify` of a certificate's bytes, named `name` in what it says."""
    changed = f"{name}: the certificate itself was changed"
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Verification(None, [f"{changed}: it is not JSON any more ({exc})"])
    problems = schema_problems(document)
    if problems:
        return Verification(None, [f"{changed}: it breaks the certificate schema: {'; '.join(problems)}"])
    out = Verification(document, _signature_problems(document, key(document), changed))
    if out.problems:  # the digests it lists are not the operator's: checking files against them would mislead
        return out
    if data != written(document):
        out.problems.append(f"{changed}: its content is as signed, but its bytes are not as they were written "
                            f"(first difference at byte {_first_difference(data, written(document))})")
    folder = report_dir
    expected: dict[str, str] = document["files"]
    for relative, digest in sorted(expected.items()):
        try:
            actual = file_digest(folder / relative)
        except FileNotFoundError:
            out.problems.append(f"{relative}: a digested report file is missing from {folder}")
            continue
        except OSError as exc:
            out.problems.append(f"{relative}: a digested report file cannot be read ({exc.strerror or exc})")
            continue
        if actual != digest:
            out.problems.append(f"{relative}: the report file was changed (its digest is not the certificate's)")
    added = [p for p in _files(folder) if p != NAME and p not in expected] if folder.is_dir() else []
    if added:
        out.notes.append(f"{len(added)} file(s) in {folder} are not covered by the certificate (added after it was "
                         f"signed): {', '.join(added[:5])}{' ...' if len(added) > 5 else ''}")
    return Verification(document, out.problems, out.notes, checked_files=len(expected))


def _signature_problems(document: dict[str, Any], public_key: str, changed: str) -> list[str]:
    """Whether the operator's key signed this content; if not, whether the content was changed or another key
    signed it (told apart with the key the certificate names, which is never trusted for the verdict)."""
    message, value = signed_message(document), document["signature"]["value"]
    if signature_valid(message, value, public_key):
        return []
    issuer = document["issuer"]
    named = f"{issuer['subscriber_id']}|{issuer['key_id']}"
    if issuer["public_key"] != public_key and signature_valid(message, value, issuer["public_key"]):
        return [f"{changed} or issued by someone else: it is signed by the key it names ({named}, "
                f"{issuer['public_key']}), not by the operator's key given ({public_key})"]
    return [f"{changed}: its content does not match its signature (by {named})"]


def _first_difference(a: bytes, b: bytes) -> int:
    return next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def registry_key(registry: str, subscriber_id: str, key_id: str, *, kind: str = "beckn", name: str | None = None,
                 ca_bundle: Path | None = None) -> str:
    """The operator's public key as the network's registry publishes it (the Beckn or DeDi lookup the runner
    uses). A SetupError when the registry cannot be asked within LOOKUP_TIMEOUT or holds no such key: nothing
    is then known about the certificate."""
    import httpx

    from conformance.network.registry import registry_client
    from conformance.transport import client_options

    if not registry.startswith(("http://", "https://")):
        raise ConfigError(f"--registry {registry!r} is not an http(s) URL")

    async def lookup() -> str | None:
        async with httpx.AsyncClient(timeout=LOOKUP_TIMEOUT, **client_options(ca_bundle)) as http:
            client = registry_client(registry, http, kind=kind, name=name)
            return await asyncio.wait_for(client.public_key(subscriber_id, key_id), LOOKUP_TIMEOUT)

    try:
        found = asyncio.run(lookup())
    except (httpx.HTTPError, ValueError, asyncio.TimeoutError) as exc:
        raise SetupError(f"cannot ask the registry at {registry} for {subscriber_id}|{key_id} "
                         f"({type(exc).__name__}: {str(exc) or 'no detail'}): check --registry and that it is up, "
                         "or verify with --public-key") from None
    if found is None:
        raise SetupError(f"the registry at {registry} has no key {key_id!r} for {subscriber_id!r}: check "
                         "--subscriber-id and --key-id (default: the key id the certificate names)")
    return found
