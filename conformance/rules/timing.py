"""Timing rules: Beckn answers every call at once (ACK/NACK) and does the work later, within the ttl.

The callback-within-ttl rule lives with the transaction rules (a capture with arrival times can judge it);
these need what only a live run measures.
"""
from __future__ import annotations

from typing import Iterator

from conformance.findings import Severity, Violation
from conformance.messages import REQUEST_ACTIONS, Message
from conformance.rules.registry import TIMED, CheckContext, reported, rule

ASYNC = "Beckn core 1.1.0: every API call is acknowledged synchronously; the response follows as a callback"


@rule("TIM_ACK_LATENCY", group="timing", severity=Severity.WARNING,
      title="The synchronous ACK/NACK comes back promptly", clause=ASYNC,
      must="be acknowledged promptly (the work belongs in the callback)", actions=REQUEST_ACTIONS,
      when=TIMED)
def ack_latency(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    limit = ctx.settings.ack_latency.total_seconds()
    if msg.latency is not None and msg.latency > limit:
        yield Violation((), f"an ACK/NACK within {limit:g} s", f"{msg.latency:.3f} s",
                        "be acknowledged promptly (the ACK/NACK of this request)")


NO_ACK = reported(
    "TIM_NO_ACK", group="timing", title="A request gets its synchronous ACK/NACK before the harness gives up",
    clause=ASYNC, must="be answered with an ACK or NACK before the harness's --ack-timeout")
CALLBACK_MISSING = reported(
    "TIM_CALLBACK_MISSING", group="timing", title="An acknowledged request gets its callback within the ttl",
    clause="Beckn core 1.1.0, context.ttl: the duration within which the callback is expected",
    must="be answered by its callback within the request's ttl (or the step's window)")
REQUEST_MISSING = reported(
    "TIM_REQUEST_MISSING", group="timing", title="A BAP sends the request its user asked for, within the wait",
    clause="Beckn core 1.1.0: a BAP calls the BPP's (or gateway's) endpoint for each action its user takes",
    must="reach the harness's BPP within the step's window")
