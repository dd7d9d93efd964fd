"""`deg-conformance load`: the shipped scenarios played by many simulated users at once, on Locust.

Three kinds of process, so that gevent and asyncio never share one:
- this one (the command): checks the settings, then runs Locust (`python -m locust` with locustfile.py) and
  returns its exit code; Locust must be imported first in a process, since it monkey-patches the standard library
  for gevent as it is imported, and the command has imported ssl and asyncio long before;
- the Locust process (local, master or worker): simulated users, Locust's statistics, CSV and HTML;
- one player per local run or worker (player.py): the live runner, its callback listener and the rule engine, as
  `run` uses them, asked for one whole flow at a time.

Distributed: `load --master --expect-workers N ...` with the plan, and N times `load --worker --master-host H`
with each worker's identity (listener, key).
"""
from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from conformance.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_SETUP, ConfigError, SetupError
from conformance.load import settings

__all__ = ["LoadConfig", "run"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MODES = ("local", "master", "worker")
TIMESPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
LOGLEVEL_ENV = "DEG_CONFORMANCE_LOAD_LOGLEVEL"
"""Locust's log level (default WARNING; INFO or DEBUG show how master and workers talk)."""
STOP_GRACE = 90.0
"""Seconds the command waits for Locust after a Ctrl-C (flows under way end, reports are written)."""


@dataclass(frozen=True, kw_only=True)
class LoadConfig:
    """A load run: the plan (not on a worker), this process's identity (not on a master), and Locust's settings."""

    mode: str = "local"
    plan: settings.Plan = field(default_factory=settings.Plan)
    identity: settings.Identity = field(default_factory=settings.Identity)
    users: int = 1
    spawn_rate: float = 1.0
    run_time: str = "10s"
    report_dir: Path = Path("reports/load")
    master_host: str = "127.0.0.1"
    """As worker: where the master is; as master: the address it listens on for workers."""
    master_port: int = 5557
    expect_workers: int = 1
    expect_workers_max_wait: int = 60
    """Seconds a master waits for its workers before it gives up (a set-up error)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.users < 1 or self.spawn_rate <= 0 or self.expect_workers < 1 or self.expect_workers_max_wait < 1:
            raise ConfigError("--users, --expect-workers and --expect-workers-max-wait must be at least 1, "
                              "--spawn-rate above 0")
        if not (0 < self.master_port < 65536):
            raise ConfigError(f"--master-port {self.master_port}: not a TCP port")
        if not TIMESPAN.fullmatch(self.run_time) or not self.run_time or seconds(self.run_time) == 0:
            raise ConfigError(f"--run-time {self.run_time!r}: write a duration such as 30s, 5m or 1h30m")
        if self.mode == "master" and self.plan.target is None and self.plan.gateway is None:
            raise ConfigError("--master needs --target or --gateway: without one each worker would play against a "
                              "reference network of its own")
        if self.mode != "local" and self.plan.faults:
            raise ConfigError("--fault applies to the reference network a local run starts (no --target, no --master)")
        if self.mode != "worker":
            settings.run_config(self.plan, self.identity)  # what the players would refuse is refused here, at once


def run(config: LoadConfig) -> int:
    """Run Locust with the load locustfile and this run's settings; its exit code (the run's verdict)."""
    if importlib.util.find_spec("locust") is None:
        raise SetupError("load runs on Locust, which is not installed: pip install 'deg-conformance[load]'")
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
            "--loglevel", os.environ.get(LOGLEVEL_ENV, "WARNING")]
    if config.mode == "worker":
        argv += ["--worker", "--master-host", config.master_host, "--master-port", str(config.master_port)]
    else:
        report = config.report_dir
        try:
            report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--report-dir {report}: cannot write reports there: {exc.strerror or exc}") from None
        (report / "load-summary.json").unlink(missing_ok=True)  # a former run's must not pass for this one's
        argv += ["-u", str(config.users), "-r", f"{config.spawn_rate:g}", "--deg-run-time", f"{seconds(config.run_time):g}",
                 "--csv", str(report / "locust"), "--html", str(report / "locust.html"),
                 "--deg-plan", settings.dump(config.plan)]
        if config.mode == "master":
            argv += ["--master", "--master-bind-host", config.master_host, "--master-bind-port",
                     str(config.master_port), "--expect-workers", str(config.expect_workers),
                     "--expect-workers-max-wait", str(config.expect_workers_max_wait)]
    env = {**os.environ, settings.IDENTITY_ENV: settings.dump(config.identity),
           settings.REPORT_ENV: str(config.report_dir)}
    process = subprocess.Popen(argv, env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:  # the whole process group had the SIGINT: Locust stops, finishes and reports
        try:
            process.wait(timeout=STOP_GRACE)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.send_signal(signal.SIGKILL)
        return EXIT_INTERRUPTED
    if config.mode == "worker":  # the verdict is the master's; a worker only ends well or not
        if code != 0:
            print(f"deg-conformance: set-up error: this worker ended with Locust's exit {code} (its log above says why: "
                  f"a master at {config.master_host}:{config.master_port} it could not reach within Locust's "
                  "5 minutes of retries?)", file=sys.stderr)
            return EXIT_SETUP
        return code
    summary = config.report_dir / "load-summary.json"
    if summary.exists():  # the verdict, whatever Locust exits with (it exits 1 on its own for reasons of its own)
        return int(orjson.loads(summary.read_bytes())["exit_code"])
    if code == 1:  # Locust gave up before the test began: workers that never connected
        print(f"deg-conformance: set-up error: the load run ended before it began (Locust's log above says why: with "
              f"--master, fewer than {config.expect_workers} worker(s) connected within "
              f"{config.expect_workers_max_wait} s?)", file=sys.stderr)
        return EXIT_SETUP
    print(f"deg-conformance: internal error: Locust ended (exit {code}) before the run was judged; its log above says "
          "why: a bug of the harness, not a verdict on the target", file=sys.stderr)
    return EXIT_INTERNAL


def seconds(timespan: str) -> float:
    """30s, 5m, 1h30m or a bare number of seconds, in seconds."""
    match = TIMESPAN.fullmatch(timespan)
    assert match is not None, "checked by LoadConfig"
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs
