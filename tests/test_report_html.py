"""The Allure HTML report as a reader sees it: a live run's results rendered by the pinned `allure` npm package
(`.ci/render-report`, the command `make report` runs) and opened in headless Chromium, offline.

That test needs Debian's chromium and `npm ci`'s node_modules; `.ci/run` installs both, elsewhere it skips. What it
reads on the page comes from the result files, so another test checks those files for it everywhere.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import scenario
from conformance.reporting.live import write_reports
from conformance.runner import Harness, RunConfig, RunResult

ROOT = Path(__file__).resolve().parent.parent
RENDER = ROOT / ".ci" / "render-report"
ALLURE = ROOT / "node_modules" / ".bin" / "allure"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHIPPED = ROOT / "scenarios" / "demand-flexibility"

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                    reason="chromium is not installed (.ci/run installs Debian's)")
needs_allure = pytest.mark.skipif(not ALLURE.is_file() or shutil.which("node") is None,
                                  reason="node_modules/allure is missing (run `npm ci`; .ci/run does)")

# Headless and offline: no first-run, sync, update or account traffic, every host name resolves to nothing and any
# request that still tries goes to a dead proxy (the report is a file:// page and needs no network).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                  "--virtual-time-budget=15000", "--dump-dom"]


class _Text(HTMLParser):
    """The text a reader sees: character data outside script and style."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def page_text(url: str, profile: Path) -> str:
    """Open `url` in headless Chromium, let the single-page app render, and return the page's visible text."""
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout, f"chromium failed on {url}:\n{done.stderr[-2000:]}"
    parser = _Text()
    parser.feed(done.stdout)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def run_two_scenarios(directory: Path) -> RunResult:
    scenarios = [scenario.load(SHIPPED / name) for name in ("manual-optin.yaml",
                                                             "gateway-search.yaml")]
    with Harness(RunConfig(concurrency=2)) as harness:
        result = harness.run(scenarios)
    write_reports(result, directory, participant="reference network")
    return result


def test_the_results_hold_what_the_report_shows(tmp_path: Path) -> None:
    """Every scenario a test of its own, with its name, `use_case/role/id`, verdict, a step per action named
    `N. action: name`, and its transaction_id among its parameters; and the run's settings as its environment."""
    run = run_two_scenarios(tmp_path / "run")
    results = tmp_path / "run" / "allure-results"
    tests = {t["name"]: t for t in (json.loads(p.read_text()) for p in results.glob("*-result.json"))}
    assert sorted(tests) == sorted(s.scenario.name for s in run.scenarios)
    for result in run.scenarios:
        s, test = result.scenario, tests[result.scenario.name]
        assert test["fullName"] == f"{s.use_case}/{s.role}/{s.id}" and test["status"] == result.status
        assert {"name": "parentSuite", "value": s.use_case} in test["labels"]  # the tree's first level
        steps = test.get("steps", [])
        assert [st["name"] for st in steps[:len(result.steps)]] == [
            f"{step.index}. {step.action}: {step.name}" for step in result.steps]
        assert {"name": "transaction_id", "value": result.transaction_id, "excluded": True} in test["parameters"]
        for step in steps:
            assert all((results / a["source"]).is_file() for a in step.get("attachments", []))
    assert "reference_network=True" in (results / "environment.properties").read_text()


@needs_chromium
@needs_allure
def test_the_report_shows_every_scenario_and_its_steps(tmp_path: Path) -> None:
    run = run_two_scenarios(tmp_path / "run")
    out = tmp_path / "run" / "allure-report"
    rendered = subprocess.run(["bash", str(RENDER), str(tmp_path / "run" / "allure-results")],
                              capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.strip() == f"Allure report: {out}/index.html"
    index = out / "index.html"
    assert "googletagmanager" not in index.read_text(encoding="utf-8")

    overview = page_text(index.as_uri(), tmp_path / "profile-overview")
    assert "DEG conformance report" in overview, overview[:2000]
    assert f"Total {len(run.scenarios)} " in overview, overview[:2000]
    assert "demand-flexibility" in overview, overview[:2000]

    # A passed group starts collapsed, so each scenario is read on its own page (`index.html#<test id>`); the ids
    # are the report's, from the test-results.json Allure writes beside index.html.
    ids = {t["name"]: t["id"] for t in json.loads((out / "test-results.json").read_text())["byId"].values()}
    assert sorted(ids) == sorted(s.scenario.name for s in run.scenarios)
    for result in run.scenarios:
        s = result.scenario
        text = page_text(f"{index.as_uri()}#{ids[s.name]}", tmp_path / f"profile-{s.id}")
        assert s.name in text and f"{s.use_case}/{s.role}/{s.id}" in text, text[:2000]
        assert result.status.capitalize() in text, text[:2000]  # the verdict, whatever the run's was
        assert f"Test body {len(result.steps)} " in text, text[:2000]
        for step in result.steps:
            assert f"{step.index}. {step.action}: {step.name}" in text, (step.name, text[:3000])
        assert result.transaction_id in text  # the parameters table
