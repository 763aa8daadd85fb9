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
        accuracy = re.search(r'class="accuracy">([0-9.]+)%<', feedback.text)
        assert accuracy and 0.0 <= float(accuracy.group(1)) <= 100.0
        again = await client.post("/restaurants/sea-breeze-grill/feedback", data=form, headers=HTMX)
        assert again.status_code == 409
        assert "already recorded" in again.text
        assert "We could not record your feedback" in again.text


async def test_plain_forms_through_the_real_model_service(stable_url: str):
    async with frontend_client(None, model_service_url=stable_url) as client:
        review = await client.post(
            "/restaurants/cafe-serendipity/reviews",
            data={"review": "Cold coffee and a rude waiter."},
            follow_redirects=True,
        )
        assert review.status_code == 200
        assert str(review.url.path) == "/restaurants/cafe-serendipity"
        assert sum(verdict in review.text for verdict in VERDICTS) == 1
        form = {
            "predictionId": hidden(review.text, "predictionId"),
            "prediction": hidden(review.text, "prediction"),
            "modelVersion": hidden(review.text, "modelVersion"),
            "accurate": "false",
        }
        feedback = await client.post(
            "/restaurants/cafe-serendipity/feedback", data=form, follow_redirects=True
        )
        assert feedback.status_code == 200
        assert "Thank you for your feedback!" in feedback.text


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
