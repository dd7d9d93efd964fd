"""Running the reference network: the pytest fixtures, the YAML configuration and `deg-conformance sandbox`."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import ConfigError, transport
from conformance.network import Network, NetworkConfig
from conformance.network.participant import Participant
from conformance.pytest_plugin import NetworkFactory
from conformance.signing import KeyPair

BPP = "sf-grid-loadflex"
LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}
SEARCH = {"intent": {"descriptor": {"name": "Energy Incentives"}}}
ACK = {"message": {"ack": {"status": "ACK"}}}


def test_fixture_gives_a_running_network(deg_network: Network) -> None:
    found = httpx.post(f"{deg_network.registry_url}/lookup", json={"type": "BPP"}, timeout=5).json()
    bpps = sorted(r["subscriber_id"] for r in found)
    assert bpps == sorted(f"{p.stem}.deg-sandbox.local" for p in NetworkConfig().catalogs)  # every use case's
    assert {"flexigrid-aggregator.deg-sandbox.local", "sf-grid-loadflex.deg-sandbox.local"} <= set(bpps)


def test_factory_stops_what_it_started(deg_network_factory) -> None:
    net = deg_network_factory(latency=0.0)
    assert httpx.post(f"{net.registry_url}/lookup", json={}, timeout=5).status_code == 200
    net.stop()
    assert released(net)


def released(net: Network) -> bool:
    """The network stopped and closed its listening socket. (Posting to its old port instead races with
    tests running beside it, which may be given the freed port at once.)"""
    return net._server.stopped and net._server.sock.fileno() == -1


def test_config_file_sets_every_field(tmp_path: Path) -> None:
    key = KeyPair.generate("x", "y")
    catalog = Path(__file__).resolve().parent.parent / "fixtures/demand-flexibility/catalogs/sf-grid-loadflex.json"
    path = tmp_path / "sandbox.yaml"
    path.write_text(f"host: 127.0.0.1\nport: 0\ndomain: flexibility\nskew: 9\nlatency: 0.5\n"
                    f"catalogs: [{catalog}]\nfaults:\n  sf-grid-loadflex: [no-callback]\n"
                    f"variations:\n  sf-grid-loadflex: [support-ticket, other-ids]\n  bap: [thin-client]\n"
                    f"keys:\n  sf-grid-loadflex: {key.private_key}\n")
    config = NetworkConfig.from_file(path, latency=0.25)
    assert (config.skew, config.latency, config.catalogs) == (9, 0.25, (catalog,))
    assert config.faults == {"sf-grid-loadflex": frozenset({"no-callback"})}
    assert config.variations == {"sf-grid-loadflex": frozenset({"support-ticket", "other-ids"}),
                                 "bap": frozenset({"thin-client"})}
    net = Network(config)
    try:
        assert list(net.bpps) == ["sf-grid-loadflex"]
        assert net.bpps["sf-grid-loadflex"].key.public_key == key.public_key
        assert net.bpps["sf-grid-loadflex"].variations == frozenset({"support-ticket", "other-ids"})
    finally:
        net.stop()


@pytest.mark.parametrize("text, message", [
    ("colour: red\n", "unknown settings"),
    ("port: eighty\n", "'port' has the wrong type"),
    ("faults:\n  nobody: [no-callback]\n", "faults for unknown participants"),
    ("faults:\n  bap: [explode]\n", "unknown faults"),
    ("variations:\n  nobody: [support-ticket]\n", "variations for unknown participants"),
    ("variations:\n  bap: [support-ticket]\n", "bap: unknown variations"),
    ("variations:\n  bap: [1, thin-client]\n", r"bap: unknown variations \['1'\]"),
    ("variations: [thin-client]\n", "'variations' has the wrong type"),
    ("keys:\n  bap: not-a-key\n", "the key for bap"),
    ("catalogs: [missing.json]\n", "not a catalog file"),
    ("- a list\n", "must be a mapping"),
])
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Network(NetworkConfig.from_file(path))


def test_sandbox_command_prints_participants_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen([sys.executable, "-m", "conformance.cli", "sandbox", "--fault", "bap=no-signature-check",
                                "--vary", f"{BPP}=support-ticket"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        names = [line.split()[0] for line in lines[1:-3]]
        assert names == ["registry", "gateway", "bap", "bap-client", *(p.stem for p in NetworkConfig().catalogs)]
        assert names[4:6] == ["flexigrid-aggregator", "sf-grid-loadflex"]
        url = next(line.split()[3] for line in lines if line.startswith("sf-grid-loadflex"))
        assert url.startswith("http://127.0.0.1:") and url.endswith("/bpp/sf-grid-loadflex")
        assert lines[-3:-1] == ["fault: bap no-signature-check\n", f"variation: {BPP} support-ticket\n"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "stopped" in (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()


# ---- lifecycle: ports, sockets, starting and stopping ---------------------------------------------------------

@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    """Every socket a Network makes during the test (the transport module's `socket` is swapped for a recorder)."""
    made: list[socket.socket] = []

    class Recorded(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    stand_in = types.SimpleNamespace(**{n: getattr(socket, n) for n in dir(socket) if not n.startswith("__")})
    stand_in.socket = Recorded
    monkeypatch.setattr(transport, "socket", stand_in)
    return made


@pytest.fixture
def quiet_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's error log off: the tests that make a server log a traceback in its thread, which Python 3.11
    cannot format safely while the main thread formats another (see test_network_refusals.crashing_networks)."""
    monkeypatch.setattr(logging.getLogger("uvicorn.error"), "disabled", True)


@pytest.mark.parametrize("settings, message", [
    ({"catalogs": (Path("missing.json"),)}, "not a catalog file"),
    ({"keys": {"bap": "not-a-key"}}, "the key for bap"),
    ({"faults": {"nobody": frozenset({"no-callback"})}}, "faults for unknown participants"),
    ({"faults": {"gateway": frozenset({"explode"})}}, "gateway: unknown faults"),
    ({"port": 70000}, "cannot listen on 127.0.0.1:70000"),
    ({"port": -1}, "cannot listen on 127.0.0.1:-1"),
])
def test_a_configuration_error_closes_the_socket(sockets: list[socket.socket], settings: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Network(NetworkConfig(**settings))
    assert len(sockets) == 1 and sockets[0].fileno() == -1


def test_a_network_that_fails_to_start_closes_its_socket(
        sockets: list[socket.socket], quiet_uvicorn: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def attach(*args: Any) -> None:
        raise RuntimeError("no HTTP client today")

    monkeypatch.setattr(Participant, "attach", attach)
    network = Network(NetworkConfig())
    with pytest.raises(RuntimeError, match="did not start"):
        network.start()
    assert sockets[0].fileno() == -1


def test_connections_made_before_start_are_queued_and_answered() -> None:
    network = Network(NetworkConfig())
    try:
        host, port = network.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"POST /registry/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            network.start()
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    finally:
        network.stop()


def test_a_stopped_network_cannot_be_started_again(deg_network: Network) -> None:
    deg_network.stop()
    with pytest.raises(RuntimeError, match="has been stopped; start a new Network"):
        deg_network.start()
    unstarted = Network(NetworkConfig())
    unstarted.stop()
    with pytest.raises(RuntimeError, match="has been stopped"):
        unstarted.start()


def test_stop_does_not_wait_for_a_pending_late_callback(deg_network_factory: NetworkFactory) -> None:
    net = deg_network_factory(faults={BPP: frozenset({"late-callback"})})
    bpp = net.bpps[BPP]
    context = {"ttl": "PT30S", "location": LOCATION, "bpp_id": bpp.key.subscriber_id, "bpp_uri": bpp.url}
    sent = httpx.post(f"{net.bap_client_url}/search", json={"context": context, "message": SEARCH}, timeout=5)
    assert sent.json()["response"] == ACK  # the on_search is 31 s away
    started = time.monotonic()
    net.stop()
    assert time.monotonic() - started < 1  # a callback not yet due is dropped: no grace to wait out
    assert not [t for t in threading.enumerate() if t.name == f"uvicorn {net.base_url}" and t.is_alive()]
    assert released(net)


def test_proxy_settings_in_the_environment_are_ignored(deg_network_factory: NetworkFactory,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as dead:  # bound, not listening: a proxy there refuses every connection
        dead.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        net = deg_network_factory()
        with httpx.Client(trust_env=False, timeout=5) as client:
            sent = client.post(f"{net.bap_client_url}/search",
                               json={"context": {"location": LOCATION}, "message": SEARCH})
            assert (sent.status_code, sent.json()["response"]) == (200, ACK)
            txn = sent.json()["context"]["transaction_id"]
            deadline = time.monotonic() + 3
            while len([m for m in net.bap.inbox if m["body"]["context"]["transaction_id"] == txn]) < 2:
                assert time.monotonic() < deadline, "the BPPs' on_search did not arrive"
                time.sleep(0.02)


def test_the_factory_records_a_network_before_starting_it(
        sockets: list[socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    def start(self: Network) -> Network:
        raise RuntimeError("cannot start")

    monkeypatch.setattr(Network, "start", start)
    factory = NetworkFactory()
    with pytest.raises(RuntimeError, match="cannot start"):
        factory()
    assert len(factory.networks) == 1
    factory.stop_all()
    assert sockets[0].fileno() == -1


def test_the_factory_stops_every_network_even_when_one_fails_to_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = NetworkFactory()
    first, second = factory(), factory()
    stop = Network.stop
    tried: list[Network] = []

    def failing_stop(self: Network) -> None:
        tried.append(self)
        if self is first:
            raise OSError("cannot stop")
        stop(self)

    monkeypatch.setattr(Network, "stop", failing_stop)
    try:
        with pytest.raises(OSError, match="cannot stop"):
            factory.stop_all()
        assert tried == [first, second]
        assert released(second)
    finally:
        stop(first)
