"""Regenerate the screenshots of the HTML reports in docs/ (one per page type).

Run from the repository root with the ``browser`` extra and Debian's chromium installed:
``python docs/screenshots.py``. Writes docs/html-check.png, docs/html-replay.png and
docs/html-regress.png.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from playwright.sync_api import sync_playwright

from deferral.cli.main import main

DOCS = Path(__file__).resolve().parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def pages(tmp: Path) -> dict[str, tuple[Path, list[str]]]:
    """Build one page of each type; name -> (file, keys pressed before the screenshot)."""
    with redirect_stdout(StringIO()):
        main(["check", "--variant", "drain-local-only", "--html", str(tmp / "check.html"),
              "--trace-out", str(tmp / "cex.json")])
        main(["replay", str(tmp / "cex.json"), "--html", str(tmp / "replay.html")])
        main(["regress", "--candidate", "drain-local-only", "--html", str(tmp / "regress.html")])
    return {"check": (tmp / "check.html", []), "replay": (tmp / "replay.html", ["Home", "j", "j", "j"]),
            "regress": (tmp / "regress.html", [])}


def shoot() -> None:
    chromium = shutil.which("chromium")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as pw:
        tmp = Path(folder)
        context = pw.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=chromium,
                                                        headless=True, args=FLAGS,
                                                        viewport={"width": 1200, "height": 860})
        for name, (file, keys) in pages(tmp).items():
            page = context.new_page()
            page.goto(file.as_uri())
            for key in keys:
                page.keyboard.press(key)
            page.screenshot(path=str(DOCS / f"html-{name}.png"))
            page.close()
        context.close()


if __name__ == "__main__":
    shoot()
