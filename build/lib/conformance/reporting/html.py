"""`deg-conformance report DIR...`: a run's Allure results as one HTML file, with the Allure 3 renderer from npm.

Allure 3 is a Node.js program (no Java): the renderer is the one a checkout pins in package.json (installed by
`npm ci` into node_modules), else an `allure` on the PATH, else the pinned version fetched by `npx`. Where there
is no Node.js at all, the error says what to install. The report is one self-contained file, opened from disk,
that calls nobody when opened.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conformance.errors import ConfigError

ALLURE = "allure@3.18.0"
"""The renderer's npm package and version, as package.json pins it (a test keeps the two equal)."""
NAME = "DEG conformance report"
_ANALYTICS = re.compile(r'<script async src="https://www\.googletagmanager\.com/gtag/js.*?</script>\s*'
                        r"(<script>.*?gtag\(.*?</script>)?", re.S)


def results_folders(paths: list[Path]) -> list[Path]:
    """The Allure results each path holds: the folder itself, or the `allure-results` of a report folder."""
    found = []
    for path in paths:
        for candidate in (path, path / "allure-results"):
            if candidate.is_dir() and any(candidate.glob("*-result.json")):
                found.append(candidate)
                break
        else:
            raise ConfigError(f"{path}: no Allure results here (deg-conformance run writes them to "
                              "<report dir>/allure-results)")
    return found


def renderer(checkout: Path | None) -> list[str]:
    """The command that runs Allure 3: the checkout's pinned one, one on the PATH, or the pinned one via npx."""
    if checkout is not None and (checkout / "node_modules" / ".bin" / "allure").is_file():
        return [str(checkout / "node_modules" / ".bin" / "allure")]
    if shutil.which("allure"):
        return ["allure"]
    if shutil.which("npx"):
        return ["npx", "--yes", ALLURE]
    raise ConfigError(f"rendering needs Node.js (20 or later) and the Allure 3 renderer: install Node.js, then "
                      f"`npm install -g {ALLURE}` (or run `npm ci` in a checkout of deg-conformance); the Allure "
                      "results themselves are complete without it")


def render(paths: list[Path], out: Path, *, checkout: Path | None = None) -> Path:
    """One HTML report of every results folder in `paths`, at `out`/index.html."""
    folders = results_folders(paths)
    command = [*renderer(checkout), "awesome", *map(str, folders), "--output", str(out), "--single-file",
               "--report-name", NAME]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the Allure renderer did not run: {exc}") from None
    index = out / "index.html"
    if done.returncode != 0 or not index.is_file():
        raise ConfigError(f"the Allure renderer failed ({' '.join(command[:3])}): "
                          f"{(done.stderr or done.stdout).strip()[-500:]}")
    # Allure 3.18 embeds a Google Analytics tag; a conformance report must not call anyone when it is opened.
    page = _ANALYTICS.sub("", index.read_text(encoding="utf-8"))
    if "googletagmanager" in page:
        raise ConfigError(f"could not remove the analytics tag from {index} (has Allure's template changed?)")
    index.write_text(page, encoding="utf-8")
    return index
