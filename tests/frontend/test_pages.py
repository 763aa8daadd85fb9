"""The pages a person uses: picker, restaurant page, review and feedback (htmx and plain forms)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.frontend.conftest import HTML, HTMX, FakeModelService

RESTAURANTS = {
    "gourmet-haven": "Gourmet Haven",
    "sizzle-spice": "Sizzle &amp; Spice",
    "cafe-serendipity": "Café Serendipity",
    "sea-breeze-grill": "Sea Breeze Grill",
}
GOOD = "We are glad to hear you had a good experience."
BAD = "We are sorry to hear you had a bad experience."


class Elements(HTMLParser):
    """Collects every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]

    def disabled_fieldsets(self) -> int:
        return sum(1 for t, a in self.tags if t == "fieldset" and "disabled" in a)


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


async def test_homepage_introduces_and_lists_the_four_restaurants(client: httpx.AsyncClient):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "How was your meal?" in response.text
    page = elements(response.text)
    artwork = set()
    for slug, name in RESTAURANTS.items():
        assert page.find("a", href=f"/restaurants/{slug}"), slug
        assert name in response.text
        art = [
            img["src"]
            for _, img in page.tags
            if (img.get("src") or "").startswith(f"/static/art/{slug}.svg")
        ]
        assert art, f"no artwork for {slug}"
        artwork.update(art)
    assert len(artwork) == 4, "every restaurant has its own artwork"
    for src in artwork:
        image = await client.get(str(src))
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/svg+xml"
        assert image.text.lstrip().startswith("<svg")


async def test_restaurant_page_has_an_accessible_form_that_works_without_javascript(
    client: httpx.AsyncClient,
):
    response = await client.get("/restaurants/cafe-serendipity")
    assert response.status_code == 200
    page = elements(response.text)
    [form] = page.find("form", action="/restaurants/cafe-serendipity/reviews")
    assert form["method"] == "post"
    assert form["hx-post"] == "/restaurants/cafe-serendipity/reviews"
    assert form["hx-indicator"] and page.find("span", id=form["hx-indicator"].lstrip("#"))
    [textarea] = page.find("textarea", name="review")
    assert page.find("label", **{"for": str(textarea["id"])}), "the review box has a label"
    [live] = page.find("div", id="result")
    assert live["aria-live"] == "polite"
    assert form["hx-target"] == "#result"
    assert page.find("script", src="/static/htmx-2.0.11.min.js")


async def test_unknown_restaurant_is_a_friendly_404(client: httpx.AsyncClient):
    response = await client.get("/restaurants/no-such-place", headers=HTML)
    assert response.status_code == 404
    assert "We do not know that restaurant." in response.text
    assert 'href="/"' in response.text
    api = await client.post("/restaurants/no-such-place/reviews", data={"review": "x"})
    assert api.status_code == 404
    assert api.json() == {"detail": "We do not know that restaurant."}


