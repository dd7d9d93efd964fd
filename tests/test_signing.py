"""BECKN-006 signatures: the spec's test vector reproduces, and every way a header can fail is named."""
from __future__ import annotations

import pytest

from conformance.signing import KeyPair, SignatureError, body_digest, parse, sign, verify
from tests.conftest import REFERENCE, needs_shared

SPEC = REFERENCE / "beckn-core-1.1.0" / "BECKN-006-Signing-Beckn-APIs-In-HTTP-Draft-01.md"
# The key pair and values BECKN-006 gives for its worked example (Step 1, BAP signs the request).
SPEC_PRIVATE = "lP3sHA+9gileOkXYJXh4Jg8tK0gEEMbf9yCPnFpbldhrAY+NErqL9WD+Vav7TE5tyVXGXBle9ONZi2W7o144eQ=="
SPEC_PUBLIC = "awGPjRK6i/Vg/lWr+0xObclVxlwZXvTjWYtlu6NeOHk="
SPEC_DIGEST = "b6lf6lRgOweajukcvcLsagQ2T60+85kRh/Rd2bdS+TG/5ALebOEgDJfyCrre/1+BMu5nA94o4DT3pTFXuUg7sw=="
SPEC_SIGNATURE = "cjbhP0PFyrlSCNszJM1F/YmHDVAWsZqJUPzojnE/7TJU3fJ/rmIlgaUHEr5E0/2PIyf0tpSnWtT6cyNNlpmoAQ=="
CREATED, EXPIRES = 1641287875, 1641291475

BODY = b'{"context":{"action":"search"},"message":{}}'
BAP = KeyPair.generate("bap.example.com", "k1")
KEYS = {("bap.example.com", "k1"): BAP.public_key}


def lookup(subscriber: str, key_id: str) -> str | None:
    return KEYS.get((subscriber, key_id))


@needs_shared
def test_the_spec_test_vector_reproduces() -> None:
    body = SPEC.read_text(encoding="utf-8").split("\n")[76].encode()
    assert body.startswith(b'{"context":{"domain":"nic2004:60212"')
    key = KeyPair.from_private_key("example-bap.com", "ae3ea24b-cfec-495e-81f8-044aaef164ac", SPEC_PRIVATE)
    assert key.public_key == SPEC_PUBLIC
    assert body_digest(body) == SPEC_DIGEST
    header = sign(body, key, created=CREATED, expires=EXPIRES)
    assert header == ('Signature keyId="example-bap.com|ae3ea24b-cfec-495e-81f8-044aaef164ac|ed25519",'
                      'algorithm="ed25519",created="1641287875",expires="1641291475",'
                      f'headers="(created) (expires) digest",signature="{SPEC_SIGNATURE}"')
    params = verify(body, header, lambda s, k: SPEC_PUBLIC, now=CREATED + 10)
    assert (params.subscriber_id, params.created, params.expires) == ("example-bap.com", CREATED, EXPIRES)


def test_a_fresh_signature_verifies() -> None:
    params = verify(BODY, sign(BODY, BAP), lookup, subscriber_id="bap.example.com")
    assert params.unique_key_id == "k1"


def test_the_private_key_stays_out_of_reprs() -> None:
    assert BAP.private_key not in repr(BAP) and "seed" not in repr(BAP)


def _reason(body: bytes, header: str | None, **kwargs: object) -> str:
    with pytest.raises(SignatureError) as exc:
        verify(body, header, lookup, **kwargs)  # type: ignore[arg-type]
    return exc.value.reason


NOW = 1_700_000_000


