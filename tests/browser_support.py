"""Headless Chromium for browser tests: Debian's chromium driven by Playwright.

Without Chromium or Playwright a browser test skips with the reason, unless
PACS_REQUIRE_PEERS=1 (CI), which turns the skip into a failure."""

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _missing(reason: str):
    if os.environ.get("PACS_REQUIRE_PEERS") == "1":
        pytest.fail(f"PACS_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if not path:
        _missing("Debian's chromium is not installed (apt-get install chromium); CI installs it")
    return path


@contextmanager
def browser_page(width: int = 1280, height: int = 900):
    """A fresh page in headless Chromium (one browser per test: simple and isolated)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (requirements-test.txt)")
    executable = chromium_path()
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test in between are safe, so let Django allow them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(15000)
            # Our pages must run under their Content-Security-Policy: any violation fails the test.
            violations = []
            page.on("console", lambda message: violations.append(message.text)
                    if "Content Security Policy" in message.text else None)
            yield page
            assert violations == [], violations
        finally:
            browser.close()


def wait_until(page, expression: str, timeout: float = 15) -> None:
    """Wait until a JavaScript expression is true. Playwright's wait_for_function evaluates its
    string inside the page, which the pages' CSP (no eval) forbids; evaluate() does not."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        time.sleep(0.1)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
