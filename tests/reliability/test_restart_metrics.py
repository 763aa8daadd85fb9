"""A model-service restart: feedback acknowledged before it is not lost from Prometheus."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import FEEDBACK_SECRET
from tests.support import ROOT, free_port, model_service
from tests.support import prometheus as run_prometheus

RULES = ROOT / "deploy" / "helm" / "restaurant-sentiment" / "files" / "prometheus-rules.yaml"
OUTCOMES = ("true_pos", "true_neg", "false_pos", "false_neg")
FEEDBACK_EVER = " + ".join(f"sum(increase({o}_predictions_total[10m]))" for o in OUTCOMES)
FEEDBACK_NOW = " + ".join(f"sum({o}_predictions_total)" for o in OUTCOMES)


@contextlib.contextmanager
def prometheus(target_port: int, workdir: Path) -> Iterator[str]:
    """A real Prometheus scraping one model-service every second, with the chart's rules."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-service",
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            }
        ],
        "rule_files": [str(RULES)],
    }
    with run_prometheus(config, workdir) as url:
        yield url


def query(prom: str, expr: str) -> float | None:
    answer = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(prom: str, expr: str, want: float, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = query(prom, expr)
        if seen == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} is {seen}, not {want}, after {timeout}s")


def give_feedback(url: str, verdicts: list[bool]) -> None:
    """Predict and send signed feedback for each verdict; each must be acknowledged (200)."""
    for index, accurate in enumerate(verdicts):
        review = {"review": f"Dinner number {index} was lovely.", "restaurantName": "Gourmet Haven"}
        issued = httpx.post(f"{url}/predict", json=review, timeout=10).json()
        feedback = {
            "restaurantName": "Gourmet Haven",
            "accurate": accurate,
            "prediction": issued["prediction"],
            "predictionId": issued["predictionId"],
        }
        response = httpx.post(f"{url}/model-accuracy", json=feedback, timeout=10)
        assert response.status_code == 200, response.text


@pytest.mark.slow
def test_feedback_survives_a_restart_in_prometheus(tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_SERVICE_FEEDBACK_SECRET": FEEDBACK_SECRET}
    with prometheus(port, tmp_path) as prom:
        with model_service("stable", port=port, **env) as url:
            wait_for(prom, 'up{job="model-service"}', 1.0)
            wait_for(prom, FEEDBACK_NOW, 0.0)  # the zero series exist before any feedback
            give_feedback(url, [True, True, True, False])
            wait_for(prom, FEEDBACK_NOW, 4.0)
        wait_for(prom, 'up{job="model-service"}', 0.0)
        with model_service("stable", port=port, **env) as url:
            wait_for(prom, FEEDBACK_NOW, 0.0)  # the counters restarted from zero
            give_feedback(url, [True, False])
            wait_for(prom, FEEDBACK_NOW, 2.0)
            time.sleep(1.5)  # one more scrape, so increase() sees the last value twice
            # The reset is detected: all six acknowledged feedbacks are counted, none twice.
            # increase() only ever extrapolates upwards, towards the window's edges, by up to
            # about a scrape interval at each end of a series: a few percent of a long one, a
            # sixth or more of one that lives a few seconds (a service starts in under one).
            # Losing the first four would give about 2, counting them twice 10 or more.
            total = query(prom, FEEDBACK_EVER)
            assert total is not None and 6.0 <= total < 8.0, total
            # The recording rule that feeds the dashboard and the alert: 4 of 6 were right.
            wait_for_rule(prom, 'model_version:model_accuracy:ratio1h{model_version="stable"}')


def wait_for_rule(prom: str, expr: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = query(prom, expr)
        # Extrapolation scales every outcome alike, so the ratio is exact up to rounding.
        if value is not None and abs(value - 4 / 6) < 0.01:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} is {value}, not {4 / 6:.3f}")
