"""A real browser at http://app.localhost: its sticky cookie picks the model version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.values import Values
from tests.support import require_binary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_binary("chromium", "apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


def review(page: Page, text: str) -> str:
    """Send a review through the htmx form; return the model version the page names."""
    page.fill("#review", text)
    page.click("form.review-form button[type=submit]")
    version = page.locator("#result .fineprint strong")
    version.wait_for(timeout=20_000)
    answer = version.inner_text()
    # Clear the verdict so the next review waits for its own answer.
    page.evaluate("document.querySelector('#result').innerHTML = ''")
    return answer


def test_browser_stays_on_the_version_its_cookie_names(
    app_stack: gateway.Listen, values: Values, browser: Browser
) -> None:
    cookie = values.model_service.cookie
    url = f"http://{values.hosts.app}:{app_stack.gateway.port}/restaurants/gourmet-haven"

    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    first = review(page, "The risotto was creamy and the service warm.")
    assert first in values.version_names
    # The gateway's Set-Cookie, relayed by the frontend, reached the browser for the whole site.
    jar = {c["name"]: c for c in context.cookies()}
    assert jar[cookie.name]["value"] == first
    assert jar[cookie.name]["path"] == "/"
    later = [review(page, f"Visit {n}: the dessert was lovely.") for n in range(4)]
    assert later == [first] * 4
    context.close()

    for version in values.version_names:
        pinned = browser.new_context()
        pinned.add_cookies([{"name": cookie.name, "value": version, "url": url}])
        page = pinned.new_page()
        page.goto(url)
        assert [review(page, "Cold soup, slow waiter.") for _ in range(3)] == [version] * 3
        pinned.close()
