"""The widget in a real headless Chromium: on the demo page and on a shop's page elsewhere."""

from __future__ import annotations

import hashlib
import html
import io
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import Site, snapshot
from tests.conftest import ZONES
from tests.live import live_app

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_KEY = "pk_test_browser_widget_key_0123456789"
TYPO = "someone@gamil.com"  # gamil.com takes mail: accepted, with a suggestion
DISPOSABLE = "someone@mailinator.com"
GOOD = "someone@gmail.com"


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """emailgate on embedded defaults (open, demo on) with its DNS server on loopback."""
    with live_app({}, ZONES) as url:
        yield url


def verify_requests(page: Page) -> list[Request]:
    """Every verify request the page makes from now on."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if "/api/v1/verify" in r.url else None)
    return seen


def demo_typo_example() -> str:
    """The typo the demo page itself tells visitors to try."""
    page = (ROOT / "service/emailgate/static/demo.html").read_text()
    found = re.search(r"a typo: <code>([^<]+)</code>", page)
    assert found, "the demo page no longer offers a typo example"
    return html.unescape(found.group(1))


def test_demo_typo_suggestion_fills_the_field_on_click(page: Page, service: str) -> None:
    """A typo shows "Did you mean …?" on blur; clicking the suggestion fills the field."""
    page.goto(f"{service}/demo")
    email = page.locator("#email")
    email.fill(TYPO)
    email.blur()
    suggestion = page.get_by_role("button", name=GOOD)
    expect(suggestion).to_be_visible()
    expect(page.locator(".emailgate-message")).to_have_text(f"Did you mean {GOOD}?")
    suggestion.click()
    expect(email).to_have_value(GOOD)
    expect(email).to_be_focused()
    expect(suggestion).to_have_count(0)
    page.locator("#submit").click()
    expect(page.locator("#submitted-email")).to_have_text(GOOD)


def test_the_demo_typo_example_reads_did_you_mean_first(page: Page, service: str) -> None:
    """The demo's own typo example (gmial.com, a typo-squat listed as disposable, so
    rejected): the message begins with "Did you mean …?", the refusal only after it. This
    is the picture in the README and docs/widget.md (docs/img/demo.png)."""
    typo = demo_typo_example()
    page.goto(f"{service}/demo")
    email = page.locator("#email")
    email.fill(typo)
    email.blur()
    message = page.locator(".emailgate-message")
    expect(message).to_have_text(re.compile(rf"^Did you mean\s*{re.escape(GOOD)}\s*\?\s*\S"))
    expect(message).to_contain_text("Disposable email addresses can't be used here.")
    snapshot(page, "demo-suggestion")
    page.get_by_role("button", name=GOOD).click()
    expect(email).to_have_value(GOOD)


def test_the_docs_screenshot_is_the_page_as_it_is(page: Page, service: str) -> None:
    """docs/img/demo.png is what the demo page shows for its own typo example today (same
    size; at most 1 % of pixels differ, for font hinting): regenerate it when the page changes
    (copy test-artifacts/browser/demo-suggestion.png)."""
    from PIL import Image, ImageChops

    page.goto(f"{service}/demo")
    page.locator("#email").fill(demo_typo_example())
    page.locator("#email").blur()
    expect(page.get_by_role("button", name=GOOD)).to_be_visible()
    fresh = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    docs = Image.open(ROOT / "docs/img/demo.png").convert("RGB")
    assert docs.size == fresh.size, (docs.size, fresh.size)
    diff = ImageChops.difference(docs, fresh).convert("L").point(lambda v: 255 if v > 40 else 0)
    changed = sum(1 for v in diff.getdata() if v) / (docs.size[0] * docs.size[1])
    assert changed < 0.01, f"{changed:.1%} of docs/img/demo.png differs from the page"


def test_demo_disposable_address_is_rejected_and_submit_blocked(page: Page, service: str) -> None:
    """A disposable address shows the reject message; submitting stays on the page."""
    posts: list[Request] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/demo") else None,
    )
    page.goto(f"{service}/demo")
    email = page.locator("#email")
    email.fill(DISPOSABLE)
    page.locator("#submit").click()
    message = page.locator(".emailgate-message")
    expect(message).to_have_text(
        "Disposable email addresses can't be used here. Please use your own."
    )
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    snapshot(page, "demo-reject")
    page.locator("#submit").click()  # again: still blocked
    expect(message).to_contain_text("Disposable")
    page.wait_for_timeout(300)
    assert posts == [] and page.locator("#thanks").count() == 0
    email.fill(GOOD)  # editing clears the message
    expect(message).to_have_text("")
    expect(email).not_to_have_attribute("aria-invalid", "true")


def test_demo_good_address_submits(page: Page, service: str) -> None:
    """A good address goes through to the form's own handler, with one check."""
    seen = verify_requests(page)
    page.goto(f"{service}/demo")
    page.locator("#email").fill(GOOD)
    page.locator("#submit").click()
    expect(page.locator("#thanks")).to_be_visible()
    expect(page.locator("#submitted-email")).to_have_text(GOOD)
    assert len(seen) == 1


def test_demo_checks_on_blur_never_per_keystroke(page: Page, service: str) -> None:
    """Typing asks nothing; leaving the field asks once; submitting the same value asks no more."""
    seen = verify_requests(page)
    page.goto(f"{service}/demo")
    email = page.locator("#email")
    email.press_sequentially(GOOD, delay=20)
    page.wait_for_timeout(300)
    assert seen == []
    email.blur()
    page.wait_for_function("document.querySelector('.emailgate-message').dataset.state === ''")
    assert len(seen) == 1
    page.locator("#submit").click()
    expect(page.locator("#thanks")).to_be_visible()
    assert len(seen) == 1


