"""The registry: who is on the network, at which URL, with which signing key (Beckn registry API, in memory)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
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
        """Entries matching every field the query gives (subscriber_id, key_id/ukId, type, domain, city)."""
        city = (query.get("location") or {}).get("city", {}).get("code") if isinstance(query.get("location"), dict) \
            else query.get("city")
        wanted = {"subscriber_id": query.get("subscriber_id"), "key_id": query.get("key_id") or query.get("ukId"),
                  "type": query.get("type"), "domain": query.get("domain")}
        return [s for s in self.subscribers
                if all(v is None or getattr(s, k) == v for k, v in wanted.items())
                and (city is None or s.city in (None, city))]

    def app(self) -> Starlette:
        async def lookup(request: Request) -> JSONResponse:
            try:
                query = await request.json()
            except ValueError:
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            if not isinstance(query, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            return JSONResponse([s.as_record() for s in self.lookup(query)])

        async def subscribe(request: Request) -> JSONResponse:
            try:
                entry = await request.json()
                self.subscribers.append(Subscriber(
                    subscriber_id=entry["subscriber_id"], url=entry["url"], type=entry["type"],
                    domain=entry["domain"], key_id=entry["key_id"], signing_public_key=entry["signing_public_key"],
                    city=(entry.get("location") or {}).get("city", {}).get("code")))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": f"not a subscription: {exc}"}, status_code=400)
            return JSONResponse({"status": "UNDER_SUBSCRIPTION"})

        return Starlette(routes=[Route("/lookup", lookup, methods=["POST"]),
                                 Route("/subscribe", subscribe, methods=["POST"])])


class RegistryClient:
    """Looks subscribers up over HTTP, caching keys: every signed message needs one."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self._keys: dict[tuple[str, str], str | None] = {}

    async def public_key(self, subscriber_id: str, key_id: str) -> str | None:
        cache_key = (subscriber_id, key_id)
        if cache_key not in self._keys:
            found = await self.find(subscriber_id=subscriber_id, key_id=key_id)
            self._keys[cache_key] = found[0]["signing_public_key"] if found else None
        return self._keys[cache_key]

    async def find(self, **query: Any) -> list[dict[str, Any]]:
        response = await self.client.post(f"{self.url}/lookup", json={k: v for k, v in query.items() if v})
        response.raise_for_status()
        records = response.json()
        return records if isinstance(records, list) else []
