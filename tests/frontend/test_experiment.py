"""The /experiment page and /experiment.json: the real analysis of counts read from fake sources."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from restaurant_sentiment.experiment.analysis import analyse
from restaurant_sentiment.experiment.config import load_config
from restaurant_sentiment.experiment.sources import Observation, VersionCounts
from restaurant_sentiment.experiment.stats import wilson_interval
from restaurant_sentiment.frontend.routes.experiment import LABEL_WIDTH, PLOT_WIDTH
from restaurant_sentiment.values import load_values, write_values
from tests.frontend.conftest import HTML, HTMX, frontend_client
from tests.frontend.test_security_and_assets import InlineCode
from tests.support import CHART_VALUES, values_variant

STABLE_URL = "http://stable.test/metrics"
CANARY_URL = "http://canary.test/metrics"
URLS = [STABLE_URL, CANARY_URL]


def exposition(version: str, predictions: int, outcomes: dict[str, int]) -> str:
    """A model-service /metrics body, with counts split over two restaurants."""
    lines = []
    for name, total in {"predictions": predictions, **outcomes}.items():
        lines.append(f"# TYPE {name}_predictions_total counter" if name != "predictions" else "")
        for restaurant, part in (("Gourmet Haven", total // 2), ("other", total - total // 2)):
            metric = "predictions_total" if name == "predictions" else f"{name}_predictions_total"
            labels = f'model_version="{version}",restaurant="{restaurant}"'
            lines.append(f"{metric}{{{labels}}} {part}.0")
    return "\n".join(line for line in lines if line) + "\n"


# Stable: 700 predictions, 540 right of 700 feedback; canary: 300, 270 right of 300.
COUNTS = {
    STABLE_URL: exposition("stable", 700, {"true_pos": 300, "true_neg": 240, "false_pos": 100,
                                           "false_neg": 60}),
    CANARY_URL: exposition("canary", 300, {"true_pos": 150, "true_neg": 120, "false_neg": 30}),
}  # fmt: skip
EXPECTED = {"stable": (540, 700), "canary": (270, 300)}


class Sources:
    """Fake model-service /metrics endpoints (and a fake Prometheus) behind the real client."""

    def __init__(self, bodies: dict[str, str]) -> None:
        self.bodies = bodies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url).split("?")[0]
        if url not in self.bodies:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, text=self.bodies[url])


class Chart(HTMLParser):
    """The SVG rows: version -> bar width and whisker x positions."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "g" and a.get("data-version"):
            self.current = a["data-version"]
            self.rows[self.current] = {"whiskers": []}
        elif self.current and tag == "rect":
            self.rows[self.current]["width"] = float(a["width"] or 0)
        elif self.current and tag == "line":
            self.rows[self.current]["whiskers"].append((float(a["x1"] or 0), float(a["x2"] or 0)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self.current = None


def chart_of(html: str) -> dict[str, dict[str, Any]]:
    parser = Chart()
    parser.feed(html)
    return parser.rows


async def test_page_shows_bars_intervals_counts_probability_and_decision() -> None:
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS
    ) as client:
        response = await client.get("/experiment", headers=HTML)
    assert response.status_code == 200
    page = response.text
    rows = chart_of(page)
    assert set(rows) == {"stable", "canary"}
    for version, (correct, feedback) in EXPECTED.items():
        assert rows[version]["width"] == pytest.approx(PLOT_WIDTH * correct / feedback, abs=0.1)
        interval = wilson_interval(correct, feedback, 0.95)
        low, high = rows[version]["whiskers"][0]
        assert low == pytest.approx(LABEL_WIDTH + PLOT_WIDTH * interval.low, abs=0.1)
        assert high == pytest.approx(LABEL_WIDTH + PLOT_WIDTH * interval.high, abs=0.1)
        assert re.search(rf'<tr [^>]*data-version="{version}">.*?<td [^>]*class="feedback-count">'
                         rf"{feedback}</td>", page, re.S), version  # fmt: skip
    assert re.search(r'<p class="decision__value">PROMOTE</p>', page)
    assert "canary is better: P(canary better) = 1.000" in page
    assert re.search(r'class="probability">100\.0%<', page)
    assert "Source: http://stable.test/metrics, http://canary.test/metrics (counters" in page
    parser = InlineCode()
    parser.feed(page)
    assert parser.problems == []


async def test_json_is_the_analysis_of_the_same_counts() -> None:
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS
    ) as client:
        response = await client.get("/experiment.json")
    assert response.status_code == 200
    counts = {
        name: VersionCounts(predictions=p, correct=c, incorrect=f - c)
        for name, (c, f), p in (("stable", EXPECTED["stable"], 700), ("canary", (270, 300), 300))
    }
    observation = Observation(
        source="metrics",
        description=f"{', '.join(URLS)} (counters since each process started)",
        counts=counts,
    )
    expected = analyse(observation, load_config(CHART_VALUES)).model_dump(mode="json")
    assert response.json() == expected


