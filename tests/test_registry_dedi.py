"""The DeDi registry, as the DEG sandbox runs it: the reference registry's lookup by path, the DeDi client (and
the contract it shares with the Beckn one), a reference network whose participants look keys up that way, and
the harness told to (`--registry-type dedi`)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import types
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance import ConfigError
from conformance.cli import main
from conformance.messages import parse_timestamp
from conformance.network import Network, NetworkConfig, start
from conformance.network.participant import now_rfc3339
from conformance.network.registry import (
    WILDCARD, BecknRegistryClient, DediRegistryClient, InProcessRegistryClient, ListingUnsupported, Registry,
    RegistryClient, Subscriber, registry_client)
from conformance.pytest_plugin import NetworkFactory
from conformance.runner import RunConfig
from conformance.signing import KeyPair
from tests._live import SHIPPED, closed_port_url, serve, signed_search
from tests.conftest import FIXTURES

BPP = "sf-grid-loadflex"
LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
ACK = {"message": {"ack": {"status": "ACK"}}}
T = TypeVar("T")

ALICE = KeyPair.generate("alice.example.com", "alice-key-1")


def alice(**changes: Any) -> Subscriber:
    entry = Subscriber.for_key(ALICE, url="https://alice.example.com/beckn", type="BAP", domain="flexibility")
    return dataclasses.replace(entry, **changes)


@pytest.fixture
def registry_url() -> Iterator[tuple[Registry, str]]:
    """A reference registry holding alice, served on its own."""
    registry = Registry([alice()])
    with serve(registry.app()) as url:
        yield registry, url


def lookup(client_kind: str, url: str, call: Callable[[RegistryClient], Awaitable[T]], **options: Any) -> T:
    """Run one call on a fresh client of that kind, over a real HTTP client."""
    async def go() -> T:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            return await call(registry_client(url, http, kind=client_kind, **options))
    return asyncio.run(go())


# ---- the reference registry answers DeDi lookups -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["deg-sandbox", WILDCARD])
def test_the_registry_answers_a_dedi_lookup_under_its_name_or_the_wildcard(
        registry_url: tuple[Registry, str], name: str) -> None:
    _, url = registry_url
    response = httpx.get(f"{url}/lookup/alice.example.com/{name}/alice-key-1", timeout=5)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["details"] == {"subscriber_id": "alice.example.com", "url": "https://alice.example.com/beckn",
                               "type": "BAP", "domain": "flexibility", "signing_public_key": ALICE.public_key}
    assert data["network_memberships"] == ["flexibility"]
    assert parse_timestamp(data["created_at"]) is not None and parse_timestamp(data["updated_at"]) is not None


def test_the_registry_still_answers_the_beckn_lookup(registry_url: tuple[Registry, str]) -> None:
    _, url = registry_url
    found = httpx.post(f"{url}/lookup", json={"subscriber_id": "alice.example.com"}, timeout=5).json()
    assert [r["signing_public_key"] for r in found] == [ALICE.public_key]


@pytest.mark.parametrize("path", ["nobody.example.com/deg-sandbox/alice-key-1",
                                  "alice.example.com/deg-sandbox/alice-key-2"])
def test_a_dedi_lookup_of_no_such_record_is_a_404_saying_so(registry_url: tuple[Registry, str], path: str) -> None:
    _, url = registry_url
    response = httpx.get(f"{url}/lookup/{path}", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"].startswith("no record for subscriber")


def test_a_dedi_lookup_under_another_registry_name_is_a_404_naming_the_names_it_has(
        registry_url: tuple[Registry, str]) -> None:
    _, url = registry_url
    response = httpx.get(f"{url}/lookup/alice.example.com/elsewhere/alice-key-1", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "no registry named 'elsewhere' here; this one answers to 'deg-sandbox' and "
                                        "'subscribers.beckn.one' (every registry)"}


def test_a_rotated_key_keeps_its_created_at_and_moves_its_updated_at(registry_url: tuple[Registry, str]) -> None:
    registry, url = registry_url
    first = registry.subscribers[0]
    time.sleep(0.002)
    rotated = KeyPair.generate(ALICE.subscriber_id, ALICE.unique_key_id)
    registry.subscribe(alice(signing_public_key=rotated.public_key, created_at=now_rfc3339(),
                             updated_at=now_rfc3339()))  # a new entry for the same key id, as /subscribe makes
    data = httpx.get(f"{url}/lookup/alice.example.com/deg-sandbox/alice-key-1", timeout=5).json()["data"]
    assert data["details"]["signing_public_key"] == rotated.public_key
    assert data["created_at"] == first.created_at and data["updated_at"] > first.updated_at


# ---- the DeDi client -----------------------------------------------------------------------------------------------

def test_the_dedi_client_finds_a_key_and_its_entry(registry_url: tuple[Registry, str]) -> None:
    _, url = registry_url
    assert lookup("dedi", url, lambda c: c.public_key("alice.example.com", "alice-key-1")) == ALICE.public_key
    entry = lookup("dedi", url, lambda c: c.entry("alice.example.com", "alice-key-1", type="BAP"))
    assert entry is not None and (entry["url"], entry["key_id"]) == ("https://alice.example.com/beckn", "alice-key-1")


@pytest.mark.parametrize("subscriber_id, key_id, type", [
    ("nobody.example.com", "alice-key-1", None),  # 404
    ("alice.example.com", "alice-key-1", "BG"),   # found, but not a gateway's
    ("alice.example.com", "..", None),            # a path segment that would ask another URL
])
def test_the_dedi_client_says_none_for_no_such_key(registry_url: tuple[Registry, str], subscriber_id: str,
                                                   key_id: str, type: str | None) -> None:
    _, url = registry_url
    assert lookup("dedi", url, lambda c: c.public_key(subscriber_id, key_id, type=type)) is None


def test_the_dedi_client_escapes_ids_into_one_path_segment_each(registry_url: tuple[Registry, str]) -> None:
    registry, url = registry_url
    odd = KeyPair.generate("odd id?.example.com", "key/1#2")
    registry.subscribe(Subscriber.for_key(odd, url="https://odd.example.com", type="BPP", domain="flexibility"))
    assert lookup("dedi", url, lambda c: c.public_key("odd id?.example.com", "key/1#2")) == odd.public_key


def test_the_dedi_client_asks_under_its_registry_name(registry_url: tuple[Registry, str]) -> None:
    _, url = registry_url
    ask = lambda c: c.public_key("alice.example.com", "alice-key-1")  # noqa: E731
    assert lookup("dedi", url, ask, name="deg-sandbox") == ALICE.public_key
    assert lookup("dedi", url, ask, name="elsewhere") is None


@pytest.mark.parametrize("kind", ["beckn", "dedi", "in-process"])
def test_a_key_not_found_is_not_remembered_and_refresh_rereads_a_cached_one(
        registry_url: tuple[Registry, str], kind: str) -> None:
    registry, url = registry_url
    bob = KeyPair.generate("bob.example.com", "bob-key-1")
    rotated = KeyPair.generate("bob.example.com", "bob-key-1")

    async def story(client: RegistryClient) -> list[str | None]:
        seen = [await client.public_key("bob.example.com", "bob-key-1")]
        registry.subscribe(Subscriber.for_key(bob, url="https://bob.example.com", type="BPP", domain="flexibility"))
        seen.append(await client.public_key("bob.example.com", "bob-key-1"))
        registry.subscribe(Subscriber.for_key(rotated, url="https://bob.example.com", type="BPP", domain="flexibility"))
        seen.append(await client.public_key("bob.example.com", "bob-key-1"))
        seen.append(await client.public_key("bob.example.com", "bob-key-1", refresh=True))
        return seen

    told = asyncio.run(story(InProcessRegistryClient(registry, url=url))) if kind == "in-process" else \
        lookup(kind, url, story)
    assert told == [None, bob.public_key, bob.public_key, rotated.public_key]


def test_the_in_process_client_answers_as_the_beckn_one_does(registry_url: tuple[Registry, str]) -> None:
    """What the reference network's own participants read: its Registry, with no HTTP in between."""
    registry, url = registry_url

    async def answers(client: RegistryClient) -> list[Any]:
        return [await client.public_key("alice.example.com", "alice-key-1"),
                await client.public_key("alice.example.com", "alice-key-1", type="BG"),  # not a gateway's
                await client.public_key("nobody.example.com", "alice-key-1"),
                await client.entry("alice.example.com", "alice-key-1", type="BAP"),
                await client.find(type="BAP", domain="flexibility", location=None), client.can_list]

    assert asyncio.run(answers(InProcessRegistryClient(registry, url=url))) == lookup("beckn", url, answers)


