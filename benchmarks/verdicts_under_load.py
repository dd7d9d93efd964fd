"""The harness's verdicts against the reference network do not depend on how many scenarios run at once.

Plays the shipped role-bap scenarios of the default use case one at a time (`-n 1`), then enough copies of each
to fill `-n 64` and `-n 128` (13 copies of 5 scenarios, 65 in all; 26 copies, 130), against a reference network
started for each run as `run` starts it, on a clean network and on one with a BPP fault (whose verdicts are
failures, and must be the same failures). Every copy's verdict (its status and the rule ids of its findings) must
equal its scenario's at `-n 1`. Before, at `-n 64` most scenarios failed that pass at `-n 1`: the network, in the
harness's process, could not keep up, and the harness spent half its CPU loading CA bundles, so that ACKs it was
waiting for read as slow (TIM_ACK_LATENCY) or missing (TIM_NO_ACK). Prints each run's wall time, as a ratio to
the serial one, and the CPU time the harness and the network took.

    .venv/bin/python benchmarks/verdicts_under_load.py [--concurrency 64 128] [--smoke]

`--smoke`: the clean network at `-n 64` only, a run of seconds (tests/test_benchmarks.py runs it): the check
itself, not just a proof that the script works. A verdict that differs is printed, and the exit code is 1.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from typing import Any

from conformance import scenario, usecases
from conformance.network import NetworkConfig
from conformance.runner import Harness, RunConfig

FAULTY = {bpp: frozenset({"enum-out-of-range"}) for bpp in ("sf-grid-loadflex", "flexigrid-aggregator")}
"""A fault whose findings every scenario that reaches an order gets, given to both demand-flexibility BPPs: a
scenario goes on with the first offer of the on_searches in the order they arrived, so with the fault on one BPP
its verdict would depend on which BPP answered first, at any -n."""


def cpu() -> tuple[float, float]:
    """CPU seconds so far of this process (the harness) and of its children waited for (the networks)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def verdicts(scenarios: list[scenario.Scenario], concurrency: int, faults: dict[str, frozenset[str]]) -> tuple[
        list[tuple[str, Any, tuple[str, ...]]], float, str]:
    """(scenario name, status, sorted rule ids of its findings) of each, in order; the run's wall time; the CPU
    time the harness and the network took, start and stop included."""
    config = RunConfig(role="bap", concurrency=concurrency, network=NetworkConfig(faults=faults) if faults else None)
    before = cpu()
    with Harness(config) as harness:
        started = time.perf_counter()
        result = harness.run(scenarios)
        elapsed = time.perf_counter() - started
    harness_cpu, network_cpu = (after - then for after, then in zip(cpu(), before))
    return ([(s.scenario.name, s.status, tuple(sorted(f.rule_id for f in s.findings))) for s in result.scenarios],
            elapsed, f"CPU: harness {harness_cpu:.1f} s, network {network_cpu:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 128],
                        help="scenarios at once in each loaded run (default 64 128; 64 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="a run of seconds: the clean network at -n 64 only")
    args = parser.parse_args()
    levels = [64] if args.smoke else args.concurrency
    folder = usecases.named(usecases.DEFAULT).scenarios
    shipped = [s for s in map(scenario.load, scenario.discover([folder])) if s.role == "bap"]
    differ = 0
    for label, faults in [("clean", {})] + ([] if args.smoke else [("faulty", FAULTY)]):
        serial, serial_time, _ = verdicts(shipped, 1, faults)
        expected = {name: (status, rules) for name, status, rules in serial}
        statuses = sorted({str(status) for _, status, _ in serial})
        print(f"{label:7} {len(shipped)} scenarios at -n 1 in {serial_time:5.1f} s ({', '.join(statuses)})")
        for concurrency in levels:
            copies = concurrency // len(shipped) + 1
            loaded = [replace(s, name=f"{s.name} #{n}") for n in range(copies) for s in shipped]
            under_load, load_time, load_cpu = verdicts(loaded, concurrency, faults)
            wrong = [(name, status, rules) for name, status, rules in under_load
                     if (status, rules) != expected[name.rsplit(" #", 1)[0]]]
            for name, status, rules in wrong:
                original = expected[name.rsplit(" #", 1)[0]]
                print(f"  {label}: {name}: {status} {list(rules)} at -n {concurrency}, {original[0]} "
                      f"{list(original[1])} at -n 1", file=sys.stderr)
            differ += len(wrong)
            print(f"{label:7} {len(loaded)} at -n {concurrency} in {load_time:5.1f} s ({load_time / serial_time:.2f} "
                  f"of serial): {len(loaded) - len(wrong)} of {len(loaded)} verdicts equal to the serial run's; "
                  f"{load_cpu}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