async def test_htmx_polls_a_fragment_that_replaces_itself() -> None:
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS
    ) as client:
        page = (await client.get("/experiment", headers=HTML)).text
        fragment = await client.get("/experiment", headers=HTMX)
    assert re.search(r'<section id="experiment"[^>]*hx-get="/experiment"', page, re.S)
    assert 'hx-trigger="every 10s"' in page and 'hx-swap="outerHTML"' in page
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<header" not in fragment.text
    assert '<section id="experiment"' in fragment.text and "hx-trigger" in fragment.text
    # Without JavaScript the page still has a link that refreshes it.
    assert 'href="/experiment">Refresh</a>' in page


async def test_prometheus_is_preferred_when_configured() -> None:
    def prometheus(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        query = request.url.params["query"]
        assert "[2h]" in query
        counter = re.search(r"increase\((\w+)(\{[^}]*\})?\[", query)
        assert counter is not None
        if counter.group(1) == "model_assignments_total":
            # Only the assignments of the split in force are asked for.
            assert counter.group(2) == '{split="stable=70,canary=30"}'
        totals = {"predictions_total": (700, 300), "true_pos_predictions_total": (540, 270),
                  "false_pos_predictions_total": (160, 30),
                  "model_assignments_total": (70, 30)}  # fmt: skip
        values = totals.get(counter.group(1), (0, 0))
        result = [
            {"metric": {"model_version": v}, "value": [0, str(n)]}
            for v, n in zip(("stable", "canary"), values, strict=True)
        ]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    async with frontend_client(
        httpx.MockTransport(prometheus),
        prometheus_url="http://prometheus.test:9090",
        experiment_metrics_urls=URLS,
        experiment_window="2h",
    ) as client:
        analysis = (await client.get("/experiment.json")).json()
    assert analysis["source"] == "prometheus"
    assert {v["name"]: v["feedback"] for v in analysis["versions"]} == {
        "stable": 700, "canary": 300,
    }  # fmt: skip
    assert {v["name"]: v["assignments"] for v in analysis["versions"]} == {
        "stable": 70, "canary": 30,
    }  # fmt: skip
    assert analysis["sample_ratio"]["p_value"] == pytest.approx(1.0)


async def test_without_prometheus_or_metrics_urls_the_store_counts_come_through_the_mesh() -> None:
    store = {
        "store": "sqlite:///run/feedback.sqlite3",
        "versions": {
            name: {"predictions": 900, "correct": correct, "incorrect": 1000 - correct,
                   "batchCorrect": 0, "batchIncorrect": 0,
                   "assignments": {"stable=70,canary=30": assigned, "stable=90,canary=10": 5}}
            for name, correct, assigned in (("stable", 700, 70), ("canary", 800, 30))
        },
    }  # fmt: skip
    counts_url = "http://127.0.0.1:8080/experiment/counts"
    sources = Sources({counts_url: json.dumps(store)})
    async with frontend_client(httpx.MockTransport(sources)) as client:
        analysis = (await client.get("/experiment.json")).json()
    assert analysis["source"] == "store"
    shown = {
        v["name"]: (v["correct"], v["feedback"], v["assignments"]) for v in analysis["versions"]
    }
    assert shown == {"stable": (700, 1000, 70), "canary": (800, 1000, 30)}
    # Pinned to the version with the most weight: through the mesh a request without the cookie
    # would be a new diner's, assigned by the weighted split and counted as one.
    (request,) = sources.requests
    assert request.headers["cookie"] == "model-service-version=stable"


async def test_thresholds_come_from_the_values_file(tmp_path: Path) -> None:
    thresholds = {
        "minFeedbackPerVersion": 1000,
        "confidenceLevel": 0.9,
        "promoteProbability": 0.99,
        "rollbackProbability": 0.01,
        "srmPValue": 0.001,
    }
    values = values_variant(tmp_path / "values.yaml", experiment=thresholds)
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS, values_file=values
    ) as client:
        page = (await client.get("/experiment", headers=HTML)).text
    assert '<p class="decision__value">CONTINUE</p>' in page
    assert "minimum feedback of 1000 per version not reached" in page
    assert "90% Wilson interval" in page


