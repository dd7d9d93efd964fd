"""The scenario format: every bad file is refused at load with its file and line, before anything is sent;
templating and the five assertions mean exactly what docs/scenarios.md says. Pure and fast: no network."""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conformance import scenario, usecases
from conformance.errors import ConfigError
from conformance.scenario import Assertion, build_body, discover, load, render
from conformance.shipped import SCENARIOS
from tests._live import SHIPPED, write


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load(path)
    return str(info.value)


# --- the shipped scenarios -------------------------------------------------------------------------------

STARTER_KIT = [("ev", "book-a-charger"), ("finance", "battery-loan"), ("p2p-trading", "buy-surplus-energy"),
               ("rental", "rent-a-battery"), ("retail", "purchase")]
"""The DEG Starter Kit's use cases and the scenario each ships in both roles."""


def test_every_shipped_scenario_loads() -> None:
    paths = discover([SCENARIOS])
    loaded = {str(p.relative_to(SCENARIOS).with_suffix("")): load(p) for p in paths}
    assert {name: s.role for name, s in loaded.items()} == {
        "demand-flexibility/automated-control": "bap", "demand-flexibility/gateway-search": "bap",
        "demand-flexibility/manual-optin": "bap", "demand-flexibility/status-after-cancel": "bap",
        "demand-flexibility/unknown-order": "bap", "demand-flexibility/bpp-role/automated-control": "bpp",
        "demand-flexibility/bpp-role/manual-optin": "bpp",
        "demand-flexibility/bpp-role/status-of-an-order-not-its-own": "bpp",
        "demand-flexibility/bpp-role/stops-after-a-refused-enrolment": "bpp",
        "ev-charging/cancellation": "bap", "ev-charging/charging-session": "bap", "ev-charging/unknown-order": "bap",
        "ev-charging/track-a-session": "bap",
        "ev-charging/bpp-role/a-session-not-its-own": "bpp", "ev-charging/bpp-role/cancellation": "bpp",
        "ev-charging/bpp-role/charging-session": "bpp", "ev-charging/bpp-role/stops-after-a-refused-quote": "bpp",
        **{f"{starter}/{name}": "bap" for starter, name in STARTER_KIT},
        **{f"{starter}/bpp-role/{name}": "bpp" for starter, name in STARTER_KIT}}
    # A use case's scenarios are in its folder, role bpp under bpp-role/, and say so.
    for name, s in loaded.items():
        assert (name.split("/")[0], "bpp-role/" in name) == (s.use_case, s.role == "bpp"), name
    manual = loaded["demand-flexibility/manual-optin"]
    assert [s.send for s in manual.steps] == ["search", "init", "confirm", "status", "support", "cancel"]
    search = manual.steps[0]
    assert search.expect.count is None and search.expect.min == 1 and search.expect.within is None
    assert search.body == scenario.FIXTURES / "demand-flexibility" / "requests" / "search.json"
    lines = (SHIPPED / "manual-optin.yaml").read_text().splitlines()
    assert lines[search.line - 1] == "  - name: discover programs"
    assert lines[manual.steps[1].line - 1] == "  - {name: start enrolment, send: init}"
    assert search.offer is not None and search.choose is None and dict(search.save) == {}
    assert set(search.offer.save) == {"provider_id", "item_id", "fulfillment_id", "bpp_id", "bpp_uri"}
    assert [a.describe() for a in search.offer.where] == ["$.categories[*].descriptor.code contains 'MANUAL_FLEX'"]
    refused_step = loaded["demand-flexibility/unknown-order"].steps[1]
    assert (refused_step.expect.outcome, refused_step.expect.error_code) == ("refused", "30010")
    assert loaded["demand-flexibility/gateway-search"].requires == ("gateway",)
    session = loaded["ev-charging/charging-session"]
    assert [s.send for s in session.steps] == ["search", "select", "init", "confirm", "status", "update", "update",
                                              "rating", "support"]
    track = loaded["ev-charging/track-a-session"]
    assert [s.send for s in track.steps][-1] == "track" and track.steps[-1].expect.unsupported == ("40005", "40001")
    assert [s.body.name for s in session.steps[5:7] if s.body] == ["update.json", "update-end-charging.json"]
    assert session.steps[0].body == scenario.FIXTURES / "ev-charging" / "requests" / "search.json"


