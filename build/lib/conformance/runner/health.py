"""Whether the target is up: which hosts have answered this run, and which went down at which request.

A target that never answered was never reachable (RUN_UNREACHABLE, exit 3: a deployment or set-up matter). One
that answered and then drops a request without a response broke on that request: a finding of its own
(RUN_TARGET_DOWN) naming it. When the host then refuses connections, it is down, and what the harness would
still send it is not sent: those scenarios and probes are reported as not run (broken), not failed one by one.
"""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

from conformance.findings import Violation
from conformance.messages import Message
from conformance.rules import scenario as expect_rules
from conformance.rules import timing
from conformance.runner.results import ScenarioResult, StepResult
from conformance.transport import Reply


def host_of(url: str) -> str:
    """`scheme://host:port` of a URL; a URL that does not parse is its own host (it never answers)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{parts.scheme}://{parts.netloc}"


class TargetHealth:
    """Shared by every scenario and probe of a run (they run on several threads)."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._answered: set[str] = set()
        self._down: dict[str, str] = {}
        self._lock = threading.Lock()

    def answered(self, url: str) -> None:
        with self._lock:
            self._answered.add(host_of(url))

    def down_since(self, url: str) -> str | None:
        """Where the host at `url` went down (a scenario, step and message), or None while it is up."""
        with self._lock:
            return self._down.get(host_of(url))

    def judge(self, result: ScenarioResult, step: StepResult, request: Message, reply: Reply, where: str, *,
              wanted: str = "an ACK/NACK") -> None:
        """Report a request that got no reply: a timeout (TIM_NO_ACK), a host that never answered
        (RUN_UNREACHABLE), one that answered before and dropped this request (RUN_TARGET_DOWN; when it now
        refuses connections, it is marked down at `where`), or one already down (not run). `wanted` is what
        the request should have got."""
        assert reply.error is not None
        url = step.url or ""
        if not reply.error.startswith("unreachable"):
            result.report(timing.NO_ACK.finding(Violation((), f"{wanted} from POST {url}", reply.error), request),
                          step)
            return
        host = host_of(url)
        with self._lock:
            since = self._down.get(host)
            answered = host in self._answered
        if since is not None:
            result.error = f"not run: {host} has not answered since {since}"
            return
        if not answered:
            result.unreachable = True
            result.report(expect_rules.UNREACHABLE.finding(
                Violation((), f"{wanted} from POST {url}", reply.error), request), step)
            return
        refused = not self._accepts(host)
        result.report(expect_rules.TARGET_DOWN.finding(Violation(
            (), f"{wanted} from POST {url}",
            f"{reply.error}; earlier requests to {host} in this run were answered"
            + (", and it refuses connections since" if refused else "")), request), step)
        if refused:
            with self._lock:
                self._down.setdefault(host, where)

    def _accepts(self, host: str) -> bool:
        """Whether the host takes a TCP connection now: a dropped request with the host still up is that
        request's problem; a host that refuses connections is down for everything after it."""
        try:
            parts = urlsplit(host)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with socket.create_connection((parts.hostname or "", port), timeout=self.connect_timeout):
                return True
        except (OSError, ValueError):
            return False
