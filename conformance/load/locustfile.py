"""Locust's side of `deg-conformance load`: the locustfile every Locust process of a run loads (local, master,
workers), under gevent.

A simulated user asks its worker's player (player.py, a plain process started at test start) for one whole flow
at a time, and reports what the flow measured as Locust requests, so that Locust aggregates them across workers
into its percentiles, CSV and HTML: request type ACK (name: the action) for each synchronous reply, CALLBACK (name:
the callback's action) for each callback's delay after its request, FLOW (name: the scenario) for the whole flow,
a failure when the target broke a rule in it. The player keeps the run's verdict (tally.py); when the test stops,
each worker asks its player to finish and sends its tally to the master, which writes load-summary.json and sets
the exit code.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import orjson
import urllib3
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from conformance.load import report, settings
from conformance.load.player import DRAIN
from conformance.load.tally import Tally

START_TIMEOUT = 60.0
"""Seconds a player may take to start (and, with no target, to start the reference network)."""
PLAY_TIMEOUT = 900.0
"""Seconds one flow may take, whole: the player's own waits end sooner (each step's callback wait is the request's
ttl, and a run's end interrupts them)."""
FINAL_TIMEOUT = DRAIN + 20.0
"""Seconds the master waits for every worker's tally once the run stops."""


class Player:
    """This worker's player process, and a client for it."""

    def __init__(self) -> None:
        """Started with the Locust process, so that its imports are done before the test starts."""
        self.process = subprocess.Popen([sys.executable, "-m", "conformance.load.player"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self.ready: dict[str, Any] = {"error": "the load player was never given the run's plan"}
        self.lost: str | None = None
        """Why the player stopped answering, when it did."""
        self.http = urllib3.PoolManager(maxsize=256, retries=False)

    def configure(self, plan: str, identity: str) -> None:
        """Hand the player its settings and wait (START_TIMEOUT at most) until it plays, or says why it cannot."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps({"plan": plan, "identity": identity}) + b"\n")
        self.process.stdin.flush()
        with gevent.Timeout(START_TIMEOUT, False):
            line = self.process.stdout.readline()
        self.ready = orjson.loads(line) if line else {"error": f"the load player did not start within "
                                                               f"{START_TIMEOUT:g} s"}

    def play(self, n: int) -> dict[str, Any] | None:
        """One flow's outcome; None when the player takes no more (the run is finishing, or the player is gone)."""
        if self.lost is not None:
            return None
        try:
            answer = self.http.request("POST", f"{self.ready['url']}/play/{n}",
                                       timeout=urllib3.Timeout(connect=5, read=PLAY_TIMEOUT))
        except urllib3.exceptions.HTTPError as exc:  # the player died: a bug of the harness, reported at the end
            self.lost = f"the load player stopped answering ({type(exc).__name__}: {exc})"
            return None
        if answer.status == 503:  # the run is finishing: the player takes no more flows
            return None
        if answer.status != 200:  # a bug of the player's while playing: reported at the end, never a lost flow
            self.lost = f"the load player failed a flow (HTTP {answer.status}: {answer.data[:200]!r})"
            return None
        return dict(orjson.loads(answer.data))

    def finish(self) -> dict[str, Any]:
        if self.lost is not None:
            return {"problems": {"internal": [self.lost]}}
        try:
            answer = self.http.request("POST", f"{self.ready['url']}/finish",
                                       timeout=urllib3.Timeout(connect=5, read=FINAL_TIMEOUT))
            return dict(orjson.loads(answer.data))
        except (urllib3.exceptions.HTTPError, orjson.JSONDecodeError) as exc:
            return {"problems": {"internal": [f"the load player did not finish ({type(exc).__name__}: {exc})"]}}

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Run:
    """This Locust process's share of the run."""

    player: Player | None = None
    tally = Tally()
    finals: set[str] = set()
    """As master: the workers whose tally came in."""
    ready: set[str] = set()
    """As master: the workers whose player plays (the run time starts when all do)."""
    collected = False
    """As master: the workers were asked for their tallies."""
    turns = itertools.count()
    """Each user starts at another scenario, so that a worker's users spread over them."""
    clock: gevent.Greenlet | None = None
    """As master or local run: the run time, started once every user plays."""


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--deg-plan", default="{}", help="(set by deg-conformance load) the run's plan, as JSON")
    parser.add_argument("--deg-run-time", type=float, default=10.0,
                        help="(set by deg-conformance load) seconds to run once every user has started")


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("deg_final", _final)
        runner.register_message("deg_ready", _ready)
        return
    if isinstance(runner, WorkerRunner):
        runner.register_message("deg_finish", lambda environment, msg: environment.runner.stop(), concurrent=True)
    Run.player = Player()


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn_later(START_TIMEOUT, _never_started, environment)
    player = Run.player
    if player is None or "url" in player.ready:
        return
    player.configure(_option(environment, "deg_plan"),
                     os.environ.get(settings.IDENTITY_ENV, settings.dump(settings.Identity())))
    error = player.ready.get("error")
    problems = [f"the load player cannot start: {error}"] if error else player.ready["setup_errors"]
    if problems:
        _report_problems(environment, problems, usage=bool(error))
        return
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("deg_ready")
    else:
        _start_clock(environment)
    print(f"deg-conformance load: playing {', '.join(player.ready['scenarios'])} against {player.ready['target']}, "
          f"callbacks at {player.ready['callback_url']}", file=sys.stderr, flush=True)


def _report_problems(environment: Environment, problems: list[str], *, usage: bool) -> None:
    """A player that cannot start, or a set-up that keeps any verdict from meaning anything: the run stops."""
    tally = Tally()
    for text in problems:
        tally.problem("usage" if usage else "setup", text)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("deg_final", {"tally": tally.as_dict(), "stop": True})
    else:
        Run.tally.merge(tally.as_dict())
        gevent.spawn(_quit, environment)


def _ready(environment: Environment, msg: Any) -> None:
    """As master: a worker's player plays; the clock starts once every worker's does."""
    Run.ready.add(msg.node_id)
    runner = environment.runner
    if isinstance(runner, MasterRunner) and {c.id for c in runner.clients.all} <= Run.ready:
        _start_clock(environment)


def _start_clock(environment: Environment) -> None:
    """The run time counts from when every player plays, not from Locust's start: players and their listeners
    start first, and on a loaded machine that takes seconds that must not come out of the run."""
    if Run.clock is None:
        Run.clock = gevent.spawn_later(_option(environment, "deg_run_time"), _quit, environment)


def _never_started(environment: Environment) -> None:
    if Run.clock is None:
        Run.tally.problem("setup", f"the players had not all started {START_TIMEOUT:g} s after the test began (a "
                                   "worker whose player cannot start?)")
        _quit(environment)


@events.test_stopping.add_listener
def _test_stopping(environment: Environment, **_: Any) -> None:
    _collect(environment)


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_: Any) -> None:
    _finish(environment)


def _collect(environment: Environment) -> None:
    """As master, once: every worker stops its users and sends its tally; wait for them (FINAL_TIMEOUT at most)."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner) or Run.collected:
        return
    Run.collected = True
    workers = {c.id for c in runner.clients.all}
    for worker in workers - Run.finals:
        runner.send_message("deg_finish", None, worker)
    deadline = time.monotonic() + FINAL_TIMEOUT
    while workers - Run.finals and time.monotonic() < deadline:
        gevent.sleep(0.1)
    for worker in workers - Run.finals:
        Run.tally.problem("internal", f"worker {worker} sent no tally within {FINAL_TIMEOUT:g} s of the stop")


def _finish(environment: Environment) -> None:
    """As worker or local run, once: the player finishes (flows under way end, strays are judged); its tally is
    the run's (local) or goes to the master. A player that never started just ends."""
    player, Run.player = Run.player, None
    if player is None:
        return
    final = player.finish() if "url" in player.ready else {}
    player.close()
    if not final:
        return
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("deg_final", {"tally": final})
    else:
        Run.tally.merge(final)


def _option(environment: Environment, name: str) -> Any:
    """One of the options deg-conformance load gave this Locust process (or, on a worker, its master gave)."""
    assert environment.parsed_options is not None, "Locust parses its options before it fires any event"
    return getattr(environment.parsed_options, name)


def _quit(environment: Environment) -> None:
    assert environment.runner is not None, "Locust makes its runner before it fires any event"
    environment.runner.quit()


def _final(environment: Environment, msg: Any) -> None:
    """As master: a worker's tally (and, when its player could not start, the run stops)."""
    Run.tally.merge(msg.data["tally"])
    Run.finals.add(msg.node_id)
    if msg.data.get("stop"):
        gevent.spawn(_quit, environment)


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    """The end of every Locust process, Ctrl-C included (then the test never stopped on its own): the tallies are
    gathered as at a stop, and the master or local run writes the report."""
    _finish(environment)
    _collect(environment)
    if isinstance(environment.runner, WorkerRunner):
        environment.process_exit_code = 0  # the master holds the verdict; a worker's own failures are in it
        return
    folder = Path(os.environ.get(settings.REPORT_ENV, "."))
    environment.process_exit_code = report.write(folder, Run.tally, environment.stats)


class ScenarioUser(User):
    """A simulated BAP user: plays whole scenarios, one after another, each in a fresh transaction."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.turn = next(Run.turns)

    @task
    def flow(self) -> None:
        player = Run.player
        flow = player.play(self.turn) if player is not None and "url" in player.ready else None
        if flow is None:
            gevent.sleep(0.5)  # the run is stopping (or never started): nothing to play
            return
        self.turn += 1
        if flow["skipped"] is not None:  # the target offers nothing it needs: the player plays the others from now on
            return
        fire = self.environment.events.request.fire
        for step in flow["steps"]:
            refused = step["ack"] is None
            fire(request_type="ACK", name=step["action"], response_time=(step["ack"] or 0) * 1000,
                 response_length=0, exception=RuntimeError(step["answer"]) if refused else None, context={})
            for action, delay in step["callbacks"]:
                fire(request_type="CALLBACK", name=action, response_time=delay * 1000, response_length=0,
                     exception=None, context={})
        errors = [f["rule_id"] for f in flow["findings"] if f["severity"] == "error"]
        why = (f"findings {', '.join(sorted(set(errors)))}" if errors else
               flow["error"] if flow["status"] == "broken" else None)
        fire(request_type="FLOW", name=flow["scenario"], response_time=flow["duration"] * 1000, response_length=0,
             exception=RuntimeError(why) if why else None, context={})
