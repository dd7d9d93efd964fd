"""The harness's identity on a network (`deg-conformance keys`): an Ed25519 signing key kept in a file, and the
registry entry that publishes its public half.

A network accepts the harness's signed requests only once its registry holds that entry. A Beckn registry takes
it by `POST /subscribe`; a DeDi registry, as on the DEG sandbox, is written through its own publishing API, so the
entry is also given in the DeDi record's shape for a person to publish there.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from conformance.errors import ConfigError, load_yaml
from conformance.messages import dig, format_timestamp
from conformance.network.registry import Subscriber
from conformance.signing import KeyPair

VALIDITY = timedelta(days=365)
"""How long a published entry says the key is valid (`valid_until`); rotate it before then."""
SUBSCRIBE_TIMEOUT = 10.0
"""Seconds to wait for a registry's answer to /subscribe."""
ANSWER_SHOWN = 300
"""Characters of a refusing registry's answer shown in the one-line error."""


def load_key_file(path: Path, *, flag: str = "--key-file") -> str:
    """The base64 private key in a key file (the first non-empty line that is not a comment). Errors name the file
    as `flag` gave it (the pytest plugin's is --deg-key-file)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag} {path}: not text (a base64 private key on one line)") from None
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise ConfigError(f"{flag} {path}: no key in the file")


def registrations(path: Path) -> tuple[Subscriber, ...]:
    """The registry entries in a file (JSON or YAML): what `keys new` or `keys show` printed (its
    `beckn_subscribe`), a bare Beckn `/subscribe` body, or a list of either. The harness's own registry takes
    them, so that a participant configured before the run (a BAP under test) is known to it."""
    doc = load_yaml(path)
    out = []
    for n, item in enumerate(doc if isinstance(doc, list) else [doc]):
        body = item.get("beckn_subscribe", item) if isinstance(item, dict) else None
        try:
            assert isinstance(body, dict)
            fields = {name: body[name] for name in ("subscriber_id", "url", "type", "domain", "key_id",
                                                    "signing_public_key")}
            if not all(isinstance(v, str) and v for v in fields.values()):
                raise ValueError
        except (AssertionError, KeyError, ValueError):
            raise ConfigError(f"--register {path}: entry {n + 1} is not a registry entry (subscriber_id, url, type, "
                              "domain, key_id, signing_public_key; what `deg-conformance keys new` prints)") from None
        city = dig(body, "location", "city", "code")
        out.append(Subscriber(**fields, city=city if isinstance(city, str) else None))
    return tuple(out)


_OWNER_LINE = "# deg-conformance: the Ed25519 private key (base64 seed) of {subscriber_id}, key id {key_id};"
"""The first line of a key file `keys new` writes: whose key it is (owner_of reads it back)."""


def new_key_file(path: Path, subscriber_id: str, key_id: str, *, force: bool = False) -> KeyPair:
    """A fresh key, its base64 private half written where `--key-file` reads it, readable by its owner only
    (mode 0600).

    An existing file is kept unless `force`: it may hold the only copy of a key a registry already publishes.
    With `force` the old file is unlinked first, so the new key never lands in a file (or behind a symlink) that
    others may already read.
    """
    key = KeyPair.generate(subscriber_id, key_id)
    text = (f"{_OWNER_LINE.format(subscriber_id=key.subscriber_id, key_id=key.unique_key_id)} public key "
            f"{key.public_key}. Keep it secret.\n{key.private_key}\n")
    try:
        if force and (path.is_symlink() or path.exists()):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)  # a umask cannot widen 0600, but a stricter one must not lock the owner out
            out.write(text)
    except FileExistsError:
        raise ConfigError(f"--out {path}: the file exists; pass --force to replace it (the key in it is then lost)"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write: {exc.strerror or exc}") from None
    return key


_OWNER = re.compile("^" + re.escape(_OWNER_LINE).replace(re.escape("{subscriber_id}"), r"(\S+)")
                    .replace(re.escape("{key_id}"), r"(\S+)"))


def owner_of(path: Path) -> tuple[str, str] | None:
    """The subscriber id and key id a key file made by `keys new` names in its first line, or None (a bare key):
    whose key it is, when that is not the run's own identity (an operator's key signing certificates)."""
    try:
        with path.open(encoding="utf-8") as lines:
            found = _OWNER.match(lines.readline())
    except (OSError, UnicodeDecodeError):
        return None  # read_key_file says what is wrong with the file
    return (found.group(1), found.group(2)) if found else None


def read_key_file(path: Path, subscriber_id: str, key_id: str, *, flag: str = "--key-file") -> KeyPair:
    """The key in a key file, as the subscriber and key id it is published under; errors name `flag`."""
    try:
        return KeyPair.from_private_key(subscriber_id, key_id, load_key_file(path, flag=flag))
    except ValueError as exc:
        raise ConfigError(f"{flag} {path}: {exc}") from None


def entry(key: KeyPair, *, url: str | None, type: str, domain: str, city: str | None = None) -> Subscriber:
    """The registry entry for a key. Without a URL the entry is still shown, with `url` null, since a key made
    for a run against the reference network needs none (the harness registers itself there)."""
    return Subscriber.for_key(key, url=url or "", type=type, domain=domain, city=city)


def publication(subscriber: Subscriber) -> dict[str, Any]:
    """What to publish for an entry: its public key, the Beckn `/subscribe` body (valid from now for VALIDITY),
    and the DeDi record's `details`."""
    start = datetime.now(timezone.utc)
    url = subscriber.url or None
    return {"subscriber_id": subscriber.subscriber_id, "key_id": subscriber.key_id,
            "signing_public_key": subscriber.signing_public_key,
            "beckn_subscribe": {**subscriber.as_subscription(valid_from=format_timestamp(start),
                                                             valid_until=format_timestamp(start + VALIDITY)),
                                "url": url},
            "dedi_details": {**subscriber.dedi_details(), "url": url}}


def subscribe(registry: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST a `/subscribe` body to a Beckn registry; its status and answer (JSON, else text).

    Every way it can fail is a ConfigError naming the fix: it is set-up, not a conformance finding.
    """
    if not registry.startswith(("http://", "https://")):
        raise ConfigError(f"--registry {registry!r} is not an http(s) URL")
    url = f"{registry.rstrip('/')}/subscribe"
    try:
        with httpx.Client(timeout=SUBSCRIBE_TIMEOUT) as http:
            response = http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the registry at {url} ({type(exc).__name__}: {str(exc) or 'no detail'}): "
                          f"a set-up problem; check --registry and that the registry is up") from None
    if response.status_code in (404, 405):
        raise ConfigError(f"{url} answered HTTP {response.status_code}: this registry has no Beckn /subscribe "
                          f"endpoint (a DeDi registry is written through its own publishing API): publish the entry "
                          f"`deg-conformance keys new` (or `keys show`) printed there")
    if not response.is_success:
        answer = " ".join(response.text.split())
        shown = answer[:ANSWER_SHOWN] + ("..." if len(answer) > ANSWER_SHOWN else "")
        raise ConfigError(f"the registry at {url} refused the entry: HTTP {response.status_code}: {shown or '(empty)'}")
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text