@pytest.mark.parametrize("body, header, kwargs, reason", [
    (BODY, None, {}, "SIG_MISSING"),
    (BODY, "Bearer abc", {}, "SIG_MALFORMED"),
    (BODY, 'Signature keyId="bap.example.com|k1|ed25519"', {}, "SIG_MALFORMED"),
    (BODY.replace(b"search", b"select"), sign(BODY, BAP, created=NOW), {"now": NOW}, "SIG_INVALID"),
    (BODY, sign(BODY, KeyPair.generate("bap.example.com", "k1"), created=NOW), {"now": NOW}, "SIG_INVALID"),
    (BODY, sign(BODY, KeyPair.generate("bap.example.com", "k9"), created=NOW), {"now": NOW}, "SIG_KEY_UNKNOWN"),
    (BODY, sign(BODY, BAP, created=NOW - 600, validity=300), {"now": NOW}, "SIG_EXPIRED"),
    (BODY, sign(BODY, BAP, created=NOW + 60), {"now": NOW, "skew": 5}, "SIG_CREATED_IN_FUTURE"),
    (BODY, sign(BODY, BAP, created=NOW), {"now": NOW, "subscriber_id": "other-bap.example.com"},
     "SIG_SUBSCRIBER_MISMATCH"),
    (BODY, sign(BODY, BAP, created=NOW).replace('algorithm="ed25519"', 'algorithm="rsa"'), {"now": NOW},
     "SIG_ALGORITHM"),
    (BODY, sign(BODY, BAP, created=NOW).replace('created="', 'created="x'), {"now": NOW}, "SIG_MALFORMED"),
])
def test_each_failure_is_named(body: bytes, header: str | None, kwargs: dict, reason: str) -> None:
    assert _reason(body, header, **kwargs) == reason


def _good(**changes: str) -> str:
    """A header that verifies at NOW, with parameters replaced textually (`created="..."` and so on)."""
    header = sign(BODY, BAP, created=NOW)
    for name, value in changes.items():
        start = header.index(f'{name}="') + len(name) + 2
        header = header[:start] + value + header[header.index('"', start):]
    return header


@pytest.mark.parametrize("header, says", [
    pytest.param(_good(created=f"+{NOW}"), "decimal digits", id="created-with-a-sign"),
    pytest.param(_good(created=f" {NOW}"), "decimal digits", id="created-with-a-space"),
    pytest.param(_good(created=f"{NOW:_}"), "decimal digits", id="created-with-underscores"),
    pytest.param(_good(created="\u0661\u0667" + str(NOW)[2:]), "decimal digits", id="created-in-arabic-digits"),
    pytest.param(_good(expires=f"{NOW + 300}\n"), "decimal digits", id="expires-with-a-newline"),
    pytest.param(_good(keyId="|k1|ed25519"), "none of them empty", id="empty-subscriber-id"),
    pytest.param(_good(keyId="bap.example.com||ed25519"), "none of them empty", id="empty-unique-key-id"),
    pytest.param(sign(BODY, BAP, created=NOW, expires=NOW - 1), "before created", id="expires-before-created"),
    pytest.param(_good(signature="!" + _good().split('signature="')[1].rstrip('"')), "not base64",
                 id="signature-with-a-stray-character"),
    pytest.param(_good() + ',algorithm="ed25519"', "given twice", id="a-parameter-given-twice"),
])
def test_headers_that_verify_only_if_read_loosely_are_malformed(header: str, says: str) -> None:
    """Each of these would verify if parsed leniently (int() takes signs, spaces, underscores and any Unicode
    digit; b64decode drops what is not base64; a repeated parameter overwrites the first)."""
    with pytest.raises(SignatureError) as exc:
        verify(BODY, header, lookup, now=NOW)
    assert (exc.value.reason, says in exc.value.detail) == ("SIG_MALFORMED", True), exc.value
def test_skew_allows_small_clock_differences() -> None:
    verify(BODY, sign(BODY, BAP, created=NOW + 3), lookup, now=NOW, skew=5)
    verify(BODY, sign(BODY, BAP, created=NOW - 303, validity=300), lookup, now=NOW, skew=5)


def test_parse_reads_every_parameter() -> None:
    params = parse(sign(BODY, BAP, created=NOW, validity=30))
    assert (params.subscriber_id, params.unique_key_id, params.algorithm) == ("bap.example.com", "k1", "ed25519")
    assert (params.created, params.expires, params.headers) == (NOW, NOW + 30, "(created) (expires) digest")


@pytest.mark.parametrize("private", ["not base64!", "AAAA"])
def test_bad_private_keys_are_refused(private: str) -> None:
    with pytest.raises(ValueError):
        KeyPair.from_private_key("s", "k", private)
