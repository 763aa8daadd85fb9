"""The simulator's held-out reviews, its cookie handling and its bounded failure budget."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from restaurant_sentiment.tools.experiment.simulate import (
    SimulationError,
    held_out,
    load_reviews,
    simulate,
)
from restaurant_sentiment.values import load_values
from tests.support import CHART_VALUES, ROOT

CATALOGUE = load_values(CHART_VALUES).restaurant_names

CORPUS = ROOT / "data" / "restaurant_reviews.tsv"


@pytest.mark.skipif(not CORPUS.exists(), reason="the corpus is not in data/ yet")
def test_held_out_is_the_stratified_fifth_the_training_never_fits() -> None:
    reviews = load_reviews(CORPUS)
    test = held_out(reviews)
    assert len(test) == pytest.approx(0.2 * len(reviews), abs=1)
    share = sum(r.label for r in reviews) / len(reviews)
    assert sum(r.label for r in test) / len(test) == pytest.approx(share, abs=0.01)
    assert held_out(reviews) == test  # the same split every time


def _gateway(status: int = 200) -> tuple[httpx.MockTransport, list[dict]]:
    """A stand-in gateway: assigns a version by cookie (alternating for new clients)."""
    seen: list[dict] = []
    counter = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        if status != 200:
            return httpx.Response(status, text="upstream failure")
        cookie = request.headers.get("cookie", "")
        headers = {}
        if "v=" in cookie:
            version = cookie.split("v=")[1]
        else:
            counter["n"] += 1
            version = "canary" if counter["n"] % 2 else "stable"
            headers["set-cookie"] = f"v={version}; Path=/"
        body = json.loads(request.content)
        seen.append({"path": request.url.path, "version": version, "body": body})
        if request.url.path == "/predict":
            answer = {"prediction": 1, "modelVersion": version, "predictionId": body["review"]}
            return httpx.Response(200, json=answer, headers=headers)
        return httpx.Response(200, json={"model-accuracy": 1.0}, headers=headers)

    return httpx.MockTransport(handle), seen


def test_each_client_keeps_its_cookie_and_feeds_back_the_truth() -> None:
    reviews = load_reviews_from_text()
    transport, seen = _gateway()
    report = asyncio.run(
        simulate(
            "http://gw", reviews, restaurants=CATALOGUE, clients=4, total=12, transport=transport
        )
    )
    assert (report.predictions, report.feedback, report.errors) == (12, 12, 0)
    assert report.sticky_violations == 0
    assert report.clients_per_version == {"canary": 2, "stable": 2}
    feedback = [s["body"] for s in seen if s["path"] == "/model-accuracy"]
    by_text = {r.text: r.label for r in reviews}
    # The stand-in always predicts 1 and uses the review as the prediction id, so feedback
    # must be accurate exactly for the positive reviews.
    assert len(feedback) == 12
    assert all(f["accurate"] == (by_text[f["predictionId"]] == 1) for f in feedback)
    assert all(f["prediction"] == 1 for f in feedback)


def test_failures_stop_the_run_after_the_error_budget() -> None:
    transport, _ = _gateway(status=503)
    with pytest.raises(SimulationError, match="stopped after 6 failed requests.*HTTP 503"):
        asyncio.run(
            simulate(
                "http://gw",
                load_reviews_from_text(),
                restaurants=CATALOGUE,
                total=50,
                max_errors=5,
                transport=transport,
            )
        )


def load_reviews_from_text() -> list:
    from restaurant_sentiment.tools.experiment.simulate import LabelledReview

    return [LabelledReview(f"review {i}", i % 2) for i in range(20)]
