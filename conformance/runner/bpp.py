"""Playing the BPP: ask the BAP under test for each step's request, answer it as a provider, check both ways.

The harness's BPPs are reference BPPs (conformance/network/bpp.py) serving the run's catalogs, so their
answers are the reference network's: an ACK and the callback for a good request, a NACK with the BECKN-005
code for one they cannot serve. What makes them the harness's is the recording: every request is kept as it
came, with its signature check and the answer given, and every callback with the BAP's reply to it.

The BAP is asked in one of two ways: `trigger` POSTs the step's body to the BAP's client endpoint (as the Beckn
protocol server's BAP client takes it); `passive` prints what the person at the BAP's controls should do, and
waits.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount

from conformance.engine import Engine
from conformance.errors import ConfigError
from conformance.findings import Violation
from conformance.messages import UNCHECKABLE, Message, decode_json, dig, parse_duration
from conformance.network.bpp import ReferenceBPP
from conformance.network.participant import INVALID_REQUEST, error, join, nack
from conformance.rules import scenario as expect_rules
from conformance.rules import timing, transaction
from conformance.runner.listener import Inbox, Received, Verifier, closed
from conformance.runner.results import ScenarioResult, StepResult
from conformance.runner.transcript import Play, assert_and_save, close, pick, play_steps, window
from conformance.scenario import Scenario, Step, build_body, render
from conformance.signing import KeyPair
from conformance.transport import Reply, Sender, encode, read_body
from conformance.usecases import Orders

if TYPE_CHECKING:
    from conformance.runner import Harness

DEFAULT_WINDOW = 30.0
SLICE = 0.25
"""Seconds between looks for a request sent under another transaction_id."""
PASSIVE_WINDOW = 120.0
"""A person needs longer than an API call: the default wait for a request in passive drive."""


class HarnessBPP(ReferenceBPP):
    """A reference BPP that records what crosses its endpoint: requests into `inbox`, callbacks into `outbox`."""

    def __init__(self, key: KeyPair, *, url: str, catalog: dict[str, Any], engine: Engine, verifier: Verifier,
                 inbox: Inbox, outbox: Inbox, skew: int, answers: dict[tuple[str, str], tuple[str, str]],
                 body_timeout: float, orders: Orders) -> None:
        super().__init__(key, url=url, catalog=catalog, engine=engine, skew=skew, orders=orders)
        self.verifier, self.inbox, self.outbox = verifier, inbox, outbox
        self.body_timeout = body_timeout
        self.answers = answers
        """(transaction_id, action) -> a step's `answer` ("nack" | "error", code), set before the step asks."""

    async def authenticate(self, request: Request, body: bytes, sender: Any) -> JSONResponse | None:
        """As the run's --signatures says: `off` takes the BAP's requests unverified, `optional` verifies only
        a request that is signed; `required` (the default) is the reference BPP's check."""
        if self.verifier.mode == "off" or (self.verifier.mode == "optional" and "Authorization" not in request.headers):
            return None
        return await super().authenticate(request, body, sender)

    async def handle(self, request: Request) -> JSONResponse:
        with self.inbox.receiving() as taken:
            if not taken:
                return closed()
            received_at = datetime.now(timezone.utc)
            started = time.perf_counter()
            raw, unfinished = await read_body(request, self.body_timeout)  # kept: the reference BPP reads it again
            doc, undecodable = decode_json(raw) if unfinished is None else (None, unfinished)
            headers = dict(request.headers.items())
            checks = await self.verifier.verify(raw, doc, headers) if unfinished is None else ()
            scripted = self.answers.get((str(dig(doc, "context", "transaction_id")), request.path_params["action"]))
            if unfinished is not None:
                response = nack(INVALID_REQUEST, f"the body is not usable: {unfinished}")
            else:
                response = await (self._scripted(request, *scripted) if scripted else super().handle(request))
            answer, _ = decode_json(bytes(response.body))
            self.inbox.add(Received(received_at, request.url.path, raw, doc, undecodable, headers, checks,
                                    party=self.key.subscriber_id,
                                    reply=Reply(response.status_code, answer, time.perf_counter() - started)))
        return response

    async def _scripted(self, request: Request, kind: str, code: str) -> JSONResponse:
        """A step's `answer`: after the checks every message gets, a NACK with `code`, or an ACK and then a
        callback carrying the error `code` instead of the reference BPP's answer."""
        action = request.path_params["action"]
        admitted = await self.admit(request, action, "bap_id", "bpp_id")
        if isinstance(admitted, JSONResponse):
            return admitted
        context = admitted[1]["context"]
        refusal = f"refused as the scenario's step says (answer: {kind} {code})"
        if kind == "nack":
            return nack(code, refusal)
        return JSONResponse({"message": {"ack": {"status": "ACK"}}}, background=self.after_response(
            self.call_back, action, context, {"error": error(code, refusal)}, context.get("bap_uri")))

    async def forward(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        sent_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        doc, undecodable = decode_json(body)
        record = Received(sent_at, url, body, doc, undecodable, headers, (), party=self.key.subscriber_id)
        try:
            response = await super().forward(url, body, headers)
        except httpx.HTTPError as exc:
            record.reply = Reply(None, None, None, f"unreachable: {type(exc).__name__}: {exc}")
            self.outbox.add(record)
            raise
        answer, _ = decode_json(response.content)
        record.reply = Reply(response.status_code, response.text if answer is None else answer,
                             time.perf_counter() - started)
        self.outbox.add(record)
        return response


def bpp_routes(bpps: dict[str, HarnessBPP]) -> list[Mount]:
    """The harness's BPPs, one under each `/bpp/<name>`."""
    return [Mount(f"/bpp/{name}", app=bpp.app()) for name, bpp in bpps.items()]


def play(scenario: Scenario, harness: "Harness") -> ScenarioResult:
    """Run one scenario against the BAP, playing the BPP. Never raises for what the target does."""
    transaction_id = str(uuid.uuid4())
    result = ScenarioResult(scenario, transaction_id, time.time(), policy=harness.config.policy)
    state = Play(harness, result, {**scenario.variables, **harness.config.variables, "transaction_id": transaction_id},
                 pinned=frozenset(harness.config.variables))
    def sent() -> list[Message]:
        return [state.message(r, "out") for r in _sent(state)]

    play_steps(state, _step, sent)
    close(state, sent)
    result.stopped = time.time()
    return result


def _sent(state: Play) -> list[Received]:
    """Every callback the harness sent in the transaction, including answers to requests it adopted."""
    adopted = {m.message_id for m in state.messages.values() if m.direction == "in"}
    outbox = state.harness.outbox
    return outbox.messages(state.result.transaction_id) + outbox.answering(adopted, state.result.transaction_id)


def _step(state: Play, step: Step, out: StepResult, client: Sender) -> bool:
    """Ask for the request, take what arrives, check the answers both ways. False when the scenario cannot go on."""
    harness = state.harness
    body = build_body(step, state.variables)
    context = body["context"]
    if not isinstance(context, dict):
        raise ConfigError(f"{step.body}: context must be an object")
    if "context.transaction_id" not in step.set:
        context["transaction_id"] = state.result.transaction_id
    asked_at = datetime.now(timezone.utc)
    default = PASSIVE_WINDOW if harness.config.drive == "passive" else DEFAULT_WINDOW
    seconds, clause = window(state, step, default, parse_duration(context.get("ttl")))
    if step.answer is not None:
        harness.answers[(state.result.transaction_id, step.send)] = step.answer
    not_sent = step.expect.outcome == "not-sent"
    if harness.config.drive == "passive":
        ask = render(step.prompt, state.variables) if step.prompt else f"make the app send {step.send}"
        harness.notify(f"{state.result.scenario.id} {out.index}/{len(state.result.scenario.steps)}: {ask} "
                       f"(transaction {state.result.transaction_id}; waiting up to {seconds:g} s)")
    elif not _trigger(state, step, out, client, body, refusal_expected=not_sent):
        return False
    if not_sent:
        return _nothing_sent(state, step, out, asked_at, seconds)
    requests = _requests(state, step, out, asked_at, seconds, clause)
    if not requests or state.result.setup_error is not None:
        return False
    candidates, judged = [], set()
    for request in requests:
        msg = state.message(request)
        callback = _exchange(state, step, out, request, judge=id(msg) not in judged)
        judged.add(id(msg))  # a copy relayed to another BPP is answered again, but judged once
        candidates.append((msg, {"request": request.doc, "callback": callback.doc if callback is not None else None}))
    if state.result.setup_error is not None:
        return False
    if step.expect.outcome == "answered" and all(c[1]["callback"] is None for c in candidates):
        return False  # refused: nothing to choose from or assert on, and later steps build on this one
    chosen = pick(state, step, out, candidates, lambda doc: doc["callback"])
    return chosen is not None and assert_and_save(state, step, out, *chosen)


def _trigger(state: Play, step: Step, out: StepResult, client: Sender, body: dict[str, Any], *,
             refusal_expected: bool = False) -> bool:
    """POST the step's body to the BAP's client endpoint; the trigger and its answer are shown in the report,
    but are not part of the Beckn transaction. A client that refuses to send is a finding, unless the step
    expects the request not to be sent (then refusing is the point)."""
    harness = state.harness
    assert harness.target is not None
    out.url = join(harness.target, step.send)
    down = harness.health.down_since(out.url)
    if down is not None:
        state.result.error = f"not run: {out.url} has not answered since {down}"
        return False
    body["context"]["action"] = step.send  # the protocol server's client API reads it from the body too
    raw = encode(body)
    reply = harness.post(client, out.url, raw, {})
    seq = state.next_seq()
    trigger = Message(body, state.result.scenario.id, seq, seq=seq, received_at=datetime.now(timezone.utc),
                      direction="trigger", endpoint=f"/{step.send}", size=len(raw))
    out.request, out.reply = trigger, reply
    if reply.error is not None:
        harness.health.judge(state.result, out, trigger, reply, state.where(out, trigger), wanted="an answer")
        return False
    if (reply.status is None or not 200 <= reply.status < 300) and not refusal_expected:
        state.report(out, expect_rules.TRIGGER, Violation((), f"a 2xx answer from POST {out.url}",
                                                          f"HTTP {reply.status}: {_brief(reply.body)}"), trigger)
        return False
    return True


def _nothing_sent(state: Play, step: Step, out: StepResult, asked_at: datetime, window: float) -> bool:
    """Outcome not-sent: the window passes with no such request in the transaction. One that comes is kept,
    shown and reported."""
    harness, result = state.harness, state.result

    def sent(msgs: list[Received]) -> bool:
        return any(r.action == step.send and r.received_at >= asked_at for r in msgs)

    arrived = [r for r in harness.inbox.wait(result.transaction_id, sent, time.monotonic() + window)
               if r.action == step.send and r.received_at >= asked_at]
    for r in arrived:
        r.claimed = True
        msg = state.message(r)
        state.steps_of[msg.seq] = out
        out.callbacks.append(msg)
        state.report(out, expect_rules.REQUEST_NOT_EXPECTED,
                     Violation((), f"no {step.send} (the BPP refused the step it builds on)", step.send), msg)
    return True


def _requests(state: Play, step: Step, out: StepResult, asked_at: datetime, window: float,
              clause: str | None) -> list[Received]:
    """The requests the step asked for: `expect.count` of them (every one within the window for `all`). A
    request carrying another transaction_id is taken, and reported, when nothing else came."""
    harness, result, expect = state.harness, state.result, step.expect

    wanted = expect.count
    # Every one of the harness's BPPs gets a search through its gateway; any other request goes to one BPP.
    senders = (len(harness.bpps) if step.send == "search" else 1) if wanted is None else None
    deadline = time.monotonic() + window
    while True:  # in slices, to notice a request under another transaction_id without waiting out the window
        got = harness.inbox.collect(result.transaction_id, step.send, asked_at, wanted,
                                    min(deadline, time.monotonic() + SLICE), senders=senders,
                                    sender=lambda r: r.party)
        if ((wanted is not None and len(got) >= wanted) or time.monotonic() >= deadline
                or (senders is not None and len({r.party for r in got}) >= senders)):
            break
        stray = None if got else harness.inbox.adopt(step.send, asked_at, harness.transactions)
        if stray is not None and harness.config.drive == "passive" and not state.messages and stray.transaction_id:
            # A person's app starts its own transaction: the scenario's is the one its first request starts.
            stray.claimed = False
            result.transaction_id = state.variables["transaction_id"] = stray.transaction_id
            harness.transactions.add(stray.transaction_id)
            continue
        if stray is not None:
            got = [stray]
            state.report(out, transaction.REQUEST_TRANSACTION_ID,
                         Violation(("context", "transaction_id"), result.transaction_id, stray.transaction_id),
                         state.message(stray))
            break
    taken: list[Received] = []
    for r in got:
        r.claimed = True
        copied = next((o for o in taken if r.relays(o)), None)
        if copied is not None:
            state.messages[id(r)] = state.messages[id(copied)]
            continue
        taken.append(r)
        msg = state.message(r)
        state.steps_of[msg.seq] = out
        out.callbacks.append(msg)
        if r.doc is not None and "bap_id" not in state.variables:
            state.variables.update({k: v for k in ("bap_id", "bap_uri")
                                    if isinstance(v := dig(r.doc, "context", k), str)})
    fewest = expect.min if wanted is None else wanted
    if not got and fewest:
        anchor = out.request or Message({"context": {"action": step.send, "transaction_id": result.transaction_id}},
                                        result.scenario.id, state.next_seq())
        asked = "" if out.reply is None else f"; the client endpoint had answered {_brief(out.reply.body)}"
        state.report(out, timing.REQUEST_MISSING,
                     Violation((), f"{step.send} within {window:g} s", f"no request{asked}"), anchor, clause=clause)
    elif len(got) < fewest:
        state.report(out, expect_rules.CALLBACK_COUNT,
                     Violation((), f"at least {fewest} × {step.send}", f"{len(got)}"), out.callbacks[0])
    return got


def _exchange(state: Play, step: Step, out: StepResult, request: Received, *, judge: bool) -> Received | None:
    """How the harness answered `request` against what the step expects (when `judge`), then the callback it
    sent and the BAP's reply to that. Returns the callback, if one was sent."""
    harness, expect = state.harness, step.expect
    msg = state.message(request)
    answer = request.reply
    unchecked = next((c for c in request.signatures if c.reason == UNCHECKABLE), None)
    if unchecked is not None:  # the harness's BPP could not check the BAP's signature: no verdict either way
        state.result.setup_error = f"the BAP's {step.send} could not be checked: {unchecked.detail}"
        return None
    if answer is not None and answer.ack == "NACK":
        if not judge:
            return None
        if expect.outcome == "answered":
            state.report(out, expect_rules.OUTCOME, Violation(
                (), "a request the BPP can serve (the harness's BPP ACKs it)",
                f"NACK {answer.error_code}: {dig(answer.body, 'error', 'message')}"), msg)
        elif expect.error_code is not None and answer.error_code != expect.error_code:
            state.report(out, expect_rules.OUTCOME, Violation(("error", "code"), expect.error_code, answer.error_code),
                         msg, path="$.error.code (the harness's NACK)")
        return None
    if expect.outcome == "nacked" and judge:
        state.report(out, expect_rules.OUTCOME, Violation((), "a request the BPP must refuse (NACK)", "ACK"), msg)
    callback = harness.outbox.wait_for(request.message_id, f"on_{step.send}", request.party,
                                       time.monotonic() + harness.config.ack_timeout + 1)
    if callback is None:
        return None  # the reference BPP always calls back after an ACK; if it could not, the run's log says why
    sent = state.message(callback, "out")
    state.steps_of[sent.seq] = out
    out.answers.append(sent)
    reply = callback.reply
    if expect.outcome == "refused" and judge and dig(callback.doc, "error", "code") is None:
        state.report(out, expect_rules.OUTCOME, Violation(("error",), "a refusal (NACK or error callback)",
                                                          "a callback without an error"), msg)
    if reply is None or reply.error is not None:
        state.report(out, timing.NO_ACK, Violation((), f"an ACK from POST {callback.path}",
                                                   reply.error if reply else "no reply"), sent)
    elif reply.status == 401:
        state.result.setup_error = harness.signature_refused(callback.path, reply, by="the BAP")
    elif reply.ack != "ACK":
        code = dig(reply.body, "error", "code")
        state.report(out, expect_rules.CALLBACK_NACKED, Violation(
            ("message", "ack", "status"), "ACK", f"HTTP {reply.status}, {reply.ack or 'no ACK'}"
            + (f", error {code}: {dig(reply.body, 'error', 'message')}" if code else "")),
            sent, path="$.message.ack.status (the BAP's synchronous response)")
    return callback


def _brief(body: Any) -> str:
    """A reply body in a finding: enough to see why (the BAP client usually says what the network answered)."""
    text = body if isinstance(body, str) else encode(body).decode()
    return text if len(text) <= 400 else text[:400] + "..."
