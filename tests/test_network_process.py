"""The reference network in a process of its own (NetworkProcess): what `run`, `probe` and `sandbox` start. It
serves where the parent bound, says who is on it, takes registrations, refuses a bad configuration in one line,
and never outlives the process that started it."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from conformance.errors import ConfigError
from conformance.network import NetworkConfig, NetworkProcess
from conformance.network.registry import Subscriber
from conformance.signing import KeyPair
from tests._live import ROOT


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_it_serves_the_configured_participants_takes_registrations_and_frees_its_port_when_stopped() -> None:
    with NetworkProcess(NetworkConfig(faults={"sf-grid-loadflex": frozenset({"no-callback"})})) as net:
        names = [e.name for e in net.endpoints()]
        assert names[:4] == ["registry", "gateway", "bap", "bap-client"] and "sf-grid-loadflex" in net.bpp_urls
        assert net.bpp_urls["sf-grid-loadflex"] == f"{net.base_url}/bpp/sf-grid-loadflex"
        gateway = httpx.post(f"{net.registry_url}/lookup", json={"type": "BG"}, trust_env=False).json()
        assert [g["url"] for g in gateway] == [net.gateway_url]
        key = KeyPair.generate("someone.example.com", "k1")
        net.add_subscriber(Subscriber.for_key(key, url="http://127.0.0.1:9/cb", type="BAP", domain="flexibility"))
        found = httpx.post(f"{net.registry_url}/lookup", json={"subscriber_id": "someone.example.com"},
                           trust_env=False).json()
        assert [f["signing_public_key"] for f in found] == [key.public_key]
        port = int(net.base_url.rsplit(":", 1)[1])
    assert port_free(port)
    with pytest.raises(RuntimeError, match="stopped"):
        net.start()


def test_a_configuration_the_network_refuses_is_a_config_error_naming_why() -> None:
    net = NetworkProcess(NetworkConfig(faults={"nobody": frozenset({"no-callback"})}))
    port = int(net.base_url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=r"faults for unknown participants \['nobody'\]"):
        net.start()
    assert port_free(port)


def test_the_network_stops_when_the_process_that_started_it_dies() -> None:
    """However the harness ends (here: at once, without stopping anything), its network ends too and frees the
    port: it stops when its standard input closes."""
    script = ("import os, sys\nfrom conformance.network import NetworkConfig, NetworkProcess\n"
              "net = NetworkProcess(NetworkConfig()).start()\nprint(net.base_url, flush=True)\nos._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    port = int(done.stdout.strip().rsplit(":", 1)[1])
    deadline = time.monotonic() + 15
    while not port_free(port):
        assert time.monotonic() < deadline, "the network outlived the process that started it"
        time.sleep(0.1)
