"""Offers: what a BAP can order from a Beckn 1.1.0 catalog, one flat view per (provider, item, fulfillment).

A scenario must work against any conformant BPP, whatever its ids and however it lays out its catalog (one
provider or several, categories and fulfillments referenced by id). So a scenario does not name ids or array
positions: it describes the offer it wants by what the use case means (an item in a MANUAL_FLEX category, a
fulfillment whose acceptance_type is AUTO_OPTIN), and the runner finds it in whatever the target published.
This module only flattens catalogs into views those descriptions are evaluated on; it knows no use case.
"""
from __future__ import annotations

from typing import Any

from conformance.messages import dig, objects


def views(on_search: Any) -> list[dict[str, Any]]:
    """Every offer of one on_search body, in catalog order, as

        {"context": <the on_search context>, "provider": {...}, "item": {...},
         "categories": [<the item's categories, resolved>], "fulfillment": {...} | {},
         "fulfillments": [<the item's fulfillments, resolved>], "locations": [<the item's locations, resolved>]}

    An item that lists no fulfillment_ids may be fulfilled in any of its provider's fulfillments, so it gives
    one view per provider fulfillment (one with an empty fulfillment when the provider has none). References
    that resolve to nothing are left out here; CAT_REF_UNRESOLVED reports them."""
    context = dig(on_search, "context")
    out: list[dict[str, Any]] = []
    for _, provider in objects(dig(on_search, "message", "catalog", "providers")):
        by_id = {member: {o["id"]: o for _, o in objects(provider.get(member)) if isinstance(o.get("id"), str)}
                 for member in ("categories", "fulfillments", "locations")}
        for _, item in objects(provider.get("items")):
            resolved = {member: _resolve(item.get(ids), by_id[member]) for member, ids in
                        (("categories", "category_ids"), ("fulfillments", "fulfillment_ids"),
                         ("locations", "location_ids"))}
            listed = isinstance(item.get("fulfillment_ids"), list) and item["fulfillment_ids"]
            choices = resolved["fulfillments"] if listed else list(by_id["fulfillments"].values())
            for fulfillment in choices or [{}]:
                out.append({"context": context if isinstance(context, dict) else {}, "provider": provider,
                            "item": item, "categories": resolved["categories"], "fulfillment": fulfillment,
                            "fulfillments": resolved["fulfillments"] if listed else choices,
                            "locations": resolved["locations"]})
    return out


def _resolve(ids: Any, known: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [known[i] for i in ids if isinstance(i, str) and i in known] if isinstance(ids, list) else []
