"""The registry: who is on the network, at which URL, with which signing key.

Two lookup APIs exist on Beckn 1.1.0 networks, and the harness speaks both. The Beckn registry API takes a JSON
query (`POST /lookup`) and can list subscribers by type, domain and city. A DeDi registry, which the DEG sandbox
runs, answers one record by path (`GET /lookup/{subscriber_id}/{registry_name}/{key_id}`, the shape beckn-onix's
dediregistry plugin reads) and cannot list. The in-memory reference `Registry` answers in both shapes at once;
`registry_client` makes a client of either kind behind one interface, `RegistryClient`, which the reference
network's own participants also use to read its `Registry` in process (`InProcessRegistryClient`).
"""
from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.errors import ConfigError
from conformance.messages import dig, format_timestamp
from conformance.signing import KeyPair

REGISTRY_TYPES = ("beckn", "dedi")
"""The lookup APIs a registry client speaks: the Beckn registry API, or DeDi's."""
WILDCARD = "subscribers.beckn.one"
"""The DeDi registry name beckn-onix uses to mean "search every registry"."""


def check_registry_settings(kind: str, name: str | None) -> None:
    """Refuse a registry type or name no lookup could work with, before anything starts: a name is one segment
    of the DeDi lookup path, so it can be neither empty nor hold a slash."""
    if kind not in REGISTRY_TYPES:
        raise ConfigError(f"registry type {kind!r} is not one of {', '.join(REGISTRY_TYPES)}: write beckn (POST "
                          f"/lookup) or dedi (GET /lookup/{{subscriber_id}}/{{registry_name}}/{{key_id}})")
    if name is not None and (not name.strip() or "/" in name):
        raise ConfigError(f"registry name {name!r} is not usable in a DeDi lookup path: give a non-empty name "
                          f"without '/', e.g. {WILDCARD}")


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
    created_at: str = field(default_factory=format_timestamp)
    updated_at: str = field(default_factory=format_timestamp)
    """When the entry was first registered and last changed (a rotated key), as a DeDi record tells."""

    def location(self) -> dict[str, Any]:
        location: dict[str, Any] = {}
        if self.city:
            location["city"] = {"code": self.city}
        if self.country:
            location["country"] = {"code": self.country}
        return location

    def as_record(self) -> dict[str, Any]:
        """The entry as /lookup returns it (registry API Subscription)."""
        return {"subscriber_id": self.subscriber_id, "url": self.url, "type": self.type, "domain": self.domain,
                "location": self.location(), "key_id": self.key_id, "signing_public_key": self.signing_public_key,
                "status": "SUBSCRIBED"}

    def as_subscription(self, *, valid_from: str, valid_until: str) -> dict[str, Any]:
        """The entry as a `POST /subscribe` body asks for it (what the reference registry's /subscribe reads)."""
        location = self.location()
        return {"subscriber_id": self.subscriber_id, "url": self.url, "type": self.type, "domain": self.domain,
                "key_id": self.key_id, "signing_public_key": self.signing_public_key, "valid_from": valid_from,
                "valid_until": valid_until, **({"location": location} if location else {})}

    def dedi_details(self) -> dict[str, Any]:
        """The `details` of the entry's DeDi record: what a DeDi registry publishes for one key. There is no
        `encr_public_key`: the reference network encrypts nothing."""
        return {"subscriber_id": self.subscriber_id, "url": self.url, "type": self.type, "domain": self.domain,
                "signing_public_key": self.signing_public_key}

    def as_dedi_record(self) -> dict[str, Any]:
        """The entry as a DeDi lookup answers it (`GET /lookup/{subscriber_id}/{registry_name}/{key_id}`)."""
        return {"data": {"details": self.dedi_details(), "network_memberships": [self.domain],
                         "created_at": self.created_at, "updated_at": self.updated_at}}

    @classmethod
    def for_key(cls, key: KeyPair, *, url: str, type: str, domain: str, city: str | None = None,
                country: str | None = None) -> "Subscriber":
        return cls(subscriber_id=key.subscriber_id, url=url, type=type, domain=domain, key_id=key.unique_key_id,
                   signing_public_key=key.public_key, city=city, country=country)


