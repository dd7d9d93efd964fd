"""The package works wherever it is installed: the wheel holds the scenarios, fixtures, packs and schemas, and,
installed into a fresh virtual environment, every command works from an empty folder far from the checkout.

Offline: the wheel is built with the test environment's own build tools, and the fresh environment takes the
dependencies (not the package) from the test environment, through a .pth file."""
from __future__ import annotations

import json
import shutil
import signal
import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel; yields its bin folder."""
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy: an in-tree build writes build/ beside the sources, where another xdist worker may be
    # building too.
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "node_modules", "reports", "build", "*.egg-info", "__pycache__", ".mypy_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(base / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (base / "dist").glob("deg_conformance-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    [packages] = (venv / "lib").glob("python3*/site-packages")
    dependencies = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (packages / "test-dependencies.pth").write_text("\n".join(dependencies) + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                                "--no-deps", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    if installed.returncode != 0 and "no such option: --python" in installed.stderr:  # pip < 22.3
        installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--prefix", str(venv),
                                    str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    yield venv / "bin"


def test_the_wheel_holds_the_data_the_package_needs(installed: Path) -> None:
    [wheel] = installed.parent.parent.glob("dist/*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("conformance/data/scenarios/demand-flexibility/manual-optin.yaml",
                   "conformance/data/scenarios/demand-flexibility/bpp-role/manual-optin.yaml",
                   "conformance/data/fixtures/demand-flexibility/requests/init.json",
                   "conformance/data/fixtures/demand-flexibility/catalogs/sf-grid-loadflex.json",
                   "conformance/packs/demand-flexibility/flexibility_1.1.0.yaml",
                   "conformance/schemas/beckn-core-1.1.0.yaml", "conformance/schemas/scenario.schema.yaml",
                   "conformance/schemas/certificate.schema.yaml"):
        assert needed in names, needed


def test_every_command_works_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "empty"
    work.mkdir()

    def command(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(installed / "deg-conformance"), *argv], cwd=work, capture_output=True,
                              text=True, timeout=timeout)
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        return done

    imported = subprocess.run([str(installed / "python"), "-c", "import conformance; print(conformance.__file__)"],
                              cwd=work, capture_output=True, text=True, check=True)
    assert str(installed.parent) in imported.stdout  # the installed copy, not the checkout
    assert command("--version").stdout.startswith("deg-conformance ")
    assert command("rules").returncode == 0
    capture = work / "capture.json"
    capture.write_text((ROOT / "fixtures/demand-flexibility/conformant-transaction/01-search.json").read_text())
    assert command("validate", str(capture)).returncode == 0
    run = command("run", "-n", "5", "--report-dir", "reports/run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((work / "reports/run/summary.json").read_text())["passed"] == 5
    assert command("run", "--role", "bpp", "-n", "4", "--report-dir", "reports/bpp").returncode == 0
    probe = command("probe", "-n", "8", "--callback-timeout", "0.5", "--report-dir", "reports/probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr

    sandbox = subprocess.Popen([str(installed / "deg-conformance"), "sandbox"], cwd=work, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, lines = time.monotonic() + 30, []
    while time.monotonic() < deadline and sandbox.stdout is not None:
        lines.append(sandbox.stdout.readline())
        if "Ctrl-C stops the network" in lines[-1]:
            break
    sandbox.send_signal(signal.SIGINT)
    out, err = sandbox.communicate(timeout=20)
    assert sandbox.returncode == 0 and "Traceback" not in out + err
    assert any(line.startswith("sf-grid-loadflex") for line in lines), lines  # its BPPs were found


def test_a_certificate_names_the_same_harness_digests_from_the_wheel_as_from_the_checkout(installed: Path,
                                                                                         tmp_path: Path) -> None:
    """The digests of the rules, schemas, packs, scenarios and fixtures a certificate states are of the shipped
    content, not of where or how it was installed (a checkout holds files a wheel does not, such as .gitkeep)."""
    from conformance.certificate import harness_digests

    done = subprocess.run([str(installed / "python"), "-c", "import json; from conformance.certificate import "
                           "harness_digests; print(json.dumps(harness_digests()))"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == harness_digests()


def test_a_pytest_session_with_the_plugin_works_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "project"
    (work / "scenarios").mkdir(parents=True)
    (work / "scenarios" / "unknown-order.deg.yaml").write_text(
        (ROOT / "scenarios/demand-flexibility/unknown-order.yaml").read_text())
    (work / "test_network.py").write_text(
        "def test_the_fixture(deg_network):\n    assert deg_network.bpps\n")
    done = subprocess.run([str(installed / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=work,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