def counting(app: Starlette, asked: list[str]) -> Callable[..., Awaitable[None]]:
    """`app`, noting the path of every request in `asked` and answering it 50 ms late (lookups overlap)."""
    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asked.append(scope["path"])
            await asyncio.sleep(0.05)
        await app(scope, receive, send)
    return counted


@pytest.mark.parametrize("kind", ["beckn", "dedi"])
def test_lookups_of_one_key_made_at_once_share_one_request(kind: str) -> None:
    """A burst of messages signed with one key costs one lookup, not one per message; a burst of refreshes (a
    bad signature each, under a cached key) one more."""
    asked: list[str] = []

    async def burst(client: RegistryClient) -> list[str | None]:
        keys = await asyncio.gather(*(client.public_key("alice.example.com", "alice-key-1") for _ in range(50)))
        fresh = await asyncio.gather(*(client.public_key("alice.example.com", "alice-key-1", refresh=True)
                                       for _ in range(50)))
        return [*keys, *fresh]

    with serve(counting(Registry([alice()]).app(), asked)) as url:
        assert lookup(kind, url, burst) == [ALICE.public_key] * 100
    assert len(asked) == 2


def test_a_lookup_shared_by_several_goes_on_when_one_of_them_gives_up() -> None:
    asked: list[str] = []

    async def story(client: RegistryClient) -> list[str | None]:
        first = asyncio.create_task(client.public_key("alice.example.com", "alice-key-1"))
        others = [asyncio.create_task(client.public_key("alice.example.com", "alice-key-1")) for _ in range(3)]
        await asyncio.sleep(0.01)
        first.cancel()  # the request that asked first is cancelled (its client went away)
        return await asyncio.gather(*others)

    with serve(counting(Registry([alice()]).app(), asked)) as url:
        assert lookup("beckn", url, story) == [ALICE.public_key] * 3
    assert len(asked) == 1


