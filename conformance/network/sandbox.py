"""The reference network in a box: registry, gateway, BPPs and a BAP on one loopback port, each under its path;
or mounted in another server, beside what that server serves.

    with start(NetworkConfig()) as net:
        net.bap_client_url   # drive the BAP: POST {net.bap_client_url}/search
"""
from __future__ import annotations

import asyncio
import dataclasses
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance import usecases
from conformance.engine import Engine
from conformance.errors import ConfigError, load_yaml
from conformance.network.bap import ReferenceBAP
from conformance.network.bpp import ReferenceBPP
from conformance.network.catalog import load_catalog
from conformance.network.gateway import ReferenceGateway
from conformance.network.participant import DELIVERY_DEADLINE, Participant, Turns
from conformance.network.registry import (
    InProcessRegistryClient, Registry, RegistryClient, Subscriber, check_registry_settings, registry_client,
)
from conformance.signing import KeyPair
from conformance.transport import BackgroundServer, bind

P = TypeVar("P", bound=Participant)

LOOKUP_TIMEOUT = 30.0
"""Seconds a DeDi key lookup may take (connecting, the answer): generous, for a registry served beside a busy
network is slow to answer, not gone, and a signature check must not turn into a 502 then."""
HALT_TIMEOUT = 2.0
"""Seconds stop() waits for the network to refuse new work and end what is in progress, before the server's own
shutdown (which would follow anyway): it takes milliseconds, even mid-burst."""


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """How to run the reference network. Participants are named `registry`, `gateway`, `bap` and one BPP per
    catalog file (its stem, e.g. `sf-grid-loadflex`)."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    domain: str = ""
    """The domain of the gateway and BAP, and of a BPP whose catalog is no shipped use case's, which then serves
    this domain's use case's flow (default: the default use case's). A BPP serving a use case's catalog is
    registered under that use case's domain."""
    catalogs: tuple[Path, ...] = field(default_factory=lambda: tuple(
        p for u in usecases.shipped().values() for p in u.catalogs))
    """One BPP per catalog file (default: every shipped use case's catalogs, so the network serves them all)."""
    faults: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Participant name -> the fault switches it is given (participant.FAULTS)."""
    variations: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Participant name -> the conformant variations it is given (participant.VARIATIONS)."""
    skew: int = 5
    """Seconds of clock difference allowed when verifying signatures."""
    latency: float = 0.0
    """Seconds each BPP waits before sending a callback."""
    keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Base64 private keys by participant name; a participant without one gets a fresh key."""
    registry_type: str = "beckn"
    """How the participants look keys up: beckn (POST /lookup) or dedi (GET /lookup/{subscriber_id}/{name}/
    {key_id}, as on the DEG sandbox). The registry answers both ways whatever this says."""
    registry_name: str = "deg-sandbox"
    """The registry's DeDi name: it answers DeDi lookups under this name or the wildcard subscribers.beckn.one,
    and the participants ask under this name."""

    def __post_init__(self) -> None:
        check_registry_settings(self.registry_type, self.registry_name)
        if not self.domain:
            object.__setattr__(self, "domain", usecases.named(usecases.DEFAULT).domain)
        names = [p.stem for p in self.catalogs]
        if len(set(names)) != len(names):
            raise ConfigError(f"two catalog files with one name: {sorted({n for n in names if names.count(n) > 1})} "
                              "(a BPP is named after its catalog file)")

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> "NetworkConfig":
        """Read a YAML file (host, port, domain, skew, latency, catalogs, faults, variations, keys, registry_type,
        registry_name); `overrides` win."""
        doc = load_yaml(path)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: the sandbox configuration must be a mapping")
        unknown = set(doc) - _FIELDS
        if unknown:
            raise ConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_FIELDS)}")
        values: dict[str, Any] = {}
        for name in ("host", "domain", "registry_type", "registry_name"):
            if name in doc:
                values[name] = _typed(path, name, doc[name], str)
        for name in ("port", "skew"):
            if name in doc:
                values[name] = _typed(path, name, doc[name], int)
        if "latency" in doc:
            values["latency"] = float(_typed(path, "latency", doc["latency"], (int, float)))
        if "catalogs" in doc:
            catalogs = _typed(path, "catalogs", doc["catalogs"], list)
            values["catalogs"] = tuple((path.parent / str(c)).resolve() for c in catalogs)
        for name in ("faults", "variations"):
            if name in doc:
                chosen = _typed(path, name, doc[name], dict)
                values[name] = {str(k): frozenset(str(s) for s in _typed(path, f"{name}.{k}", v, list))
                                for k, v in chosen.items()}
        if "keys" in doc:
            values["keys"] = {str(k): str(v) for k, v in _typed(path, "keys", doc["keys"], dict).items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


_FIELDS = {f.name for f in dataclasses.fields(NetworkConfig)}


def _typed(path: Path, name: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{path}: '{name}' has the wrong type ({type(value).__name__})")
    return value


@dataclass(frozen=True)
class Endpoint:
    name: str
    role: str
    subscriber_id: str
    url: str
    public_key: str


class Addresses:
    """Where a reference network's participants are, under one base URL: what every kind of network (mounted in
    another server, served in a thread, or in a process of its own) tells its users."""

    def __init__(self, config: NetworkConfig, *, public_url: str, local_url: str | None = None) -> None:
        """`public_url`: where others reach the server, and so what the registry lists and the participants
        advertise. `local_url`: where the server listens (default `public_url`); traffic between what the server
        serves goes there, since the public address may not be reachable from inside it."""
        for what, url in (("public", public_url), ("local", local_url or public_url)):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"the network's {what} URL {url!r} is not an http(s) URL")
        self.config = config
        self.base_url = public_url.rstrip("/")
        self.local_url = (local_url or public_url).rstrip("/")
        self.local_registry_url = f"{self.local_url}/registry"
        self.registry_url = f"{self.base_url}/registry"
        self.gateway_url = f"{self.base_url}/gateway"
        self.bap_url = f"{self.base_url}/bap"
        self.bap_client_url = f"{self.base_url}/bap-client"


class MountableNetwork(Addresses):
    """The reference network's registry, gateway, BAP and BPPs, built for a public base URL and served by a server
    someone else runs (the harness playing BPP serves them beside its own BPPs): mount `routes()` at the root of
    that server, and run its lifespan inside `attach(http)`. `Network` is one that serves itself, in a thread;
    `NetworkProcess` one that serves itself in a process of its own."""

    def __init__(self, config: NetworkConfig, *, public_url: str, local_url: str | None = None) -> None:
        super().__init__(config, public_url=public_url, local_url=local_url)
        self.registry = Registry(name=config.registry_name)
        self._gate = Gate()
        self._attached: list[Participant] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop of the server that serves the network, once attached."""
        engine = Engine()

        def key(name: str) -> KeyPair:
            subscriber, key_id = f"{name}.deg-sandbox.local", f"{name}-key-1"
            if name not in config.keys:
                return KeyPair.generate(subscriber, key_id)
            try:
                return KeyPair.from_private_key(subscriber, key_id, config.keys[name])
            except ValueError as exc:
                raise ConfigError(f"the key for {name}: {exc}") from None

        def participant(name: str, make: Callable[[frozenset[str], frozenset[str]], P]) -> P:
            try:
                return make(frozenset(config.faults.get(name, ())), frozenset(config.variations.get(name, ())))
            except ValueError as exc:  # the participant checks its faults and variations
                raise ConfigError(f"{name}: {exc}") from None

        self.gateway = participant("gateway", lambda f, v: ReferenceGateway(
            key("gateway"), directory=self.registry, engine=engine, faults=f, variations=v, skew=config.skew))
        self.bap = participant("bap", lambda f, v: ReferenceBAP(
            key("bap"), url=self.bap_url, gateway_url=self.gateway_url, domain=config.domain, engine=engine,
            faults=f, variations=v, skew=config.skew))
        self.bpps: dict[str, ReferenceBPP] = {}
        domains: dict[str, str] = {}
        """BPP name -> the domain it serves: its catalog's use case's."""
        for path in config.catalogs:
            catalog = load_catalog(path)
            name = path.stem
            # A catalog of no shipped use case's (a participant's own) is served as the network's domain's use case.
            use_case = usecases.of_catalog(path) or usecases.of_domain(config.domain)
            domains[name] = use_case.domain if use_case is not None else config.domain
            self.bpps[name] = participant(name, lambda f, v: ReferenceBPP(
                key(name), url=f"{self.base_url}/bpp/{name}", catalog=catalog, engine=engine, faults=f,
                variations=v, skew=config.skew, latency=config.latency,
                orders=use_case.orders if use_case is not None else None))
        for kind, chosen in (("faults", config.faults), ("variations", config.variations)):
            strangers = set(chosen) - {"gateway", "bap", *self.bpps}
            if strangers:
                raise ConfigError(f"{kind} for unknown participants {sorted(strangers)}; "
                                  f"participants: {', '.join(['gateway', 'bap', *sorted(self.bpps)])}")
        self.registry.subscribers += [
            Subscriber.for_key(self.gateway.key, url=self.gateway_url, type="BG", domain=config.domain),
            Subscriber.for_key(self.bap.key, url=self.bap_url, type="BAP", domain=config.domain),
            *(Subscriber.for_key(b.key, url=b.url, type="BPP", domain=domains[n]) for n, b in self.bpps.items()),
        ]

    @property
    def participants(self) -> list[Participant]:
        return [self.gateway, self.bap, *self.bpps.values()]

    def endpoints(self) -> list[Endpoint]:
        """Who is on the network, where, with which public key: what `deg-conformance sandbox` prints."""
        out = [Endpoint("registry", "registry", "-", self.registry_url, "-"),
               Endpoint("gateway", "BG", self.gateway.key.subscriber_id, self.gateway_url, self.gateway.key.public_key),
               Endpoint("bap", "BAP", self.bap.key.subscriber_id, self.bap_url, self.bap.key.public_key),
               Endpoint("bap-client", "BAP client", self.bap.key.subscriber_id, self.bap_client_url, "-")]
        out += [Endpoint(name, "BPP", b.key.subscriber_id, b.url, b.key.public_key) for name, b in self.bpps.items()]
        return out

    @property
    def bpp_urls(self) -> dict[str, str]:
        """Each BPP's URL, by name (its catalog file's stem), in the configuration's order."""
        return {name: bpp.url for name, bpp in self.bpps.items()}

    def add_subscriber(self, subscriber: Subscriber) -> None:
        """Register someone else in this network's registry (the host's own BPPs, say), replacing an entry with
        the same subscriber_id and key_id. Possible at any time: participants look keys up when they need them."""
        self.registry.subscribe(subscriber)

    def routes(self) -> list[Mount]:
        """The participants' endpoints, to mount at the root of the server `public_url` and `local_url` reach:
        /registry, /gateway, /bap, /bap-client and /bpp/<name>."""
        apps = {"/registry": self.registry.app(), "/gateway": self.gateway.app(), "/bap-client": self.bap.client_app(),
                "/bap": self.bap.network_app(), **{f"/bpp/{name}": bpp.app() for name, bpp in self.bpps.items()}}
        return [Mount(path, app=self._gate.guard(app)) for path, app in apps.items()]

    @asynccontextmanager
    async def attach(self, http: httpx.AsyncClient, *,
                     also: Iterable[Participant] = ()) -> AsyncIterator[RegistryClient]:
        """Make the participants, and `also` (the host's own, served by the same server), ready to send: enter it
        in the server's lifespan, once its event loop runs. They send through `http`, and share one registry
        client (yielded, for the host's use too): with registry_type beckn, one that reads this network's
        Registry in process; with dedi, one that asks it the DeDi way at its local URL, through an HTTP client of
        its own. Either way a key lookup never waits for a connection that callbacks and relays hold. What they
        send to a URL under `public_url` goes to `local_url`. On leaving, callbacks not yet delivered are
        dropped."""
        async with AsyncExitStack() as stack:
            if self.config.registry_type == "dedi":  # the point of it: the DeDi lookup over HTTP, end to end
                lookups = await stack.enter_async_context(_http_client(LOOKUP_TIMEOUT))
                registry = registry_client(self.local_registry_url, lookups, kind="dedi",
                                           name=self.config.registry_name)
            else:
                registry = InProcessRegistryClient(self.registry, url=self.local_registry_url)
            self._attached = [*self.participants, *also]
            turns = Turns()
            stack.push_async_callback(turns.loopback.aclose)  # after halt: nothing sends any more
            for participant in self._attached:
                participant.attach(http, registry, shortcut=(self.base_url, self.local_url), turns=turns)
            self._loop = asyncio.get_running_loop()
            try:
                yield registry
            finally:
                await self.halt()

    async def halt(self) -> None:
        """Take no more work and drop what is under way, quietly: every request from now on, and every one in
        progress, is answered 503 (the network is stopping), and callbacks and relays not yet delivered are
        dropped. What stopping does first, in the server's event loop, so that the server's own shutdown finds
        nothing left to wait for, nor to cancel with an error in its log."""
        await self._gate.close()
        await asyncio.gather(*(p.detach() for p in self._attached))

    def halt_now(self) -> None:
        """`halt()` from another thread than the server's, waiting for it: what to call before stopping the server
        that serves the network (Network.stop does). Nothing to do before the network is attached, or once the
        server's event loop has ended."""
        if self._loop is None or not self._loop.is_running():
            return
        try:
            halting = asyncio.run_coroutine_threadsafe(self.halt(), self._loop)
        except RuntimeError:  # the loop ended in the meantime: so did the serving
            return
        try:
            halting.result(timeout=HALT_TIMEOUT + 1)
        except TimeoutError:  # a loop too stuck to halt: the server's own shutdown follows anyway
            halting.cancel()

    def app(self) -> Starlette:
        """The whole network as one ASGI app: `routes()`, attached in the lifespan to an HTTP client of its own."""
        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with _http_client(DELIVERY_DEADLINE) as http, self.attach(http):
                yield

        return Starlette(routes=self.routes(), lifespan=lifespan)


