"""pytest plugin (registered as `deg_conformance`): YAML scenarios as test items, and the reference network
as fixtures.

Scenario files (`*.yaml` in a folder named `scenarios`) are collected the way tavern collects its YAML
tests: `pytest scenarios/ --deg-gateway URL`. Each item plays its scenario through one harness per pytest
process (so `-n` workers each listen on their own port), against the reference network unless a target is
given. A scenario file that does not parse or validate is a collection error naming the file and line.

    def test_my_bap(deg_network):
        httpx.post(f"{deg_network.bap_client_url}/search", json={...})

    def test_faulty_bpp(deg_network_factory):
        net = deg_network_factory(faults={"sf-grid-loadflex": frozenset({"no-callback"})})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance import scenario
from conformance.errors import ConfigError
from conformance.network import Network, NetworkConfig
from conformance.runner import Harness, RunConfig
from conformance.runner.results import ScenarioResult

_HARNESSES = pytest.StashKey[dict[str, Harness]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deg-conformance", "DEG conformance scenarios")
    group.addoption("--deg-target", metavar="URL", help="the BPP under test (default: the reference network)")
    group.addoption("--deg-gateway", metavar="URL", help="a gateway to send searches to")
    group.addoption("--deg-bap-client", metavar="URL",
                    help="role bpp scenarios: the BAP's client endpoint (default: the reference BAP)")
    group.addoption("--deg-registry", metavar="URL", help="the registry to look signing keys up in")
    group.addoption("--deg-listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where callbacks are received")
    group.addoption("--deg-callback-url", metavar="URL", help="the public URL the target calls back")
    group.addoption("--deg-signatures", default="required", choices=["required", "optional", "off"])
    group.addoption("--deg-callback-timeout", type=float, metavar="SECONDS", help="cap on every callback wait")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and "scenarios" in file_path.parts:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            loaded = scenario.load(self.path)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from None
        yield ScenarioItem.from_parent(self, name=loaded.id, scenario=loaded)


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.scenario.id)
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: scenario.Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        for tag in scenario.tags:  # `pytest -m manual_flex` selects scenarios by tag
            mark = tag.replace("-", "_")
            self.config.addinivalue_line("markers", f"{mark}: scenarios tagged {tag}")
            self.add_marker(mark)

    def runtest(self) -> None:
        from conformance.reporting.allure import describe, emit

        result = _harness(self.config, self.scenario.role).play(self.scenario)
        emit(describe(result, participant=_participant(self.config, self.scenario.role)))
        if result.status != "passed":
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            from conformance.reporting.live import scenario_text
            return scenario_text(excinfo.value.result)
        if isinstance(excinfo.value, ConfigError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.scenario.name}"


def _participant(config: pytest.Config, role: str) -> str:
    if role == "bpp":
        return config.getoption("deg_bap_client") or "the reference BAP"
    return config.getoption("deg_target") or config.getoption("deg_gateway") or "the reference network"


def _harness(config: pytest.Config, role: str) -> Harness:
    """One harness per role and pytest process, started on first use and stopped when the session ends."""
    harnesses = config.stash.setdefault(_HARNESSES, {})
    if role not in harnesses:
        as_bap = role == "bap"
        harness = Harness(RunConfig(
            role=role, target=config.getoption("deg_target" if as_bap else "deg_bap_client"),
            gateway=config.getoption("deg_gateway") if as_bap else None,
            registry=config.getoption("deg_registry"), listen=config.getoption("deg_listen"),
            callback_url=config.getoption("deg_callback_url"), signatures=config.getoption("deg_signatures"),
            callback_timeout=config.getoption("deg_callback_timeout")))
        config.add_cleanup(harness.stop)
        harness.start()  # kept only once started: a harness that failed to start is tried again, and says why
        harnesses[role] = harness
    return harnesses[role]


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