def test_demo_is_usable_by_keyboard_and_announced(page: Page, service: str) -> None:
    """Shift+Tab reaches the suggestion, Enter takes it; messages sit in a polite live region."""
    page.goto(f"{service}/demo")
    email = page.locator("#email")
    region = page.locator(".emailgate-message")
    expect(region).to_have_attribute("aria-live", "polite")
    region_id = region.get_attribute("id")
    assert region_id and region_id in (email.get_attribute("aria-describedby") or "").split()
    email.focus()
    page.keyboard.type(TYPO)
    page.keyboard.press("Tab")  # focus moves on to "Sign up"; the suggestion appears behind it
    suggestion = page.get_by_role("button", name=GOOD)
    expect(suggestion).to_be_visible()
    expect(page.locator("#submit")).to_be_focused()
    # The message describes the field and is not part of its name.
    expect(email).to_have_accessible_name("Email")
    # (The description puts spaces around the button's text.)
    expect(email).to_have_accessible_description(
        re.compile(rf"^Did you mean\s*{re.escape(GOOD)}\s*\?$")
    )
    page.keyboard.press("Shift+Tab")
    expect(suggestion).to_be_focused()
    page.keyboard.press("Enter")
    expect(email).to_have_value(GOOD)
    page.keyboard.press("Enter")  # Enter in the field submits the form
    expect(page.locator("#submitted-email")).to_have_text(GOOD)


def test_demo_page_obeys_its_content_security_policy(page: Page, service: str) -> None:
    """The demo runs under a CSP without inline script, and the browser reports no violation."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(f"{service}/demo")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator("#email").fill(TYPO)
    page.locator("#email").blur()
    expect(page.get_by_role("button", name=GOOD)).to_be_visible()
    assert problems == []


# --- a shop's page on another origin, with a public key -------------------------------------


def shop_page(script_url: str, *, key: str, url: str = "", extra: str = "") -> str:
    """The snippet of docs/widget.md pasted into a shop's signup form."""
    attrs = f'data-emailgate data-emailgate-key="{html.escape(key)}"'
    if url:
        attrs += f' data-emailgate-url="{html.escape(url)}"'
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="{html.escape(script_url)}" defer></script></head><body>
<form method="post" action="/signup">
  <input type="email" name="email" id="email" required {attrs} {extra}>
  <button id="submit">Join</button>
</form></body></html>"""


@pytest.fixture
def keyed_service(tmp_path: Path, site: Site) -> Iterator[tuple[str, ExitStack]]:
    """emailgate with a public key for the shop's origin; the stack stops it on demand."""
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f"""[[key]]
name = "shop-signup"
kind = "public"
sha256 = "{hashlib.sha256(PUBLIC_KEY.encode()).hexdigest()}"
origins = ["{site.url}"]
rate = "1000/60s"
"""
    )
    with ExitStack() as stack:
        url = stack.enter_context(live_app({"EMAILGATE_API_KEYS_FILE": str(keys)}, ZONES))
        yield url, stack


def test_shop_page_with_public_key_blocks_a_disposable_address(
    page: Page, site: Site, keyed_service: tuple[str, ExitStack]
) -> None:
    """Cross-origin, with the shop's public key: the reject blocks the shop's form."""
    service, _ = keyed_service
    site.page_html = shop_page(
        f"{service}/static/emailgate.js",
        key=PUBLIC_KEY,
        extra='data-emailgate-message-reject-low-quality="Bitte keine Wegwerfadressen."',
    )
    page.goto(site.url)
    page.locator("#email").fill(DISPOSABLE)
    page.locator("#submit").click()
    expect(page.locator(".emailgate-message")).to_have_text("Bitte keine Wegwerfadressen.")
    page.locator("#email").fill(GOOD)
    page.locator("#submit").click()
    expect(page.locator("#thanks")).to_be_visible()
    assert [s["email"] for s in site.submissions] == [[GOOD]]


def test_shop_form_submits_when_the_service_is_stopped(
    page: Page, site: Site, keyed_service: tuple[str, ExitStack]
) -> None:
    """The widget is loaded, then emailgate stops: the form still submits (fail-open)."""
    service, stack = keyed_service
    site.page_html = shop_page(f"{service}/static/emailgate.js", key=PUBLIC_KEY)
    page.goto(site.url)
    page.wait_for_function("window.EmailGate !== undefined")
    stack.close()  # the service is gone: connections are refused
    page.locator("#email").fill(DISPOSABLE)
    page.locator("#submit").click()
    expect(page.locator("#thanks")).to_be_visible()
    assert [s["email"] for s in site.submissions] == [[DISPOSABLE]]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a service that hangs."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_shop_form_submits_after_the_widget_timeout_when_the_service_hangs(
    page: Page, site: Site, service: str, silent_server: str
) -> None:
    """A service that never answers holds the form only for the widget's own timeout."""
    site.page_html = shop_page(
        f"{service}/static/emailgate.js",
        key=PUBLIC_KEY,
        url=silent_server,
        extra='data-emailgate-timeout="800"',
    )
    page.goto(site.url)
    page.locator("#email").fill(DISPOSABLE)
    page.locator("#submit").click()
    expect(page.locator(".emailgate-message")).to_have_text("Checking your email address…")
    expect(page.locator("#thanks")).to_be_visible(timeout=5000)
    assert [s["email"] for s in site.submissions] == [[DISPOSABLE]]
