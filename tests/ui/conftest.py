"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) and ``ferry ui`` as a
process. Each browser test leaves a screenshot of its last page under ``test-output/ui/``
(``FERRY_TEST_OUTPUT`` moves it), and fails on any error the page's scripts raise. Give
``wait_for_function`` a function (``"() => ..."``): the pages' Content-Security-Policy forbids
the ``eval`` Playwright runs a bare expression with."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.cluster.fixtures import REPO
from tests.cluster.processes import Server, free_port

SCREENSHOTS = pathlib.Path(os.environ.get("FERRY_TEST_OUTPUT") or REPO / "test-output") / "ui"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("the UI's browser tests need Chromium: apt-get install -y chromium (README, \"Run the tests\")")
    with sync_playwright() as playwright:
        # As root, Chromium refuses its sandbox; the pages are our own, on loopback.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=SCREENSHOTS / f"{request.node.name}.png")
    context.close()
    assert not errors, f"the page's scripts failed: {errors}"


def snap(page, name: str) -> None:
    """A screenshot of the page as it is now, next to the test's last one."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


class UI:
    """``ferry ui`` on a free port of loopback."""

    def __init__(self, log_dir: pathlib.Path, args: list[str], env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server("ferry-ui", [sys.executable, "-m", "ferry", "ui", "--port", str(self.port), *args],
                             log_dir, env={**os.environ, **env})
        self.server.wait_until(lambda: urllib.request.urlopen(f"{self.url}/workflows", timeout=2).status == 200,
                               60, "serving")

    def get(self, path: str) -> str:
        return urllib.request.urlopen(self.url + path, timeout=10).read().decode()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def start_ui(tmp_path: pathlib.Path) -> Iterator:
    started: list[UI] = []

    def start(*args: str, **env: str) -> UI:
        started.append(UI(tmp_path, list(args), env))
        return started[-1]

    yield start
    for ui in started:
        ui.stop()
