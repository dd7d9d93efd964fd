"""Wall time of a whole certification against the built-in reference network, start-up included.

A certification is `deg-conformance certify` in both roles: as BAP (against the network's gateway and BPPs) and as
BPP (against its BAP), the use case's profile, scenarios and probes. One run measures, each a
fresh `deg-conformance` process as a user starts it (interpreter, imports, the network, the reports):
  - baseline: one search through the gateway (`run` of a single one-step scenario): what any run costs;
  - each role alone, and both roles one after the other;
  - both roles at once (two processes), which is how a certification can run.
Every figure is printed in seconds and as a ratio to the baseline of the same run. The issue's target is both
roles at once under 5 s on the project's 2-core machine.

    .venv/bin/python benchmarks/certification.py [--use-case demand-flexibility] [-n 8] [--repeat 3] [--smoke]

--smoke plays one scenario per role without probes, once: seconds long, so that a broken benchmark fails the tests.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conformance import usecases

CLI = [sys.executable, "-m", "conformance.cli"]
ONE_SEARCH = """name: one search
steps:
  - {send: search, expect: {count: 1}}
"""


def timed(commands: list[list[str]]) -> float:
    """Seconds until every command (started at once) has ended; each must exit 0."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        done = list(pool.map(lambda c: subprocess.run(c, capture_output=True, text=True, timeout=600), commands))
    elapsed = time.perf_counter() - started
    for command, result in zip(commands, done):
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[3:])}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-case", default="demand-flexibility")
    parser.add_argument("-n", "--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--smoke", action="store_true", help="one scenario per role, no probes, once")
    args = parser.parse_args()
    repeat = 1 if args.smoke else args.repeat

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "one-search.yaml").write_text(ONE_SEARCH, encoding="utf-8")

        def run(role: str, what: list[str], name: str, command: str = "run") -> list[str]:
            return [*CLI, command, "--role", role, "--use-case", args.use_case, "-n", str(args.concurrency),
                    "--report-dir", str(folder / name), *what]

        if args.smoke:
            shipped = usecases.named(args.use_case).scenarios
            bap = run("bap", [str(sorted(shipped.glob("*.yaml"))[0])], "bap")
            bpp = run("bpp", [str(sorted((shipped / "bpp-role").glob("*.yaml"))[0])], "bpp")
        else:
            bap, bpp = run("bap", [], "bap", "certify"), run("bpp", [], "bpp", "certify")
        baseline = run("bap", [str(folder / "one-search.yaml")], "baseline")
        figures: dict[str, list[float]] = {"baseline": [], "bap": [], "bpp": [], "serial": [], "at once": []}
        for _ in range(repeat):  # interleaved, so that a busy moment of the machine weighs on every figure alike
            figures["baseline"].append(timed([baseline]))
            figures["bap"].append(timed([bap]))
            figures["bpp"].append(timed([bpp]))
            figures["serial"].append(figures["bap"][-1] + figures["bpp"][-1])
            figures["at once"].append(timed([bap, bpp]))
    base = statistics.median(figures["baseline"])
    what = "one scenario per role, no probes (smoke)" if args.smoke else "every scenario and probe"
    print(f"certification of {args.use_case}, {what}, -n {args.concurrency}, median of {repeat}, start-up included")
    labels = {"baseline": "baseline: one search", "bap": "role bap", "bpp": "role bpp",
              "serial": "both roles, one after the other", "at once": "both roles at once"}
    for key, label in labels.items():
        seconds = statistics.median(figures[key])
        print(f"  {label:34} {seconds:6.2f} s   ratio to baseline {seconds / base:5.2f}")
    at_once = statistics.median(figures["at once"])
    if not args.smoke:
        print(f"target: both roles at once under 5 s: {'met' if at_once < 5 else 'NOT met'} ({at_once:.2f} s)")


if __name__ == "__main__":
    main()
