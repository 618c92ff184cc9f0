"""A real headless Chromium (Debian's package) driven by Playwright, and a third-party site.

The browser is the system one (`executable_path`); Playwright's own browser downloads are never
used. A missing or broken browser fails every test here with the reason: never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
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
    if not page.is_closed():
        snapshot(page, request.node.name)
    context.close()


def snapshot(page: Page, name: str) -> None:
    """Save the page as it is now as test-artifacts/browser/<name>.png."""
    (ARTIFACTS / "browser").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "browser" / f"{name}.png", full_page=True)


WIDGET = resources.files("emailgate").joinpath("static", "emailgate.js").read_bytes()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port from a thread; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Site:
    """A shop's own web server on another origin: its signup page, a self-hosted copy of the
    widget at /emailgate.js, and its form handler."""

    url: str
    submissions: list[dict[str, list[str]]] = field(default_factory=list)
    page_html: str = ""


@pytest.fixture
def site() -> Iterator[Site]:
    """Serve `site.page_html` at / and record every form POSTed to /signup."""
    state = Site(url="")

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/emailgate.js":
                self._send(200, WIDGET.decode(), "text/javascript")
            else:
                self._send(200, state.page_html)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.submissions.append(parse_qs(self.rfile.read(length).decode()))
            self._send(200, "<!doctype html><title>ok</title><h1 id='thanks'>Welcome</h1>")

        def _send(self, status: int, body: str, kind: str = "text/html") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serving(Handler) as url:
        state.url = url
        yield state


@dataclass
class FakeVerify:
    """The wire of emailgate's verify API as a browser sees it, with a delay the test sets:
    disposable (mailinator.com) is a reject, gamil.com an accept with a suggestion."""

    url: str
    delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)


def fake_result(email: str, context: str) -> dict[str, Any]:
    """A RESULT of the contract for `email`, decided by its domain."""
    user, _, domain = email.rpartition("@")
    reject = domain == "mailinator.com"
    return {
        "email_address": email,
        "user": user,
        "domain": domain,
        "state": "risky" if reject else "deliverable",
        "reason": "low_quality" if reject else "accepted_email",
        "score": 10 if reject else 90,
        "disposable": reject,
        "did_you_mean": f"{user}@gmail.com" if domain == "gamil.com" else None,
        "decision": "reject" if reject else "accept",
        "context": context,
        "threshold": 30,
        "source": "local",
        "cached": False,
    }


@pytest.fixture
def fake_verify() -> Iterator[FakeVerify]:
    """`POST /api/v1/verify` with CORS for any origin, answering after `delay` seconds."""
    state = FakeVerify(url="")

    class Handler(QuietHandler):
        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, X-API-Key")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.calls.append({"body": body, "key": self.headers.get("X-API-Key")})
            time.sleep(state.delay)
            data = json.dumps(
                {"success": True, "data": fake_result(body["email"], body["context"])}
            ).encode()
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))

    with serving(Handler) as url:
        state.url = url
        yield state
