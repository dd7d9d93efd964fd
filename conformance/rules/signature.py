"""Signature rules: each failure reason of Beckn HTTP signature verification (BECKN-006) is its own rule.

The receiver (the live runner) verifies the exact bytes against the registry when a message arrives and
records the outcome on the message; these rules turn a failed verification into a finding. Offline
captures have no such record, so the rules stay silent there.
"""
from __future__ import annotations

from typing import Iterator

from conformance.findings import Violation
from conformance.messages import Message
from conformance.rules.registry import SIGNED, CheckContext, rule

BECKN_006 = "Beckn BECKN-006 (Signing Beckn APIs in HTTP)"

REASONS: dict[str, tuple[str, str]] = {
    "SIG_MISSING": ("A message carries an Authorization signature header",
                    "carry an Authorization header: Signature keyId=\"{subscriber_id}|{key_id}|ed25519\",..."),
    "SIG_MALFORMED": ("The Authorization header has every BECKN-006 parameter in the right form",
                      "have keyId, algorithm=ed25519, created, expires, headers and signature, well-formed"),
    "SIG_ALGORITHM": ("A signature uses the ed25519 algorithm",
                      "name ed25519 as its algorithm (in keyId and algorithm)"),
    "SIG_SUBSCRIBER_MISMATCH": ("The signing subscriber is the one the context names as sender",
                                "be signed by the subscriber the context names (bpp_id for a callback)"),
    "SIG_CREATED_IN_FUTURE": ("A signature's created time is not in the future",
                              "have created <= now (plus the allowed clock skew)"),
    "SIG_EXPIRED": ("A signature has not expired on arrival", "have expires >= now (minus the allowed clock skew)"),
    "SIG_KEY_UNKNOWN": ("The signing key is registered for the subscriber",
                        "be signed with a key the registry holds for that subscriber and key id"),
    "SIG_INVALID": ("The signature verifies over the exact body bytes",
                    "verify with the registered Ed25519 key over (created) (expires) and the BLAKE2b-512 digest"),
}
"""Reason id -> (title, predicate). signing.verify raises SignatureError with these ids."""


def _reason_rule(reason: str, title: str, must: str) -> None:
    def check(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
        for sig in msg.signatures:
            if sig.header == "Authorization" and sig.reason == reason:
                yield Violation((), "a verified signature", sig.detail or reason, f"{must} (HTTP header Authorization)")

    rule(reason, group="signature", title=title, clause=BECKN_006, must=must,
         when=SIGNED)(check)


for _reason, (_title, _must) in REASONS.items():
    _reason_rule(_reason, _title, _must)


@rule("SIG_GATEWAY_INVALID", group="signature", title="A gateway's X-Gateway-Authorization header verifies",
      clause=f"{BECKN_006}: a gateway relaying a message adds its own signature",
      must="verify as a BECKN-006 signature of a registered gateway (HTTP header X-Gateway-Authorization)",
      when=SIGNED)
def gateway_signature(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    for sig in msg.signatures:
        if sig.header == "X-Gateway-Authorization" and sig.reason is not None:
            yield Violation((), "a verified gateway signature", f"{sig.reason}: {sig.detail}")
