"""What a person does in a real browser: pick, review, see the verdict, give feedback."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import frontend_process, screenshot_path
from tests.frontend.conftest import require_models
from tests.support import model_service

pytestmark = pytest.mark.slow
VERDICT = re.compile(
    r"We are (glad to hear you had a good|sorry to hear you had a bad) experience\."
)
SURE = re.compile(r"^Our model is (very sure|fairly sure|not very sure|unsure) about this\.$")
TIMEOUT_MS = 20_000
READ_TIMEOUT_S = 5.0  # the frontend's default FRONTEND_READ_TIMEOUT


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    csp_errors: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            csp_errors.append(message.text)

    page.on("console", on_console)
    page.csp_errors = csp_errors
    yield page
    context.close()


def test_pick_review_verdict_feedback(page: Any, app_url: str):
    from playwright.sync_api import expect

    page.goto(app_url + "/")
    expect(page.get_by_role("heading", name="How was your meal?")).to_be_visible()
    cards = page.locator(".card")
    expect(cards).to_have_count(4)
    page.screenshot(path=screenshot_path("01-home"), full_page=True)

    page.get_by_role("link", name=re.compile("Gourmet Haven")).click()
    expect(page).to_have_url(app_url + "/restaurants/gourmet-haven")
    page.screenshot(path=screenshot_path("02-restaurant"), full_page=True)

    page.get_by_label("Your review of Gourmet Haven").fill(
        "The tasting menu was superb and the service was warm and attentive."
    )
    page.get_by_role("button", name="Send review").click()
    verdict = page.locator("#result .verdict__text")
    expect(verdict).to_have_text(VERDICT)
    expect(page.locator("#result")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#result .fineprint")).to_contain_text("stable")
    expect(page.locator("#result .confidence")).to_have_text(SURE)
    expect(page.locator("#review-indicator")).to_be_hidden()
    assert page.url == app_url + "/restaurants/gourmet-haven", "swapped in place, no navigation"
    page.screenshot(path=screenshot_path("03-verdict"), full_page=True)

    accurate = page.get_by_role("button", name="Accurate", exact=True)
    not_accurate = page.get_by_role("button", name="Not accurate")
    accurate.click()
    expect(page.locator(".thanks")).to_contain_text("Thank you for your feedback!")
    expect(page.locator(".thanks")).to_contain_text("We are glad we read you right.")
    expect(page.locator(".thanks")).not_to_contain_text(re.compile(r"accuracy|%"))
    expect(accurate).to_be_disabled()
    expect(not_accurate).to_be_disabled()
    page.screenshot(path=screenshot_path("04-feedback"), full_page=True)

    # A new review starts over: a fresh verdict with both buttons usable again.
    page.get_by_label("Your review of Gourmet Haven").fill("Cold food and a long wait.")
    page.get_by_role("button", name="Send review").click()
    expect(page.locator(".thanks")).to_have_count(0)
    expect(accurate).to_be_enabled()
    expect(not_accurate).to_be_enabled()
    assert page.csp_errors == []


def test_keyboard_only(page: Any, app_url: str):
    from playwright.sync_api import expect

    page.goto(app_url + "/restaurants/sea-breeze-grill")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.get_by_label("Your review of Sea Breeze Grill").focus()
    page.keyboard.type("Fresh fish, friendly staff, lovely view.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send review")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#result .verdict__text")).to_have_text(VERDICT)
    page.get_by_role("button", name="Not accurate").focus()
    page.keyboard.press("Space")
    expect(page.locator(".thanks")).to_be_visible()


def test_without_javascript(chromium: Any, app_url: str):
    """The plain form shows what the htmx fragment shows: verdict, review, how sure, version."""
    from playwright.sync_api import expect

    context = chromium.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    review = "Lovely pastries and coffee.\nThe <b>best</b> croissant in town."
    try:
        page.goto(app_url + "/")
        page.get_by_role("link", name=re.compile("Café Serendipity")).click()
        page.get_by_label("Your review of Café Serendipity").fill(review)
        page.get_by_role("button", name="Send review").click()
        # The page answers the post itself: the review is not written into the address.
        expect(page).to_have_url(app_url + "/restaurants/cafe-serendipity/reviews#result")
        expect(page.locator(".verdict__text")).to_have_text(VERDICT)
        expect(page.locator(".verdict__review")).to_have_text(review)
        expect(page.locator(".confidence")).to_have_text(SURE)
        expect(page.locator("#result .fineprint")).to_contain_text("Read by model version stable")
        words = page.locator(".confidence").inner_text()
        page.screenshot(path=screenshot_path("05-no-js-verdict"), full_page=True)
        page.get_by_role("button", name="Accurate", exact=True).click()
        expect(page.locator(".thanks")).to_contain_text("Thank you for your feedback!")
        expect(page.get_by_role("button", name="Not accurate")).to_be_disabled()
        expect(page.locator(".verdict__review")).to_have_text(review)
        expect(page.locator(".confidence")).to_have_text(words)
        expect(page.locator(".verdict__text")).to_have_text(VERDICT)
        page.screenshot(path=screenshot_path("06-no-js-feedback"), full_page=True)
    finally:
        context.close()


def test_script_in_a_review_is_shown_as_text(page: Any, app_url: str):
    from playwright.sync_api import expect

    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    xss = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page.goto(app_url + "/restaurants/sizzle-spice")
    page.get_by_label("Your review of Sizzle & Spice").fill(xss)
    page.get_by_role("button", name="Send review").click()
    expect(page.locator(".verdict__review")).to_have_text(xss)
    expect(page.locator("#result img")).to_have_count(0)
    page.screenshot(path=screenshot_path("07-xss-as-text"), full_page=True)
    assert dialogs == []


def test_error_fragment_when_the_model_service_is_stopped(page: Any):
    from playwright.sync_api import expect

    require_models()
    with model_service("stable") as service_url, frontend_process(service_url) as url:
        page.goto(url + "/restaurants/gourmet-haven")
        page.get_by_label("Your review of Gourmet Haven").fill("Lovely evening.")
        page.get_by_role("button", name="Send review").click()
        expect(page.locator("#result .verdict__text")).to_have_text(VERDICT)
        stopped_at = service_url
    # The model-service process has stopped; the frontend keeps running.
    with frontend_process(stopped_at) as url:
        page.goto(url + "/restaurants/gourmet-haven")
        page.get_by_label("Your review of Gourmet Haven").fill("Lovely evening.")
        page.get_by_role("button", name="Send review").click()
        alert = page.locator("#result [role=alert]")
        expect(alert).to_contain_text("The sentiment service is not reachable")
        expect(page.get_by_role("button", name="Send review")).to_be_enabled()
        expect(page.get_by_label("Your review of Gourmet Haven")).to_have_value("Lovely evening.")
        page.screenshot(path=screenshot_path("10-model-service-down"), full_page=True)


@pytest.fixture
def silent_model_service() -> Iterator[str]:
    """A port that accepts connections and never answers: a model-service stuck mid-request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_loading_indicator_then_timeout_message(page: Any, silent_model_service: str):
    from playwright.sync_api import expect

    with frontend_process(silent_model_service, "--log-level", "error") as url:
        page.goto(url + "/restaurants/gourmet-haven")
        page.get_by_label("Your review of Gourmet Haven").fill("Is anybody there?")
        page.get_by_role("button", name="Send review").click()
        indicator = page.locator("#review-indicator")
        expect(indicator).to_be_visible()
        expect(page.get_by_role("button", name="Send review")).to_be_disabled()
        page.screenshot(path=screenshot_path("11-loading"), full_page=True)
        alert = page.locator("#result [role=alert]")
        expect(alert).to_contain_text("taking too long", timeout=(READ_TIMEOUT_S + 10) * 1000)
        expect(indicator).to_be_hidden()
        page.screenshot(path=screenshot_path("12-timeout"), full_page=True)
