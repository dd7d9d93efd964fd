"""The registry: who is on the network, at which URL, with which signing key (Beckn registry API, in memory)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.signing import KeyPair


@dataclass(frozen=True, kw_only=True)
class Subscriber:
    """A registry entry: one subscriber and one of its keys."""

    subscriber_id: str
    url: str
    type: str
    """BAP, BPP or BG."""
    domain: str
    key_id: str
    signing_public_key: str
    city: str | None = None
    country: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The entry as /lookup returns it (registry API Subscription)."""
        location: dict[str, Any] = {}
        if self.city:
            location["city"] = {"code": self.city}
        if self.country:
            location["country"] = {"code": self.country}
        return {"subscriber_id": self.subscriber_id, "url": self.url, "type": self.type, "domain": self.domain,
                "location": location, "key_id": self.key_id, "signing_public_key": self.signing_public_key,
                "status": "SUBSCRIBED"}

    @classmethod
    def for_key(cls, key: KeyPair, *, url: str, type: str, domain: str, city: str | None = None,
                country: str | None = None) -> "Subscriber":
        return cls(subscriber_id=key.subscriber_id, url=url, type=type, domain=domain, key_id=key.unique_key_id,
                   signing_public_key=key.public_key, city=city, country=country)


class Registry:
    """In-memory subscriber list with the registry API's /lookup and /subscribe."""

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self.subscribers: list[Subscriber] = list(subscribers or [])

    def lookup(self, query: dict[str, Any]) -> list[Subscriber]:
        """Entries matching every field the query gives (subscriber_id, key_id/ukId, type, domain, city).
        A ValueError says why a query cannot be read."""
        city = _query_city(query)
        key_id = query["key_id"] if "key_id" in query else query.get("ukId")
        wanted = {"subscriber_id": query.get("subscriber_id"), "key_id": key_id,
                  "type": query.get("type"), "domain": query.get("domain")}
        return [s for s in self.subscribers
                if all(v is None or getattr(s, k) == v for k, v in wanted.items())
                and (city is None or s.city in (None, city))]

    def subscribe(self, entry: Subscriber) -> None:
        """Add an entry, replacing the one with the same subscriber_id and key_id: a key is rotated in place."""
        self.subscribers = [s for s in self.subscribers
                            if (s.subscriber_id, s.key_id) != (entry.subscriber_id, entry.key_id)] + [entry]

    def app(self) -> Starlette:
        async def lookup(request: Request) -> JSONResponse:
            try:
                query = orjson.loads(await request.body())
                if not isinstance(query, dict):
                    raise ValueError("the body must be a JSON object")
                found = self.lookup(query)
            except orjson.JSONDecodeError:
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse([s.as_record() for s in found])

        async def subscribe(request: Request) -> JSONResponse:
            try:
                entry = orjson.loads(await request.body())
                fields = {name: entry[name] for name in
                          ("subscriber_id", "url", "type", "domain", "key_id", "signing_public_key")}
                strangers = sorted(name for name, value in fields.items() if not isinstance(value, str) or not value)
                if strangers:
                    raise ValueError(f"{', '.join(strangers)} must be non-empty strings")
                self.subscribe(Subscriber(**fields, city=_query_city(entry)))
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"not a subscription: {exc}"}, status_code=400)
            return JSONResponse({"status": "UNDER_SUBSCRIPTION"})

        return Starlette(routes=[Route("/lookup", lookup, methods=["POST"]),
                                 Route("/subscribe", subscribe, methods=["POST"])])


def _query_city(query: dict[str, Any]) -> str | None:
    """The city code of a lookup or subscription (`location.city.code`, or `city` in a lookup), if any."""
    location = query.get("location")
    if location is None:
        city = query.get("city")
    elif isinstance(location, dict) and isinstance(location.get("city"), (dict, type(None))):
        city = (location.get("city") or {}).get("code")
    else:
        raise ValueError("location must be an object and location.city an object {code}")
    if city is not None and not isinstance(city, str):
        raise ValueError("the city code must be a string")
    return city


class RegistryClient:
    """Looks subscribers up over HTTP, caching the keys found (every signed message needs one). A key not
    found is not remembered, so a subscriber that registers later is accepted; `refresh` re-reads a rotated key."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self._keys: dict[tuple[str, str, str | None], str] = {}

    async def public_key(self, subscriber_id: str, key_id: str, *, type: str | None = None,
                         refresh: bool = False) -> str | None:
        """The signing key registered for (subscriber_id, key_id), of a subscriber of `type` if given."""
        cache_key = (subscriber_id, key_id, type)
        if refresh or cache_key not in self._keys:
            found = await self.find(subscriber_id=subscriber_id, key_id=key_id, type=type)
            key = found[0].get("signing_public_key") if found and isinstance(found[0], dict) else None
            if not isinstance(key, str):
                self._keys.pop(cache_key, None)
                return None
            self._keys[cache_key] = key
        return self._keys[cache_key]

    async def find(self, **query: Any) -> list[dict[str, Any]]:
        """Entries matching every given field; a field given as None is left out, an empty string is not."""
        response = await self.client.post(f"{self.url}/lookup", json={k: v for k, v in query.items()
                                                                       if v is not None})
        response.raise_for_status()
        records = response.json()
        return records if isinstance(records, list) else []