def _ids(value: object) -> set[str]:
    """Every `id` a fixture or catalog gives anything (providers, items, categories, fulfillments, orders, ...)."""
    if isinstance(value, dict):
        own = {value["id"]} if isinstance(value.get("id"), str) else set()
        return own.union(*(_ids(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_ids(v) for v in value))
    return set()


def test_shipped_scenarios_name_no_ids_of_the_guides_or_the_catalogs() -> None:
    """A shipped verdict must hold on any conformant participant: no scenario may lean on the ids of a guide's
    transaction or of the reference catalogs, or on array positions, which a BPP with its own catalog does not
    share. Looked for in the text, but numbers: "1" is no name (test_shipped_scenarios_name_no_ids_of_their_catalogs
    looks for those where a scenario could use them)."""
    fixtures = [*scenario.FIXTURES.glob("*/catalogs/*.json"), *scenario.FIXTURES.glob("*/guide-transaction/*.json")]
    ids = {i for p in fixtures for i in _ids(json.loads(p.read_text(encoding="utf-8"))) if not i.isdigit()}
    assert {"provider_demand_flex_001", "manual_optin", "voltway-blr", "amp-pillar-7", "cs-item-01"} <= ids
    for path in discover([SCENARIOS]):
        text = path.read_text(encoding="utf-8")
        assert not [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text)], path
        assert not re.search(r"\[\d+\]", text), f"{path}: an array index"
def test_every_use_case_ships_scenarios_of_its_own() -> None:
    """Each shipped use case has scenarios in scenarios/<name>/ (role bap, and role bpp under bpp-role/), each
    saying it is that use case's, so its request bodies come from fixtures/<name>/; and each sends what its
    use case's flow has, from a search to a confirm."""
    for name, use_case in usecases.shipped().items():
        loaded = [load(p) for p in discover([use_case.scenarios])]
        assert {s.use_case for s in loaded} == {name} and {s.role for s in loaded} == {"bap", "bpp"}, name
        for s in loaded:
            assert all(step.body.is_relative_to(use_case.folder) for step in s.steps), s.path
        happy = [s for s in loaded if "happy-path" in s.tags]
        assert happy and all([st.send for st in s.steps][0] == "search" and "confirm" in [st.send for st in s.steps]
                             for s in happy), name


