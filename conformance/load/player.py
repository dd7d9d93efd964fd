"""The player: one per Locust worker, a process of its own that plays scenarios with the live runner.

Why a process apart from Locust's: Locust monkey-patches the standard library for gevent as it is imported, and
the runner's listener (uvicorn on an asyncio loop, on a thread), its senders (an asyncio loop each) and its waits
(threading.Condition) then share one OS thread as greenlets: two greenlets that each run an asyncio loop there
break asyncio's rule of one running loop per thread. The player runs in a plain interpreter, exactly as `run`
does (the harness's listener on its thread, each flow on a thread of its own), and its Locust process asks it
for flows over loopback HTTP. `python -m conformance.load.player` reads its settings as one JSON line on stdin,
prints one JSON line when it is ready (or cannot start), and ends when stdin closes, so that it never outlives
the Locust process that started it.

    POST /play/{n}   play scenario n (modulo their number) in a fresh transaction: the flow's outcome (tally.py)
    POST /finish     take no more flows, let those under way end, judge what came for no flow: the worker's tally
"""
from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance import scenario as scenarios
from conformance.errors import ConfigError
from conformance.load import settings
from conformance.findings import Violation
from conformance.load.tally import Outcome, Tally, brief, outcome
from conformance.rules.scenario import UNCLAIMED
from conformance.runner import Harness
from conformance.runner.listener import Verifier
from conformance.runner.results import ScenarioResult
from conformance.runner.transcript import unsolicited
from conformance.transport import BackgroundServer, bind

MAX_FLOWS = 1024
"""Flows one player plays at once: the threads it may start (one per simulated user of its worker)."""
RETAIN = 120.0
"""Seconds a judged flow is kept, so that a callback coming after it (a late duplicate, say) is checked with its
transaction; later than that it is only reported late (RUN_UNCLAIMED): a long run cannot keep every flow."""
DRAIN = 40.0
"""Seconds `finish` lets the flows under way end (a callback's wait is the request's ttl, PT30S in the shipped
fixtures); those still running then are interrupted and not counted."""


