"""pytest plugin (registered as `deg_conformance`): fixtures that run the reference DEG network in a test.

    def test_my_bap(deg_network):
        httpx.post(f"{deg_network.bap_client_url}/search", json={...})

    def test_faulty_bpp(deg_network_factory):
        net = deg_network_factory(faults={"sf-grid-loadflex": frozenset({"no-callback"})})
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from conformance.network import Network, NetworkConfig


@pytest.fixture
def deg_network_factory() -> Iterator[Callable[..., Network]]:
    """Start reference networks with any NetworkConfig settings; all are stopped when the test ends."""
    started: list[Network] = []

    def make(**settings: Any) -> Network:
        network = Network(NetworkConfig(**settings)).start()
        started.append(network)
        return network

    yield make
    for network in started:
        network.stop()


@pytest.fixture
def deg_network(deg_network_factory: Callable[..., Network]) -> Network:
    """The reference network with default settings, on a free loopback port, for one test."""
    return deg_network_factory()
