"""Running the reference network: the pytest fixtures, the YAML configuration and `deg-conformance sandbox`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conformance import ConfigError
from conformance.network import Network, NetworkConfig
from conformance.signing import KeyPair


def test_fixture_gives_a_running_network(deg_network: Network) -> None:
    found = httpx.post(f"{deg_network.registry_url}/lookup", json={"type": "BPP"}, timeout=5).json()
    assert sorted(r["subscriber_id"] for r in found) == [
        "flexigrid-aggregator.deg-sandbox.local", "sf-grid-loadflex.deg-sandbox.local"]


def test_factory_stops_what_it_started(deg_network_factory) -> None:
    net = deg_network_factory(latency=0.0)
    assert httpx.post(f"{net.registry_url}/lookup", json={}, timeout=5).status_code == 200
    net.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{net.registry_url}/lookup", json={}, timeout=2)


def test_config_file_sets_every_field(tmp_path: Path) -> None:
    key = KeyPair.generate("x", "y")
    catalog = Path(__file__).resolve().parent.parent / "fixtures/demand-flexibility/catalogs/sf-grid-loadflex.json"
    path = tmp_path / "sandbox.yaml"
    path.write_text(f"host: 127.0.0.1\nport: 0\ndomain: flexibility\nskew: 9\nlatency: 0.5\n"
                    f"catalogs: [{catalog}]\nfaults:\n  sf-grid-loadflex: [no-callback]\n"
                    f"keys:\n  sf-grid-loadflex: {key.private_key}\n")
    config = NetworkConfig.from_file(path, latency=0.25)
    assert (config.skew, config.latency, config.catalogs) == (9, 0.25, (catalog,))
    assert config.faults == {"sf-grid-loadflex": frozenset({"no-callback"})}
    net = Network(config)
    try:
        assert list(net.bpps) == ["sf-grid-loadflex"]
        assert net.bpps["sf-grid-loadflex"].key.public_key == key.public_key
    finally:
        net.stop()


@pytest.mark.parametrize("text, message", [
    ("colour: red\n", "unknown settings"),
    ("port: eighty\n", "'port' has the wrong type"),
    ("faults:\n  nobody: [no-callback]\n", "faults for unknown participants"),
    ("faults:\n  bap: [explode]\n", "unknown faults"),
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
    process = subprocess.Popen([sys.executable, "-m", "conformance.cli", "sandbox", "--fault", "bap=no-signature-check"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        names = [line.split()[0] for line in lines[1:-2]]
        assert names == ["registry", "gateway", "bap", "bap-client", "flexigrid-aggregator", "sf-grid-loadflex"]
        url = next(line.split()[3] for line in lines if line.startswith("sf-grid-loadflex"))
        assert url.startswith("http://127.0.0.1:") and url.endswith("/bpp/sf-grid-loadflex")
        assert "fault: bap no-signature-check\n" in lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "stopped" in (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()
