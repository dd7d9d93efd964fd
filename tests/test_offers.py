"""Offers: flat views of a catalog that scenarios describe by meaning, whatever the catalog's ids and layout."""
from __future__ import annotations

import json

from conformance.offers import views
from tests.conftest import FIXTURES


def guide_on_search() -> dict:
    return json.loads((FIXTURES / "guide-transaction" / "02-on_search.json").read_text(encoding="utf-8"))


def test_one_view_per_item_and_fulfillment_with_references_resolved() -> None:
    found = views(guide_on_search())
    assert [(v["provider"]["id"], v["item"]["id"], v["fulfillment"]["id"]) for v in found] == [
        ("provider_demand_flex_001", "manual_optin_demand_flex", "manual_optin"),
        ("provider_flex_aggregator_001", "aggregator_optin_flex", "automated_control")]
    assert [[c["descriptor"]["code"] for c in v["categories"]] for v in found] == [["MANUAL_FLEX"], ["AUTO_FLEX"]]
    assert all(v["context"]["bpp_id"] == "energy-incentive-bpp.example.com" for v in found)
    assert [len(v["locations"]) for v in found] == [1, 1]


def test_an_item_without_fulfillment_ids_may_use_any_of_its_providers() -> None:
    doc = guide_on_search()
    provider = doc["message"]["catalog"]["providers"][0]
    del provider["items"][0]["fulfillment_ids"]
    provider["fulfillments"].append({"id": "second", "type": "DIGITAL"})
    mine = [v for v in views(doc) if v["provider"] is provider]
    assert [v["fulfillment"]["id"] for v in mine] == ["manual_optin", "second"]
    provider["fulfillments"] = []
    assert [v["fulfillment"] for v in views(doc) if v["provider"] is provider] == [{}]


def test_references_that_resolve_to_nothing_are_left_out() -> None:
    doc = guide_on_search()
    item = doc["message"]["catalog"]["providers"][0]["items"][0]
    item["category_ids"] = ["nowhere", 7]
    item["fulfillment_ids"] = ["nowhere"]
    [view, _] = views(doc)
    assert view["categories"] == [] and view["fulfillment"] == {} and view["fulfillments"] == []


def test_anything_that_is_not_a_catalog_has_no_offers() -> None:
    for doc in (None, [], "text", {"message": {}}, {"message": {"catalog": {"providers": "x"}}},
                {"context": "x", "message": {"catalog": {"providers": [{"items": [{"id": "i"}]}]}}}):
        assert all(v["context"] == {} for v in views(doc))
    assert views({"message": {"catalog": {"providers": [{"id": "p"}]}}}) == []
