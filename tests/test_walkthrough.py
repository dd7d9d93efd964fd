"""The README's first certification run, as written there: its commands run in a fresh folder against the sandbox
started on a fixed port (free ports stand in for 8080 and 8081), with the registry answering the Beckn way and
the DeDi way. If the README's walkthrough stops working, this fails."""
from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._live import free_port

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- This block runs as a test (tests/test_walkthrough.py): keep it working. -->"
BIN = Path(sys.executable).parent


def walkthrough() -> list[str]:
    """The walkthrough's commands, continuation lines joined, comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(MARKER, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("registry_type", ["beckn", "dedi"])
def test_the_readme_walkthrough_certifies_the_sandbox_bpp(tmp_path: Path, registry_type: str) -> None:
    ports = {"8080": str(free_port()), "8081": str(free_port())}
    commands = [re.sub(r"\b(8080|8081)\b", lambda m: ports[m.group(1)], c) for c in walkthrough()]
    assert [c.split()[:2] for c in commands] == [["deg-conformance", "sandbox"], ["deg-conformance", "keys"],
                                                 ["deg-conformance", "keys"], ["deg-conformance", "run"]]
    if registry_type == "dedi":  # as the README says: the sandbox's registry answering the DeDi way, and the run
        commands = [c.replace(" &", " --registry-type dedi &") if " sandbox " in c else
                    c + " --registry-type dedi --report-dir reports/dedi" if " run " in c else c for c in commands]

    def argv(command: str) -> list[str]:
        words = shlex.split(command.removesuffix("&"))
        return [str(BIN / words[0]), *words[1:]]

    sandbox = subprocess.Popen(argv(commands[0]), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        registry = f"http://127.0.0.1:{ports['8080']}/registry/lookup"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.post(registry, json={}, trust_env=False, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        done = [subprocess.run(argv(c), cwd=tmp_path, capture_output=True, text=True, timeout=120) for c in commands[1:]]
    finally:
        sandbox.send_signal(signal.SIGINT)
        out, err = sandbox.communicate(timeout=20)
    assert sandbox.returncode == 0 and "Traceback" not in out + err, err
    for command, result in zip(commands[1:], done):
        assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, (
            command, result.stdout, result.stderr)
    entry = json.loads(done[0].stdout)
    assert entry["subscriber_id"] == "conformance.example.org" and (tmp_path / "harness.key").is_file()
    run = done[-1].stdout
    assert re.search(r"^3 passed, 0 failed, 0 broken, 2 skipped of 5 in .* \(exit code 0\)$", run, re.M), run
    assert "SKIP   gateway-search" in run and "SKIP   automated-control" in run
