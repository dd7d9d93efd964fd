"""Captured traffic sent again: `deg-conformance replay CAPTURE... --target URL`.

How a participant reproduces a field incident against a fixed build: the requests a BAP sent (from a HAR, JSON
Lines plain or wrapped, a folder of JSON files, as `validate` reads them) are sent again to the target, signed
with the harness's key, and the target's new callbacks are judged with the whole catalogue. Nothing here sends:
each original transaction becomes an in-memory scenario (its requests in capture order, each step's body the
captured one) that the runner plays exactly as `run` plays a file, with the same flags, reports and exit codes.
The ids the harness owns are fresh; bpp_id and bpp_uri stay as captured unless a search in the transaction finds
new ones, and the order id is the new on_confirm's (conformance/recorded.py). The capture's callbacks are left
out: what the target answers now is what is judged.

As BPP (`--role bpp`, the target a BAP) the same requests are what the BAP is asked to send again through its
client endpoint, and the harness's BPPs serve the catalogs the captured on_searches published, so that the
captured orders name offers that exist: what is judged is what the BAP sends now.

A Postman collection holds no transactions of its own (its ids are templates), so it is replayed as
`import postman` makes it into scenarios, a folder's flow each, written into `imported` (beside the run's reports).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from conformance import postman, transcript, usecases
from conformance.errors import ConfigError
from conformance.messages import Message, dig, is_callback, objects
from conformance.recorded import Linked, Recorded, link, slug, unique, use_case_of
from conformance.scenario import Assertion, Expect, Offer, Scenario, Step, load
from conformance.transaction import group

Note = Callable[[str], None]


def scenarios(paths: Sequence[Path], *, imported: Path, env: Path | None = None, role: str = "bap",
              serve: Path | None = None, note: Note = lambda text: None) -> list[Scenario]:
    """The scenarios that replay every capture and collection in `paths`; `note` is told what is left out and
    why. As BPP, `serve` is where the captured BPPs' catalogs are written (`catalogs`), from the same reading of the
    captures. A ConfigError when nothing can be replayed."""
    collections = [p for p in paths if postman.is_collection(p)]
    captures = [p for p in paths if p not in collections]
    if env is not None and not collections:
        raise ConfigError("--env fills a Postman collection's variables; no capture given is a collection")
    if role == "bpp" and collections:
        raise ConfigError(f"{collections[0]}: a Postman collection holds a BAP's requests and no BPP's callbacks to "
                          "serve: replay it with --role bap")
    out: list[Scenario] = []
    taken: set[str] = set()
    for path in collections:
        done = postman.import_collection(path, imported / unique(slug(path.stem), taken), env=env)
        for text in done.notes:
            note(str(text))
        out += [load(p) for p in done.scenarios]
    if captures:
        messages = transcript.load(captures)
        out += from_capture(messages, captures, note, role=role)
        if serve is not None:
            catalogs(messages, captures, serve)
    return out


def catalogs(messages: Sequence[Message], paths: Sequence[Path], out: Path) -> list[Path]:
    """As BPP, the harness serves what the captured BPPs published: each BPP's providers, as its on_searches in the
    capture list them (a later one's provider replaces an earlier one's), written to `out` as a catalog file per
    BPP. A ConfigError when the capture holds no catalog."""
    published: dict[str, dict[str, Any]] = {}
    descriptors: dict[str, Any] = {}
    for msg in messages:
        catalog = dig(msg.message, "catalog") if msg.usable and msg.action == "on_search" else None
        if not isinstance(catalog, dict):
            continue
        bpp = str(msg.context.get("bpp_id") or "bpp")
        descriptors.setdefault(bpp, catalog.get("descriptor", {}))
        for _, provider in objects(catalog.get("providers")):
            if isinstance(provider.get("id"), str) and provider["id"]:
                published.setdefault(bpp, {})[provider["id"]] = provider
    if not published:
        raise ConfigError(f"no on_search with a catalog in {', '.join(map(str, paths))}: replay --role bpp serves the "
                          "captured BPPs' catalogs; give the catalogs to serve with --catalog FILE")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    taken: set[str] = set()
    for bpp, providers in published.items():
        path = out / f"{unique(slug(bpp.split('.')[0]), taken)}.json"
        path.write_text(json.dumps({"catalog_descriptor": descriptors[bpp] if isinstance(descriptors[bpp], dict)
                                    else {}, "providers": list(providers.values())}, indent=2), encoding="utf-8")
        written.append(path)
    return written


def from_capture(messages: Sequence[Message], paths: Sequence[Path], note: Note, *, role: str = "bap") -> list[Scenario]:
    """A scenario per original transaction of the captured requests, in the order the capture first shows each.
    As BPP (`role` bpp) the harness asks the BAP to send each request again and answers as the captured BPPs'
    catalogs allow; a transaction with no search is left out, since the BAP learns the harness's BPPs only from
    a search."""
    requests = []
    callbacks = 0
    for msg in messages:
        if not msg.usable:
            why = (msg.decode_error or (msg.capture_error.must if msg.capture_error is not None else None)
                   or "no context.action that names a Beckn action")
            note(f"{_where(msg)}: left out: not a Beckn message ({why})")
        elif is_callback(msg.action or ""):
            callbacks += 1
        else:
            requests.append(msg)
    if callbacks and role == "bap":
        note(f"{callbacks} callback(s) left out: the replay judges what the target answers now")
    if not requests:
        raise ConfigError(f"no Beckn request to replay in {', '.join(map(str, paths))}")
    out = []
    taken: set[str] = set()
    for txn in group(requests):
        first = txn.messages[0]
        name = txn.id if txn.id is not None else f"no transaction_id ({_where(first)})"
        if role == "bpp" and first.action != "search":
            note(f"transaction {name}: left out: it starts with {first.action}, not a search, so the BAP would send "
                 "it to the captured BPP instead of the harness's")
            continue
        linked, variables = link([Recorded(m.action or "", f"{m.action}, {_where(m)}", m.body, m.index or 1)
                                  for m in txn.messages])
        capture = next((p for p in paths if Path(first.source) == p or p in Path(first.source).parents), paths[0])
        out.append(Scenario(
            name=f"Replay of transaction {name}", path=capture / unique(slug(name), taken),
            steps=tuple(_step(step, Path(m.source), role) for step, m in zip(linked, txn.messages)),
            description=f"The {len(linked)} request(s) of transaction {name} in {capture}, sent again with fresh "
                        "ids and the harness's signature; the target's answers are judged afresh.",
            tags=("replay",), use_case=use_case_of(first.context.get("domain")) or usecases.DEFAULT,
            variables=variables, role=role))
    if not out:
        raise ConfigError(f"no transaction to replay as BPP in {', '.join(map(str, paths))}: none starts with a search")
    return out


def _step(linked: Linked, source: Path, role: str) -> Step:
    """A step that sends the captured body as it is (as BPP: asks the BAP to send it), but for what the runner owns
    and what `linked` says comes from the new run's callbacks (set by dotted path). As BPP a step's saves read the
    exchange, `{request, callback}`, so a value from the callback is under `$.callback`."""
    request = linked.recorded
    save = dict(linked.save)
    if role == "bpp":
        save = {name: path.replace("$.", "$.callback.", 1) for name, path in save.items()}
    offer = None if linked.offer is None else Offer(
        where=tuple(Assertion(path, "equals", value) for path, value in linked.offer.items()), save=dict(linked.save))
    if offer is not None:
        save = {}
    return Step(name=request.name, send=request.send, body=source, line=request.line,
                set={path: f"{{{{ {name} }}}}" for path, name in linked.uses.items()},
                expect=Expect(count=None) if linked.collect_all else Expect(), offer=offer,
                save=save, payload=request.body)


def _where(msg: Message) -> str:
    """Where a record is in its capture: `file:line` (JSON Lines), `file:entry` (HAR), or the file."""
    name = Path(msg.source).name
    return name if msg.index is None else f"{name}:{msg.index}"
