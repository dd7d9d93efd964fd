"""Coverage: what a body of traffic exercised, and what it left untested.

Per action, how many requests and callbacks crossed; which message rules were evaluated at least once on the
target's messages and which never were, with why; which probes ran; and, for a certification, which required steps
of the profile (conformance/profiles.py) are missing. `certify` writes it (coverage.json, summary.json) and prints
it; `validate --coverage` prints it for a capture. It reads messages and the engine's record of the rules it applied
(Engine.evaluated), never the runner: a run's results come in reduced to `Played`.

"Rules" here are the message rules, those `validate` applies too; the live run's own verdicts (RUN_*, PRB_*,
TIM_NO_ACK, TIM_CALLBACK_MISSING, ...) are the scenario and probe verdicts beside them.
"""
from __future__ import annotations

import fnmatch
import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import jsonschema_rs

from conformance.engine import Engine
from conformance.errors import EXIT_FAILED, EXIT_OK, EXIT_SETUP
from conformance.messages import ACTIONS, CALLBACK_ACTIONS, REQUEST_ACTIONS, Message
from conformance.rules import RESPONSE_RULES, Rule, catalogue
from conformance.rules.registry import has_core_errors, has_layer2_errors
from conformance.transaction import domain_key

if TYPE_CHECKING:
    from conformance.profiles import Profile

SCHEMA = Path(__file__).with_name("schemas") / "coverage.schema.json"
NOT_IN_PACK = "not in this use case's pack"
NO_MESSAGE = "no message of that action"
NOT_FOR_ROLE = "not applicable to the role"
SKIPPED = "skipped scenario"
NOT_HELD = "no message it applies to"
GUARDED = frozenset({"CTX_TIMESTAMP_FORMAT", "TXN_CALLBACK_MESSAGE_ID", "TXN_CALLBACK_TRANSACTION_ID",
                     "TXN_ORPHAN_CALLBACK", "TXN_DUPLICATE_CALLBACK", "SCH_CAPTURE_FIELD"})
"""Rules whose `when` says whether there is anything to report, not whether they apply (the timestamp did not parse,
the callback pairs as an orphan): each is evaluated on every message of its actions, as are the schema and Layer-2
rules, whose `when` says that the validation found errors. Any other rule is evaluated where its `when` held."""


@dataclass(frozen=True, kw_only=True)
class Step:
    """A scenario or probe as coverage sees it: its verdict, and why it gave none."""

    name: str
    status: str
    """passed, failed, broken or skipped (Allure's vocabulary, as the runner's results)."""
    why: str | None = None
    setup: bool = False
    """It gave no verdict because of how the run was set up (a requirement the run did not offer, the harness's
    key unknown): what the missing coverage of a required step is then blamed on (exit 4, not 1)."""
    actions: tuple[str, ...] = ()
    """The requests its steps send."""


@dataclass(frozen=True, kw_only=True)
class Played:
    """What a certification played: its scenarios and probes, in run order."""

    scenarios: tuple[Step, ...] = ()
    probes: tuple[Step, ...] = ()
    probes_to_gateway: bool = False
    """The probes went to a gateway (--gateway without --target), which takes search alone."""


@dataclass(frozen=True, kw_only=True)
class Subject:
    """Whose coverage: the use case and domain, and the role the harness played (None: a capture, both sides
    count)."""

    use_case: str | None
    domain: str | None
    role: str | None = None
    profile: Profile | None = None
    played: Played = field(default_factory=Played)


def evaluated(engine: Engine, messages: Sequence[Message]) -> set[tuple[str, str]]:
    """Which rules the engine applies to these messages, as (rule id, action): a check of its own, with the
    engine's compiled schemas and packs, so that nothing else the engine was used for (a probe's broken bodies,
    the reference network's admissions) counts."""
    recorder = Engine(schemas=engine.schemas, layer2=engine.layer2, settings=engine.settings)
    recorder.evaluated = set()
    recorder.check(messages)
    return recorder.evaluated


