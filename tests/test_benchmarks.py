"""The benchmarks still run: each in its `--smoke` form, seconds long, as `make bench` would run it."""
from __future__ import annotations

import subprocess
import sys

from tests._live import ROOT


def test_the_reference_bpp_benchmark_runs_its_flows() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reference_bpp.py"), "--smoke"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "flows: 20 full search->cancel flows, 240 signed messages" in done.stdout
    assert " flows/s " in done.stdout and " of the baseline" in done.stdout


def test_the_verdicts_under_load_benchmark_finds_the_same_verdicts_at_a_high_concurrency() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "verdicts_under_load.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "65 at -n 64 in" in done.stdout and "65 of 65 verdicts equal to the serial run's" in done.stdout


def test_the_validate_benchmark_measures_every_figure_against_its_baseline() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "validate_throughput.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "transcript: 600 messages in 50 transactions" in done.stdout
    for figure in ("ratio     validate -j 1 / ceiling:", "speed-up  -j ", "peak RSS  -j 1: "):
        assert figure in done.stdout


def test_the_certification_benchmark_times_both_roles() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "certification.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("certification of demand-flexibility, one scenario per role, no probes (smoke)")
    assert [line.split("  ")[1].strip() for line in lines[1:]] == [
        "baseline: one search", "role bap", "role bpp", "both roles, one after the other", "both roles at once"]
    assert all("ratio to baseline" in line for line in lines[1:])


def test_the_load_benchmark_runs_and_finds_nothing_against_the_reference_network() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load_reference.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("; exit 0") == 2 and "flows/s with 4 users:" in done.stdout
