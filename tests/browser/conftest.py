"""A real headless Chromium (Debian's package) driven by Playwright, and a third-party site.

The browser is the system one (`executable_path`); Playwright's own browser downloads are never
used. A missing or broken browser fails every test here with the reason: never a skip.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, Error, Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EMAILGATE_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("EMAILGATE_CHROMIUM", "/usr/bin/chromium")


# Module scope, not session: sync Playwright keeps an event loop running in this thread while
# it is open, and the asyncio tests of other modules cannot start their own beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; a clear failure when it is missing or cannot start."""
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's chromium and chromium-driver "
            "(scripts/test does) or point EMAILGATE_CHROMIUM at one",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            launched = playwright.chromium.launch(
                executable_path=path, headless=True, args=["--no-sandbox"]
            )
        except Error as e:
            pytest.fail(f"Chromium at {path} did not start: {e}", pytrace=False)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; its screenshot is saved under test-artifacts/browser/ after the test."""
    context = browser.new_context(viewport={"width": 720, "height": 640})
    page = context.new_page()
    yield page
    shots = ARTIFACTS / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    if not page.is_closed():
        page.screenshot(path=shots / f"{request.node.name}.png", full_page=True)
    context.close()


@dataclass
class Site:
    """A shop's own web server on another origin: its signup page and its form handler."""

    url: str
    submissions: list[dict[str, list[str]]] = field(default_factory=list)
    page_html: str = ""


@pytest.fixture
def site() -> Iterator[Site]:
    """Serve `site.page_html` at / and record every form POSTed to /signup."""
    state = Site(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(200, state.page_html)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.submissions.append(parse_qs(self.rfile.read(length).decode()))
            self._send(200, "<!doctype html><title>ok</title><h1 id='thanks'>Welcome</h1>")

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
