"""End to end on `make up`: simulate labelled traffic, decide from what was recorded, promote."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.experiment.conftest import Mesh, decide_json, prometheus, run_cli
from tests.support import PYTHON, ROOT

pytestmark = pytest.mark.slow

# 1,000 diners with one review each (the canary then gets ~300 feedbacks), and mixed in, API
# traffic that must change neither the sample-ratio test nor the decision: 500 cookieless
# calls (500 more assignments) and one batch of 1,000 reviews (one assignment).
REVIEWS = 1000
API_CALLS = 500
BATCH = 1000


@pytest.fixture(scope="module")
def simulated(mesh: Mesh) -> dict:
    result = run_cli(
        "simulate",
        "--gateway", mesh.gateway,
        "--host-header", mesh.service_host,
        "--clients", str(REVIEWS),
        "--reviews", str(REVIEWS),
        "--time-limit", "240",
        "--api-calls", str(API_CALLS),
        "--batch", str(BATCH),
        "--json",
        "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_simulator_sends_every_review_and_each_client_keeps_its_version(simulated: dict) -> None:
    assert simulated["predictions"] == REVIEWS
    assert simulated["feedback"] == REVIEWS
    assert simulated["errors"] == 0
    assert simulated["sticky_violations"] == 0
    assert sum(simulated["clients_per_version"].values()) == REVIEWS
    # Envoy's 70/30 split: the canary's share of 1,000 clients lies within 5 standard deviations.
    assert 0.3 * REVIEWS - 73 < simulated["clients_per_version"]["canary"] < 0.3 * REVIEWS + 73
    assert sum(simulated["api_calls_per_version"].values()) == API_CALLS
    assert simulated["batch_reviews"] == BATCH


def test_decision_from_metrics_matches_the_traffic_and_promotes_the_better_canary(
    mesh: Mesh, simulated: dict
) -> None:
    # No source flag: `make experiment` reads the gateway's upstreams from MODEL_SERVICE_PORTS.
    analysis = decide_json(env={"MODEL_SERVICE_PORTS": json.dumps(mesh.model_service_ports)})
    assert analysis["source"] == "metrics"
    by_name = {v["name"]: v for v in analysis["versions"]}
    for name, tally in simulated["versions"].items():
        api = simulated["api_calls_per_version"].get(name, 0)
        # Diners' single predictions plus the cookieless API calls; never the batch's.
        assert by_name[name]["predictions"] == tally["predictions"] + api
        assert by_name[name]["feedback"] == tally["predictions"]
        assert by_name[name]["correct"] == tally["correct"]
        # Every new client is one assignment: the diners, each cookieless call, the batch call
        # (and the simulator's one health check, which went through the weighted route too).
        batch = 1 if simulated["batch_version"] == name else 0
        diners = simulated["clients_per_version"][name]
        assert diners + api + batch <= by_name[name]["assignments"] <= diners + api + batch + 1
    assert sum(v["assignments"] for v in analysis["versions"]) == REVIEWS + API_CALLS + 2
    # The canary model is the better one (held-out accuracy in ml-model/*/metadata.json).
    assert (
        simulated["versions"]["canary"]["correct"] / simulated["versions"]["canary"]["predictions"]
        > simulated["versions"]["stable"]["correct"]
        / simulated["versions"]["stable"]["predictions"]
    )
    assert analysis["sample_ratio"]["mismatch"] is False
    assert analysis["decision"] == "PROMOTE", analysis["reason"]


def test_the_same_data_rolls_back_when_the_worse_model_is_the_treatment(
    mesh: Mesh, simulated: dict
) -> None:
    analysis = decide_json("--control", "canary", "--treatment", "stable", *_metrics_flags(mesh))
    assert analysis["decision"] == "ROLLBACK", analysis["reason"]


def test_readable_output_names_the_source_and_decision(mesh: Mesh, simulated: dict) -> None:
    result = run_cli("decide", *_metrics_flags(mesh))
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:" in result.stdout and "counters since each process" in result.stdout
    assert "Decision: PROMOTE" in result.stdout
    assert "Reason: canary is better" in result.stdout


def test_prometheus_source_agrees_with_the_services(
    mesh: Mesh, simulated: dict, tmp_path: Path
) -> None:
    targets = [f"127.0.0.1:{p}" for p in mesh.model_service_ports.values()]
    with prometheus(targets, tmp_path) as url:
        query = {"query": "sum(predictions_total)"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = httpx.get(f"{url}/api/v1/query", params=query, timeout=5).json()["data"]
            if result["result"] and float(result["result"][0]["value"][1]) == REVIEWS + API_CALLS:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"Prometheus never scraped the simulated predictions: {result}")
        analysis = decide_json("--prometheus-url", url, "--window", "all")
        windowed = decide_json("--prometheus-url", url, "--window", "10m")
    assert analysis["source"] == "prometheus"
    by_name = {v["name"]: v for v in analysis["versions"]}
    for name, tally in simulated["versions"].items():
        api = simulated["api_calls_per_version"].get(name, 0)
        assert by_name[name]["predictions"] == tally["predictions"] + api
        assert by_name[name]["correct"] == tally["correct"]
    assert analysis["sample_ratio"]["mismatch"] is False
    assert analysis["decision"] == "PROMOTE", analysis["reason"]
    assert "increase over the last 10m" in windowed["source_description"]
    assert windowed["decision"] in {"PROMOTE", "CONTINUE"}


def _metrics_flags(mesh: Mesh) -> list[str]:
    return [arg for url in mesh.metrics_urls() for arg in ("--metrics-url", url)]


def test_make_promote_then_moves_every_new_client_to_the_canary(
    mesh: Mesh, simulated: dict
) -> None:
    """The decision acted on: `make promote` (python -m localmesh promote) on the running mesh."""
    analysis = decide_json(env={"MODEL_SERVICE_PORTS": json.dumps(mesh.model_service_ports)})
    assert analysis["decision"] == "PROMOTE", analysis["reason"]
    promoted = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "promote", analysis["treatment"]],
        cwd=ROOT,
        env=mesh.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    review = {"review": "Lovely food.", "restaurantName": "Gourmet Haven"}
    with httpx.Client(base_url=mesh.gateway, headers={"host": mesh.service_host}) as client:
        versions = set()
        for _ in range(30):
            client.cookies.clear()
            versions.add(client.post("/predict", json=review, timeout=30).json()["modelVersion"])
    assert versions == {"canary"}
