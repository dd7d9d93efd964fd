"""The pytest plugin: YAML scenarios under a `scenarios/` folder are test items; a bad file is a collection
error naming its line; a shipped scenario runs and passes against the reference network."""
from __future__ import annotations

import shutil

import pytest

from tests._live import SHIPPED

pytest_plugins = ["pytester"]


def test_a_valid_and_an_invalid_scenario_give_one_item_and_one_collection_error(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.yaml")
    (folder / "broken.yaml").write_text("name: broken\nsteps:\n  - send: search\n    expect: {count: twice}\n")
    (folder / "notes.txt").write_text("not a scenario")
    items, reprec = pytester.inline_genitems(folder)
    assert [item.name for item in items] == ["unknown-order"]
    [failed] = reprec.getfailedcollections()
    text = str(failed.longrepr)
    assert f"{folder / 'broken.yaml'}:4: steps/0/expect/count" in text
    assert "Traceback" not in text


def test_scenario_items_carry_their_tags_as_marks(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "manual-optin.yaml", folder / "manual-optin.yaml")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.yaml")
    result = pytester.runpytest("--collect-only", "-q", "-m", "manual_flex", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/manual-optin.yaml::manual-optin", "*1/2 tests collected*"])


def test_a_shipped_scenario_passes_against_the_reference_network(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.yaml")
    report = pytester.path / "allure-results"
    result = pytester.runpytest("--deg-callback-timeout", "1", "--alluredir", str(report), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert len(list(report.glob("*-result.json"))) == 1


def test_scenarios_of_both_roles_run_in_one_session(pytester: pytest.Pytester) -> None:
    """Each role gets its own harness: a BAP-role scenario against the reference network's BPPs, a BPP-role
    one against its BAP."""
    folder = pytester.mkdir("scenarios")
    shutil.copy(SHIPPED / "unknown-order.yaml", folder / "unknown-order.yaml")
    shutil.copy(SHIPPED / "bpp-role" / "status-of-an-order-not-its-own.yaml", folder / "not-its-own.yaml")
    result = pytester.runpytest("--deg-callback-timeout", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failing_scenario_reports_its_findings(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "wrong.yaml").write_text(
        "name: wrong provider\n"
        "steps:\n"
        "  - send: search\n"
        "    expect: {count: all, min: 1, within: PT1S}\n"
        "    choose: {path: '$.message.catalog.providers[*].id', contains: no-such-provider}\n")
    result = pytester.runpytest("--deg-callback-timeout", "1", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAIL   wrong  (wrong provider; transaction *", "*ERROR   RUN_ASSERTION  scenarios/wrong.yaml:*on_search*"])
    out = result.stdout.str()
    assert "expected: a on_search where $.message.catalog.providers[*].id contains 'no-such-provider'\n" in out
    assert "found:    none of " in out and "Traceback" not in out
