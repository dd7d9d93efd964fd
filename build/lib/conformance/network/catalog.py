"""A BPP's catalog file: the providers it publishes (one, or several in one catalog as the guide's on_search
does), and the same catalog under other ids (the other-ids variation)."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from conformance.errors import ConfigError
from conformance.messages import objects
from conformance.shipped import FIXTURES

CATALOGS = FIXTURES / "demand-flexibility" / "catalogs"
"""The guide's two programs, a file each: what the reference network and the harness playing BPP serve by default."""
SHAPE = "{catalog_descriptor, provider: {...}} or {catalog_descriptor, providers: [{...}, ...]}"

MEMBERS = ("items", "categories", "fulfillments", "locations", "payments", "offers")
"""A provider's lists whose entries have ids that orders and other entries refer to."""
REFERENCES = frozenset({"item_ids", "category_ids", "fulfillment_ids", "location_ids", "payment_ids",
                        "parent_item_id", "parent_category_id", "category_id"})
"""Fields of a provider or of its entries that hold the ids of other entries."""
OTHER_IDS = uuid.UUID("7f0a6c52-5b43-4c8e-9d1e-2a6f4b8c0d31")
"""The uuid5 namespace of the other-ids variation: fixed, so the same catalog gets the same ids in every run."""


def load_catalog(path: Path) -> dict[str, Any]:
    """A catalog file as `{catalog_descriptor, providers}`, whichever of the two shapes it is written in; a
    ConfigError naming the file when it is neither."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        providers = providers_of(doc)
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not a catalog
        raise ConfigError(f"{path}: not a catalog file ({SHAPE}): {exc}") from None
    return {"catalog_descriptor": doc.get("catalog_descriptor", {}), "providers": providers}


def providers_of(catalog: Any) -> list[dict[str, Any]]:
    """The providers of a catalog in either shape, or a ValueError saying why it has none to serve. Each needs a
    string id, unique in the catalog: an order names its provider by id."""
    if not isinstance(catalog, dict):
        raise ValueError(f"a JSON object is needed, not {type(catalog).__name__}")
    if ("provider" in catalog) == ("providers" in catalog):
        raise ValueError("it needs 'provider' or 'providers' (one of the two)")
    if not isinstance(catalog.get("catalog_descriptor", {}), dict):
        raise ValueError("'catalog_descriptor' must be an object")
    providers = [catalog["provider"]] if "provider" in catalog else catalog["providers"]
    if not isinstance(providers, list) or not providers:
        raise ValueError("'providers' must be a non-empty list")
    seen: set[str] = set()
    for n, provider in enumerate(providers):
        provider_id = provider.get("id") if isinstance(provider, dict) else None
        if not isinstance(provider_id, str) or not provider_id:
            raise ValueError(f"provider {n} needs an 'id' string")
        if provider_id in seen:
            raise ValueError(f"provider id {provider_id!r} appears twice")
        seen.add(provider_id)
    return providers


def with_other_ids(provider: dict[str, Any]) -> dict[str, Any]:
    """A copy of `provider` where its id, its entries' ids and every reference between them are replaced,
    consistently, by uuid5s of the originals: a conformant BPP may publish any ids, so a harness must take them
    from on_search rather than assume the guide's."""
    def other(value: Any) -> Any:
        return str(uuid.uuid5(OTHER_IDS, value)) if isinstance(value, str) else value

    def rewrite(entry: dict[str, Any]) -> None:
        for field in REFERENCES & entry.keys():
            value = entry[field]
            entry[field] = [other(v) for v in value] if isinstance(value, list) else other(value)

    copied = copy.deepcopy(provider)
    copied["id"] = other(copied["id"])
    rewrite(copied)
    for member in MEMBERS:
        for _, entry in objects(copied.get(member)):
            if "id" in entry:
                entry["id"] = other(entry["id"])
            rewrite(entry)
    return copied
