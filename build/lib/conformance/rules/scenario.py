"""What a scenario expects beyond the catalogue: reported by the live runner, which alone knows the plan.

They are in the catalogue so that `deg-conformance rules` lists every id a report can contain.
"""
from __future__ import annotations

from conformance.findings import Severity
from conformance.rules.registry import reported

SCENARIO = "deg-conformance scenario"

UNREACHABLE = reported(
    "RUN_UNREACHABLE", group="scenario", title="The target accepts connections",
    clause="Beckn core 1.1.0: participants expose their endpoints over HTTP(S)",
    must="accept the connection (the target could not be reached)")
OUTCOME = reported(
    "RUN_OUTCOME", group="scenario", title="The target answers as the scenario expects (ACK, NACK, error)",
    clause="Beckn core 1.1.0 Ack/NACK response and BECKN-005 error codes",
    must="be answered the way the scenario step expects")
CALLBACK_COUNT = reported(
    "RUN_CALLBACK_COUNT", group="scenario",
    title="The expected number of callbacks (as BPP: of the BAP's requests) arrives",
    clause=f"{SCENARIO}: expect.count", must="be answered by the expected number of callbacks")
ASSERTION = reported(
    "RUN_ASSERTION", group="scenario", title="A callback satisfies the scenario's assertions",
    clause=f"{SCENARIO}: assert", must="satisfy the scenario's assertion")
SAVE = reported(
    "RUN_SAVE", group="scenario", title="A value a later step needs is in the callback",
    clause=f"{SCENARIO}: save", must="hold the value that later steps use")
CALLBACK_AFTER_NACK = reported(
    "RUN_CALLBACK_AFTER_NACK", group="scenario", title="A NACKed request gets no callback",
    clause="Beckn core 1.1.0: a NACK means the request will not be processed",
    must="not be answered by a callback, since the request was NACKed")
UNCLAIMED = reported(
    "RUN_UNCLAIMED", group="scenario", severity=Severity.WARNING,
    title="Every message the target sends is one the scenario expects",
    clause=f"{SCENARIO}: expect", must="be a callback some step of the scenario expects")
TRIGGER = reported(
    "RUN_TRIGGER", group="scenario", title="The BAP's client endpoint takes the request its user asks for",
    clause="Beckn protocol server, BAP client API: POST /{action} with {context, message}",
    must="accept the request to send (a 2xx answer from the client endpoint)")
CALLBACK_NACKED = reported(
    "RUN_CALLBACK_NACKED", group="scenario", title="A BAP acknowledges a valid callback with an ACK",
    clause="Beckn core 1.1.0 Ack/NACK response: a well-formed, correctly signed message is ACKed",
    must="be ACKed (the harness's callback was valid)")
REQUEST_NOT_EXPECTED = reported(
    "RUN_REQUEST_NOT_EXPECTED", group="scenario",
    title="A BAP does not send a request the transaction no longer allows (confirm after a refused init)",
    clause="Beckn core 1.1.0: an error in a callback means the request was not served; the order does not "
           "go on from it", must="not be sent (the scenario's step expects outcome not-sent)")
TARGET_DOWN = reported(
    "RUN_TARGET_DOWN", group="scenario",
    title="The target answers every request: none closes the connection or brings the target down",
    clause="Beckn core 1.1.0: every API call is answered synchronously with an ACK or a NACK",
    must="be answered with an ACK or NACK (the target had answered earlier requests of this run, then closed "
         "the connection without a response to this one)")