def measure(messages: Sequence[Message], engine: Engine, seen: set[tuple[str, str]], subject: Subject) -> dict[str, Any]:
    """The coverage document (schemas/coverage.schema.json) of `messages`, given the rules `seen` applied."""
    profile, played = subject.profile, subject.played
    requests, callbacks = _exchanges(messages)
    sent_by_scenarios = {a for s in played.scenarios for a in s.actions}
    wanted = set(profile.actions if profile else ()) | sent_by_scenarios | set(requests) | set(callbacks)
    actions = [{"action": a, "requests": requests[a], "callbacks": callbacks[a],
                "exercised": requests[a] > 0 and callbacks[a] > 0} for a in REQUEST_ACTIONS if a in wanted]
    ours = _our_pack_rules(engine, subject, messages)  # first: it may load a pack, whose rules the catalogue then has
    rules = _rules(engine)
    pack_ids = {spec.id for pack in engine.layer2.packs() for spec in pack.rules}
    recorded: dict[str, set[str]] = {}
    for rule_id, action in seen:
        recorded.setdefault(rule_id, set()).add(action)
    seen_actions = {a for a in ACTIONS if (callbacks[a[3:]] if a.startswith("on_") else requests[a]) > 0}
    done = {r.id for r in rules if _evaluated(r, subject.role, recorded, seen_actions, bool(messages))
            and (r.id not in pack_ids or r.id in ours)}
    never = [{"rule": r.id, "why": _why_never(r, subject, ours, pack_ids, seen_actions)}
             for r in rules if r.id not in done]
    probes = [{"name": p.name, "status": p.status} for p in played.probes]
    missing = _missing(subject, actions)
    return {"use_case": subject.use_case, "role": subject.role, "domain": subject.domain, "actions": actions,
            "rules": {"evaluated": [r.id for r in rules if r.id in done], "never": never},
            "probes": probes,
            "required": {"scenarios": list(profile.required_scenarios) if profile else [],
                         "probes": list(profile.required_probes) if profile else [],
                         "actions": list(profile.actions) if profile else []},
            "missing": missing, "complete": not missing}


def exit_code(run_exit: int, doc: dict[str, Any]) -> int:
    """A certification's exit code: the run's, when it is not 0; else 4 when required coverage is missing because
    of the run's set-up (a gateway or drive it did not offer), 1 when it is missing otherwise (the target did not
    take part in what the profile requires), 0 when it is complete."""
    if run_exit != EXIT_OK:
        return run_exit
    if any(m["setup"] for m in doc["missing"]):
        return EXIT_SETUP
    return EXIT_FAILED if doc["missing"] else EXIT_OK


def check(doc: dict[str, Any]) -> None:
    """Raise if the document breaks its own schema: what certify writes is what the certificate reads."""
    _validator().validate(doc)


@lru_cache(maxsize=1)
def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))


def table(doc: dict[str, Any]) -> str:
    """The coverage as the terminal shows it: the actions, the rules never evaluated grouped by why, the
    probes, and what required coverage is missing."""
    role = f" as {doc['role']}" if doc["role"] else ""
    out = [f"coverage of {doc['use_case'] or 'the capture'}{role} (domain {doc['domain'] or '?'})",
           f"  {'action':10} {'requests':>8} {'callbacks':>9}  exercised"]
    out += [f"  {a['action']:10} {a['requests']:8} {a['callbacks']:9}  {'yes' if a['exercised'] else 'NO'}"
            for a in doc["actions"]]
    rules = doc["rules"]
    out.append(f"  rules: {len(rules['evaluated'])} evaluated at least once, {len(rules['never'])} never")
    by_why: dict[str, list[str]] = {}
    for entry in rules["never"]:
        by_why.setdefault(entry["why"], []).append(entry["rule"])
    out += [f"    never ({why}): {', '.join(ids)}" for why, ids in by_why.items()]
    if doc["probes"]:
        statuses = Counter(p["status"] for p in doc["probes"])
        out.append(f"  probes: {len(doc['probes'])} ran ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})")
    out += [f"  MISSING {m['kind']} {m['name']}: {m['why']}" for m in doc["missing"]]
    if doc["required"]["scenarios"] or doc["required"]["probes"] or doc["required"]["actions"]:
        out.append("  required coverage: " + ("complete" if doc["complete"] else f"{len(doc['missing'])} missing"))
    return "\n".join(out)


def _exchanges(messages: Iterable[Message]) -> tuple[Counter[str], Counter[str]]:
    """Requests and callbacks per request action."""
    requests: Counter[str] = Counter()
    callbacks: Counter[str] = Counter()
    for msg in messages:
        action = msg.action
        if action in CALLBACK_ACTIONS:
            callbacks[action[3:]] += 1
        elif action in REQUEST_ACTIONS:
            requests[action] += 1
    return requests, callbacks


def _rules(engine: Engine) -> list[Rule]:
    """The message rules: the catalogue with every pack the engine knows, less the runner's own verdicts."""
    known = {r.id: r for r in [*catalogue(engine.layer2.packs()), *engine.rules]}
    return [r for r in known.values() if r.check is not None]


