"""`deg-conformance report`: the Allure results of runs as one HTML file, or a clear word on what to install."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.errors import ConfigError
from conformance.reporting import html

ROOT = Path(__file__).resolve().parent.parent


def a_run(folder: Path, name: str = "unknown-order") -> Path:
    assert main(["run", str(ROOT / f"scenarios/demand-flexibility/{name}.yaml"), "--report-dir", str(folder)]) == 0
    return folder


def test_the_pinned_renderer_is_the_one_package_json_pins() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["allure"]
    assert html.ALLURE == f"allure@{pinned}"


def test_a_folder_without_results_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no Allure results here" in capsys.readouterr().err


def test_without_node_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError) as refused:
        html.renderer(tmp_path)  # a folder with no node_modules, as an installed package has
    assert "install Node.js" in str(refused.value) and f"npm install -g {html.ALLURE}" in str(refused.value)


@pytest.mark.skipif(not (ROOT / "node_modules/.bin/allure").is_file(), reason="npm ci has not been run (.ci/run runs it)")
def test_two_runs_render_as_one_report_that_calls_nobody(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = a_run(tmp_path / "one"), a_run(tmp_path / "two", "status-after-cancel")
    capsys.readouterr()
    assert main(["report", str(first), str(second / "allure-results"), "--out", str(tmp_path / "html")]) == 0
    assert capsys.readouterr().out.strip() == f"Allure report: {tmp_path / 'html' / 'index.html'}"
    page = (tmp_path / "html" / "index.html").read_text()
    assert "googletagmanager" not in page and "gtag(" not in page
    tests = json.loads((tmp_path / "html" / "test-results.json").read_text())["byId"]
    assert len(tests) == 2