def _values(value: Any) -> Iterator[Any]:
    """The scalars of a scenario's value (a `set` override, a variable, an assertion's expected value)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _values(v)
    else:
        yield value


@pytest.mark.parametrize("name", sorted(usecases.shipped()))
def test_shipped_scenarios_name_no_ids_of_their_catalogs(name: str) -> None:
    """No scenario leans on the ids of its use case's reference catalogs (the guide's, the collection's), numbers
    included, where a scenario could use them: its variables, overrides and expected values (array positions: the
    test above)."""
    use_case = usecases.named(name)
    ids = set().union(*(_ids(json.loads(p.read_text(encoding="utf-8"))) for p in use_case.catalogs))
    assert ids
    for path in discover([use_case.scenarios]):
        s = load(path)
        used = [*_values(dict(s.variables))]
        for step in s.steps:
            tests = [*step.asserts, *(step.offer.where if step.offer else ()), *([step.choose] if step.choose else [])]
            used += [*_values(dict(step.set)), *(v for a in tests for v in _values(a.value))]
        assert not [v for v in used if isinstance(v, str) and v in ids], path


def test_every_shipped_assertion_names_its_clause() -> None:
    for path in discover([SCENARIOS]):
        for step in load(path).steps:
            assert all(a.clause for a in step.asserts), f"{path}:{step.line}"
            assert step.expect.within is None or step.expect.reason, f"{path}:{step.line}: within without a reason"


def test_step_defaults(tmp_path: Path) -> None:
    s = load(write(tmp_path, "s.yaml", """
        name: defaults
        steps:
          - send: search
    """))
    step = s.steps[0]
    assert (s.id, s.role, s.use_case, s.severity, s.tags) == ("s", "bap", "demand-flexibility", "critical", ())
    assert (step.name, step.callback, step.expect.outcome, step.expect.count, step.expect.within) == (
        "search", "on_search", "answered", 1, None)
    assert step.asserts == () and step.choose is None and dict(step.save) == {}


# --- schema violations point at the right line -----------------------------------------------------------

@pytest.mark.parametrize("text, line, fragment", [
    pytest.param("""
        name: bad
        steps:
          - name: discover
            send: search
            expect:
              count: 0
    """, 6, "steps/0/expect/count: 0 is not valid", id="count-zero"),
    pytest.param("""
        name: bad
        steps:
          - name: discover
            send: search
          - name: init
            send: init
            bogus: 1
    """, 7, "steps/1: Additional properties are not allowed ('bogus' was unexpected)", id="unknown-step-key"),
    pytest.param("""
        name: bad
        steps:
          - send: search
        timeout: 5
    """, 4, "Additional properties are not allowed ('timeout' was unexpected)", id="unknown-top-level-key"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            expect:
              within: 5s
    """, 5, "steps/0/expect/within: \"5s\" does not match", id="bad-duration"),
    pytest.param("""
        name: bad
        steps:
          - send: search
          - name: no action
            expect: {count: 1}
    """, 4, "steps/1: \"send\" is a required property", id="missing-send"),
    pytest.param("""
        name: bad
        steps:
          - send: frobnicate
    """, 3, "steps/0/send: \"frobnicate\" is not one of", id="unknown-action"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            assert:
              - {path: $.a, equals: 1}
              - {path: $.b, equals: 1, exists: true}
    """, 6, "steps/0/assert/1", id="two-tests-in-one-assertion"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            save: {bpp-id: $.context.bpp_id}
    """, 4, "steps/0/save", id="bad-save-name"),
    pytest.param("""
        name: bad
        steps: []
    """, 2, "steps: [] has less than 1 item", id="no-steps"),
    pytest.param("""
        steps:
          - send: search
    """, 1, "\"name\" is a required property", id="no-name"),
])
def test_schema_violation_names_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    message = refused(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_every_schema_violation_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", """
        name: bad
        steps:
          - send: search
            expect: {outcome: maybe}
          - send: init
            expect: {count: twice}
    """)
    lines = refused(path).splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [f"{path}:4", f"{path}:6"]


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "")
    assert refused(path).startswith(f"{path}:1: null is not of type \"object\"")


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", """
        name: bad
        steps:
          - name: [unclosed
            send: search
    """)
    message = refused(path)
    assert re.match(rf"{re.escape(str(path))}:4:\d+: not valid YAML", message), message


def test_missing_scenario_file(tmp_path: Path) -> None:
    assert refused(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"


# --- what the schema cannot see --------------------------------------------------------------------------

def test_missing_body_fixture(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """
        name: s
        steps:
          - send: search
          - send: init
            body: requests/nowhere.json
    """)
    message = refused(path)
    assert message.startswith(f"{path}:4: body 'requests/nowhere.json' is neither next to the scenario nor in ")


def test_body_fixture_next_to_the_scenario_wins(tmp_path: Path) -> None:
    write(tmp_path, "requests/search.json", '{"context": {"ttl": "PT9S"}, "message": {"intent": {}}}')
    s = load(write(tmp_path, "s.yaml", "name: s\nsteps:\n  - send: search\n"))
    assert s.steps[0].body == tmp_path / "requests" / "search.json"


@pytest.mark.parametrize("fixture, fragment", [
    ("{not json", "not a JSON fixture"),
    ("[1, 2]", "a body fixture must be an object of {context, message}"),
])
def test_body_fixture_that_is_not_an_object(tmp_path: Path, fixture: str, fragment: str) -> None:
    write(tmp_path, "body.json", fixture)
    path = write(tmp_path, "s.yaml", "name: s\nsteps:\n  - {send: search, body: body.json}\n")
    message = refused(path)
    assert str(tmp_path / "body.json") in message and fragment in message


@pytest.mark.parametrize("where, text, line", [
    ("set", """
        name: s
        steps:
          - send: search
            set: {message.intent.descriptor.name: "program {{ nope }}"}
    """, 4),
    ("assert", """
        name: s
        steps:
          - send: search
            assert:
              - {path: $.context.bpp_id, equals: "{{ nope }}"}
    """, 4),
    ("choose", """
        name: s
        steps:
          - send: search
            choose: {path: "$.message.catalog.providers[*].id", contains: "{{ nope }}"}
    """, 4),
])
def test_unknown_template_variable_is_refused_at_load(tmp_path: Path, where: str, text: str, line: int) -> None:
    path = write(tmp_path, "s.yaml", text)
    message = refused(path)
    assert message.startswith(f"{path}:{line}: steps/0/{where}: template {{{{ nope }}}} names nothing"), message
    assert "bap_uri" in message and "transaction_id" in message and "uuid" in message


def test_unknown_template_in_a_body_fixture(tmp_path: Path) -> None:
    write(tmp_path, "body.json", '{"context": {"city": "{{ city_code }}"}, "message": {}}')
    path = write(tmp_path, "s.yaml", """
        name: s
        variables: {region: west}
        steps:
          - send: search
          - {name: body with a hole, send: search, body: body.json}
    """)
    message = refused(path)
    assert message.startswith(f"{path}:5: steps/1: body {tmp_path / 'body.json'}: template {{{{ city_code }}}}")
    assert "region" in message


def test_a_template_may_use_what_an_earlier_step_saved_but_not_a_later_one(tmp_path: Path) -> None:
    # The shipped init fixture uses bpp_id/bpp_uri, saved from on_search; here init comes first.
    later = write(tmp_path, "later.yaml", """
        name: s
        variables: {provider_id: p, item_id: i, fulfillment_id: f}
        steps:
          - send: init
          - send: search
            save: {bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}
    """)
    assert "template {{ bpp_id }} names nothing" in refused(later)
    earlier = write(tmp_path, "earlier.yaml", """
        name: s
        variables: {provider_id: p, item_id: i, fulfillment_id: f}
        steps:
          - send: search
            save: {bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}
          - send: init
            set: {context.transaction_id: "{{ transaction_id }}", message.order.id: "{{ uuid }}"}
            assert:
              - {path: $.context.bap_uri, equals: "{{ bap_uri }}"}
    """)
    assert [s.send for s in load(earlier).steps] == ["search", "init"]


@pytest.mark.parametrize("field, value", [
    ("assert", '[{path: "$.message[", equals: 1}]'),
    ("choose", '{path: "$.message..[?", exists: true}'),
    ("save", '{order_id: "$.message.order["}'),
])
def test_bad_jsonpath(tmp_path: Path, field: str, value: str) -> None:
    path = write(tmp_path, "s.yaml", f"name: s\nsteps:\n  - send: search\n  - send: search\n    {field}: {value}\n")
    message = refused(path)
    line = 4 if field == "save" else 5  # an assertion's own line; saves are the step's
    assert message.startswith(f"{path}:{line}: '$.message"), message
    assert "is not a JSONPath" in message


def test_bad_regex(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """
        name: s
        steps:
          - send: search
            assert:
              - {path: $.context.bpp_id, matches: "(unclosed"}
    """)
    message = refused(path)
    assert message.startswith(f"{path}:5: matches '(unclosed' is not a regular expression")  # the assertion's line


def test_a_nacked_step_expects_no_callback(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """
        name: s
        steps:
          - send: search
            expect: {outcome: nacked, callback: on_search}
    """)
    assert refused(path).startswith(f"{path}:3: a nacked step expects no callback")


def test_discover(tmp_path: Path) -> None:
    b = write(tmp_path, "sub/b.yml", "x")
    a = write(tmp_path, "a.yaml", "x")
    write(tmp_path, "notes.txt", "x")
    assert discover([tmp_path]) == [a, b]
    assert discover([b]) == [b]
    with pytest.raises(ConfigError, match="no such scenario file or folder"):
        discover([tmp_path / "missing"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no scenario files \(\*\.yaml\)"):
        discover([empty])


# --- templating ------------------------------------------------------------------------------------------

def test_a_whole_template_keeps_the_type_and_a_partial_one_makes_text() -> None:
    variables = {"ids": ["a", "b"], "n": 3, "name": "flex"}
    assert render("{{ ids }}", variables) == ["a", "b"]
    assert render("  {{n}} ", variables) == 3
    assert render("order-{{ n }}-{{name}}", variables) == "order-3-flex"
    assert render({"k": ["{{ name }}", {"deep": "{{ n }}"}], "n": 7}, variables) == {"k": ["flex", {"deep": 3}], "n": 7}
    assert render("no templates {{ here", variables) == "no templates {{ here"


def test_uuid_is_fresh_each_time_and_variables_win_over_builtins() -> None:
    first, second = render("{{ uuid }}", {}), render("{{ uuid }}", {})
    assert first != second and str(uuid.UUID(first)) == first
    assert render("{{ uuid }}", {"uuid": "fixed"}) == "fixed"


def test_an_unknown_name_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        render("x {{ missing }}", {"known": 1})
    assert str(info.value) == "template {{ missing }} names nothing: known are known, uuid"


def test_build_body_renders_the_fixture_then_applies_set(tmp_path: Path) -> None:
    write(tmp_path, "body.json", """
        {"context": {"bpp_id": "{{ bpp_id }}", "ttl": "PT30S"},
         "message": {"order": {"items": [{"id": "a"}, {"id": "b"}]}}}
    """)
    path = write(tmp_path, "s.yaml", """
        name: s
        variables: {bpp_id: bpp.example}
        steps:
          - send: init
            body: body.json
            set:
              context.ttl: PT5S
              message.order.items.1.id: "{{ bpp_id }}-item"
              message.order.provider.id: "{{ uuid }}"
              message.order.fulfillments: [{id: "{{ bpp_id }}"}]
    """)
    step = load(path).steps[0]
    body = build_body(step, {"bpp_id": "bpp.example"})
    assert body["context"] == {"bpp_id": "bpp.example", "ttl": "PT5S"}
    assert body["message"]["order"]["items"] == [{"id": "a"}, {"id": "bpp.example-item"}]
    assert uuid.UUID(body["message"]["order"]["provider"]["id"])
    assert body["message"]["order"]["fulfillments"] == [{"id": "bpp.example"}]
    again = build_body(step, {"bpp_id": "other"})
    assert again["context"]["bpp_id"] == "other" and again["message"]["order"]["provider"]["id"] != \
        body["message"]["order"]["provider"]["id"]


@pytest.mark.parametrize("dotted", ["context.domain.code", "message.items.5.id", "message.items.first.id",
                                    "message.items.0.id.x"])
def test_a_set_path_the_body_cannot_hold_is_a_config_error(tmp_path: Path, dotted: str) -> None:
    """Not a traceback half-way through a run: the scenario is reported broken, naming the override."""
    write(tmp_path, "body.json", '{"context": {"domain": "flexibility"}, "message": {"items": [{"id": "a"}]}}')
    path = write(tmp_path, "s.yaml", f"name: s\nsteps:\n  - send: search\n    body: body.json\n    set: {{{dotted}: 1}}\n")
    step = load(path).steps[0]
    with pytest.raises(ConfigError, match=rf"set {re.escape(dotted)}: the body has no place for it"):
        build_body(step, {})


def test_a_body_without_context_or_message_gets_empty_ones(tmp_path: Path) -> None:
    write(tmp_path, "body.json", "{}")
    step = load(write(tmp_path, "s.yaml", "name: s\nsteps:\n  - {send: search, body: body.json}\n")).steps[0]
    assert build_body(step, {}) == {"context": {}, "message": {}}


# --- assertions ------------------------------------------------------------------------------------------

DOC = {"message": {"order": {"id": "order-1", "n": 2, "items": [{"id": "a"}, {"id": "b"}],
                             "states": ["APPLICATION_SUBMITTED", "APPLICATION_SUBMITTED"]}}}


@pytest.mark.parametrize("path, op, value, passes", [
    ("$.message.order.id", "equals", "order-1", True),
    ("$.message.order.id", "equals", "order-2", False),
    ("$.message.order.n", "equals", 2, True),
    ("$.message.order.n", "equals", "2", False),
    ("$.message.order.states[*]", "equals", "APPLICATION_SUBMITTED", True),
    ("$.message.order.items[*].id", "equals", "a", False),
    ("$.message.order.missing", "equals", None, False),
    ("$.message.order.items", "equals", [{"id": "a"}, {"id": "b"}], True),
    ("$.message.order.id", "exists", True, True),
    ("$.message.order.missing", "exists", True, False),
    ("$.message.order.missing", "exists", False, True),
    ("$.message.order.id", "exists", False, False),
    ("$.message.order.items[*].id", "one_of", ["a", "b", "c"], True),
    ("$.message.order.items[*].id", "one_of", ["a"], False),
    ("$.message.order.missing", "one_of", ["a"], False),
    ("$.message.order.id", "matches", "^order-\\d$", True),
    ("$.message.order.id", "matches", "^ORDER", False),
    ("$.message.order.n", "matches", "2", False),
    ("$.message.order.states[*]", "matches", "SUBMITTED$", True),
    ("$.message.order.items[*].id", "contains", "b", True),
    ("$.message.order.items[*].id", "contains", "z", False),
    ("$.message.order.missing", "contains", "a", False),
])
def test_assertion_semantics(path: str, op: str, value: object, passes: bool) -> None:
    assert (Assertion(path, op, value).failure(DOC, {}) is None) is passes


def test_a_failed_assertion_says_what_was_expected_and_found() -> None:
    assert Assertion("$.message.order.id", "equals", "{{ order_id }}").failure(DOC, {"order_id": "x"}) == (
        "equals 'x'", "order-1")
    assert Assertion("$.message.order.items[*].id", "one_of", ["a"]).failure(DOC, {}) == (
        "one_of ['a']", ["a", "b"])
    assert Assertion("$.message.order.missing", "matches", "x").failure(DOC, {}) == ("matches 'x'", "(absent)")
    assert Assertion("$.message.order.missing", "exists", True).failure(DOC, {}) == ("exists: True", "(absent)")
    assert Assertion("$.message.order.id", "exists", False).failure(DOC, {}) == ("exists: False", ["order-1"])


def test_assertion_values_are_templated() -> None:
    variables = {"ids": ["a", "b"], "prefix": "order"}
    assert Assertion("$.message.order.items[*].id", "one_of", "{{ ids }}").failure(DOC, variables) is None
    assert Assertion("$.message.order.id", "matches", "^{{ prefix }}-").failure(DOC, variables) is None
    assert Assertion("$.message.order.items[*].id", "contains", "{{ prefix }}").failure(DOC, variables) == (
        "one match equal to 'order'", ["a", "b"])
    with pytest.raises(ConfigError):
        Assertion("$.message.order.id", "equals", "{{ nope }}").failure(DOC, variables)


def test_describe_shows_the_rendered_value_when_it_can() -> None:
    a = Assertion("$.x", "contains", "{{ provider_id }}")
    assert a.describe() == "$.x contains '{{ provider_id }}'"
    assert a.describe({"provider_id": "p1"}) == "$.x contains 'p1'"
    assert a.describe({}) == "$.x contains '{{ provider_id }}'"


def test_templates_in_a_path_are_filled_in() -> None:
    doc = {"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}]}
    variables = {"item_id": "b", "n": 0}
    assert Assertion("$.items[?@.id == '{{ item_id }}'].n", "equals", 2).failure(doc, variables) is None
    assert Assertion("$.items[{{ n }}].id", "equals", "a").failure(doc, variables) is None
    assert Assertion("$.items[?@.id == '{{ item_id }}'].n", "equals", 1).failure(doc, variables) == ("equals 1", 2)
    assert Assertion("$.items[?@.id == '{{ item_id }}'].n", "equals", 2).where(variables) == "$.items[?@.id == 'b'].n"


def test_a_templated_path_is_checked_at_load(tmp_path: Path) -> None:
    ok = load(write(tmp_path, "ok.yaml", """
        name: templated paths
        variables: {item_id: x, n: 0}
        steps:
          - send: search
            choose: {path: "$.message.catalog.providers[*].items[?@.id == '{{ item_id }}']", exists: true}
            assert:
              - {path: "$.message.catalog.providers[{{ n }}].id", exists: true}
    """))
    assert ok.steps[0].choose is not None
    assert "is not a JSONPath" in refused(write(tmp_path, "bad.yaml", """
        name: broken templated path
        variables: {item_id: x}
        steps:
          - send: search
            assert: [{path: "$.items[?@.id == '{{ item_id }}'", exists: true}]
    """))


def test_offer_requires_clause_and_reason_load(tmp_path: Path) -> None:
    s = load(write(tmp_path, "s.yaml", """
        name: an offer by meaning
        requires: [gateway]
        steps:
          - send: search
            expect: {count: all, within: PT5S, reason: a sandbox answers in seconds}
            offer:
              where: [{path: "$.categories[*].descriptor.code", contains: AUTO_FLEX, clause: DEG taxonomy}]
              save: {provider_id: $.provider.id}
          - send: search
            assert: [{path: $.message.order.id, exists: false, clause: core 1.1.0}]
    """))
    first = s.steps[0]
    assert s.requires == ("gateway",) and first.expect.reason == "a sandbox answers in seconds"
    assert first.offer is not None and dict(first.offer.save) == {"provider_id": "$.provider.id"}
    assert first.offer.where[0].clause == "DEG taxonomy" and s.steps[1].asserts[0].clause == "core 1.1.0"


@pytest.mark.parametrize("text, fragment", [
    pytest.param("""
        name: bad
        steps:
          - send: search
            offer: {save: {p: $.provider.id}}
            choose: {path: $.x, exists: true}
    """, "offer and choose both pick", id="offer-and-choose"),
    pytest.param("""
        name: bad
        requires: [a-gateway]
        steps: [{send: search}]
    """, "requires/0", id="unknown-requirement"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            offer: {where: [{path: $.item.id, exists: true}]}
    """, "save", id="offer-without-save"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            assert: [{path: $.x, equals: 1, exists: true}]
    """, "steps/0/assert/0", id="two-tests-in-one-assertion"),
    pytest.param("""
        name: bad
        steps:
          - send: search
            offer: {save: {p: "$.provider[?"}}
    """, "is not a JSONPath", id="offer-save-not-a-jsonpath"),
])
def test_bad_offer_requires_and_assertions_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in refused(write(tmp_path, "s.yaml", text))


def test_a_later_step_may_use_what_an_offer_saved(tmp_path: Path) -> None:
    s = load(write(tmp_path, "s.yaml", """
        name: offer then init
        steps:
          - send: search
            offer: {save: {provider_id: $.provider.id, item_id: $.item.id, fulfillment_id: $.fulfillment.id,
                           bpp_id: $.context.bpp_id, bpp_uri: $.context.bpp_uri}}
          - send: init
    """))
    assert [st.send for st in s.steps] == ["search", "init"]


def test_the_examples_in_the_docs_load(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for n, block in enumerate(blocks):
        (tmp_path / f"{n}.yaml").write_text(block, encoding="utf-8")
        assert load(tmp_path / f"{n}.yaml").steps


def test_unsupported_is_for_role_bap(tmp_path: Path) -> None:
    """As BPP the harness offers every action: a code by which it would decline one means nothing there."""
    path = write(tmp_path, "s.yaml", """
        name: s
        role: bpp
        steps:
          - {send: track, expect: {unsupported: ["40005"]}}
    """)
    assert "expect.unsupported is for role bap" in refused(path)