def answering(status: int, body: bytes, media_type: str = "application/json") -> Starlette:
    """A registry stand-in that answers every lookup, of either kind, the same way."""
    async def reply(request: Request) -> Response:
        return Response(body, status_code=status, media_type=media_type)
    return Starlette(routes=[Route("/{path:path}", reply, methods=["GET", "POST"])])


@pytest.mark.parametrize("kind", ["beckn", "dedi"])
@pytest.mark.parametrize("status, body, error", [
    (500, b'{"error": "down"}', httpx.HTTPStatusError),
    (503, b"<html>maintenance</html>", httpx.HTTPStatusError),
    (200, b"<html>a login page</html>", ValueError),
    (200, b'{"data": {"details": {"subscriber_id": "alice.example.com"}}}', ValueError),  # DeDi: no key in it
    (200, b'[{"subscriber_id": "alice.example.com"}]', ValueError),  # Beckn: no key in it
    (200, b'["alice.example.com"]', ValueError),
])
def test_a_registry_that_answers_nonsense_raises_for_either_kind(
        kind: str, status: int, body: bytes, error: type[Exception]) -> None:
    with serve(answering(status, body)) as url:
        with pytest.raises(error):
            lookup(kind, url, lambda c: c.public_key("alice.example.com", "alice-key-1"))


def test_a_dedi_status_other_than_200_and_404_is_a_failure_not_an_answer() -> None:
    with serve(answering(204, b"")) as url:
        with pytest.raises(httpx.HTTPStatusError, match="HTTP 204"):
            lookup("dedi", url, lambda c: c.public_key("alice.example.com", "alice-key-1"))


@pytest.mark.parametrize("kind", ["beckn", "dedi"])
def test_a_registry_that_cannot_be_reached_raises_for_either_kind(kind: str) -> None:
    with pytest.raises(httpx.ConnectError):
        lookup(kind, closed_port_url(), lambda c: c.public_key("alice.example.com", "alice-key-1"))


