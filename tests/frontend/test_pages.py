"""The pages a person uses: picker, restaurant page, review and feedback (htmx and plain forms)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from restaurant_sentiment.frontend.routes.pages import CONFIDENCE_BANDS, confidence_band
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
    [form] = page.find("form", action="/restaurants/cafe-serendipity/reviews#result")
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
    assert '<blockquote class="verdict__review">Lovely coffee</blockquote>' in response.text
    assert re.search(r"model version <strong>canary</strong>", response.text)
    assert "Our model is <strong>very sure</strong> about this." in response.text
    assert not re.search(r"\d%", response.text), "no percentage that reads as a promise"
    assert upstream.requests[0].url.path == "/predict"
    assert upstream.json() == {"review": "Lovely coffee", "restaurantName": "Café Serendipity"}
    page = elements(response.text)
    [feedback] = page.find("form", id="feedback")
    assert feedback["action"] == "/restaurants/cafe-serendipity/feedback#result"
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


async def test_plain_form_post_answers_with_the_page_the_htmx_fragment_shows(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    review = "Superb <b>tasting</b> menu"
    response = await client.post("/restaurants/gourmet-haven/reviews", data={"review": review})
    assert response.status_code == 200, "the page itself: no redirect carrying the review"
    assert "<html" in response.text
    assert GOOD in response.text and "<strong>canary</strong>" in response.text
    escaped = "Superb &lt;b&gt;tasting&lt;/b&gt; menu"
    assert f'<blockquote class="verdict__review">{escaped}</blockquote>' in response.text
    assert "Our model is <strong>very sure</strong> about this." in response.text
    fragment = await client.post(
        "/restaurants/gourmet-haven/reviews", data={"review": review}, headers=HTMX
    )
    for shown in (GOOD, escaped, "very sure", "model version <strong>canary</strong>"):
        assert shown in fragment.text and shown in response.text, shown
    form = elements(response.text)
    [feedback] = form.find("form", id="feedback")
    assert feedback["method"] == "post"
    assert form.find("input", name="predictionId", value="pred-1")
    assert form.find("input", name="prediction", value="1")
    assert form.find("input", name="restaurant", value="gourmet-haven")
    assert form.find("input", name="review", value=review)
    assert form.find("input", name="confidence", value="0.93")
    assert review not in response.text, "escaped everywhere, the hidden field too"


async def test_a_revisited_post_address_leads_back_to_the_restaurant(client: httpx.AsyncClient):
    for path in ("reviews", "feedback"):
        response = await client.get(f"/restaurants/sizzle-spice/{path}")
        assert response.status_code == 303
        assert response.headers["location"] == "/restaurants/sizzle-spice"
    unknown = await client.get("/restaurants/no-such-place/reviews", headers=HTML)
    assert unknown.status_code == 404


async def test_feedback_sends_the_prediction_id_and_thanks_without_the_running_accuracy(
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
    assert "Sorry we got that one wrong." in response.text
    assert "which version of our model reads reviews best" in response.text
    assert "87.5" not in response.text and "accuracy" not in response.text
    page = elements(response.text)
    assert page.disabled_fieldsets() == 1, "both buttons are disabled after feedback"
    assert page.find("form", id="feedback"), "the fragment replaces the feedback form"


async def test_feedback_the_model_service_cannot_record_is_an_error_to_retry(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    detail = "the feedback store cannot be reached, so this feedback was not recorded"
    upstream.override = lambda request: httpx.Response(503, json={"detail": detail})
    form = {"predictionId": "pred-42", "prediction": "1", "modelVersion": "stable"}
    response = await client.post(
        "/restaurants/gourmet-haven/feedback", data={**form, "accurate": "true"}, headers=HTMX
    )
    assert response.status_code == 502
    assert "Thank you" not in response.text
    assert 'role="alert"' in response.text
    page = elements(response.text)
    assert page.disabled_fieldsets() == 0, "the buttons stay, to send it again"


async def test_plain_feedback_post_shows_the_whole_verdict_and_thanks(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    upstream.accuracy = 0.5
    form = {
        "predictionId": "pred-7",
        "prediction": "1",
        "modelVersion": "canary",
        "accurate": "true",
        "review": "Lovely <i>staff</i>",
        "confidence": "0.8",
    }
    page = await client.post("/restaurants/gourmet-haven/feedback", data=form)
    assert page.status_code == 200
    assert "<html" in page.text
    assert "Thank you for your feedback!" in page.text
    assert "We are glad we read you right." in page.text
    assert "50.0" not in page.text and "accuracy" not in page.text
    assert GOOD in page.text
    assert '<blockquote class="verdict__review">Lovely &lt;i&gt;staff&lt;/i&gt;</blockquote>' in (
        page.text
    )
    assert "Our model is <strong>fairly sure</strong> about this." in page.text
    assert elements(page.text).disabled_fieldsets() == 1
    assert upstream.json()["accurate"] is True
    assert set(upstream.json()) == {"restaurantName", "accurate", "prediction", "predictionId"}


@pytest.mark.parametrize(
    ("carried", "shown"),
    [
        ({"confidence": "1.5", "review": "ok"}, {"review": True, "confidence": False}),
        ({"confidence": "nan", "review": " "}, {"review": False, "confidence": False}),
        ({"confidence": "abc", "review": "x" * 5001}, {"review": False, "confidence": False}),
        ({"confidence": "0.55"}, {"review": False, "confidence": True}),
    ],
)
async def test_feedback_shows_only_well_formed_carried_values(
    client: httpx.AsyncClient, carried: dict[str, str], shown: dict[str, bool]
):
    form = {"predictionId": "p", "prediction": "0", "modelVersion": "stable", "accurate": "true"}
    page = await client.post("/restaurants/gourmet-haven/feedback", data=form | carried)
    assert page.status_code == 200
    assert ('class="verdict__review"' in page.text) is shown["review"]
    assert ("Our model is" in page.text) is shown["confidence"]


@pytest.mark.parametrize(
    ("confidence", "words"),
    [
        (1.0, "very sure"),
        (0.9, "very sure"),
        (0.8999, "fairly sure"),
        (0.75, "fairly sure"),
        (0.7, "not very sure"),
        (0.6, "not very sure"),
        (0.59, "unsure"),
        (0.5, "unsure"),
        (0.0, "unsure"),
    ],
)
def test_confidence_bands(confidence: float, words: str):
    band = confidence_band(confidence)
    assert band is not None and band.words == words
    assert "100%" not in band.words


def test_confidence_bands_cover_zero_to_one_highest_first():
    floors = [band.floor for band in CONFIDENCE_BANDS]
    assert floors == sorted(floors, reverse=True) and floors[-1] == 0.0
    assert confidence_band(None) is None
    assert confidence_band(1.2) is None


async def test_a_verdict_without_confidence_shows_no_confidence_words(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    def no_confidence(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"prediction": 0, "modelVersion": "stable", "predictionId": "pred-9"},
        )

    upstream.override = no_confidence
    response = await client.post(
        "/restaurants/gourmet-haven/reviews", data={"review": "Meh"}, headers=HTMX
    )
    assert response.status_code == 200
    assert BAD in response.text and "Our model is" not in response.text
    assert 'name="confidence"' not in response.text


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


async def test_a_verdict_query_in_the_url_shows_no_verdict(client: httpx.AsyncClient):
    forged = "/restaurants/gourmet-haven?prediction=1&version=%3Cscript%3E&id=x&feedback=accurate"
    response = await client.get(forged)
    assert response.status_code == 200
    assert GOOD not in response.text and "Thank you" not in response.text
    assert "<script>" not in response.text.replace('<script src="/static/htmx', "")


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