async def test_htmx_review_returns_the_verdict_fragment(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    response = await client.post(
        "/restaurants/cafe-serendipity/reviews", data={"review": "Lovely coffee"}, headers=HTMX
    )
    assert response.status_code == 200
    assert "<html" not in response.text, "htmx gets only the fragment"
    assert GOOD in response.text and BAD not in response.text
    assert "Lovely coffee" in response.text
    assert re.search(r"model version <strong>canary</strong>", response.text)
    assert upstream.requests[0].url.path == "/predict"
    assert upstream.json() == {"review": "Lovely coffee", "restaurantName": "Café Serendipity"}
    page = elements(response.text)
    [feedback] = page.find("form", id="feedback")
    assert feedback["action"] == "/restaurants/cafe-serendipity/feedback"
    assert page.find("input", name="predictionId", value="pred-1")
    assert page.find("input", name="prediction", value="1")
    assert page.find("button", name="accurate", value="true")
    assert page.find("button", name="accurate", value="false")
    assert page.disabled_fieldsets() == 0, "buttons start enabled"


async def test_negative_verdict(client: httpx.AsyncClient, upstream: FakeModelService):
    upstream.prediction = 0
    response = await client.post(
        "/restaurants/sizzle-spice/reviews", data={"review": "Cold and bland"}, headers=HTMX
    )
    assert response.status_code == 200
    assert BAD in response.text and GOOD not in response.text
    assert upstream.json()["restaurantName"] == "Sizzle & Spice"


async def test_plain_form_post_redirects_to_the_verdict(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    response = await client.post("/restaurants/gourmet-haven/reviews", data={"review": "Superb"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert urlsplit(location).path == "/restaurants/gourmet-haven"
    query = parse_qs(urlsplit(location).query)
    assert query == {"prediction": ["1"], "version": ["canary"], "id": ["pred-1"]}
    assert "Superb" not in location, "the review text stays out of URLs and logs"
    page = await client.get(location)
    assert page.status_code == 200
    assert GOOD in page.text and "<strong>canary</strong>" in page.text
    form = elements(page.text)
    [feedback] = form.find("form", id="feedback")
    assert feedback["method"] == "post"
    assert form.find("input", name="predictionId", value="pred-1")
    assert form.find("input", name="prediction", value="1")
    assert form.find("input", name="restaurant", value="gourmet-haven")


async def test_feedback_sends_the_prediction_id_and_shows_the_accuracy(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    form = {"predictionId": "pred-42", "prediction": "0", "modelVersion": "stable"}
    response = await client.post(
        "/restaurants/sea-breeze-grill/feedback", data={**form, "accurate": "false"}, headers=HTMX
    )
    assert response.status_code == 200
    assert upstream.requests[0].url.path == "/model-accuracy"
    assert upstream.json() == {
        "restaurantName": "Sea Breeze Grill",
        "accurate": False,
        "prediction": 0,
        "predictionId": "pred-42",
    }
    assert "Thank you for your feedback!" in response.text
    assert "87.5%" in response.text
    page = elements(response.text)
    assert page.disabled_fieldsets() == 1, "both buttons are disabled after feedback"
    assert page.find("form", id="feedback"), "the fragment replaces the feedback form"


async def test_plain_feedback_post_redirects_and_shows_thanks(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    upstream.accuracy = 0.5
    form = {
        "predictionId": "pred-7",
        "prediction": "1",
        "modelVersion": "canary",
        "accurate": "true",
    }
    response = await client.post("/restaurants/gourmet-haven/feedback", data=form)
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert "Thank you for your feedback!" in page.text and "50.0%" in page.text
    assert GOOD in page.text
    assert elements(page.text).disabled_fieldsets() == 1
    assert upstream.json()["accurate"] is True


async def test_empty_review_is_refused_without_calling_the_model_service(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    for headers in (HTMX, {}):
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data={"review": "   "}, headers=headers
        )
        assert response.status_code == 422
        assert "Please write a few words about your visit first." in response.text
    missing = await client.post("/restaurants/gourmet-haven/reviews", headers=HTMX)
    assert missing.status_code == 422
    assert upstream.requests == []


async def test_malformed_feedback_is_refused_without_calling_the_model_service(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    bad_forms = [
        {"predictionId": "x", "prediction": "2", "modelVersion": "stable", "accurate": "true"},
        {"predictionId": "a b", "prediction": "1", "modelVersion": "stable", "accurate": "true"},
        {"predictionId": "x", "prediction": "1", "modelVersion": "Stable!", "accurate": "true"},
        {"predictionId": "x", "prediction": "1", "modelVersion": "stable", "accurate": "maybe"},
        {},
    ]
    for form in bad_forms:
        response = await client.post("/restaurants/gourmet-haven/feedback", data=form, headers=HTMX)
        assert response.status_code == 422, form
        assert "This feedback could not be read." in response.text
    assert upstream.requests == []


async def test_forged_verdict_query_is_ignored(client: httpx.AsyncClient):
    forged = "/restaurants/gourmet-haven?prediction=1&version=%3Cscript%3E&id=x"
    response = await client.get(forged)
    assert response.status_code == 200
    assert GOOD not in response.text
    assert "<script>" not in response.text.replace('<script src="/static/htmx', "")
    bad_accuracy = (
        "/restaurants/gourmet-haven?prediction=0&version=v1&id=x&feedback=accurate&accuracy=7"
    )
    page = await client.get(bad_accuracy)
    assert BAD in page.text and "Thank you" not in page.text


async def test_navigation_marks_the_current_page(client: httpx.AsyncClient):
    page = elements((await client.get("/")).text)
    [nav_link] = page.find("a", href="/", **{"aria-current": "page"})
    assert nav_link is not None


async def test_healthz(client: httpx.AsyncClient):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_metrics_count_requests_with_bounded_handler_labels(client: httpx.AsyncClient):
    await client.get("/restaurants/gourmet-haven")
    await client.get("/restaurants/cafe-serendipity")
    for i in range(5):
        await client.get(f"/random-{i}")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    handlers = set(re.findall(r'http_requests_total\{handler="([^"]*)"', metrics.text))
    assert "/restaurants/{slug}" in handlers
    assert not any(h.startswith("/random") for h in handlers), "unknown paths are not labels"
    assert not any("gourmet" in h for h in handlers)
