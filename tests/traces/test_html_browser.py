"""The HTML reports in a real headless Chromium: no script errors, every step, navigation.

Needs Debian's chromium and the ``browser`` extra (Playwright, used only to drive it);
skips with the reason when either is missing. ``.ci/run`` installs both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser extra (playwright) is not installed")
if CHROMIUM is None:
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user data dir
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                        args=FLAGS)
        try:
            yield context
        finally:
            context.close()


def open_page(browser: Any, file: Path) -> tuple[Any, list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req: errors.append(f"fetched {req.url}") if not req.url.startswith("file:") else None)
    page.goto(file.as_uri())
    return page, errors


def selected(page: Any, section: str = "section.trace") -> int:
    return int(page.eval_on_selector(f"{section} tr.sel", "r => r.dataset.n"))


def test_check_page_loads_shows_every_step_and_navigates(browser: Any, cli, tmp_path: Path) -> None:
    out = tmp_path / "check.html"
    assert cli("check", "--variant", "reload-no-drain", "--html", str(out)).code == 1
    page, errors = open_page(browser, out)
    rows = page.query_selector_all("section.trace tr.step")
    assert len(rows) == 6  # initial state and 5 steps
    assert [r.query_selector("td.st").inner_text() for r in rows][-1] == "finish_reload(i=0)"
    assert selected(page) == 5  # opens on the failing state
    assert "after step 5: finish_reload(i=0)" in page.inner_text("section.trace .panel")
    page.keyboard.press("Home")
    assert selected(page) == 0
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    assert selected(page) == 2
    assert "after step 2: shadow_fault(i=0, p=0)" in page.inner_text("section.trace .panel")
    page.keyboard.press("k")
    assert selected(page) == 1
    page.keyboard.press("End")
    assert selected(page) == 5
    rows[3].click()
    assert selected(page) == 3
    assert page.query_selector_all("svg.plot rect")  # the BFS level plot
    assert page.query_selector("section.trace .verdict").inner_text().startswith("✗ no_stale_translation(0,0)")
    assert errors == []


def test_regress_page_links_every_trace(browser: Any, cli, tmp_path: Path) -> None:
    out = tmp_path / "regress.html"
    cli("regress", "--candidate", "reload-no-drain", "--bounds", "2,1,1,1", "--no-behaviours", "--html", str(out))
    page, errors = open_page(browser, out)
    links = page.eval_on_selector_all("a[href^='#']", "as => as.map(a => a.getAttribute('href').slice(1))")
    assert links and all(page.query_selector(f"[id='{a}']") for a in links)
    assert page.query_selector_all("section.trace") and len(links) == len(page.query_selector_all("section.trace"))
    page.click(f"a[href='#{links[0]}']")
    page.keyboard.press("Home")
    assert selected(page, f"[id='{links[0]}']") == 0
    assert errors == []


def test_replay_page(browser: Any, cli, tmp_path: Path) -> None:
    trace, out = tmp_path / "cex.json", tmp_path / "replay.html"
    cli("check", "--variant", "drain-local-only", "--trace-out", str(trace))
    assert cli("replay", str(trace), "--html", str(out)).code == 0
    page, errors = open_page(browser, out)
    assert len(page.query_selector_all("tr.step")) == 9
    page.keyboard.press("Home")
    assert selected(page) == 0
    assert errors == []
