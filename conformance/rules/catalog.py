"""Catalog rules: an on_search catalog is internally consistent, so a BAP can order from it."""
from __future__ import annotations

from collections.abc import Hashable
from typing import Iterator

from conformance._types import JSONObject, PathPart
from conformance.findings import Violation
from conformance.messages import Message, dig, objects
from conformance.rules.registry import CheckContext, rule

REFERENCES = (("category_ids", "categories"), ("fulfillment_ids", "fulfillments"), ("location_ids", "locations"))
SCOPED = ("items", "categories", "fulfillments", "locations")


def _providers(msg: Message) -> list[tuple[int, JSONObject]]:
    return objects(dig(msg.message, "catalog", "providers"))


@rule("CAT_REF_UNRESOLVED", group="catalog", actions=("on_search",),
      title="An item's category_ids, fulfillment_ids and location_ids resolve inside its provider",
      clause="Beckn core 1.1.0, Item.category_ids / fulfillment_ids / location_ids refer to the provider's "
             "categories / fulfillments / locations",
      must="name an object its provider defines")
def ref_unresolved(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    for p, provider in _providers(msg):
        # An id or reference that is a list or object (SCH_TYPE reports it) resolves nothing, and cannot be hashed.
        defined = {member: {o.get("id") for _, o in objects(provider.get(member)) if isinstance(o.get("id"), Hashable)}
                   for _, member in REFERENCES}
        for i, item in objects(provider.get("items")):
            for field, member in REFERENCES:
                refs = item.get(field)
                for j, ref in enumerate(refs if isinstance(refs, list) else []):
                    if not isinstance(ref, Hashable) or ref not in defined[member]:
                        path = ("message", "catalog", "providers", p, "items", i, field, j)
                        yield Violation(path, sorted(str(x) for x in defined[member] if x is not None), ref)


@rule("CAT_DUPLICATE_ID", group="catalog", actions=("on_search",),
      title="Ids are unique: providers in the catalog; items, categories, fulfillments, locations in a provider",
      clause="Beckn core 1.1.0, Catalog and Provider: ids identify objects for later reference",
      must="be unique in its list")
def duplicate_id(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    providers = _providers(msg)
    yield from _duplicates(("message", "catalog", "providers"), providers)
    for p, provider in providers:
        for member in SCOPED:
            yield from _duplicates(("message", "catalog", "providers", p, member), objects(provider.get(member)))


def _duplicates(base: tuple[PathPart, ...], entries: list[tuple[int, JSONObject]]) -> Iterator[Violation]:
    seen: dict[object, int] = {}
    for i, obj in entries:
        key = obj.get("id")
        if not isinstance(key, str):
            continue
        if key in seen:
            yield Violation(base + (i, "id"), f"an id not already used at index {seen[key]}", key)
        else:
            seen[key] = i
