"""Requests recorded elsewhere (a Postman collection, a captured transaction) as the steps of a scenario.

A recorded request holds what was true when it was recorded: the BPP that answered its search, the order its
confirm created. Played again, against another target or on another day, those values must come from the new
run's own callbacks, or the replayed requests would name a BPP and an order that the target never saw. So a
search saves the BPP that publishes what the later order names (an offer, skipped with the reason when the target
publishes no such thing), a confirm saves the order id, and the requests after them take the saved values in
place of the recorded ones. A request with no search before it keeps its recorded BPP, as a scenario variable that
`--var bpp_id=...` can change. What the harness owns in every request (OWNED_CONTEXT) the runner fills in, as for
any scenario.

`deg-conformance import postman` writes the linked steps as scenario files; `deg-conformance replay` plays them
in memory. Both call `link`, so a collection and a capture of the same flow play the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from conformance import usecases
from conformance.messages import dig, objects

OWNED_CONTEXT = ("action", "bap_id", "bap_uri", "transaction_id", "message_id", "timestamp")
"""The context fields the runner fills in every request it sends (docs/scenarios.md): recorded values of these
are never replayed."""
BPP_FIELDS = {"context.bpp_id": "bpp_id", "context.bpp_uri": "bpp_uri"}
"""Where a request names its BPP, and the variable each takes (saved from on_search, as the shipped scenarios do)."""
ORDER_BEARING = ("select", "init", "confirm")
"""Requests whose message.order names the provider and items of an offer."""
ORDER_ID_AT = {"status": ("message.order_id",), "track": ("message.order_id",), "cancel": ("message.order_id",),
               "update": ("message.order.id",), "support": ("message.support.ref_id", "message.ref_id")}
"""Where each request that follows a confirm names the order: core 1.1.0's places, and the guide's
`message.ref_id` for support (docs/guide-positions.md #7), since a recorded body may use either."""
SAVE_BPP = {"bpp_id": "$.context.bpp_id", "bpp_uri": "$.context.bpp_uri"}
SAVE_ORDER = {"order_id": "$.message.order.id"}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as recorded: its action, a name for its step, the body as it was, and where it was."""

    send: str
    name: str
    body: dict[str, Any]
    line: int = 1
    """Its line (JSON Lines), entry (HAR) or position in its source, for findings to point at."""


@dataclass(frozen=True, slots=True)
class Linked:
    """A recorded request as a step: the recorded values it takes from saved ones, and what it saves."""

    recorded: Recorded
    uses: Mapping[str, str] = field(default_factory=dict)
    """Dotted path in the body -> the variable whose value replaces the recorded one there."""
    save: Mapping[str, str] = field(default_factory=dict)
    """Variable -> JSONPath: from the callback, or (with `offer`) from the offer picked."""
    offer: Mapping[str, str] | None = None
    """A search's offer, by `$.provider.id` and `$.item.id` as the later order names them (path -> value); None
    when the step saves from its first callback."""
    collect_all: bool = False
    """A search waits for every on_search (one per BPP behind a gateway), so that none is left unclaimed."""


def link(requests: Sequence[Recorded]) -> tuple[list[Linked], dict[str, Any]]:
    """The steps that play `requests` in order, and the scenario variables they need: the recorded BPP of requests
    that no search comes before."""
    steps: list[Linked] = []
    variables: dict[str, Any] = {}
    bpp_saved = order_saved = False
    for n, request in enumerate(requests):
        later = requests[n + 1:]
        uses: dict[str, str] = {}
        save: dict[str, str] = {}
        offer: dict[str, str] | None = None
        if request.send == "search":
            continued = _until_next_search(later)
            if continued:
                order = next((r for r in continued if r.send in ORDER_BEARING), None)
                offer = _offer(order) if order is not None else None
                save, bpp_saved = dict(SAVE_BPP), True
        for path, name in BPP_FIELDS.items():
            recorded = dig(request.body, *path.split("."))
            if bpp_saved and request.send != "search":
                uses[path] = name
            elif literal(recorded):  # no search before (or a search that names its BPP): as recorded, for --var
                variables.setdefault(name, recorded)
                uses[path] = name
        if request.send == "confirm" and any(r.send in ORDER_ID_AT for r in later):
            save, order_saved = {**save, **SAVE_ORDER}, True
        elif order_saved and request.send in ORDER_ID_AT:
            uses.update(_order_id_paths(request))
        steps.append(Linked(request, uses, save, offer, collect_all=request.send == "search"))
    return steps, variables


def _until_next_search(later: Sequence[Recorded]) -> list[Recorded]:
    """The requests that go on from a search: those after it, up to the next search."""
    out = []
    for request in later:
        if request.send == "search":
            break
        out.append(request)
    return out


def _offer(order: Recorded) -> dict[str, str] | None:
    """The offer the recorded order names: its provider and first item, where they are plain values."""
    where = {"$.provider.id": dig(order.body, "message", "order", "provider", "id")}
    items = objects(dig(order.body, "message", "order", "items"))
    if items:
        where["$.item.id"] = items[0][1].get("id")
    kept = {path: value for path, value in where.items() if literal(value)}
    return kept or None


def _order_id_paths(request: Recorded) -> dict[str, str]:
    """Where `request` names the order, and any other member of its message holding the same value (a recorded
    body may repeat the id under a name of its own, as `orderId`)."""
    found = {path: dig(request.body, *path.split(".")) for path in ORDER_ID_AT[request.send]}
    named = {path: value for path, value in found.items() if literal(value)}
    message = request.body.get("message")
    if named and isinstance(message, dict):
        values = set(named.values())
        named.update({f"message.{k}": v for k, v in message.items() if isinstance(v, str) and v in values})
    return {path: "order_id" for path in named}


def literal(value: Any) -> bool:
    """A recorded value that can stand as it is: a non-empty string with no template in it."""
    return isinstance(value, str) and bool(value) and "{{" not in value


def use_case_of(domain: Any) -> str | None:
    """The shipped use case whose messages carry this `domain`, if any: what a recorded flow's scenario declares
    as its use_case."""
    found = usecases.of_domain(domain)
    return found.name if found is not None else None


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """`text` as a file name: lower case letters and digits, words joined by `-` ("Search By Item" ->
    "search-by-item")."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-") or "unnamed"


def unique(stem: str, taken: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`... whichever `taken` does not hold yet (and now holds): a scenario's id is
    its file's stem, which reports key on."""
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate
