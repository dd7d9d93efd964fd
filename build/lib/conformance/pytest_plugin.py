"""pytest plugin (registered as `deg_conformance`): YAML scenarios as test items, and the reference network as
fixtures.

Opt-in, as tavern is: a YAML file is a scenario only when it says so, by its name (`*.deg.yaml`, `*.deg.yml`, as
tavern's `test_*.tavern.yaml`) or by being under a path named with `--deg-scenarios PATH` or the `deg_scenarios` ini
option. Any other YAML (a Kubernetes `scenarios/k8s/configmap.yaml`) is none of the plugin's business, and until a
scenario is collected or a fixture used, nothing heavier than this module is imported. With no path on the command
line, `--deg-scenarios` paths are what pytest collects:

    pytest --deg-scenarios scenarios/ -n 4 --alluredir allure-results

Each item plays its scenario through one harness per role and pytest process (so pytest-xdist workers each listen
on a port of their own), against the reference network unless a target is given. A scenario file that does not
parse or validate is a collection error naming the file and line; a `--deg-*` option that cannot be used stops
pytest before anything runs, with one line. Under allure-pytest, each item's steps and attachments are those the
CLI writes (conformance/reporting/allure.py).

    def test_my_bap(deg_network):
        httpx.post(f"{deg_network.bap_client_url}/search", json={...})

    def test_faulty_bpp(deg_network_factory):
        net = deg_network_factory(faults={"sf-grid-loadflex": frozenset({"no-callback"})})
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from conformance.network import Network
    from conformance.runner import Harness, RunConfig
    from conformance.runner.results import ScenarioResult
    from conformance.scenario import Scenario

SUFFIXES = (".deg.yaml", ".deg.yml")
"""A file named so is a scenario wherever it is."""
ROLES = ("bap", "bpp")
DEFAULTS = {"deg_listen": "127.0.0.1:0", "deg_signatures": "required", "deg_subscriber_id": "deg-conformance.local",
            "deg_key_id": "deg-conformance-key-1", "deg_registry_type": "beckn"}
"""Defaults of the options that have one (the CLI's). The options themselves default to None, so that pytest can
tell a session that uses none of them, and need not load the harness to check them."""

_ROOTS = pytest.StashKey[tuple[Path, ...]]()
_HARNESSES = pytest.StashKey[dict[str, "Harness"]]()
_SETUP = pytest.StashKey[dict[str, list[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deg-conformance", "DEG conformance: YAML scenarios played live against a Beckn app")
    group.addoption("--deg-scenarios", action="append", default=[], metavar="PATH",
                    help="a scenario file, or a folder whose *.yaml/*.yml files are all scenarios (repeatable); "
                         "collected when no path is given on the command line. Files named *.deg.yaml are "
                         "scenarios wherever they are")
    group.addoption("--deg-target", metavar="URL", help="as BAP: the BPP under test, where every request goes "
                                                        "(default: the reference network, started on loopback)")
    group.addoption("--deg-gateway", metavar="URL", help="as BAP: a gateway to send searches to")
    group.addoption("--deg-bap-client", metavar="URL",
                    help="role bpp scenarios: the BAP's client endpoint (default: the reference BAP)")
    group.addoption("--deg-registry", metavar="URL", help="the registry to look signing keys up in")
    group.addoption("--deg-registry-type", choices=["beckn", "dedi"],
                    help="how keys are looked up there: beckn (POST /lookup, the default) or dedi (GET "
                         "/lookup/{subscriber_id}/{name}/{key_id}, as the DEG sandbox's registry answers)")
    group.addoption("--deg-registry-name", metavar="NAME",
                    help="with --deg-registry-type dedi: the registry name to look keys up under (default "
                         "subscribers.beckn.one, every registry)")
    group.addoption("--deg-subscriber-id", metavar="ID",
                    help="the harness's subscriber id (default deg-conformance.local)")
    group.addoption("--deg-key-id", metavar="ID", help="the unique key id of the harness's key "
                                                       "(default deg-conformance-key-1)")
    group.addoption("--deg-key-file", type=Path, metavar="FILE",
                    help="the harness's base64 Ed25519 private key, as `deg-conformance keys new` writes it "
                         "(default: a fresh key, which only the reference network knows)")
    group.addoption("--deg-listen", metavar="HOST:PORT",
                    help="where the harness listens: for callbacks as BAP, as its BPPs as BPP (default "
                         "127.0.0.1:0, a free port); under pytest-xdist a fixed PORT is the first worker's, and "
                         "worker N listens on PORT+N")
    group.addoption("--deg-callback-url", metavar="URL",
                    help="the public URL the target reaches the harness at, when it differs from --deg-listen; "
                         "{worker} is replaced by the xdist worker's number (0 without xdist), {port} by the "
                         "worker's port (--deg-listen's must then be fixed)")
    group.addoption("--deg-signatures", choices=["required", "optional", "off"],
                    help="callbacks must be signed (required, the default), are verified when signed (optional), "
                         "or neither")
    group.addoption("--deg-callback-timeout", type=float, metavar="SECONDS", help="a cap on every callback wait")
    parser.addini("deg_scenarios", type="paths", default=[],
                  help="scenario files, or folders whose *.yaml/*.yml files are all scenarios (paths relative to "
                       "this file), as --deg-scenarios")


@pytest.hookimpl
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """`pytest --deg-scenarios scenarios/` plays those scenarios: with no path on the command line, the
    --deg-scenarios paths are what pytest collects (instead of testpaths or the current folder)."""
    given = early_config.known_args_namespace
    if given.deg_scenarios and not given.file_or_dir:
        args.extend(given.deg_scenarios)


def pytest_configure(config: pytest.Config) -> None:
    named = [config.invocation_params.dir / p for p in config.getoption("deg_scenarios")]
    config.stash[_ROOTS] = tuple(p.absolute() for p in [*named, *config.getini("deg_scenarios")])
    # What the user gave is checked now, once (under xdist, before any worker starts): a bad option is one line.
    if any(value is not None for name, value in vars(config.option).items()
           if name.startswith("deg_") and name != "deg_scenarios"):
        from conformance.errors import ConfigError
        from conformance.runner import Harness
        try:
            for role in ROLES:
                Harness(run_config(config, role))
        except ConfigError as exc:
            raise pytest.UsageError(f"deg-conformance: {exc}") from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario(file_path, parent.config.stash.get(_ROOTS, ())):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def is_scenario(path: Path, roots: tuple[Path, ...]) -> bool:
    """Named as one (`*.deg.yaml`), or a YAML file at or under a path the user named as holding scenarios."""
    if path.name.endswith(SUFFIXES):
        return True
    return path.suffix in (".yaml", ".yml") and any(path.is_relative_to(root) for root in roots)


def worker_address(listen: str, callback_url: str | None, worker: int) -> tuple[str, str | None]:
    """The --deg-listen address and --deg-callback-url of xdist worker number `worker`: a fixed port is offset by
    the number (port 0 stays a free port), and the URL's {worker} and {port} are filled in. A public URL naming the
    port needs the port fixed: a free port is only known once the listener is bound, after the URL is used."""
    from conformance.errors import ConfigError

    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--deg-listen {listen!r}: write HOST:PORT, e.g. 127.0.0.1:8081 (port 0: a free port)")
    mine = int(port) + worker if int(port) else 0
    if mine > 65535:
        raise ConfigError(f"--deg-listen {listen!r}: worker {worker} would listen on port {mine}, past 65535")
    if callback_url is not None and "{port}" in callback_url and not mine:
        raise ConfigError("--deg-callback-url with {port} needs a fixed --deg-listen port (e.g. 0.0.0.0:8081): "
                          "a free port is not known in advance")
    if callback_url is not None:
        callback_url = callback_url.replace("{worker}", str(worker)).replace("{port}", str(mine))
    return f"{host}:{mine}", callback_url


def run_config(config: pytest.Config, role: str) -> RunConfig:
    """The harness's settings for `role` in this pytest process, from the --deg-* options."""
    from conformance.keys import load_key_file
    from conformance.runner import RunConfig

    def option(name: str) -> Any:
        value = config.getoption(name)
        return DEFAULTS.get(name) if value is None else value

    # pytest-xdist's workers are gw0, gw1, ...; a process that is not one is worker 0.
    worker = int(getattr(config, "workerinput", {}).get("workerid", "gw0").removeprefix("gw"))
    listen, callback_url = worker_address(option("deg_listen"), option("deg_callback_url"), worker)
    key_file = option("deg_key_file")
    as_bap = role == "bap"
    return RunConfig(
        role=role, target=option("deg_target" if as_bap else "deg_bap_client"),
        gateway=option("deg_gateway") if as_bap else None, registry=option("deg_registry"),
        registry_type=option("deg_registry_type"), registry_name=option("deg_registry_name"),
        listen=listen, callback_url=callback_url, subscriber_id=option("deg_subscriber_id"),
        key_id=option("deg_key_id"), private_key=load_key_file(key_file, flag="--deg-key-file") if key_file else None,
        signatures=option("deg_signatures"), callback_timeout=option("deg_callback_timeout"))


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from conformance import scenario
        from conformance.errors import ConfigError

        try:
            loaded = scenario.load(self.path)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from None
        yield ScenarioItem.from_parent(self, name=loaded.id, scenario=loaded)


class ScenarioNotPassed(Exception):
    """A scenario's result other than passed or skipped; its text is what Allure shows as the test's message (the
    failing rule ids, or why there is no verdict)."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(", ".join(sorted({f.rule_id for f in result.errors})) or result.why or result.status)
        self.result = result


class ScenarioFailed(ScenarioNotPassed, AssertionError):
    """The target broke a rule: an assertion, which Allure reports as failed."""


class ScenarioBroken(ScenarioNotPassed):
    """No verdict (the scenario could not go on, or the harness met a bug): Allure reports it as broken."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        for tag in scenario.tags:  # `pytest -m manual_flex` selects scenarios by tag
            mark = tag.replace("-", "_")
            self.config.addinivalue_line("markers", f"{mark}: scenarios tagged {tag}")
            # The mark carries the tag as written: allure-pytest makes a tag of a mark only when it has no
            # argument, and the scenario's own tags are already among its Allure labels.
            self.add_marker(getattr(pytest.mark, mark)(tag))

    def runtest(self) -> None:
        from conformance.errors import SetupError
        from conformance.reporting.allure import describe, emit

        harness = _harness(self.config, self.scenario.role)
        problems = self.config.stash[_SETUP][self.scenario.role]
        if problems:
            raise SetupError("; ".join(f"set-up: {p}" for p in problems))
        result = harness.play(self.scenario)
        emit(describe(result, participant=_participant(self.config, self.scenario.role)))
        if result.status == "skipped":
            pytest.skip(result.skipped or "")
        if result.status == "failed":
            raise ScenarioFailed(result)
        if result.status == "broken":
            raise ScenarioBroken(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from conformance.errors import ConfigError, SetupError
        from conformance.reporting.live import scenario_text

        if isinstance(excinfo.value, ScenarioNotPassed):
            result = excinfo.value.result
            return scenario_text(result) + (f"\n\n{result.internal_error}" if result.internal_error else "")
        if isinstance(excinfo.value, (ConfigError, SetupError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.scenario.name}"


def _participant(config: pytest.Config, role: str) -> str:
    if role == "bpp":
        return config.getoption("deg_bap_client") or "the reference BAP"
    return config.getoption("deg_target") or config.getoption("deg_gateway") or "the reference network"


def _harness(config: pytest.Config, role: str) -> Harness:
    """One harness per role and pytest process, started on first use and stopped when the session ends; what its
    pre-flight check finds (the harness's key not in the registry, ...) is kept, for every scenario to report."""
    harnesses = config.stash.setdefault(_HARNESSES, {})
    if role not in harnesses:
        from conformance.runner import Harness

        harness = Harness(run_config(config, role))
        config.add_cleanup(harness.stop)
        harness.start()  # kept only once started: a harness that failed to start is tried again, and says why
        config.stash.setdefault(_SETUP, {})[role] = harness.preflight()
        harnesses[role] = harness
    return harnesses[role]


class NetworkFactory:
    """What `deg_network_factory` gives: call it with NetworkConfig settings to start a network. Each network is
    recorded before it starts, so `stop_all()` releases even one whose start failed."""

    def __init__(self) -> None:
        self.networks: list[Network] = []

    def __call__(self, **settings: Any) -> Network:
        from conformance.network import Network, NetworkConfig

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
