"""The live runner: plays a Beckn participant against a target and checks every message both ways.

    with Harness(RunConfig(gateway="https://gw.example", registry="https://reg.example", ...)) as harness:
        result = harness.run([scenario.load(path) for path in paths])

As BAP (role "bap"), with neither a target nor a gateway, the harness starts the reference network and plays
against its gateway and BPPs. As BPP (role "bpp"), it serves BPPs of its own, registered in a reference
registry and gateway it starts, and drives the target BAP (by default the reference BAP). One endpoint serves
every scenario of a run; messages are told apart by transaction_id, so scenarios may run concurrently
(`concurrency`) without seeing each other's messages.
"""
from __future__ import annotations

import asyncio
import secrets
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

import httpx
from starlette.applications import Starlette

from conformance.engine import Engine
from conformance import usecases
from conformance.errors import ConfigError
from conformance.messages import dig
from conformance.network import MountableNetwork, NetworkConfig, NetworkProcess
from conformance.network.participant import join
from conformance.network.registry import RegistryClient, Subscriber, check_registry_settings, registry_client
from conformance.network.catalog import load_catalog
from conformance.runner import bap, bpp, probe
from conformance.runner.health import TargetHealth
from conformance.runner.listener import SIGNATURE_MODES, Inbox, Listener, Verifier
from conformance.runner.results import RunResult, ScenarioResult, StepResult
from conformance.runner.transcript import unsolicited
from conformance.scenario import REQUIREMENTS, Scenario
from conformance.signing import KeyPair
from conformance.transport import BackgroundServer, Reply, Sender, bind, client_options
from conformance.waivers import Policy

__all__ = ["Harness", "RunConfig", "RunResult", "ScenarioResult", "StepResult"]