@pytest.mark.parametrize(
    ("settings", "bodies", "message"),
    [
        ({}, COUNTS, "cannot reach http://127.0.0.1:8080/experiment/counts"),
        ({"experiment_metrics_urls": URLS}, {STABLE_URL: COUNTS[STABLE_URL]},
         "cannot reach http://canary.test/metrics"),
        ({"experiment_metrics_urls": URLS}, {**COUNTS, CANARY_URL: "<script>alert(1)</script>"},
         "not a Prometheus exposition"),
    ],
)  # fmt: skip
async def test_no_answer_gives_a_friendly_page_and_a_json_error(
    settings: dict[str, Any], bodies: dict[str, str], message: str
) -> None:
    async with frontend_client(httpx.MockTransport(Sources(bodies)), **settings) as client:
        page = await client.get("/experiment", headers=HTML)
        fragment = await client.get("/experiment", headers=HTMX)
        answer = await client.get("/experiment.json")
    assert page.status_code == fragment.status_code == answer.status_code == 503
    assert "The experiment cannot be shown right now" in page.text
    assert message in page.text and message in fragment.text
    assert "<script>alert" not in page.text
    assert 'hx-trigger="every 10s"' in fragment.text, "polling goes on until a source answers"
    assert message in json.loads(answer.text)["detail"]


async def test_the_page_is_in_the_navigation() -> None:
    async with frontend_client(None) as client:
        home = (await client.get("/")).text
    assert '<a href="/experiment">Experiment</a>' in home


async def test_metrics_expose_the_weights_the_values_file_holds_now(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    write_values(load_values(CHART_VALUES), path)
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS, values_file=path
    ) as client:
        before = (await client.get("/metrics")).text
        # A promotion rewrites the file (make promote, or a helm upgrade re-mounting it).
        write_values(load_values(CHART_VALUES).with_weights({"stable": 0, "canary": 100}), path)
        after = (await client.get("/metrics")).text
        analysis = (await client.get("/experiment.json")).json()
    assert 'model_version_configured_weight{model_version="stable"} 70.0' in before
    assert 'model_version_configured_weight{model_version="stable"} 0.0' in after
    assert 'model_version_configured_weight{model_version="canary"} 100.0' in after
    weights = {v["name"]: v["configured_weight"] for v in analysis["versions"]}
    assert weights == {"stable": 0.0, "canary": 100.0}


async def test_a_values_file_turned_invalid_is_reported_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    write_values(load_values(CHART_VALUES), path)
    async with frontend_client(
        httpx.MockTransport(Sources(COUNTS)), experiment_metrics_urls=URLS, values_file=path
    ) as client:
        path.write_text("{not json", encoding="utf-8")
        page = await client.get("/experiment", headers=HTML)
        metrics = (await client.get("/metrics")).text
    assert page.status_code == 503
    assert "The experiment is not configured" in page.text and str(path) in page.text
    assert "model_version_configured_weight{" not in metrics