def _http_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for the network's traffic beyond loopback (loopback has wire.LoopbackPool). Its pool keeps
    every connection it opens alive (a burst reuses them rather than open and close one per send) and sets no limit
    of its own: the participants' Turns limit how many connections each address gets."""
    # trust_env=False: the network talks to loopback, where a proxy from the environment is never right.
    return httpx.AsyncClient(timeout=timeout, trust_env=False,
                             limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))


class Gate:
    """Wraps the network's endpoints so that stopping is quiet. While open, it keeps track of the requests in
    progress; closing it cancels them, and they and every later request are answered 503 with `Connection:
    close`. A request whose client went away (ClientDisconnect), or whose task is cancelled because the server
    stops, ends quietly, where otherwise uvicorn logs "Exception in ASGI application" with a traceback."""

    def __init__(self) -> None:
        self.closed = False
        self._serving: set[asyncio.Task[Any]] = set()

    def guard(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if self.closed:
                await _STOPPING(scope, receive, send)
                return
            task = asyncio.current_task()
            assert task is not None
            started = False

            async def watched(message: Message) -> None:
                nonlocal started
                started = started or message["type"] == "http.response.start"
                await send(message)

            self._serving.add(task)
            try:
                await app(scope, receive, watched)
            except ClientDisconnect:
                pass  # nobody is left to answer
            except asyncio.CancelledError:
                # Only a server that stops cancels a request (this gate closing, or uvicorn after its grace): the
                # request is over, quietly, with the answer a stopping server gives if it had none yet.
                task.uncancel()
                if not started:
                    await _STOPPING(scope, receive, send)
            finally:
                self._serving.discard(task)

        return guarded

    async def close(self) -> None:
        """Refuse every request from now on, and end those in progress (within HALT_TIMEOUT)."""
        self.closed = True
        serving = self._serving - {asyncio.current_task()}
        for task in serving:
            task.cancel()
        if serving:
            await asyncio.wait(serving, timeout=HALT_TIMEOUT)


_STOPPING = JSONResponse({"error": "the reference network is stopping"}, status_code=503,
                         headers={"Connection": "close"})


class Network(MountableNetwork):
    """A reference network that serves itself, on a loopback port of its own. Stop it with `stop()` or use it as
    a context manager; a stopped network cannot be started again (make a new one)."""

    def __init__(self, config: NetworkConfig) -> None:
        self._server = BackgroundServer(bind(config.host, config.port), name="reference network")
        try:
            super().__init__(config, public_url=self._server.url)
        except BaseException:
            self._server.stop()
            raise

    def start(self) -> "Network":
        """Serve in a background thread; returns once the network answers. Starting a running network does
        nothing; starting a stopped one is a RuntimeError."""
        if self._server.stopped:
            raise RuntimeError("this reference network has been stopped; start a new Network instead")
        self._server.start(self.app())
        return self

    def stop(self) -> None:
        """Stop serving and release the port, quietly and at once, even mid-burst: new requests and those in
        progress are answered 503, callbacks and relays not yet delivered are dropped (see `halt`)."""
        self.halt_now()
        self._server.stop()

    def __enter__(self) -> "Network":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(config: NetworkConfig | None = None) -> Network:
    """Start the reference network on loopback; stop it with `.stop()` or a `with` block."""
    return Network(config or NetworkConfig()).start()


