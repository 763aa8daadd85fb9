"""The /experiment page in headless Chromium, reading two real model-services' /metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot_path
from tests.frontend.conftest import require_models
from tests.support import free_port, frontend_args, model_services, running

pytestmark = pytest.mark.slow

REVIEWS = ["The food was wonderful", "Cold soup and a rude waiter", "Lovely staff", "Awful"]


def predict_with_feedback(base: str, rounds: int) -> int:
    """Predictions with honest-looking feedback on one version; returns the feedback count."""
    sent = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for index in range(rounds):
            review = REVIEWS[index % len(REVIEWS)]
            made = client.post(
                "/predict", json={"review": review, "restaurantName": "Gourmet Haven"}
            )
            made.raise_for_status()
            answer = made.json()
            feedback = {
                "restaurantName": "Gourmet Haven",
                "accurate": index % 5 != 0,
                "prediction": answer["prediction"],
                "predictionId": answer["predictionId"],
            }
            client.post("/model-accuracy", json=feedback).raise_for_status()
            sent += 1
    return sent


def test_experiment_page_shows_both_versions_and_the_decision(chromium: Any) -> None:
    from playwright.sync_api import expect

    require_models()
    with model_services(["stable", "canary"]) as ports:
        counts = {v: predict_with_feedback(f"http://127.0.0.1:{p}", 12) for v, p in ports.items()}
        urls = [f"http://127.0.0.1:{port}/metrics" for port in ports.values()]
        port = free_port()
        args = frontend_args(port, f"http://127.0.0.1:{ports['stable']}")
        env = {"FRONTEND_EXPERIMENT_METRICS_URLS": json.dumps(urls)}
        with running(args, f"http://127.0.0.1:{port}/healthz", env=env, timeout=60):
            context = chromium.new_context(viewport={"width": 1200, "height": 1100})
            page = context.new_page()
            csp_errors: list[str] = []
            page.on(
                "console",
                lambda m: csp_errors.append(m.text) if "Content Security" in m.text else None,
            )
            page.goto(f"http://127.0.0.1:{port}/experiment")
            expect(page.locator("svg g.chart__row")).to_have_count(2)
            for version, feedback in counts.items():
                expect(page.locator(f'g[data-version="{version}"] rect.chart__bar')).to_be_visible()
                expect(page.locator(f'tr[data-version="{version}"] .feedback-count')).to_have_text(
                    str(feedback)
                )
            # 12 feedback events each is below the plan's minimum: the page says so.
            expect(page.locator(".decision__value")).to_have_text("CONTINUE")
            expect(page.locator(".decision__reason")).to_contain_text("minimum feedback of 200")
            expect(page.locator(".probability")).to_have_text(re.compile(r"^\d+\.\d%$"))
            # htmx polls the fragment in place: a new prediction shows up without a reload.
            predict_with_feedback(f"http://127.0.0.1:{ports['canary']}", 1)
            expect(page.locator('tr[data-version="canary"] .feedback-count')).to_have_text(
                str(counts["canary"] + 1), timeout=30_000
            )
            page.screenshot(path=screenshot_path("experiment"), full_page=True)
            assert csp_errors == []
            context.close()
