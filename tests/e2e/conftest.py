"""Browser fixtures: one headless Chromium per session (Debian's /usr/bin/chromium), a page per test that
records console errors, and a login helper. The Django server is pytest-django's ``live_server``."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between browser
# steps are still plain synchronous code, so Django's async guard is relaxed for this directory only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PREFLAB_CHROMIUM", "/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-test-123"


@pytest.fixture(scope="package")
def browser():
    # Package scope, not session: Playwright's sync API keeps an event loop running in this thread while
    # it is open, which would break every later test that calls ``asyncio.run`` (the reward clients).
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Assertions wait for what the page shows after background work (an import job's dry run, a prefetch);
    # on a loaded 2-core box that can take well over Playwright's 5 s default. A wait, not a timing bound:
    # a passing assertion returns as soon as the text is there.
    sync_api.expect.set_options(timeout=60_000)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


_warmed: set[str] = set()


def _warm_up(url: str) -> None:
    """The first request imports every URL module (the training stack among them: tens of seconds on a
    loaded machine); do it once outside a page's navigation timeout."""
    if url not in _warmed:
        with urllib.request.urlopen(f"{url}/accounts/login/", timeout=300) as response:
            response.read()
        _warmed.add(url)


@pytest.fixture
def page(browser, live_server, console_errors):
    _warm_up(live_server.url)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def on_console(msg):
        if msg.type == "error" and "favicon.ico" not in (msg.location or {}).get("url", ""):
            console_errors.append(f"{msg.text} @ {(msg.location or {}).get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console_errors.append(f"pageerror: {exc}"))
    in_flight: set = set()
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    yield page
    # Let requests the page still has open (a prefetch, a retried answer) finish before the database is
    # flushed: a server thread holding row locks while the flush truncates the tables can deadlock it.
    for _ in range(300):
        if not in_flight:
            break
        page.wait_for_timeout(100)
    context.close()
    assert console_errors == [], console_errors


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where screenshots go: ``PREFLAB_SCREENSHOT_DIR`` (e.g. docs/screenshots) or a temp dir."""
    target = os.environ.get("PREFLAB_SCREENSHOT_DIR")
    path = Path(target) if target else tmp_path / "screenshots"
    if not path.is_absolute():
        path = REPO_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(page, username: str, password: str = PASSWORD, *, keyboard: bool = False) -> None:
    page.goto("/accounts/login/")
    if keyboard:
        page.locator("#id_username").focus()
        page.keyboard.type(username)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        page.keyboard.press("Enter")
    else:
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
