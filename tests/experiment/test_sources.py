"""Reading counts: a real exposition, the Prometheus API's answers, and unreachable sources."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from restaurant_sentiment.experiment.sources import (
    COUNTERS,
    SourceError,
    from_metrics,
    from_prometheus,
    parse_metrics,
    prometheus_query,
)
from tests.support import free_port


def exposition(counts: dict[tuple[str, str, str], float]) -> str:
    """A /metrics page as prometheus_client writes it: counters by version and restaurant."""
    registry = CollectorRegistry()
    counters = {
        name: Counter(
            name.removesuffix("_total"), name, ["model_version", "restaurant"], registry=registry
        )
        for name in COUNTERS
    }
    Gauge("model_accuracy", "accuracy", ["model_version", "restaurant"], registry=registry).labels(
        "stable", "other"
    ).set(0.5)
    for (name, version, restaurant), value in counts.items():
        counters[name].labels(version, restaurant).inc(value)
    return generate_latest(registry).decode()


def test_parse_sums_restaurants_and_keeps_versions_apart() -> None:
    text = exposition(
        {
            ("predictions_total", "stable", "Gourmet Haven"): 7,
            ("predictions_total", "stable", "other"): 3,
            ("true_pos_predictions_total", "stable", "Gourmet Haven"): 4,
            ("false_neg_predictions_total", "canary", "Sea Breeze Grill"): 2,
        }
    )
    totals = parse_metrics(text)
    assert totals[("stable", "predictions_total")] == 10
    assert totals[("stable", "true_pos_predictions_total")] == 4
    assert totals[("canary", "false_neg_predictions_total")] == 2
    # _created samples and the accuracy gauge are not counts.
    assert all(name in COUNTERS for _, name in totals)


def test_from_metrics_adds_up_both_services() -> None:
    pages = {
        "http://stable/metrics": exposition(
            {
                ("predictions_total", "stable", "other"): 10,
                ("true_pos_predictions_total", "stable", "other"): 5,
                ("true_neg_predictions_total", "stable", "other"): 3,
                ("false_pos_predictions_total", "stable", "other"): 1,
            }
        ),
        "http://canary/metrics": exposition(
            {
                ("predictions_total", "canary", "other"): 4,
                ("false_neg_predictions_total", "canary", "other"): 2,
            }
        ),
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=pages[str(r.url)]))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            observation = await from_metrics(list(pages), client)
        stable, canary = observation.counts["stable"], observation.counts["canary"]
        assert (stable.predictions, stable.correct, stable.incorrect) == (10, 8, 1)
        assert (canary.predictions, canary.correct, canary.incorrect) == (4, 0, 2)
        assert observation.source == "metrics"
        assert "http://stable/metrics" in observation.description

    asyncio.run(run())


def test_unreachable_metrics_url_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    with pytest.raises(SourceError, match=f"cannot reach {url}"):
        asyncio.run(from_metrics([url]))


def test_a_page_that_is_not_an_exposition_is_rejected() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>login</html>"))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await from_metrics(["http://x/metrics"], client)

    with pytest.raises(SourceError, match="http://x/metrics"):
        asyncio.run(run())


def test_queries_use_increase_over_the_window() -> None:
    assert prometheus_query("predictions_total", "7d") == (
        "sum by (model_version) (increase(predictions_total[7d]))"
    )
    assert (
        prometheus_query("predictions_total", None) == "sum by (model_version) (predictions_total)"
    )
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        prometheus_query("predictions_total", "7 days]) or vector(1")


def _prometheus_answer(values: dict[str, dict[str, float]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        counter = next(name for name in COUNTERS if f"({name}[" in query or f"({name})" in query)
        result = [
            {"metric": {"model_version": version}, "value": [0, str(value)]}
            for version, value in values.get(counter, {}).items()
        ]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return httpx.Response(200, text=json.dumps(body))

    return httpx.MockTransport(handle)


def test_from_prometheus_rounds_extrapolated_increases() -> None:
    transport = _prometheus_answer(
        {
            "predictions_total": {"stable": 700.4, "canary": 299.6},
            "true_pos_predictions_total": {"stable": 300.2, "canary": 140.0},
            "true_neg_predictions_total": {"stable": 260.1},
            "false_pos_predictions_total": {"canary": 10.0},
        }
    )

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            observation = await from_prometheus("http://prom:9090", "2h", client)
        assert observation.counts["stable"].predictions == 700
        assert observation.counts["stable"].correct == 560
        assert observation.counts["canary"].incorrect == 10
        assert "increase over the last 2h" in observation.description

    asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, '{"status":"error","error":"parse error"}', "HTTP 400"),
        (200, "not json", "did not answer like the Prometheus HTTP API"),
        (200, '{"status":"error","error":"bad"}', "Prometheus rejected"),
    ],
)
def test_prometheus_errors_are_explained(status: int, body: str, message: str) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(status, text=body))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await from_prometheus("http://prom:9090", "7d", client)

    with pytest.raises(SourceError, match=message):
        asyncio.run(run())
