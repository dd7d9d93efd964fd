"""Beckn HTTP signatures (BECKN-006): sign a body, verify an `Authorization` or `X-Gateway-Authorization` header.

The signature covers `(created)`, `(expires)` and a BLAKE2b-512 digest of the exact body bytes, signed with
Ed25519. Verification failures carry a stable reason id (SIG_*), which the network answers with HTTP 401
and which the live runner reports as a finding.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import nacl.exceptions
import nacl.signing

ALGORITHM = "ed25519"
SIGNED_HEADERS = "(created) (expires) digest"

PublicKeyLookup = Callable[[str, str], "str | None"]
"""(subscriber_id, unique_key_id) -> the base64 signing public key the registry holds, or None."""


class SignatureError(Exception):
    """A header that does not authenticate its body. `reason` is a stable id such as SIG_EXPIRED."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    """A subscriber's signing key. The private half never appears in a repr or a log line."""

    subscriber_id: str
    unique_key_id: str
    seed: bytes = field(repr=False)
    """The 32-byte Ed25519 private seed."""

    @classmethod
    def generate(cls, subscriber_id: str, unique_key_id: str) -> "KeyPair":
        return cls(subscriber_id=subscriber_id, unique_key_id=unique_key_id,
                   seed=bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_private_key(cls, subscriber_id: str, unique_key_id: str, private_b64: str) -> "KeyPair":
        """Accepts the 32-byte seed or the 64-byte seed-and-public form BECKN-006's examples use."""
        try:
            raw = base64.b64decode(private_b64, validate=True)
        except ValueError:
            raise ValueError("the private key is not base64") from None
        if len(raw) not in (32, 64):
            raise ValueError(f"an Ed25519 private key has 32 or 64 bytes, not {len(raw)}")
        return cls(subscriber_id=subscriber_id, unique_key_id=unique_key_id, seed=raw[:32])

    @property
    def key_id(self) -> str:
        return f"{self.subscriber_id}|{self.unique_key_id}|{ALGORITHM}"

    @cached_property
    def signer(self) -> nacl.signing.SigningKey:
        """Derived once: deriving the key pair from the seed costs as much as signing a message."""
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> str:
        """Base64 of the 32-byte public key, as the registry publishes it."""
        return base64.b64encode(bytes(self.signer.verify_key)).decode()

    @property
    def private_key(self) -> str:
        """Base64 of the 32-byte seed, for writing a key file."""
        return base64.b64encode(self.seed).decode()


def body_digest(body: bytes) -> str:
    """Base64 BLAKE2b-512 of the exact bytes sent: re-serialising the JSON would change them."""
    return base64.b64encode(hashlib.blake2b(body, digest_size=64).digest()).decode()


def sign_detached(message: bytes, key: KeyPair) -> str:
    """Base64 of the Ed25519 signature of `message`: what a header carries, and what a certificate does
    (conformance/certificate.py)."""
    return base64.b64encode(key.signer.sign(message).signature).decode()


def signature_valid(message: bytes, signature: str, public_key: str) -> bool:
    """Whether base64 `signature` is `public_key`'s (base64, 32 bytes) over `message`; a key or signature that is
    not base64 or not of an Ed25519 size is simply not valid."""
    try:
        nacl.signing.VerifyKey(base64.b64decode(public_key, validate=True)).verify(
            message, base64.b64decode(signature, validate=True))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def signing_string(created: int, expires: int, digest: str) -> str:
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest}"


def sign(body: bytes, key: KeyPair, *, created: int | None = None, expires: int | None = None,
         validity: int = 300) -> str:
    """The header value (`Signature keyId=...`) for `body`, valid from `created` for `validity` seconds."""
    created = int(time.time()) if created is None else created
    expires = created + validity if expires is None else expires
    signature = sign_detached(signing_string(created, expires, body_digest(body)).encode(), key)
    return (f'Signature keyId="{key.key_id}",algorithm="{ALGORITHM}",created="{created}",expires="{expires}",'
            f'headers="{SIGNED_HEADERS}",signature="{signature}"')


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """A parsed signature header."""

    subscriber_id: str
    unique_key_id: str
    algorithm: str
    created: int
    expires: int
    headers: str
    signature: str


