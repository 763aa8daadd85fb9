"""The frontend against the real model-service process on a free port."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.frontend.conftest import HTMX, frontend_client, require_models
from tests.support import model_service

pytestmark = pytest.mark.slow
VERDICTS = (
    "We are glad to hear you had a good experience.",
    "We are sorry to hear you had a bad experience.",
)
SURE = re.compile(r"Our model is <strong>(very sure|fairly sure|not very sure|unsure)</strong>")


@pytest.fixture(scope="module")
def stable_url() -> Iterator[str]:
    require_models()
    with model_service("stable") as url:
        yield url


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def test_review_and_feedback_through_the_real_model_service(stable_url: str):
    async with frontend_client(None, model_service_url=stable_url) as client:
        review = await client.post(
            "/restaurants/sea-breeze-grill/reviews",
            data={"review": "The grilled fish was wonderful and the staff were friendly."},
            headers=HTMX,
        )
        assert review.status_code == 200, review.text
        assert sum(verdict in review.text for verdict in VERDICTS) == 1
        assert "model version <strong>stable</strong>" in review.text
        form = {
            "predictionId": hidden(review.text, "predictionId"),
            "prediction": hidden(review.text, "prediction"),
            "modelVersion": hidden(review.text, "modelVersion"),
            "accurate": "true",
        }
        feedback = await client.post(
            "/restaurants/sea-breeze-grill/feedback", data=form, headers=HTMX
        )
        assert feedback.status_code == 200, feedback.text
        assert "Thank you for your feedback!" in feedback.text
        assert not re.search(r"accuracy|\d%", feedback.text), "no running accuracy for diners"
        # A second click or a resent form: the model-service refuses to count it again (409),
        # and the diner is thanked, not shown an error.
        again = await client.post("/restaurants/sea-breeze-grill/feedback", data=form, headers=HTMX)
        assert again.status_code == 200, again.text
        assert "Your feedback on this review was already recorded" in again.text
        assert "We could not record your feedback" not in again.text
        assert 'role="alert"' not in again.text


async def test_plain_forms_through_the_real_model_service(stable_url: str):
    async with frontend_client(None, model_service_url=stable_url) as client:
        text = "Cold coffee and a rude waiter."
        review = await client.post("/restaurants/cafe-serendipity/reviews", data={"review": text})
        assert review.status_code == 200
        assert "<html" in review.text, "the whole page, not a fragment"
        assert sum(verdict in review.text for verdict in VERDICTS) == 1
        assert f'<blockquote class="verdict__review">{text}</blockquote>' in review.text
        assert SURE.search(review.text)
        form = {
            "predictionId": hidden(review.text, "predictionId"),
            "prediction": hidden(review.text, "prediction"),
            "modelVersion": hidden(review.text, "modelVersion"),
            "review": hidden(review.text, "review"),
            "confidence": hidden(review.text, "confidence"),
            "accurate": "false",
        }
        feedback = await client.post("/restaurants/cafe-serendipity/feedback", data=form)
        assert feedback.status_code == 200
        assert "Thank you for your feedback!" in feedback.text
        assert f'<blockquote class="verdict__review">{text}</blockquote>' in feedback.text
        assert SURE.search(feedback.text)


async def test_too_long_review_shows_the_model_service_message(stable_url: str):
    async with frontend_client(None, model_service_url=stable_url) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data={"review": "x" * 6000}, headers=HTMX
        )
    assert response.status_code == 422
    assert "at most 5000 characters" in response.text
    assert 'role="alert"' in response.text


async def test_stopped_model_service_gives_503():
    require_models()
    with model_service("stable") as url:
        pass
    async with frontend_client(None, model_service_url=url) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data={"review": "Nice"}, headers=HTMX
        )
    assert response.status_code == 503
    assert "not reachable" in response.text
