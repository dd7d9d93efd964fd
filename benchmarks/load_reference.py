"""`deg-conformance load` against the reference network: flows/s and callback latency with many simulated users, as
a ratio to one user measured in the same run, and the findings under load: a conformant network must give no error
(TIM_ACK_LATENCY warnings say what the network's ACKs took, which on a saturated machine is slow).

The reference network runs in a process of its own (`deg-conformance sandbox`), searches go through its gateway;
each load run is local (one Locust process, one player), or with --workers the loaded one is a master and
that many workers on this machine. `--smoke` is a run of seconds (tests/test_benchmarks.py).

    .venv/bin/python benchmarks/load_reference.py [--users 64] [--run-time 20s] [--workers 2] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sandbox(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """The reference network on a free port, with the harness's key subscribed; its base URL."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "deg-conformance"), "sandbox", "--port", str(port)], cwd=folder, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{base}/registry/lookup", json={}, trust_env=False, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    entry = ["--subscriber-id", "load.bench", "--key-id", "k1", "--url", "http://127.0.0.1:9", "--type", "BAP",
             "--domain", "flexibility"]
    for command in (["keys", "new", *entry, "--out", "harness.key"],
                    ["keys", "subscribe", "--registry", f"{base}/registry", "--key-file", "harness.key", *entry]):
        subprocess.run([str(BIN / "deg-conformance"), *command], cwd=folder, check=True, capture_output=True)
    return process, base


IDENTITY = ["--key-file", "harness.key", "--subscriber-id", "load.bench", "--key-id", "k1"]


def load(folder: Path, base: str, users: int, run_time: str, workers: int = 0) -> dict[str, Any]:
    """One load run, local (workers 0) or a master with that many workers on this machine; its summary."""
    report = folder / f"users-{users}-workers-{workers}"
    plan = ["--gateway", f"{base}/gateway", "--registry", f"{base}/registry", "--users", str(users), "--spawn-rate",
            str(users), "--run-time", run_time, "--report-dir", str(report)]
    command = [str(BIN / "deg-conformance"), "load"]
    if not workers:
        done = subprocess.run([*command, *plan, *IDENTITY], cwd=folder, capture_output=True, text=True, timeout=600)
        stderr = done.stderr
    else:
        port = str(free_port())
        master = subprocess.Popen([*command, *plan, "--master", "--master-port", port, "--expect-workers", str(workers)],
                                  cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        helpers = [subprocess.Popen([*command, "--worker", "--master-port", port, *IDENTITY], cwd=folder,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
        stderr = master.communicate(timeout=600)[1]
        for helper in helpers:
            helper.wait(timeout=120)
    if not (report / "load-summary.json").exists():
        raise SystemExit(f"load with {users} users wrote no summary:\n{stderr[-2000:]}")
    return dict(json.loads((report / "load-summary.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--run-time", default="20s")
    parser.add_argument("--workers", type=int, default=0,
                        help="play the --users run on a master and this many workers (default: one local process)")
    parser.add_argument("--smoke", action="store_true", help="4 users against 1, 3 s each")
    args = parser.parse_args()
    users, run_time = (4, "3s") if args.smoke else (args.users, args.run_time)
    folder = Path(tempfile.mkdtemp(prefix="load-bench-"))
    network, base = sandbox(folder)
    try:
        baseline, loaded = load(folder, base, 1, run_time), load(folder, base, users, run_time, args.workers)
    finally:
        network.send_signal(signal.SIGINT)
        network.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    where = f" on {args.workers} workers" if args.workers else ""
    for name, run in (("1 user", baseline), (f"{users} users{where}", loaded)):
        findings = sum(entry["count"] for entry in run["findings"].values())
        search = run["latency_ms"]["CALLBACK"].get("on_search", {})
        print(f"{name}: {run['flows_per_s']} flows/s, flows {run['flows']}, on_search p50 {search.get('p50_ms')} ms "
              f"p95 {search.get('p95_ms')} ms; lost {run['lost']}, duplicated {run['duplicated']}, misrouted "
              f"{run['misrouted']}; findings {findings} {sorted(run['findings'])}; exit {run['exit_code']}")
    ratio = loaded["flows_per_s"] / baseline["flows_per_s"] if baseline["flows_per_s"] else float("nan")
    print(f"flows/s with {users} users: {ratio:.2f}x one user's (ideal {users}x)")
    if loaded["exit_code"] or baseline["exit_code"]:
        raise SystemExit("errors against the reference network under load: false failures of the harness")


if __name__ == "__main__":
    main()
