"""What an active probe proves: the target refuses what the specs say it must refuse, and does not answer it.

A probe sends one deliberately wrong, otherwise valid message (conformance/probes.py); the runner reports
these when the target takes it. One rule per kind of wrong, so that `deg-conformance rules` lists every id a
probe report can contain; the finding names the probe.
"""
from __future__ import annotations

from conformance.rules.registry import reported

REFUSE = "must be refused synchronously (a NACK; HTTP 401 with WWW-Authenticate for a signature), with no callback"

SIGNATURE = reported(
    "PRB_SIGNATURE", group="probe", title="A message whose signature does not hold is refused with 401",
    clause="Beckn BECKN-006 (Signing Beckn APIs in HTTP): verify the Authorization header; 401 and "
           "WWW-Authenticate when it fails", must=REFUSE)
SCHEMA = reported(
    "PRB_SCHEMA", group="probe", title="A message that breaks the core schema is refused",
    clause="Beckn core 1.1.0 (transaction.yaml): the request body's schema; BECKN-005 30000 invalid request",
    must=REFUSE)
CONTEXT = reported(
    "PRB_CONTEXT", group="probe", title="A message whose context is wrong is refused",
    clause="Beckn core 1.1.0, Context; BECKN-005 30000 invalid request", must=REFUSE)
LAYER2 = reported(
    "PRB_LAYER2", group="probe", title="A value outside the network's Layer-2 taxonomy is refused",
    clause="The use case's taxonomy (its Layer-2 pack: conformance/packs/<use case>/); BECKN-005 30000 invalid request",
    must=REFUSE)
FLOW = reported(
    "PRB_FLOW", group="probe", title="A request the transaction so far does not allow is refused",
    clause="Beckn core 1.1.0 transaction flow and Context.message_id; BECKN-005 30000, 30010 order not found",
    must=REFUSE)