class Registry:
    """In-memory subscriber list with the registry API's /lookup and /subscribe, and DeDi's lookup by path under
    its `name` (or the wildcard), so that participants of either kind can use one reference registry."""

    def __init__(self, subscribers: list[Subscriber] | None = None, *, name: str = "deg-sandbox") -> None:
        self.subscribers: list[Subscriber] = list(subscribers or [])
        self.name = name

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
        """Add an entry, replacing the one with the same subscriber_id and key_id: a key is rotated in place, and
        the entry keeps the date it was first registered."""
        same = [s for s in self.subscribers if (s.subscriber_id, s.key_id) == (entry.subscriber_id, entry.key_id)]
        if same:
            entry = dataclasses.replace(entry, created_at=same[0].created_at)
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

        async def dedi_lookup(request: Request) -> JSONResponse:
            subscriber_id, name, key_id = (request.path_params[p] for p in ("subscriber_id", "name", "key_id"))
            if name not in (self.name, WILDCARD):
                return JSONResponse({"error": f"no registry named {name!r} here; this one answers to {self.name!r} "
                                              f"and {WILDCARD!r} (every registry)"}, status_code=404)
            found = self.lookup({"subscriber_id": subscriber_id, "key_id": key_id})
            if not found:
                return JSONResponse({"error": f"no record for subscriber {subscriber_id!r} with key {key_id!r}"},
                                    status_code=404)
            return JSONResponse(found[0].as_dedi_record())

        return Starlette(routes=[Route("/lookup", lookup, methods=["POST"]),
                                 Route("/lookup/{subscriber_id}/{name}/{key_id:path}", dedi_lookup, methods=["GET"]),
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


class ListingUnsupported(NotImplementedError):
    """The registry cannot list subscribers (a DeDi registry answers one record by subscriber and key id)."""


_Wanted = tuple[str, str, str | None]
"""What a lookup asks for: subscriber_id, key_id, and the subscriber type required (None: any)."""


class RegistryClient(ABC):
    """Looks keys up in a registry, caching the entries found (every signed message needs one). Make one that asks
    over HTTP with `registry_client`; the reference network's own participants read its `Registry` in process
    (`InProcessRegistryClient`).

    The contract, the same for every kind of registry:

    - `public_key` returns the key, or None when the registry answered that it has no such key (with `type`:
      no such key of a subscriber of that type, e.g. "BG" for gateways).
    - It raises `httpx.HTTPError` when the registry could not be asked or answered with an error, and
      `ValueError` when it answered with something that is not a lookup answer. Callers report that as "the
      signature cannot be checked", never as "key unknown": the key may well exist.
    - A key not found is not remembered, so a subscriber that registers later is accepted; `refresh` re-reads a
      cached key, so a rotated one is found.
    - Lookups of one key made while one is under way share it (refreshes share a refresh): a burst of messages
      signed with one key costs one lookup, not one per message.
    - Only a registry that `can_list` answers `find`; the others raise ListingUnsupported.
    """

    can_list = False
    """Whether `find` can list subscribers by type, domain and city."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._entries: dict[_Wanted, dict[str, Any]] = {}
        self._reading: dict[tuple[_Wanted, bool], asyncio.Task[dict[str, Any] | None]] = {}
        """The lookup under way for (key, refresh), which later askers join."""

    async def public_key(self, subscriber_id: str, key_id: str, *, type: str | None = None,
                         refresh: bool = False) -> str | None:
        """The signing key registered for (subscriber_id, key_id), of a subscriber of `type` if given."""
        found = await self.known_entry(subscriber_id, key_id, type=type, refresh=refresh)
        return None if found is None else found["signing_public_key"]

    async def known_entry(self, subscriber_id: str, key_id: str, *, type: str | None = None,
                          refresh: bool = False) -> dict[str, Any] | None:
        """`entry`, cached as `public_key` caches keys (it is what `public_key` reads): an entry without a signing
        key is a ValueError, not an answer."""
        wanted = (subscriber_id, key_id, type)
        if not refresh and wanted in self._entries:
            return self._entries[wanted]
        flight = (wanted, refresh)
        reading = self._reading.get(flight)
        if reading is None:
            reading = self._reading[flight] = asyncio.get_running_loop().create_task(self._read(wanted))
            reading.add_done_callback(lambda done: self._landed(flight, done))
        # Shielded: one asker giving up (its request cancelled) does not cancel the lookup the others wait for.
        return await asyncio.shield(reading)

    async def _read(self, wanted: _Wanted) -> dict[str, Any] | None:
        subscriber_id, key_id, type = wanted
        found = await self.entry(subscriber_id, key_id, type=type)
        if found is None:
            self._entries.pop(wanted, None)
            return None
        if not isinstance(found.get("signing_public_key"), str):
            raise ValueError(f"the registry's entry for {subscriber_id}|{key_id} has no signing_public_key")
        self._entries[wanted] = found
        return found

    def _landed(self, flight: tuple[_Wanted, bool], done: asyncio.Task[dict[str, Any] | None]) -> None:
        if self._reading.get(flight) is done:
            del self._reading[flight]
        if not done.cancelled():
            done.exception()  # retrieved here too: when every asker gave up, asyncio would log it as lost

    @abstractmethod
    async def entry(self, subscriber_id: str, key_id: str, *, type: str | None = None) -> dict[str, Any] | None:
        """The registry's entry for one key (subscriber_id, url, type, domain, key_id, signing_public_key), or
        None when it has none (of a subscriber of `type`, if given). Not cached; raises as `public_key` does."""

    async def find(self, **query: Any) -> list[dict[str, Any]]:
        """Entries matching every given field (only where `can_list`)."""
        raise ListingUnsupported(f"the registry at {self.url} cannot list subscribers (a DeDi registry answers one "
                                 f"record by subscriber and key id): read the subscriber list another way")


class InProcessRegistryClient(RegistryClient):
    """The reference network's own `Registry`, read in process by the network's own participants: a key lookup
    needs no connection, so it cannot wait behind callbacks for one, and a burst of requests cannot turn
    signature checks into "registry unreachable". Answers as `BecknRegistryClient` does over HTTP."""

    can_list = True

    def __init__(self, registry: Registry, *, url: str) -> None:
        """`url`: where the same registry is served, to name it in messages."""
        super().__init__(url)
        self.registry = registry

    async def entry(self, subscriber_id: str, key_id: str, *, type: str | None = None) -> dict[str, Any] | None:
        found = await self.find(subscriber_id=subscriber_id, key_id=key_id, type=type)
        return found[0] if found else None

    async def find(self, **query: Any) -> list[dict[str, Any]]:
        """Entries matching every given field, as the registry's /lookup answers (a field given as None is left
        out); a ValueError for a query it cannot read."""
        return [s.as_record() for s in self.registry.lookup({k: v for k, v in query.items() if v is not None})]


class BecknRegistryClient(RegistryClient):
    """The Beckn registry API: `POST {url}/lookup` with a JSON query, answered by a list of subscriptions."""

    can_list = True

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        super().__init__(url)
        self.client = client

    async def entry(self, subscriber_id: str, key_id: str, *, type: str | None = None) -> dict[str, Any] | None:
        found = await self.find(subscriber_id=subscriber_id, key_id=key_id, type=type)
        if found and not isinstance(found[0], dict):
            raise ValueError("the registry's /lookup answered with a list of something other than subscriptions")
        return found[0] if found else None

    async def find(self, **query: Any) -> list[dict[str, Any]]:
        """Entries matching every given field; a field given as None is left out, an empty string is not."""
        response = await self.client.post(f"{self.url}/lookup", json={k: v for k, v in query.items()
                                                                       if v is not None})
        response.raise_for_status()
        records = response.json()
        if not isinstance(records, list):
            raise ValueError("the registry's /lookup answered with something other than a list of subscriptions")
        return records


class DediRegistryClient(RegistryClient):
    """A DeDi registry: `GET {url}/lookup/{subscriber_id}/{name}/{key_id}`, answered by one record whose
    `data.details` holds the key; 404 means there is no such record, any other status but 200 is a failure."""

    def __init__(self, url: str, client: httpx.AsyncClient, *, name: str = WILDCARD) -> None:
        super().__init__(url)
        self.client = client
        self.name = name
        """The registry name asked for; the wildcard searches every registry the service holds."""

    async def entry(self, subscriber_id: str, key_id: str, *, type: str | None = None) -> dict[str, Any] | None:
        if {subscriber_id, key_id} & {"", ".", ".."}:  # no record has these ids, and as path segments they would
            return None                                  # ask for another URL than a record's
        path = "/".join(quote(part, safe="") for part in (subscriber_id, self.name, key_id))
        response = await self.client.get(f"{self.url}/lookup/{path}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise httpx.HTTPStatusError(f"the DeDi lookup answered HTTP {response.status_code}",
                                        request=response.request, response=response)
        details = dig(response.json(), "data", "details")
        if not isinstance(details, dict):
            raise ValueError("the DeDi lookup answered without a data.details object")
        if type is not None and details.get("type") != type:
            return None
        return {**details, "key_id": key_id}


def registry_client(url: str, http: httpx.AsyncClient, *, kind: str = "beckn",
                    name: str | None = None) -> RegistryClient:
    """A client for the registry at `url` speaking its lookup API (`kind`, one of REGISTRY_TYPES). `name` is the
    DeDi registry name to ask under (default the wildcard); the Beckn API has no names, so it is not used there.
    A ConfigError for a kind or name no lookup could work with."""
    check_registry_settings(kind, name)
    if kind == "dedi":
        return DediRegistryClient(url, http, name=name or WILDCARD)
    return BecknRegistryClient(url, http)
