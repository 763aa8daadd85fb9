"""Every screen at phone, tablet and desktop widths: nothing sticks out, nothing is clipped.

Each page is opened in headless Chromium at 320, 390, 768 and 1280 px. The test measures the
document's scroll width, every element's box against the viewport, every element whose content
spills out of its own box, and every chart label against its chart; it saves a full-page
screenshot of each to test-artefacts/browser/layout-<page>-<width>.png.

The app runs as `make up` runs it, minus Prometheus: real model-services, a frontend, and the
real Envoy gateway in front (the 429 page is Envoy's, not the frontend's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.values import load_values
from tests.browser.conftest import frontend_process, screenshot_path
from tests.browser.test_experiment_page import predict_with_feedback
from tests.frontend.conftest import require_models
from tests.mesh.conftest import envoy, loopback_listen
from tests.support import CHART_VALUES, free_port, model_services

pytestmark = pytest.mark.slow

WIDTHS = (320, 390, 768, 1280)
TIMEOUT_MS = 20_000
VERDICT = re.compile(
    r"We are (glad to hear you had a good|sorry to hear you had a bad) experience\."
)
REVIEW = "The risotto was creamy, the waiter charming, and the tiramisu worth the trip alone."
SLUGS = ("gourmet-haven", "sizzle-spice", "cafe-serendipity", "sea-breeze-grill")

# Run in the page: what sticks out of the viewport, what spills out of its own box, and which
# chart labels are cut by their chart. Hidden elements and the skip link (off screen until it
# gets focus) do not count.
MEASURE = """
() => {
  const width = document.documentElement.clientWidth;
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += '#' + el.id;
    const cls = el.getAttribute('class');
    if (cls) name += '.' + cls.trim().split(/\\s+/).join('.');
    return name;
  };
  // Visually hidden text (a 1px box that clips its content) is for screen readers only.
  const clippedAway = (el) => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const box = node.getBoundingClientRect();
      if (getComputedStyle(node).overflow !== 'visible' && (box.width <= 1 || box.height <= 1)) {
        return true;
      }
    }
    return false;
  };
  const visible = (el) => {
    if (el.closest('.skip-link') || clippedAway(el)) return false;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const outside = [], spilling = [], clipped = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.left < -0.5 || box.right > width + 0.5) {
      outside.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
    if (!(el instanceof SVGElement)) {
      const style = getComputedStyle(el);
      const scrolls = ['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX);
      if (!scrolls && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
          && style.display !== 'inline') {
        spilling.push(`${describe(el)} holds ${el.scrollWidth}px in ${el.clientWidth}px`);
      }
    }
  }
  for (const text of document.querySelectorAll('svg text')) {
    const chart = text.ownerSVGElement.getBoundingClientRect();
    const box = text.getBoundingClientRect();
    if (box.left < chart.left - 0.5 || box.right > chart.right + 0.5) {
      clipped.push(`"${text.textContent}" spans ${Math.round(box.left)}..${Math.round(box.right)}`
        + ` in a chart at ${Math.round(chart.left)}..${Math.round(chart.right)}`);
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    width: width,
    outside: outside,
    spilling: spilling,
    clipped: clipped,
  };
}
"""


@dataclass(frozen=True)
class Stack:
    """Base URLs of the running app."""

    app: str  # the frontend with a working model-service and experiment metrics
    broken: str  # a frontend whose model-service and metrics are gone
    gateway: str  # the Envoy gateway in front of `app`, as a browser reaches it


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_models()
    values = load_values(CHART_VALUES)
    with model_services(values.version_names) as ports:
        for port in ports.values():
            predict_with_feedback(f"http://127.0.0.1:{port}", 12)
        metrics = [f"http://127.0.0.1:{port}/metrics" for port in ports.values()]
        # Nothing listens on `gone`: the model-service is down and the metrics unreadable.
        gone = f"http://127.0.0.1:{free_port()}"
        listen = loopback_listen()
        with (
            frontend_process(
                f"http://127.0.0.1:{ports['stable']}",
                env={"FRONTEND_EXPERIMENT_METRICS_URLS": json.dumps(metrics)},
            ) as app,
            frontend_process(
                gone, env={"FRONTEND_EXPERIMENT_METRICS_URLS": json.dumps([gone + "/metrics"])}
            ) as broken,
        ):
            app_port = int(app.rsplit(":", 1)[1])
            upstreams = gateway.local_upstreams(ports, app_port)
            bootstrap = gateway.build_bootstrap(values, upstreams, listen)
            with envoy(bootstrap, tmp_path_factory.mktemp("gateway")):
                # Headless Chromium resolves *.localhost to loopback by itself.
                yield Stack(app, broken, f"http://{values.hosts.app}:{listen.gateway.port}")


def send_review(page: Any) -> None:
    from playwright.sync_api import expect

    name = page.locator("h1").inner_text()
    page.get_by_label(f"Your review of {name}").fill(REVIEW)
    page.get_by_role("button", name="Send review").click()
    expect(page.locator(".verdict__text")).to_have_text(VERDICT)


def open_restaurant(slug: str) -> Callable[[Any, Stack], None]:
    def visit(page: Any, stack: Stack) -> None:
        page.goto(f"{stack.app}/restaurants/{slug}")

    return visit


def home(page: Any, stack: Stack) -> None:
    page.goto(stack.app + "/")


def verdict_htmx(page: Any, stack: Stack) -> None:
    page.goto(stack.app + "/restaurants/sizzle-spice")
    send_review(page)
    assert page.url == stack.app + "/restaurants/sizzle-spice", "htmx swapped the verdict in"


def feedback_htmx(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    verdict_htmx(page, stack)
    page.get_by_role("button", name="Not accurate").click()
    expect(page.locator(".thanks")).to_be_visible()


def verdict_no_js(page: Any, stack: Stack) -> None:
    page.goto(stack.app + "/restaurants/cafe-serendipity")
    send_review(page)


def feedback_no_js(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    verdict_no_js(page, stack)
    page.get_by_role("button", name="Accurate", exact=True).click()
    expect(page.locator(".thanks")).to_be_visible()


def experiment(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    page.goto(stack.app + "/experiment")
    expect(page.locator("svg g.chart__row")).to_have_count(2)


def experiment_unavailable(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    response = page.goto(stack.broken + "/experiment")
    assert response.status == 503
    expect(page.get_by_role("alert")).to_contain_text("cannot be shown")


def not_found(page: Any, stack: Stack) -> None:
    response = page.goto(stack.app + "/restaurants/no-such-place")
    assert response.status == 404


def service_down(page: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    page.goto(stack.broken + "/restaurants/gourmet-haven")
    page.get_by_label("Your review of Gourmet Haven").fill(REVIEW)
    with page.expect_response(re.compile(r"/reviews$")) as answer:
        page.get_by_role("button", name="Send review").click()
    assert answer.value.status == 503
    expect(page.get_by_role("alert")).to_contain_text("not reachable")


def too_many_requests(page: Any, stack: Stack) -> None:
    """Use up this client's homepage tokens, then open the homepage: Envoy's 429 page."""
    url = httpx.URL(stack.gateway)
    # httpx does not resolve *.localhost here: the loopback address (the browser's too) and a Host.
    home = f"http://127.0.0.1:{url.port}/"
    with httpx.Client(headers={"host": url.netloc.decode()}) as loopback:
        for _ in range(20):
            statuses = [loopback.get(home).status_code for _ in range(25)]
            assert statuses[-1] == 429
            response = page.goto(stack.gateway + "/")
            # A token can come back between the last request and the page load: try again.
            if response.status == 429:
                assert response.headers["retry-after"] == "3"
                return
    pytest.fail("the homepage never answered 429")


PAGES: dict[str, tuple[Callable[[Any, Stack], None], bool]] = {
    # name: (how to get there, JavaScript on)
    "home": (home, True),
    **{f"restaurant-{slug}": (open_restaurant(slug), True) for slug in SLUGS},
    "verdict-htmx": (verdict_htmx, True),
    "feedback-htmx": (feedback_htmx, True),
    "verdict-no-js": (verdict_no_js, False),
    "feedback-no-js": (feedback_no_js, False),
    "experiment": (experiment, True),
    "experiment-unavailable": (experiment_unavailable, True),
    "404": (not_found, True),
    "503": (service_down, False),
    "429": (too_many_requests, True),
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_the_screen(chromium: Any, stack: Stack, name: str, width: int) -> None:
    visit, javascript = PAGES[name]
    phone = width < 768
    context = chromium.new_context(
        viewport={"width": width, "height": 800},
        is_mobile=phone,
        has_touch=phone,
        java_script_enabled=javascript,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        visit(page, stack)
        page.wait_for_load_state("load")
        path: Path = screenshot_path(f"layout-{name}-{width}")
        page.screenshot(path=path, full_page=True)
        found = page.evaluate(MEASURE)
    finally:
        context.close()
    problems = []
    if found["width"] != width:
        problems.append(f"the layout viewport is {found['width']}px wide")
    if found["scrollWidth"] > width:
        problems.append(f"the page scrolls sideways: {found['scrollWidth']}px wide")
    problems += [f"outside the screen: {item}" for item in found["outside"]]
    problems += [f"spills out of its box: {item}" for item in found["spilling"]]
    problems += [f"chart label cut off: {item}" for item in found["clipped"]]
    assert problems == [], f"{name} at {width}px:\n" + "\n".join(problems)