class Player:
    """The harness as BAP for one worker, and the scenarios its users play in turn."""

    def __init__(self, plan: settings.Plan, identity: settings.Identity) -> None:
        self.harness = Harness(settings.run_config(plan, identity))
        self.scenarios = [scenarios.load(Path(p)) for p in plan.scenarios]
        self.tally = Tally()
        self._lock = threading.Lock()
        self._running = 0
        self._finishing = False
        self._interrupted = False
        self._judged: deque[tuple[float, ScenarioResult]] = deque()
        """(when, flow) of the flows judged in the last RETAIN seconds."""
        self._pool = ThreadPoolExecutor(max_workers=MAX_FLOWS, thread_name_prefix="flow")
        self._control = BackgroundServer(bind("127.0.0.1", 0), name="load player")

    def start(self) -> dict[str, Any]:
        """Start the listener (and, with no target, the reference network); what the Locust process needs to know."""
        self.harness.start()
        setup = self.harness.preflight()
        playable = [s for s in self.scenarios if not any(n == "gateway" and self.harness.gateway is None
                                                         for n in s.requires)]
        skipped = [s.id for s in self.scenarios if s not in playable]
        self.scenarios = playable
        if not playable and not setup:
            raise ConfigError(f"no scenario can be played against this target ({', '.join(skipped)} need a gateway)")
        self._control.start(Starlette(routes=[Route("/play/{n:int}", self._play, methods=["POST"]),
                                              Route("/finish", self._finish, methods=["POST"])]))
        return {"url": self._control.url, "callback_url": self.harness.callback_url, "setup_errors": setup,
                "scenarios": [s.id for s in playable], "skipped": skipped,
                "target": self.harness.target or self.harness.gateway}

    def stop(self) -> None:
        self.harness.interrupt()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._control.stop()
        self.harness.stop()

    async def _play(self, request: Request) -> Response:
        flow = await asyncio.get_running_loop().run_in_executor(self._pool, self.play, request.path_params["n"])
        if flow is None:
            return JSONResponse({"finishing": True}, status_code=503)
        return Response(orjson.dumps(flow), media_type="application/json")

    def play(self, n: int) -> Outcome | None:
        """One flow, counted in the tally; None when the run is finishing (none starts) or stopped it half-way."""
        with self._lock:
            if self._finishing:
                return None
            self._running += 1
        try:
            with self._lock:
                chosen = self.scenarios[n % len(self.scenarios)]
            result = self.harness.play(chosen)
            self.harness.inbox.forget(result.transaction_id)
            flow = outcome(result)
            with self._lock:
                if self._interrupted:
                    return None
                if flow["skipped"] is not None and chosen in self.scenarios and len(self.scenarios) > 1:
                    self.scenarios.remove(chosen)  # the target publishes no offer it needs: it stays so
                self.tally.add(flow)
                now = time.monotonic()
                self._judged.append((now, result))
                while self._judged[0][0] < now - RETAIN:
                    self._judged.popleft()
            return flow
        finally:
            with self._lock:
                self._running -= 1

    async def _finish(self, request: Request) -> Response:
        tally = await asyncio.get_running_loop().run_in_executor(None, self.finish)
        return Response(orjson.dumps(tally), media_type="application/json")

    def finish(self) -> dict[str, Any]:
        """No new flow; the flows under way end (up to DRAIN seconds, then they are interrupted and not counted);
        then what came for no flow is judged: late callbacks and callbacks for transactions no flow started."""
        with self._lock:
            self._finishing = True
        deadline = time.monotonic() + DRAIN
        while self._running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            self._interrupted = True
            self.tally.unfinished += self._running
        harness = self.harness
        harness.interrupt()
        harness.inbox.close(time.monotonic() + harness.config.ack_timeout + Verifier.LOOKUP_TIMEOUT + 1)
        with self._lock:
            kept = [result for _, result in self._judged]
        known = {result.transaction_id for result in kept}
        strays = harness.inbox.strays()
        # Late for a flow no longer kept: nothing to check it with, so it is only reported late.
        forgotten = [r for r in strays if r.transaction_id in harness.transactions and r.transaction_id not in known]
        gone = {id(r) for r in forgotten}
        judged = unsolicited(harness, [r for r in strays if id(r) not in gone], kept)
        findings = [UNCLAIMED.finding(Violation((), "no such message", f"{r.action or 'a message'} more than "
                                                f"{RETAIN:g} s after its flow was judged"), r.message("late", n))
                    for n, r in enumerate(forgotten, 1)]
        with self._lock:
            self.tally.late += len(forgotten)
            if judged is not None:
                judged.judge(harness.config.policy)
                late = [m for m in judged.unexpected if m.transaction_id in harness.transactions]
                self.tally.late += len(late)
                self.tally.orphans += len(judged.unexpected) - len(late)
                self.tally.misrouted += len(judged.unexpected) - len(late)
                findings += [f for f in judged.findings if f.waiver is None]
            self.tally.count_findings([brief(f) for f in findings])
            return self.tally.as_dict()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the Locust process, which finishes the player
    line = sys.stdin.readline()
    if not line:
        return 0  # the Locust process ended before its test started
    try:
        doc = orjson.loads(line)
        player = Player(settings.parse(settings.Plan, doc.get("plan", "{}")),
                        settings.parse(settings.Identity, doc.get("identity", "{}")))
    except (ConfigError, TypeError, ValueError) as exc:
        print(orjson.dumps({"error": str(exc)}).decode(), flush=True)
        return 2
    try:
        try:
            ready = player.start()
        except ConfigError as exc:
            print(orjson.dumps({"error": str(exc)}).decode(), flush=True)
            return 2
        print(orjson.dumps(ready).decode(), flush=True)
        sys.stdin.read()  # until the Locust process closes the pipe (or ends)
    finally:
        player.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