_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
_TIMESTAMP = re.compile(r"[0-9]+")


def parse(header: str | None) -> SignatureParams:
    """Read `Signature keyId="sub|key|ed25519",algorithm=...,created=...,expires=...,headers=...,signature=...`.

    Strict: each parameter once, three non-empty keyId parts, decimal timestamps with `expires` not before
    `created`, and a signature in canonical base64. Anything else is SIG_MALFORMED (or SIG_ALGORITHM).
    """
    if not header:
        raise SignatureError("SIG_MISSING", "no signature header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != "Signature":
        raise SignatureError("SIG_MALFORMED", f"the auth-scheme must be 'Signature', not {scheme!r}")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None:
            raise SignatureError("SIG_MALFORMED", f"cannot read the parameters at {rest[position:position + 30]!r}")
        if match.group(1) in params:
            raise SignatureError("SIG_MALFORMED", f"the parameter {match.group(1)!r} is given twice")
        params[match.group(1)] = match.group(2)
        position = match.end()
    missing = [p for p in ("keyId", "algorithm", "created", "expires", "headers", "signature") if p not in params]
    if missing:
        raise SignatureError("SIG_MALFORMED", f"missing parameters: {', '.join(missing)}")
    parts = params["keyId"].split("|")
    if len(parts) != 3 or not all(parts):
        raise SignatureError("SIG_MALFORMED", "keyId must be {subscriber_id}|{unique_key_id}|{algorithm}, "
                                              f"none of them empty, not {params['keyId']!r}")
    if parts[2] != params["algorithm"] or params["algorithm"] != ALGORITHM:
        raise SignatureError("SIG_ALGORITHM", f"keyId algorithm {parts[2]!r} and algorithm "
                                              f"{params['algorithm']!r} must both be {ALGORITHM!r}")
    if params["headers"].split() != SIGNED_HEADERS.split():
        raise SignatureError("SIG_MALFORMED", f"headers must be {SIGNED_HEADERS!r}")
    if not (_TIMESTAMP.fullmatch(params["created"]) and _TIMESTAMP.fullmatch(params["expires"])):
        raise SignatureError("SIG_MALFORMED", "created and expires must be Unix timestamps (decimal digits), not "
                                              f"{params['created']!r} and {params['expires']!r}")
    created, expires = int(params["created"]), int(params["expires"])
    if expires < created:
        raise SignatureError("SIG_MALFORMED", f"expires {expires} is before created {created}")
    try:
        base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise SignatureError("SIG_MALFORMED", "the signature is not base64") from None
    return SignatureParams(parts[0], parts[1], parts[2], created, expires, params["headers"], params["signature"])


def verify(body: bytes, header: str | None, lookup: PublicKeyLookup, *, now: float | None = None,
           skew: int = 5, subscriber_id: str | None = None) -> SignatureParams:
    """Check a header against the body and the registry; raise SignatureError naming what failed.

    `skew` seconds of clock difference are allowed on `created` and `expires`. `subscriber_id`, when
    given, is who the message says sent it (context.bap_id or bpp_id): the key must be theirs.
    """
    params = parse(header)
    now = time.time() if now is None else now
    if subscriber_id is not None and params.subscriber_id != subscriber_id:
        raise SignatureError("SIG_SUBSCRIBER_MISMATCH",
                             f"signed by {params.subscriber_id!r} but the context names {subscriber_id!r}")
    if params.created > now + skew:
        raise SignatureError("SIG_CREATED_IN_FUTURE", f"created {params.created} is after now ({int(now)}) + {skew}s")
    if params.expires < now - skew:
        raise SignatureError("SIG_EXPIRED", f"expired at {params.expires}, now is {int(now)}")
    public = lookup(params.subscriber_id, params.unique_key_id)
    if public is None:
        raise SignatureError("SIG_KEY_UNKNOWN", f"the registry has no key {params.unique_key_id!r} "
                                                f"for {params.subscriber_id!r}")
    if not signature_valid(signing_string(params.created, params.expires, body_digest(body)).encode(),
                           params.signature, public):
        raise SignatureError("SIG_INVALID", "the signature does not match the body and the registered key")
    return params
