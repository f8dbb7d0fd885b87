"""The static dashboard: a page per task family with one series per estimator configuration and panel,
a hover title naming the commit at every point, the change points marked; opened in headless
Chromium where it is installed (`make test-browser`), skipped cleanly where it is not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from rpbench.history.changes import history_table
from tests.conftest import exit_code
from tests.history.conftest import planted_history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOT = "RPBENCH_DASHBOARD_SHOT"
"""Where to keep the screenshot (`make test-browser`: docs/figures/dashboard.png)."""
SERIES = 8  # score and pathwise × fn=quadratic, sigma=1, k = 0.5 and 2 × groups mu and sigma


@pytest.fixture
def site(source_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    history = planted_history(source_run, tmp_path, monkeypatch, commits="abc")
    assert exit_code(["dashboard", str(history), "-o", str(tmp_path / "site")]) == 0
    return tmp_path / "site"


def test_a_page_per_task_family_with_its_series_hover_titles_and_change_points(site: Path) -> None:
    assert sorted(p.name for p in site.iterdir()) == ["gaussian.html", "index.html"]
    page = (site / "gaussian.html").read_text()
    assert len(set(re.findall(r'id="series-(\d+)"', page))) == SERIES
    titles = re.findall(r'<g id="point-\d+-\d+">\s*<title>([^<]*)</title>', page)
    assert len(titles) == 3 * SERIES  # every point of the three runs
    assert sum("commit cccccccccc" in t for t in titles) == SERIES
    flagged = history_table(site.parent / "history.db", "variance")["change"].eq("regression").sum()
    assert flagged >= 1 and sum("regression" in t for t in titles) == flagged  # the history's change points
    assert "<script" not in page and "http" not in page.split("<svg", 1)[0]  # offline: nothing to fetch
    assert 'href="gaussian.html"' in (site / "index.html").read_text()


def test_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["dashboard", str(tmp_path / "none.db"), "-o", str(tmp_path / "site")]) == 2
    assert "no such history file" in capsys.readouterr().err and not (tmp_path / "site").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian's package chromium; `make test-browser`)")
def test_the_page_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    page = (site / "gaussian.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, *profile, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert len(set(re.findall(r'id="series-(\d+)"', dom))) == SERIES  # what the browser built from the page
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1400,1000", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # not blank: text, lines, bands
    drawn = sum(count for count, rgb in colours if rgb != (255, 255, 255))
    assert drawn > 0.02 * sum(count for count, _ in colours)
    if os.environ.get(SHOT):  # `make test-browser` keeps it for the README
        shutil.copyfile(shot, os.environ[SHOT])
