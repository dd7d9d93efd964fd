"""A load run's settings, in the two parts that travel differently.

The plan (what is played, against what) is the master's: Locust sends it to every worker. The identity (where a
worker's callback listener is, which key it signs with) is each worker's own, given on its command line, and
never leaves the machine: it reaches the Locust process and the player through the environment and a pipe,
not through Locust's network messages or a command line that `ps` shows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

import orjson

from conformance import usecases
from conformance.network import NetworkConfig
from conformance.runner import RunConfig

IDENTITY_ENV = "DEG_CONFORMANCE_LOAD_IDENTITY"
"""The environment variable that hands a worker's identity (JSON) to its Locust process."""
REPORT_ENV = "DEG_CONFORMANCE_LOAD_REPORT"
"""The environment variable that names the report folder to the master's (or a local run's) Locust process."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What every simulated user plays, and against what (the master's settings)."""

    target: str | None = None
    gateway: str | None = None
    registry: str | None = None
    registry_type: str = "beckn"
    registry_name: str | None = None
    use_case: str = usecases.DEFAULT
    scenarios: tuple[str, ...] = ()
    """Scenario files, played in turn by each user; on every worker the same paths must hold the same files."""
    signatures: str = "required"
    ack_timeout: float = 5.0
    callback_timeout: float | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    faults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """With no target or gateway (a local run only), the reference network's fault switches."""


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who one worker is on the network, and where its callback listener is."""

    listen: str = "127.0.0.1:0"
    callback_url: str | None = None
    subscriber_id: str = "deg-conformance.local"
    key_id: str = "deg-conformance-key-1"
    private_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None


Settings = TypeVar("Settings", Plan, Identity)


def dump(settings: Plan | Identity) -> str:
    return orjson.dumps(dataclasses.asdict(settings)).decode()


def parse(kind: type[Settings], text: str) -> Settings:
    """The settings `dump` wrote (tuples come back as lists; the dataclass takes them as they are)."""
    doc = orjson.loads(text)
    if "scenarios" in doc:
        doc["scenarios"] = tuple(doc["scenarios"])
    return kind(**doc)


def run_config(plan: Plan, identity: Identity) -> RunConfig:
    """The live runner's settings for one worker's player: it plays the BAP. A ConfigError for what cannot be used."""
    network = (NetworkConfig(faults={name: frozenset(faults) for name, faults in plan.faults.items()})
               if plan.faults else None)
    return RunConfig(role="bap", use_case=plan.use_case, target=plan.target, gateway=plan.gateway,
                     registry=plan.registry, registry_type=plan.registry_type, registry_name=plan.registry_name,
                     listen=identity.listen, callback_url=identity.callback_url, subscriber_id=identity.subscriber_id,
                     key_id=identity.key_id, private_key=identity.private_key, signatures=plan.signatures,
                     ack_timeout=plan.ack_timeout, callback_timeout=plan.callback_timeout,
                     variables=dict(plan.variables), network=network,
                     ca_bundle=Path(identity.ca_bundle) if identity.ca_bundle else None)