def test_only_the_beckn_client_can_list(registry_url: tuple[Registry, str]) -> None:
    _, url = registry_url
    found = lookup("beckn", url, lambda c: c.find(type="BAP"))
    assert [r["subscriber_id"] for r in found] == ["alice.example.com"]
    with pytest.raises(ListingUnsupported, match="cannot list subscribers"):
        lookup("dedi", url, lambda c: c.find(type="BAP"))


def test_the_factory_makes_either_kind_and_refuses_what_no_lookup_could_use() -> None:
    http = httpx.AsyncClient(trust_env=False)
    beckn, dedi = registry_client("http://r", http), registry_client("http://r", http, kind="dedi")
    assert isinstance(beckn, BecknRegistryClient) and beckn.can_list
    assert isinstance(dedi, DediRegistryClient) and not dedi.can_list and dedi.name == WILDCARD
    with pytest.raises(ConfigError, match="registry type 'ldap' is not one of beckn, dedi"):
        registry_client("http://r", http, kind="ldap")
    with pytest.raises(ConfigError, match="not usable in a DeDi lookup path"):
        registry_client("http://r", http, kind="dedi", name="a/b")
    asyncio.run(http.aclose())


# ---- a reference network that looks keys up the DeDi way -----------------------------------------------------------

@pytest.fixture(scope="module")
def dedi_network() -> Iterator[Network]:
    with start(NetworkConfig(registry_type="dedi")) as net:
        yield net


def inbox(net: Network, txn: str, action: str, count: int) -> list[dict[str, Any]]:
    """The BAP's callbacks of one action for a transaction, read through its client endpoint, once `count` came."""
    deadline = time.monotonic() + 5
    while True:
        found = [m for m in httpx.get(f"{net.bap_client_url}/inbox", params={"transaction_id": txn}, timeout=5).json()
                 if m["action"] == action]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_dedi_network_plays_search_through_the_gateway_and_init(dedi_network: Network) -> None:
    net = dedi_network
    assert all(isinstance(p.registry, DediRegistryClient) and p.registry.name == "deg-sandbox"
               for p in net.participants)
    sent = httpx.post(f"{net.bap_client_url}/search", timeout=10, json={
        "context": {"location": LOCATION}, "message": {"intent": {"descriptor": {"name": "Energy Incentives"}}}}).json()
    assert sent["response"] == ACK
    txn = sent["context"]["transaction_id"]
    catalogs = inbox(net, txn, "on_search", 2)
    assert len(catalogs) == 2
    # relayed by the gateway: the BPPs found it in the registry as a BG, the BAP checked its signature as one
    assert all("x-gateway-authorization" in m["headers"] for m in catalogs)
    chosen = next(m["body"]["context"] for m in catalogs if m["body"]["context"]["bpp_id"].startswith(BPP))
    order = json.loads((FIXTURES / "conformant-transaction" / "03-init.json").read_text())["message"]
    sent = httpx.post(f"{net.bap_client_url}/init", timeout=10, json={
        "context": {"transaction_id": txn, "location": LOCATION, "bpp_id": chosen["bpp_id"],
                    "bpp_uri": chosen["bpp_uri"]}, "message": order}).json()
    assert sent["response"] == ACK
    assert len(inbox(net, txn, "on_init", 1)) == 1


def test_a_dedi_network_checks_that_a_gateway_signature_is_a_bgs(dedi_network: Network) -> None:
    net = dedi_network
    assert signed_search(net, net.bap.key, BPP, gateway_key=net.gateway.key).json() == ACK
    refused = signed_search(net, net.bap.key, BPP, gateway_key=net.bap.key)  # registered, but as a BAP
    assert refused.status_code == 401 and "Proxy-Authenticate" in refused.headers
    assert refused.json()["error"]["message"].startswith(
        "SIG_KEY_UNKNOWN: the registry has no key 'bap-key-1' for a BG named 'bap.deg-sandbox.local'")


