"""Every shipped verdict holds on a conformant participant that is not the reference network: the shipped
role-bap suite against reference BPPs made deliberately unlike it (other ids, both providers in one catalog,
callbacks seconds late but inside the ttl, the guide's own on_support, another allowed first state, one BPP behind
no gateway). Each scenario passes, or is skipped with its reason; nothing fails."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance import Engine, scenario
from conformance.network import Network, NetworkConfig
from conformance.network.catalog import CATALOGS
from conformance.network.registry import Subscriber
from conformance.runner import Harness, RunConfig, RunResult
from conformance.runner.results import EXIT_OK
from tests._live import SHIPPED

BOTH_BPPS = {"sf-grid-loadflex", "flexigrid-aggregator"}


def one_catalog_of_both(folder: Path) -> Path:
    """The guide's layout: one BPP publishing both providers, built from the two shipped catalog files."""
    files = [json.loads((CATALOGS / f"{name}.json").read_text()) for name in sorted(BOTH_BPPS)]
    path = folder / "both-programs.json"
    path.write_text(json.dumps({"catalog_descriptor": files[0]["catalog_descriptor"],
                                "providers": [f["provider"] for f in files]}))
    return path


def through_gateway(network: NetworkConfig, engine: Engine) -> RunResult:
    scenarios = [s for s in map(scenario.load, scenario.discover([SHIPPED])) if s.role == "bap"]
    with Harness(RunConfig(network=network, concurrency=len(scenarios), settle=0.2), engine=engine) as harness:
        return harness.run(scenarios)


def straight_to(bpp: str, network: NetworkConfig, engine: Engine) -> RunResult:
    """One BPP behind no gateway: every request to it (--target), the harness's key in its registry."""
    scenarios = [s for s in map(scenario.load, scenario.discover([SHIPPED])) if s.role == "bap"]
    with Network(network) as net:
        config = RunConfig(target=net.bpps[bpp].url, registry=net.registry_url, concurrency=len(scenarios),
                           settle=0.2)
        with Harness(config, engine=engine) as harness:
            net.add_subscriber(Subscriber.for_key(harness.key, url=harness.callback_url, type="BAP",
                                                  domain=network.domain))
            return harness.run(scenarios)


VARIANTS: dict[str, Any] = {
    "other ids": lambda tmp, engine: through_gateway(NetworkConfig(
        variations={name: frozenset({"other-ids"}) for name in BOTH_BPPS}), engine),
    "both providers in one catalog": lambda tmp, engine: through_gateway(NetworkConfig(
        catalogs=(one_catalog_of_both(tmp),)), engine),
    "callbacks 3 s after the ACK, ttl PT30S": lambda tmp, engine: through_gateway(NetworkConfig(latency=3.0), engine),
    "the guide's on_support (a ticket id)": lambda tmp, engine: through_gateway(NetworkConfig(
        variations={name: frozenset({"support-ticket"}) for name in BOTH_BPPS}), engine),
    "first state APPLICATION_PROCESSING": lambda tmp, engine: through_gateway(NetworkConfig(
        variations={name: frozenset({"other-first-state"}) for name in BOTH_BPPS}), engine),
    "one BPP behind no gateway": lambda tmp, engine: straight_to("sf-grid-loadflex", NetworkConfig(
        catalogs=(CATALOGS / "sf-grid-loadflex.json",)), engine),
    "all of it at once, one BPP behind no gateway": lambda tmp, engine: straight_to("both-programs", NetworkConfig(
        catalogs=(one_catalog_of_both(tmp),), latency=1.0,
        variations={"both-programs": frozenset({"other-ids", "support-ticket", "other-first-state"})}), engine),
}
SKIPPED = {  # variant -> the scenarios that do not apply there, and why
    "one BPP behind no gateway": {"gateway-search": "it needs a gateway",
                                  "automated-control": "the target publishes no offer where"},
    "all of it at once, one BPP behind no gateway": {"gateway-search": "it needs a gateway"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunResult]]:
    engine = Engine()
    with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
        futures = {name: pool.submit(make, tmp_path_factory.mktemp("variant"), engine)
                   for name, make in VARIANTS.items()}
        yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_shipped_scenario_passes_or_says_why_it_does_not_apply(runs: dict[str, RunResult], variant: str) -> None:
    run = runs[variant]
    skipped = {s.scenario.id: s.skipped for s in run.scenarios if s.status == "skipped"}
    assert set(skipped) == set(SKIPPED.get(variant, {})), skipped
    for name, reason in SKIPPED.get(variant, {}).items():
        assert (skipped[name] or "").startswith(reason), skipped[name]
    for s in run.scenarios:
        assert s.status in ("passed", "skipped"), (s.scenario.id, s.why, [f.text() for f in s.findings])
        assert s.harness_findings == [], [f.text() for f in s.harness_findings]
    assert run.exit_code == EXIT_OK and run.strays == []


def test_the_late_bpp_was_waited_for_not_failed(runs: dict[str, RunResult]) -> None:
    """Callbacks 3 s after the ACK: each step waited for its callback (the ttl is PT30S), and no longer."""
    run = runs["callbacks 3 s after the ACK, ttl PT30S"]
    manual = next(s for s in run.scenarios if s.scenario.id == "manual-optin")
    assert all(3.0 <= st.stopped - st.started < 10.0 for st in manual.steps), [st.stopped - st.started for st in manual.steps]


def test_the_offer_chosen_is_the_one_the_scenario_means(runs: dict[str, RunResult]) -> None:
    for variant in ("other ids", "both providers in one catalog"):
        run = runs[variant]
        for sid, code in (("manual-optin", "MANUAL_FLEX"), ("automated-control", "AUTO_FLEX")):
            result = next(s for s in run.scenarios if s.scenario.id == sid)
            init = result.steps[1].request
            assert init is not None
            item = init.body["message"]["order"]["items"][0]["id"]
            catalog = next(c for st in result.steps[:1] for c in st.callbacks
                           if c.context.get("bpp_id") == init.context["bpp_id"])
            categories = {c["id"]: c["descriptor"]["code"] for p in catalog.body["message"]["catalog"]["providers"]
                          for c in p.get("categories", [])}
            [ordered] = [i for p in catalog.body["message"]["catalog"]["providers"] for i in p["items"]
                         if i["id"] == item]
            assert code in {categories[c] for c in ordered["category_ids"]}, (variant, sid)


def test_a_pinned_choice_is_kept(tmp_path: Path) -> None:
    """--var pins what a scenario picks: here the manual program of the combined catalog, by its item id."""
    s = scenario.load(SHIPPED / "manual-optin.yaml")
    network = NetworkConfig(catalogs=(one_catalog_of_both(tmp_path),))
    pinned = RunConfig(network=network, settle=0.1, variables={"item_id": "manual_optin_demand_flex"})
    with Harness(pinned, engine=Engine()) as harness:
        result = harness.run([s]).scenarios[0]
    assert result.status == "passed" and result.steps[1].request is not None
    assert result.steps[1].request.body["message"]["order"]["items"][0]["id"] == "manual_optin_demand_flex"
    wrong = RunConfig(network=network, settle=0.1, variables={"item_id": "aggregator_optin_flex"})
    with Harness(wrong, engine=Engine()) as harness:
        result = harness.run([s]).scenarios[0]
    assert result.status == "broken" and "pinned item_id='aggregator_optin_flex'" in (result.error or "")