def _evaluated(rule: Rule, role: str | None, recorded: dict[str, set[str]], seen_actions: set[str],
               any_record: bool) -> bool:
    """Whether the rule judged at least one of the target's messages."""
    if rule.envelope:
        return any_record  # every record went through the one decoder, with its limits
    side = rule.actions & _target_side(rule, role)
    if rule.id in GUARDED or rule.when in (has_core_errors, has_layer2_errors):
        return bool(side & seen_actions)
    return bool(side & recorded.get(rule.id, set()))


def _target_side(rule: Rule, role: str | None) -> frozenset[str]:
    """The actions of the messages on which a rule judges the target: the target's own messages (callbacks when the
    harness is the BAP, requests when it is the BPP), or for a rule on the reply a message got (RESPONSE_RULES), the
    harness's; every action for a capture."""
    if role is None:
        return ACTIONS
    harness_sends_requests = role == "bap"
    if rule.id in RESPONSE_RULES:
        harness_sends_requests = not harness_sends_requests
    return frozenset(CALLBACK_ACTIONS if harness_sends_requests else REQUEST_ACTIONS)


def _our_pack_rules(engine: Engine, subject: Subject, messages: Sequence[Message]) -> set[str]:
    """The Layer-2 rule ids the relevant packs declare: the use case's, else those of the messages' domains."""
    from conformance import usecases

    keys: set[tuple[Any, Any]] = set()
    if subject.use_case is not None:
        use_case = usecases.named(subject.use_case)
        keys.add((use_case.domain, use_case.version))
    else:
        keys |= {domain_key(m) for m in messages if m.usable}  # hashable whatever the message holds
    packs = [engine.layer2.pack_for(domain, version) for domain, version in keys]
    return {spec.id for pack in packs if pack is not None for spec in pack.rules}


def _why_never(rule: Rule, subject: Subject, ours: set[str], pack_ids: set[str], seen_actions: set[str]) -> str:
    if rule.id in pack_ids and rule.id not in ours:
        return NOT_IN_PACK
    applicable = rule.actions & _target_side(rule, subject.role)
    if not applicable:
        return f"{NOT_FOR_ROLE}: it judges messages the harness sends as {subject.role}"
    if applicable & seen_actions:
        return f"{NOT_HELD}: messages of its actions came, but none held what it judges"
    skipped = [s for s in subject.played.scenarios if s.status in ("skipped", "broken") and
               applicable & {a for r in s.actions for a in (r, f"on_{r}")}]
    if skipped:
        return f"{SKIPPED}: {', '.join(s.name for s in skipped)}"
    shown = ", ".join(sorted(applicable)) if len(applicable) <= 3 else f"any of {len(applicable)} actions"
    return f"{NO_MESSAGE} ({shown})"


def _missing(subject: Subject, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    profile, played = subject.profile, subject.played
    if profile is None:
        return []
    missing = []
    by_name = {s.name: s for s in played.scenarios}
    for name in profile.required_scenarios:
        s = by_name.get(name)
        if s is None:
            missing.append(_entry("scenario", name, "not played (the run stopped before it)", setup=False))
        elif s.status in ("skipped", "broken"):
            missing.append(_entry("scenario", name, s.why or s.status, setup=s.setup))
    for pattern in profile.required_probes:
        ran = [p for p in played.probes if fnmatch.fnmatchcase(p.name, pattern)]
        if not ran:
            why, setup = _probe_not_sent(played)
            missing.append(_entry("probe", pattern, why, setup=setup))
        missing += [_entry("probe", p.name, p.why or p.status, setup=p.setup) for p in ran
                    if p.status in ("skipped", "broken")]
    exercised = {a["action"]: a for a in actions}
    for action in profile.actions:
        seen = exercised.get(action, {"requests": 0, "callbacks": 0, "exercised": False})
        if not seen["exercised"]:
            senders = [s for s in played.scenarios if action in s.actions]
            setup = bool(senders) and all(s.setup for s in senders)
            why = ("no scenario of the profile sends it" if not senders and not seen["requests"]
                   else f"no {action} request crossed" if not seen["requests"] else f"no on_{action} callback crossed")
            missing.append(_entry("action", action, why, setup=setup))
    return missing


def _probe_not_sent(played: Played) -> tuple[str, bool]:
    if played.probes_to_gateway:
        return ("not sent: the probes went to the gateway (--gateway without --target), which takes search alone; "
                "give the BPP as --target"), True
    setup = next((p for p in played.probes if p.name == "setup" and p.status != "passed"), None)
    if setup is not None:
        return f"not sent: the probes' set-up gave no verdict ({setup.why or setup.status})", setup.setup
    return "not sent: no probe of that id is built for this target (its catalog or the use case's pack)", False


def _entry(kind: str, name: str, why: str, *, setup: bool) -> dict[str, Any]:
    return {"kind": kind, "name": name, "why": why, "setup": setup}
