"""A real browser for the web app: Debian's chromium, driven by Playwright (which downloads
no browser of its own here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements import missing

CHROMIUM = os.environ.get("TAILWINDS_TEST_CHROMIUM") or shutil.which("chromium") or ""
# where the tests leave their screenshots (the README's come from here)
ARTEFACTS = Path(
    os.environ.get("TAILWINDS_TEST_ARTEFACTS", Path(__file__).parents[1] / "artefacts")
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # per module, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it lives, which would break every later `asyncio.run` of the suite
    if not CHROMIUM:
        missing("Chromium", "`apt-get install chromium` (scripts/install-test-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def screenshot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"))
