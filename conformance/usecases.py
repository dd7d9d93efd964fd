"""Use cases as data: a folder under fixtures/ with a use-case.yaml is one.

DEG runs demand flexibility, EV charging, P2P trading, retail, rental and finance on the same Beckn core. What
differs is data: the domain the messages carry, the Layer-2 pack (conformance/packs/, found by domain), the
catalogs the reference BPPs serve, the request bodies scenarios and probes start from, the scenarios
(scenarios/<name>/), and how a provider moves an order through the use case's fulfillment states. So a new use
case is a folder, not code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from conformance.errors import ConfigError, load_yaml
from conformance.layer2 import PACKS_DIR
from conformance.shipped import FIXTURES, SCENARIOS

DEFAULT = "demand-flexibility"
FILE = "use-case.yaml"
CONFIRM_AFTER = ("init", "select")
"""The requests a use case may name as the one that readies an order for confirm."""


@dataclass(frozen=True, kw_only=True)
class Orders:
    """How the reference BPP moves an order through the use case's fulfillment states."""

    confirmed: str
    """The state of a new order, in on_confirm."""
    confirmed_otherwise: str | None = None
    """Another state the use case allows a new order in (the other-first-state variation)."""
    after_status: Mapping[str, str] = field(default_factory=dict)
    """A state a status call moves on from -> where to."""
    cancelled: str
    updates: Mapping[str, str] = field(default_factory=dict)
    """A state code an update asks for -> the state on_update shows."""
    confirm_after: str = "init"
    """The request that readies an order for confirm: init in Beckn's flow; select where the use case's flow has no
    init (energy finance goes select -> confirm). A confirm in a transaction with neither is refused."""


@dataclass(frozen=True, kw_only=True)
class UseCase:
    name: str
    title: str
    domain: str
    version: str
    folder: Path
    orders: Orders

    @property
    def catalogs(self) -> tuple[Path, ...]:
        """The catalogs the reference network serves for this use case, a BPP each."""
        return tuple(sorted((self.folder / "catalogs").glob("*.json")))

    @property
    def requests(self) -> Path:
        """The request bodies (requests/<action>.json) scenarios and probes start from."""
        return self.folder / "requests"

    @property
    def scenarios(self) -> Path:
        return SCENARIOS / self.name


@lru_cache(maxsize=1)
def shipped() -> dict[str, UseCase]:
    """Every use case the package ships, by name, in name order."""
    return {path.parent.name: read(path) for path in sorted(FIXTURES.glob(f"*/{FILE}"))}


def named(name: str) -> UseCase:
    found = shipped().get(name)
    if found is None:
        raise ConfigError(f"no use case {name!r}; the shipped ones: {', '.join(shipped())}")
    return found


def of_catalog(path: Path) -> UseCase | None:
    """The shipped use case whose catalogs folder holds this file, if any."""
    folder = path.resolve().parent
    return next((u for u in shipped().values() if (u.folder / "catalogs").resolve() == folder), None)


def of_domain(domain: Any) -> UseCase | None:
    return next((u for u in shipped().values() if u.domain == domain), None)


def pack_file(use_case: UseCase) -> Path | None:
    """The use case's Layer-2 pack (conformance/packs/<name>/), if it has one."""
    return next(iter(sorted((PACKS_DIR / use_case.name).glob("*.yaml"))), None)


def read(path: Path) -> UseCase:
    """A use-case.yaml, checked: every problem a ConfigError naming the file."""
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a use case is a mapping of title, domain, version, orders")
    missing = sorted({"title", "domain", "version", "orders"} - set(doc))
    orders = doc.get("orders")
    if missing or not isinstance(orders, dict) or not {"confirmed", "cancelled"} <= set(orders):
        raise ConfigError(f"{path}: needs title, domain, version and orders (confirmed, cancelled): missing "
                          f"{', '.join(missing) or 'orders.confirmed or orders.cancelled'}")
    return UseCase(name=path.parent.name, title=str(doc["title"]), domain=str(doc["domain"]),
                   version=str(doc["version"]), folder=path.parent,
                   orders=Orders(confirmed=str(orders["confirmed"]), cancelled=str(orders["cancelled"]),
                                 confirmed_otherwise=orders.get("confirmed-otherwise"),
                                 after_status={str(k): str(v) for k, v in (orders.get("after-status") or {}).items()},
                                 updates={str(k): str(v) for k, v in (orders.get("updates") or {}).items()},
                                 confirm_after=_confirm_after(path, orders.get("confirm-after", "init"))))


def _confirm_after(path: Path, value: Any) -> str:
    if value not in CONFIRM_AFTER:
        raise ConfigError(f"{path}: orders.confirm-after must be one of {', '.join(CONFIRM_AFTER)}, not {value!r}")
    return str(value)
