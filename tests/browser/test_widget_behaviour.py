"""The widget's harder cases, against a fake of the verify API's wire with a set delay."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import FakeVerify, Site

DISPOSABLE = "someone@mailinator.com"
GOOD = "someone@gmail.com"


def page_with(site: Site, verify: FakeVerify, body: str, script_attrs: str = "") -> str:
    """A shop page with a self-hosted copy of the widget pointed at `verify`."""
    site.page_html = f"""<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<link rel="icon" href="data:,">
<script src="/emailgate.js" data-emailgate-url="{verify.url}" {script_attrs} defer></script>
</head><body>{body}</body></html>"""
    return site.url


FORM = """<form method="post" action="/signup" id="form">
  <input name="name" id="name" required value="Ada">
  <input type="email" name="email" id="email" required data-emailgate>
  <button id="submit" name="plan" value="pro">Join</button>
</form>"""


def test_an_edit_during_the_submit_check_is_checked_before_the_form_goes(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """The value changes while submit waits for its answer: the new value decides."""
    fake_verify.delay = 1.0
    page.goto(page_with(site, fake_verify, FORM))
    email = page.locator("#email")
    email.fill(GOOD)
    page.locator("#submit").click()
    expect(page.locator(".emailgate-message")).to_have_text("Checking your email address…")
    email.fill(DISPOSABLE)  # the accept for GOOD is still on its way
    expect(page.locator(".emailgate-message")).to_contain_text("Disposable", timeout=5000)
    page.wait_for_timeout(300)
    assert site.submissions == []
    assert [c["body"]["email"] for c in fake_verify.calls] == [GOOD, DISPOSABLE]


def test_a_form_made_invalid_during_the_check_does_not_skip_the_next_check(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """requestSubmit() refused by the form's own validation leaves no pass for a later submit."""
    fake_verify.delay = 0.5
    page.goto(page_with(site, fake_verify, FORM))
    page.locator("#email").fill(GOOD)
    page.locator("#submit").click()
    page.locator("#name").fill("")  # required, now empty: the browser refuses the release
    page.wait_for_timeout(1200)
    assert site.submissions == []
    page.locator("#name").fill("Ada")
    page.locator("#email").fill(DISPOSABLE)
    page.locator("#submit").click()
    expect(page.locator(".emailgate-message")).to_contain_text("Disposable", timeout=5000)
    page.wait_for_timeout(300)
    assert site.submissions == []


def test_the_form_arrives_once_with_its_submitter(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """The submit the widget held reaches the shop once, with the clicked button's value."""
    page.goto(page_with(site, fake_verify, FORM))
    page.locator("#email").fill(GOOD)
    with page.expect_navigation():
        page.locator("#submit").click()
    assert site.submissions == [{"name": ["Ada"], "email": [GOOD], "plan": ["pro"]}]


def test_the_page_handler_sees_one_submit_event(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """A single-page app's own handler (which cancels navigation) runs exactly once."""
    page.goto(page_with(site, fake_verify, FORM))
    page.evaluate(
        "window.submits = 0; document.getElementById('form').addEventListener("
        "'submit', e => { e.preventDefault(); window.submits++; })"
    )
    page.locator("#email").fill(GOOD)
    page.locator("#submit").click()
    page.wait_for_function("window.submits > 0")
    page.wait_for_timeout(300)
    assert page.evaluate("window.submits") == 1


def test_every_marked_field_of_a_form_is_checked(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """Two marked fields: the rejected one takes the focus; both good, the form goes."""
    body = """<form method="post" action="/signup">
  <label>Email <input type="email" name="email" id="a" data-emailgate></label>
  <label>Backup <input type="email" name="backup" id="b" data-emailgate></label>
  <button id="submit">Join</button></form>"""
    page.goto(page_with(site, fake_verify, body))
    page.locator("#a").fill(GOOD)
    page.locator("#b").fill(DISPOSABLE)
    page.locator("#submit").click()
    expect(page.locator("#b")).to_be_focused()
    expect(page.locator("#b")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#a")).not_to_have_attribute("aria-invalid", "true")
    assert page.locator(".emailgate-message").count() == 2
    page.locator("#b").fill("backup@gmail.com")
    with page.expect_navigation():
        page.locator("#submit").click()
    assert site.submissions == [{"email": [GOOD], "backup": ["backup@gmail.com"]}]


def test_messages_from_the_script_tag_and_options_from_init_apply(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """Script-tag texts reach the fields; a later init() changes key, context and a message."""
    page.goto(
        page_with(
            site,
            fake_verify,
            FORM,
            script_attrs='data-emailgate-message-reject-low-quality="Script tag says no."',
        )
    )
    email = page.locator("#email")
    email.fill(DISPOSABLE)
    email.blur()
    expect(page.locator(".emailgate-message")).to_have_text("Script tag says no.")
    assert fake_verify.calls[-1] == {
        "body": {"email": DISPOSABLE, "context": "signup"},
        "key": None,
    }
    page.evaluate(
        "EmailGate.init({key: 'pk_from_init', context: 'marketing',"
        " messages: {rejectLowQuality: 'Init says no.'}})"
    )
    email.focus()
    email.blur()  # the same value, asked again under the new settings
    expect(page.locator(".emailgate-message")).to_have_text("Init says no.")
    assert fake_verify.calls[-1] == {
        "body": {"email": DISPOSABLE, "context": "marketing"},
        "key": "pk_from_init",
    }


def test_one_result_event_per_answer(page: Page, site: Site, fake_verify: FakeVerify) -> None:
    """A blur then a submit of the same value fire `emailgate:result` once."""
    page.goto(page_with(site, fake_verify, FORM))
    page.evaluate(
        "window.results = []; window.submits = 0;"
        "document.addEventListener('emailgate:result', e => results.push(e.detail.decision));"
        "document.getElementById('form').addEventListener("
        "'submit', e => { e.preventDefault(); window.submits++; })"
    )
    page.locator("#email").fill(GOOD)
    page.locator("#email").blur()
    page.wait_for_function("window.results.length === 1")
    page.locator("#submit").click()
    page.wait_for_function("window.submits === 1")
    assert page.evaluate("window.results") == ["accept"]
    assert len(fake_verify.calls) == 1


def test_a_bad_timeout_attribute_falls_back_to_the_default(
    page: Page, site: Site, fake_verify: FakeVerify
) -> None:
    """data-emailgate-timeout="soon" is ignored, not read as zero: a 0.5 s answer still counts."""
    fake_verify.delay = 0.5
    page.goto(page_with(site, fake_verify, FORM, script_attrs='data-emailgate-timeout="soon"'))
    page.locator("#email").fill(DISPOSABLE)
    started = time.monotonic()
    page.locator("#submit").click()
    expect(page.locator(".emailgate-message")).to_contain_text("Disposable", timeout=5000)
    assert time.monotonic() - started >= 0.5
    assert site.submissions == []
