"""pytest plugin (registered as `deg_conformance`): fixtures that run the reference DEG network in a test.

    def test_my_bap(deg_network):
        httpx.post(f"{deg_network.bap_client_url}/search", json={...})

    def test_faulty_bpp(deg_network_factory):
        net = deg_network_factory(faults={"sf-grid-loadflex": frozenset({"no-callback"})})
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from conformance.network import Network, NetworkConfig


class NetworkFactory:
    """What `deg_network_factory` gives: call it with NetworkConfig settings to start a network. Each network is
    recorded before it starts, so `stop_all()` releases even one whose start failed."""

    def __init__(self) -> None:
        self.networks: list[Network] = []

    def __call__(self, **settings: Any) -> Network:
        network = Network(NetworkConfig(**settings))
        self.networks.append(network)
        return network.start()

    def stop_all(self) -> None:
        """Stop every network, each on its own: one that fails to stop does not keep the others running. The
        first failure is raised once all have been tried."""
        failures: list[Exception] = []
        for network in self.networks:
            try:
                network.stop()
            except Exception as exc:  # noqa: BLE001 - raised below, after the others are stopped
                failures.append(exc)
        self.networks.clear()
        if failures:
            raise failures[0]


@pytest.fixture
def deg_network_factory() -> Iterator[NetworkFactory]:
    """Start reference networks with any NetworkConfig settings; all are stopped when the test ends."""
    factory = NetworkFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def deg_network(deg_network_factory: NetworkFactory) -> Network:
    """The reference network with default settings, on a free loopback port, for one test."""
    return deg_network_factory()