Progress = Callable[[ScenarioResult, StepResult | None], None]
"""Told of each step as it ends, and of each scenario that ends without a step (skipped, not run)."""
ROLES = ("bap", "bpp")
GATEWAY_PASSES_ALL = frozenset({"no-signature-check", "no-validation"})
DRIVES = ("trigger", "passive")
MAX_WAIT = 86400
"""The longest wait (seconds) a run accepts for any timeout."""
UNMET = "it needs "
"""How a skip for a requirement the run does not offer begins (a matter of the run's set-up, not of the target)."""


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Where the target is, who the harness is on the network, and how long to wait."""

    role: str = "bap"
    """The part the harness plays: bap (the target is a BPP or gateway) or bpp (the target is a BAP)."""
    use_case: str = usecases.DEFAULT
    """The use case (conformance/usecases.py): the probes' request bodies, the harness's BPPs' catalogs as BPP,
    and the reference network's BPP the probes go to."""
    target: str | None = None
    """As BAP: a BPP's base URL, where every request goes. As BPP: the BAP's client endpoint, which the
    harness asks to send each request (default the reference BAP's)."""
    drive: str = "trigger"
    """As BPP, how the BAP is asked for each request: trigger (POST to its client endpoint) or passive (a
    prompt for the person at its controls)."""
    catalogs: tuple[Path, ...] = ()
    """As BPP, the catalogs the harness's BPPs serve, one BPP each (default the guide's two programs)."""
    gateway: str | None = None
    """A gateway's base URL: searches go there, later requests to the chosen BPP's bpp_uri."""
    registry: str | None = None
    """Where signing keys are looked up; without one, callbacks' signatures cannot be verified."""
    registry_type: str = "beckn"
    """How: beckn (POST /lookup) or dedi (GET /lookup/{subscriber_id}/{registry_name}/{key_id})."""
    registry_name: str | None = None
    """The DeDi registry name to look keys up under (default the wildcard, subscribers.beckn.one)."""
    listen: str = "127.0.0.1:0"
    callback_url: str | None = None
    """Where the target reaches the harness: its bap_uri as BAP, the base of its BPPs' URLs as BPP (behind a
    proxy or NAT); default the listening address."""
    subscriber_id: str = "deg-conformance.local"
    """As BAP, the harness's subscriber id; as BPP, each BPP is <catalog name>.<subscriber_id>."""
    key_id: str = "deg-conformance-key-1"
    private_key: str | None = field(default=None, repr=False)
    """Base64 Ed25519 private key; default a fresh one (fine for the reference network)."""
    signatures: str = "required"
    ack_timeout: float = 5.0
    """Seconds to wait for a synchronous ACK/NACK."""
    callback_timeout: float | None = None
    """A cap on every callback wait, whatever the ttl says (for quick runs against a silent target)."""
    settle: float = 0.3
    """Seconds to keep listening after a scenario's last step, to catch duplicates and late callbacks."""
    skew: int = 5
    concurrency: int = 1
    ca_bundle: Path | None = None
    """CA certificates to trust for the target and registry (default the system's, or SSL_CERT_FILE)."""
    policy: Policy = field(default_factory=Policy)
    """Which findings count: excluded rules, waivers, --fail-on."""
    registrations: tuple[Subscriber, ...] = ()
    """Entries for the registry the harness runs (role bpp, or the reference network): participants configured
    before the run, such as the BAP under test, whose keys the harness's BPPs must find."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Values for every scenario's templates, over its own (--var, --vars): they also pin the offer a scenario
    picks from the target's catalog."""
    network: NetworkConfig | None = None
    """The reference network to start when there is no target (default settings when None)."""

    def __post_init__(self) -> None:
        usecases.named(self.use_case)  # an unknown use case is refused here, naming the shipped ones
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.drive not in DRIVES:
            raise ConfigError(f"drive must be one of {', '.join(DRIVES)}, not {self.drive!r}")
        if self.signatures not in SIGNATURE_MODES:
            raise ConfigError(f"signatures must be one of {', '.join(SIGNATURE_MODES)}, not {self.signatures!r}")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        check_registry_settings(self.registry_type, self.registry_name)
        if self.registry_name is not None and self.registry_type != "dedi":
            raise ConfigError("registry-name names a DeDi registry: add --registry-type dedi, or drop the name")
        if self.drive == "passive" and self.concurrency > 1:
            raise ConfigError("passive drive plays one scenario at a time: a person acts on each prompt (drop -n)")
        # A negative or infinite wait is a traceback deep in the socket layer, or a hang: refuse it here.
        for name, value, zero_ok in (("ack-timeout", self.ack_timeout, False),
                                     ("callback-timeout", self.callback_timeout, False), ("settle", self.settle, True)):
            if value is not None and not ((0 <= value if zero_ok else 0 < value) and value <= MAX_WAIT):
                raise ConfigError(f"{name} {value!r} is not a number of seconds "
                                  f"{'from 0' if zero_ok else 'above 0'} up to {MAX_WAIT}")
        client_options(self.ca_bundle)  # CAs that do not load (the bundle, SSL_CERT_FILE) are refused here, not in a
        # server thread; the trust is cached, so the run's clients pay nothing more for it
        for name in ("target", "gateway", "registry", "callback_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith(("http://", "https://")):
                raise ConfigError(f"{name.replace('_', '-')} {value!r} is not an http(s) URL")


class Harness:
    """One live run's moving parts: the callback listener, the harness's key, and (by default) the
    reference network. Use as a context manager; everything it started is stopped on exit."""

    def __init__(self, config: RunConfig, *, engine: Engine | None = None, progress: Progress | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.engine = engine or Engine()
        self._progress = progress
        self._notify = notify
        try:
            self.key = (KeyPair.from_private_key(config.subscriber_id, config.key_id, config.private_key)
                        if config.private_key else KeyPair.generate(config.subscriber_id, config.key_id))
        except ValueError as exc:
            raise ConfigError(f"the harness's private key: {exc}") from None
        self.inbox = Inbox()
        """Everything the target sent: callbacks (as BAP) or requests (as BPP)."""
        self.outbox = Inbox()
        """As BPP: every callback the harness's BPPs sent, with the target's reply to each."""
        self.transactions: set[str] = set()
        """Every transaction a scenario of this run started."""
        self.bpps: dict[str, bpp.HarnessBPP] = {}
        self.answers: dict[tuple[str, str], tuple[str, str]] = {}
        """As BPP: the answers scenario steps script, by (transaction_id, action)."""
        self.network: MountableNetwork | NetworkProcess | None = None
        """The reference network: one of its own as BAP (without a target), in a process of its own so that its work
        never competes with the run's; mounted in the harness's server as BPP."""
        self.gateway, self.target, self.registry = config.gateway, config.target, config.registry
        self._server: BackgroundServer | None = None
        self.callback_url = ""
        self.health = TargetHealth(config.ack_timeout)
        self._callback_times: list[float] = []
        self._listings: dict[tuple[Any, Any], int | None] = {}
        """(domain, city) -> how many BPPs the registry lists there (None: it cannot list)."""

    def __enter__(self) -> "Harness":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        host, _, port = self.config.listen.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # [::1]:8081, as URLs write IPv6
        if not host or not port.isdigit():
            raise ConfigError(f"--listen {self.config.listen!r}: write HOST:PORT, e.g. 127.0.0.1:8081")
        # Owned from here on, so that stop() releases the port whatever fails next.
        self._server = BackgroundServer(bind(host, int(port)), name=f"harness as {self.config.role}")
        self.callback_url = (self.config.callback_url or self._server.url).rstrip("/")
        if self.config.role == "bpp":
            self._start_as_bpp(self._server)
            return
        if self.target is None and self.gateway is None:
            self.network = NetworkProcess(self.config.network or NetworkConfig()).start()
            self.gateway, self.registry = self.network.gateway_url, self.network.registry_url
        listener = Listener(self.inbox, Verifier(self.registry, signatures=self.config.signatures,
                                                 skew=self.config.skew, registry_type=self.config.registry_type,
                                                 registry_name=self.config.registry_name),
                            realm=self.key.subscriber_id, body_timeout=self.config.ack_timeout,
                            ca_bundle=self.config.ca_bundle)
        self._server.start(listener.app())
        if self.network is not None:
            for entry in (Subscriber.for_key(self.key, url=self.callback_url, type="BAP",
                                             domain=self.network.config.domain), *self.config.registrations):
                self.network.add_subscriber(entry)
        elif self.config.registrations:
            raise ConfigError("--register fills the registry the harness runs; with --target or --gateway it runs none "
                              "(subscribe in the network's own registry: `deg-conformance keys subscribe`)")

    def _start_as_bpp(self, server: BackgroundServer) -> None:
        """Everything the harness serves as BPP, under its one address (--listen, --callback-url): the reference
        registry, gateway and BAP at /registry, /gateway, /bap, /bap-client, and its BPPs at /bpp/<name>, so that
        a BAP can be configured with them before the run (`run --role bpp --print-network`)."""
        net = self.network = bpp_network(self.config, public_url=self.callback_url, local_url=server.url)
        self.gateway = net.gateway_url
        self.registry = self.registry or net.registry_url
        self.target = self.target or f"{net.local_url}/bap-client"
        verifier = Verifier(self.config.registry or net.local_registry_url, signatures=self.config.signatures,
                            skew=self.config.skew, sender="bap_id", registry_type=self.config.registry_type,
                            registry_name=self.config.registry_name)
        engine = Engine()  # the BPPs' own admission checks run in the server's thread, apart from the run's engine
        use_case = usecases.named(self.config.use_case)
        for name, path in bpp_catalogs(self.config).items():
            self.bpps[name] = bpp.HarnessBPP(
                self._bpp_key(name), url=f"{self.callback_url}/bpp/{name}", catalog=load_catalog(path), engine=engine,
                verifier=verifier, inbox=self.inbox, outbox=self.outbox, skew=self.config.skew, answers=self.answers,
                body_timeout=self.config.ack_timeout, orders=use_case.orders)
        for entry in (*(Subscriber.for_key(b.key, url=b.url, type="BPP", domain=use_case.domain)
                        for b in self.bpps.values()), *self.config.registrations):
            net.add_subscriber(entry)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            # The verifier's key lookups have a client of their own: under a burst they never wait behind callbacks.
            ca = self.config.ca_bundle
            async with httpx.AsyncClient(timeout=self.config.ack_timeout, **client_options(ca)) as http, \
                    httpx.AsyncClient(timeout=Verifier.LOOKUP_TIMEOUT, **client_options(ca)) as lookups, \
                    net.attach(http, also=self.bpps.values()):
                verifier.attach(lookups)
                yield

        server.start(Starlette(routes=[*net.routes(), *bpp.bpp_routes(self.bpps)], lifespan=lifespan))

    def _bpp_key(self, name: str) -> KeyPair:
        """One key per harness BPP; with --key-file, that key for each (registered under each BPP's id)."""
        subscriber = f"{name}.{self.config.subscriber_id}"
        if self.config.private_key:
            return KeyPair.from_private_key(subscriber, self.config.key_id, self.config.private_key)
        return KeyPair.generate(subscriber, self.config.key_id)

    def stop(self) -> None:
        if isinstance(self.network, NetworkProcess):
            self.network.stop()
        elif self.network is not None:  # mounted in the harness's server: it takes no more work, quietly, first
            self.network.halt_now()
        if self._server is not None:
            self._server.stop()

    @property
    def verifies_signatures(self) -> bool:
        return self.registry is not None and self.config.signatures != "off"

    def notify(self, text: str) -> None:
        """A line for the person at the target's controls (passive drive)."""
        if self._notify is not None:
            self._notify(text)

    def url_for(self, action: str, context: dict[str, Any]) -> str:
        """Searches go to the gateway when there is one; everything else to the target BPP, or else to the
        bpp_uri the context names (the provider chosen from on_search)."""
        if action == "search" and self.gateway is not None:
            return join(self.gateway, action)
        if self.target is not None:
            return join(self.target, action)
        uri = context.get("bpp_uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise ConfigError(f"{action} needs context.bpp_uri (save it from on_search) or a --target")
        return join(uri, action)

    @property
    def watched(self) -> bool:
        """Whether someone is told of each step as it ends (the live lines), and so of what it found already."""
        return self._progress is not None

    def progress(self, scenario: ScenarioResult, step: StepResult | None) -> None:
        if self._progress is not None:
            self._progress(scenario, step)

    def client(self) -> Sender:
        """What a scenario or probe sends with: each whole reply waited for up to --ack-timeout."""
        return Sender(self.config.ack_timeout, self.config.ca_bundle)

    def post(self, sender: Sender, url: str, raw: bytes, headers: dict[str, str]) -> Reply:
        """POST exact bytes, noting that the host answered (so that a later silence reads as a crash)."""
        reply = sender.post(url, raw, headers)
        if reply.status is not None:
            self.health.answered(url)
        return reply

    def signature_refused(self, url: str, reply: Reply, by: str = "the target") -> str:
        """The set-up error for a 401 to a message the harness signed correctly: whoever answered could not
        verify it, which is a matter of registration, not of conformance."""
        why = dig(reply.body, "error", "message") or reply.challenge or reply.describe()
        return (f"{by} answered HTTP 401 to the harness's signed message at {url} ({why}): it cannot verify the "
                f"harness's signature. Register the harness's key ({self.key.subscriber_id}|{self.key.unique_key_id}, "
                f"public key {self.key.public_key}) in the registry {by} looks keys up in (`deg-conformance keys "
                "subscribe`), or run with --key-file, --subscriber-id and --key-id of a key registered there")

    def answerers(self, action: str, url: str, context: dict[str, Any]) -> int | None:
        """How many callbacks a request can get, one per sender, so that collecting every one may end early:
        one from a BPP; through a gateway, one per BPP the registry lists for the domain (and city), when the
        registry can list (a Beckn registry); None when that cannot be known, and the ttl is waited out."""
        if action != "search" or self.gateway is None or url != join(self.gateway, action):
            return 1
        if self.registry is None:
            return None
        return self._bpps_listed(context) or None

    def _bpps_listed(self, context: dict[str, Any]) -> int | None:
        """How many BPPs the registry lists for the context's domain (and city), asked once per pair; None when the
        registry cannot list or answer."""
        domain, city = context.get("domain"), dig(context, "location", "city", "code")
        where = (domain if isinstance(domain, str) else repr(domain), city if isinstance(city, str) else None)
        if where not in self._listings:
            self._listings[where] = asyncio.run(self._count_bpps(domain, where[1]))
        return self._listings[where]

    def off_network(self, action: str, url: str, context: dict[str, Any]) -> str | None:
        """Why a request cannot be answered when the harness plays against its own reference network (as BAP, with
        no --target): a search of a domain none of its BPPs serves (a scenario of a use case the harness does not
        ship, imported from a collection), or a request to a BPP outside it (a bpp_uri recorded elsewhere). Such
        a scenario is skipped, saying so: neither the network nor the scenario is at fault. None otherwise."""
        if not isinstance(self.network, NetworkProcess) or self.gateway is None:
            return None
        if action == "search" and url == join(self.gateway, action):
            if self._bpps_listed(context) == 0:
                return (f"the reference network serves no BPP of domain {context.get('domain')!r} (its use cases: "
                        f"`deg-conformance use-cases`): play it against a --target or --gateway that does")
        elif not url.startswith(self.network.base_url):
            return (f"it sends {action} to {url}, outside the reference network: play it against that --target, or "
                    "give --var bpp_id=... --var bpp_uri=... of a reference BPP")
        return None

    async def _count_bpps(self, domain: Any, city: str | None) -> int | None:
        async with httpx.AsyncClient(timeout=self.config.ack_timeout, **client_options(self.config.ca_bundle)) as http:
            registry = self._registry(http)
            if not registry.can_list:  # a DeDi registry looks keys up; it does not list a domain's BPPs
                return None
            try:
                found = await registry.find(type="BPP", domain=domain,
                                            location={"city": {"code": city}} if city else None)
            except (httpx.HTTPError, ValueError):
                return None  # the ttl is waited out; a registry that is down shows in the signature checks
        return len(found)

    def _registry(self, http: httpx.AsyncClient) -> RegistryClient:
        """The run's registry (--registry, or the reference network's), of the run's --registry-type."""
        assert self.registry is not None
        return registry_client(self.registry, http, kind=self.config.registry_type, name=self.config.registry_name)

    def probe_target(self) -> tuple[str, bool]:
        """Where probes of a BPP or gateway go, and whether it is a gateway: the target, else the gateway a
        run was given, else the reference network's first BPP."""
        if self.target is not None:
            return self.target, False
        if self.network is None and self.gateway is not None:
            return self.gateway, True
        assert self.network is not None and self.network.bpp_urls, "no target, no gateway: the reference network runs"
        catalogs = {p.stem for p in usecases.named(self.config.use_case).catalogs}
        serving = [url for name, url in self.network.bpp_urls.items() if name in catalogs]
        if not serving:
            raise ConfigError(f"the reference network serves no catalog of use case {self.config.use_case}")
        return serving[0], False

    def run(self, scenarios: list[Scenario], run_id: str | None = None, *, probes: bool = False) -> RunResult:
        """Play every scenario (`config.concurrency` at a time), then every probe when asked; results come back
        in that order."""
        misfits = [str(s.path) for s in scenarios if s.role != self.config.role]
        if misfits:
            raise ConfigError(f"these scenarios play {'bpp' if self.config.role == 'bap' else 'bap'}, not "
                              f"{self.config.role} (run them with --role): {', '.join(misfits)}")
        result = RunResult(run_id or new_run_id(), time.time(), settings=self.describe())
        self.inbox.reopen()
        result.setup_errors = self.preflight()
        if not result.setup_errors:
            # One pool for scenarios and probes: a probe's silence window and a scenario's wait for a callback
            # overlap, so a run with probes takes about as long as its longest wait, not the sum of both kinds.
            with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="scenario") as pool:
                played = [pool.submit(self.play, s) for s in scenarios]
                probing = pool.submit(probe.plan, self, pool) if probes else None
                result.scenarios = [f.result() for f in played]
                if probing is not None:
                    result.scenarios += [pending() for pending in probing.result()]
        # Nothing more is taken, and what is being received is filed: every message ACKed is in the report.
        self.inbox.close(time.monotonic() + self.config.ack_timeout + Verifier.LOOKUP_TIMEOUT + 1)
        result.interrupted = self.interrupted
        strays = self.inbox.strays()
        result.strays = [r.message("unexpected", n) for n, r in enumerate(strays, 1)]
        judged = unsolicited(self, strays, result.scenarios)
        if judged is not None:
            result.scenarios.append(judged)
        for scenario_result in result.scenarios:  # the probes' and the unsolicited messages' too
            scenario_result.judge(self.config.policy)
        result.stopped = time.time()
        return result

    def play(self, scenario: Scenario) -> ScenarioResult:
        """One scenario, or its skip when the run cannot offer what it requires, or why it was not played (the
        run was interrupted before it). A bug of the harness while playing it is kept with the result (exit 5),
        and the run goes on with the others."""
        ended = ScenarioResult(scenario, "", time.time(), stopped=time.time())
        unmet = [name for name in scenario.requires if not self._offers(name)]
        if unmet:
            ended.skipped = f"{UNMET}{'; and '.join(REQUIREMENTS[n] for n in unmet)}"
        elif self.interrupted:
            ended.error = "not run: the run was interrupted (Ctrl-C)"
        else:
            try:
                played = (bpp if self.config.role == "bpp" else bap).play(scenario, self)
                played.judge(self.config.policy)
                return played
            except Exception as exc:  # noqa: BLE001 - a bug of the harness must not take the run's results with it
                ended.internal_error = traceback.format_exc()
                ended.error = f"internal error ({type(exc).__name__}: {exc}): a bug of the harness, no verdict"
        self.progress(ended, None)
        return ended

    @property
    def interrupted(self) -> bool:
        return self.inbox.interrupted

    def interrupt(self) -> None:
        """Ctrl-C: every wait ends now, no new step or scenario starts; the run reports what it has."""
        self.inbox.interrupt()
        self.outbox.interrupt()

    def timed_callback(self, seconds: float) -> None:
        """A callback of the target came this long after its request: evidence for how long silence must last."""
        self._callback_times.append(seconds)

    def slowest_callback(self) -> float | None:
        return max(self._callback_times, default=None)

    def pause(self, seconds: float) -> None:
        """Sleep, unless the run is interrupted."""
        self.inbox.wait("", lambda msgs: False, time.monotonic() + seconds)

    def _offers(self, requirement: str) -> bool:
        if requirement == "gateway":
            return self.config.role == "bap" and self.gateway is not None
        return self.config.role == "bpp" and requirement == f"{self.config.drive}-drive"

    def preflight(self) -> list[str]:
        """Set-up problems that would make every verdict meaningless, found before anything is sent: as BAP, the
        harness's own key must be in the registry (else every target answers 401), and the registry must answer
        (else no signature can be checked). Against the reference network, which registers the harness's key
        itself, this checks the run's --registry-type and --registry-name."""
        if self.config.role != "bap" or self.registry is None:
            return []
        name = f"{self.key.subscriber_id}|{self.key.unique_key_id}"

        async def lookup() -> str | None:
            assert self.registry is not None
            async with httpx.AsyncClient(timeout=self.config.ack_timeout, **client_options(self.config.ca_bundle)) as http:
                return await self._registry(http).public_key(self.key.subscriber_id, self.key.unique_key_id)
        try:
            registered = asyncio.run(lookup())
        except (httpx.HTTPError, ValueError) as exc:
            return [f"the registry at {self.registry} cannot be asked for the harness's key {name} "
                    f"({type(exc).__name__}: {exc}): check --registry (and that the registry is up)"]
        if registered is None:
            return [f"the registry at {self.registry} has no key {name}, so no target can verify the harness's "
                    f"requests: publish it (`deg-conformance keys new`, then `keys subscribe --registry "
                    f"{self.registry}`), or run with --key-file, --subscriber-id and --key-id of a key registered there"]
        if registered != self.key.public_key:
            return [f"the registry at {self.registry} holds another public key for {name} than the harness's "
                    f"({registered} there, {self.key.public_key} here): run with the --key-file registered there, "
                    "or subscribe this key"]
        return []

    def describe(self) -> dict[str, Any]:
        """The run's settings as reports show them (no private key)."""
        return {"role": self.config.role, "target": self.target, "gateway": self.gateway, "registry": self.registry,
                "callback_url": self.callback_url, "subscriber_id": self.key.subscriber_id,
                "signatures": self.config.signatures if self.verifies_signatures else "off",
                "reference_network": self.network is not None, "concurrency": self.config.concurrency,
                **self.config.policy.describe(),
                **({"drive": self.config.drive, "bpps": ", ".join(b.key.subscriber_id for b in self.bpps.values())}
                   if self.config.role == "bpp" else {})}


def new_run_id() -> str:
    """Sortable and unique: 20261128-134501-3f9a."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def bpp_catalogs(config: RunConfig) -> dict[str, Path]:
    """As BPP, the harness's BPPs by name (a catalog file's stem), each serving one catalog file."""
    return {path.stem: path for path in config.catalogs or usecases.named(config.use_case).catalogs}


def bpp_network(config: RunConfig, *, public_url: str, local_url: str | None = None) -> MountableNetwork:
    """The reference registry, gateway and BAP that the harness serves as BPP, under `public_url`; the gateway
    passes everything on, so that the harness's BPPs see (and judge) what the BAP sent."""
    base = config.network or NetworkConfig()
    lenient = {**base.faults, "gateway": base.faults.get("gateway", frozenset()) | GATEWAY_PASSES_ALL}
    return MountableNetwork(replace(base, catalogs=(), faults=lenient), public_url=public_url, local_url=local_url)


def bpp_addresses(config: RunConfig) -> list[tuple[str, str, str, str]]:
    """(what, subscriber id, URL, public key) of everything a run as BPP serves, without starting it: what a BAP
    is configured with before the run. Needs the address the run will have: --callback-url, or a --listen with
    a fixed port."""
    host, _, port = config.listen.rpartition(":")
    if config.callback_url is None and (not port.isdigit() or int(port) == 0):
        raise ConfigError("--print-network needs the run's address before it starts: a fixed --listen port "
                          "(e.g. --listen 0.0.0.0:8082) or --callback-url")
    base = (config.callback_url or f"http://{host}:{port}").rstrip("/")
    net = bpp_network(config, public_url=base)
    out = [("registry", "-", net.registry_url,
            f"Beckn POST /lookup; DeDi GET /lookup/{{subscriber}}/{net.registry.name}/{{key id}}"),
           ("gateway", net.gateway.key.subscriber_id, net.gateway_url, "(its key: in the registry, at run time)")]
    for name in bpp_catalogs(config):
        subscriber = f"{name}.{config.subscriber_id}"
        public = (KeyPair.from_private_key(subscriber, config.key_id, config.private_key).public_key
                  if config.private_key else "(a fresh key each run: --key-file keeps it)")
        out.append((f"BPP {name}", subscriber, f"{base}/bpp/{name}", public))
    return out