def test_a_dedi_networks_lookups_go_through_the_dedi_path(deg_network_factory: NetworkFactory) -> None:
    """Asked under a registry name the registry does not have, every DeDi lookup is a 404: a key is unknown."""
    net = deg_network_factory(registry_type="dedi")
    first, second = (KeyPair.generate(f"{n}.example.com", f"{n}-key-1") for n in ("first", "second"))
    for key in (first, second):
        net.registry.subscribe(Subscriber.for_key(key, url="https://x.example.com", type="BAP", domain="flexibility"))
    assert signed_search(net, first, BPP).json() == ACK
    registry = net.bpps[BPP].registry
    assert isinstance(registry, DediRegistryClient)
    registry.name = "elsewhere"
    refused = signed_search(net, second, BPP)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith("SIG_KEY_UNKNOWN")


def test_a_beckn_network_answers_a_dedi_lookup_but_its_participants_read_it_in_process(deg_network: Network) -> None:
    assert all(isinstance(p.registry, InProcessRegistryClient) and p.registry.registry is deg_network.registry
               for p in deg_network.participants)
    bap = deg_network.bap.key
    response = httpx.get(f"{deg_network.registry_url}/lookup/{bap.subscriber_id}/deg-sandbox/{bap.unique_key_id}",
                         timeout=5)
    assert response.json()["data"]["details"]["signing_public_key"] == bap.public_key


# ---- configuring it: the sandbox's YAML file and flags, the harness's run ------------------------------------------

def test_the_sandbox_configuration_file_sets_the_registry_type_and_name(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text("registry_type: dedi\nregistry_name: deg-test\n")
    config = NetworkConfig.from_file(path)
    assert (config.registry_type, config.registry_name) == ("dedi", "deg-test")
    assert (NetworkConfig().registry_type, NetworkConfig().registry_name) == ("beckn", "deg-sandbox")


@pytest.mark.parametrize("text, message", [
    ("registry_type: ldap\n", "sandbox.yaml: registry type 'ldap' is not one of beckn, dedi"),
    ("registry_name: a/b\n", "sandbox.yaml: registry name 'a/b' is not usable"),
    ("registry_type: 3\n", "'registry_type' has the wrong type"),
])
def test_a_bad_registry_setting_in_the_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        NetworkConfig.from_file(path)


def test_sandbox_registry_flags_reach_the_network(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("conformance.cli.time", types.SimpleNamespace(sleep=interrupt, monotonic=time.monotonic))
    assert main(["sandbox", "--registry-type", "dedi", "--registry-name", "deg-test"]) == 0
    err = capsys.readouterr().err
    assert "/registry/lookup/{subscriber_id}/deg-test/{key_id}; the participants look keys up the dedi way" in err
    assert main(["sandbox"]) == 0
    assert "the participants look keys up the beckn way" in capsys.readouterr().err


@pytest.mark.parametrize("settings, message", [
    ({"registry_type": "ldap"}, "registry type 'ldap' is not one of beckn, dedi"),
    ({"registry_name": "deg-sandbox"}, "registry-name names a DeDi registry: add --registry-type dedi"),
    ({"registry_type": "dedi", "registry_name": ""}, "registry name '' is not usable"),
])
def test_a_run_refuses_registry_settings_no_lookup_could_use(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig(**settings)
    assert RunConfig(registry_type="dedi", registry_name="deg-sandbox").registry_name == "deg-sandbox"


@pytest.mark.parametrize("name, code, finding", [("deg-sandbox", 0, None), (WILDCARD, 0, None),
                                                 ("elsewhere", 4, "has no key deg-conformance.local")])
def test_a_run_verifies_callbacks_through_the_dedi_lookup(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          name: str, code: int, finding: str | None) -> None:
    assert main(["run", str(SHIPPED / "manual-optin.yaml"), "--registry-type", "dedi", "--registry-name",
                 name, "--callback-timeout", "1.5", "--report-dir", str(tmp_path)]) == code
    out = capsys.readouterr().out
    assert (finding in out) if finding else "1 passed" in out


def test_a_bpp_role_run_with_dedi_lookups_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--role", "bpp", str(SHIPPED / "bpp-role" / "manual-optin.yaml"),
                 "--registry-type", "dedi", "--callback-timeout", "1.5", "--report-dir", str(tmp_path)]) == 0
    assert "1 passed" in capsys.readouterr().out
