"""Releases lose nothing in the cluster: rolling updates, a drain before SIGTERM, retries and
outlier detection, all from values `resilience` (the same block `make up`'s Envoy is built from)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.helm.conftest import (
    CHART,
    CI_VALUES,
    Manifest,
    Render,
    app_workloads,
    ci_values,
    default_values,
    of_kind,
    only,
)

VALUE_SETS = [{}, *(ci_values(path) for path in CI_VALUES)]
IDS = ["defaults", *(path.name for path in CI_VALUES)]


def resilience(values: dict[str, Any]) -> dict[str, Any]:
    """values' `resilience`, over the chart's defaults."""
    block: dict[str, Any] = default_values()["resilience"]
    for key, value in values.get("resilience", {}).items():
        block[key] = {**block[key], **value}
    return block


def container(deployment: Manifest) -> dict[str, Any]:
    (only_container,) = deployment["spec"]["template"]["spec"]["containers"]
    return only_container  # type: ignore[no-any-return]


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_every_deployment_surges_drains_and_stops_in_its_grace_period(
    render: Render, values: dict[str, Any]
) -> None:
    policy = resilience(values)
    pause = policy["drain"]["preStopSeconds"]
    longest = policy["retries"]["perTryTimeoutSeconds"]
    deployments = app_workloads(render(values))
    assert len(deployments) >= 2
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        # A new pod is ready before an old one goes.
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }, name
        pod = deployment["spec"]["template"]
        app = container(deployment)
        assert app["readinessProbe"]["httpGet"]["port"] == "http", name
        # The pod keeps serving while the endpoints and proxies take it out of rotation.
        assert app["lifecycle"] == {"preStop": {"sleep": {"seconds": pause}}}, name
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        assert grace == policy["drain"]["terminationGracePeriodSeconds"]
        assert grace > pause + longest, name
        # The sidecar drains as long as its container may still answer, and within the grace.
        proxy = yaml.safe_load(pod["metadata"]["annotations"]["proxy.istio.io/config"])
        assert proxy == {"terminationDrainDuration": f"{pause + longest}s"}, name
        assert pause + longest < grace


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_every_route_retries_a_request_a_stopping_pod_cut_off(
    render: Render, values: dict[str, Any]
) -> None:
    retries = resilience(values)["retries"]
    services = of_kind(render(values), "VirtualService")
    assert len(services) == 2
    for service in services:
        for route in service["spec"]["http"]:
            assert route["retries"] == {
                "attempts": retries["attempts"],
                "perTryTimeout": f"{retries['perTryTimeoutSeconds']}s",
                "retryOn": ",".join(retries["retryOn"]),
            }
            conditions = route["retries"]["retryOn"].split(",")
            assert {"reset", "connect-failure"} <= set(conditions), route["name"]


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_every_destination_rule_ejects_failing_pods_and_allows_the_retries(
    render: Render, values: dict[str, Any]
) -> None:
    policy = resilience(values)
    manifests = render(values)
    rules = of_kind(manifests, "DestinationRule")
    hosts = {rule["spec"]["host"] for rule in rules}
    # Every Service a VirtualService routes to has its policy.
    routed = {
        destination["destination"]["host"]
        for service in of_kind(manifests, "VirtualService")
        for route in service["spec"]["http"]
        for destination in route["route"]
    }
    assert routed == hosts
    detection = policy["outlierDetection"]
    for rule in rules:
        traffic = rule["spec"]["trafficPolicy"]
        assert traffic["connectionPool"] == {
            "http": {"maxRetries": policy["retries"]["maxConcurrent"]}
        }
        assert traffic["outlierDetection"] == {
            "splitExternalLocalOriginErrors": True,
            "consecutiveLocalOriginFailures": detection["consecutiveLocalOriginFailures"],
            "consecutive5xxErrors": detection["consecutive5xxErrors"],
            "interval": f"{detection['intervalSeconds']}s",
            "baseEjectionTime": f"{detection['baseEjectionSeconds']}s",
            "maxEjectionPercent": detection["maxEjectionPercent"],
            "minHealthPercent": detection["minHealthPercent"],
        }


def test_changed_values_reach_every_object(render: Render) -> None:
    values = {
        "resilience": {
            "retries": {"attempts": 3, "perTryTimeoutSeconds": 20, "retryOn": ["reset", "502"]},
            "drain": {"preStopSeconds": 8, "terminationGracePeriodSeconds": 45},
        }
    }
    manifests = render(values)
    for deployment in app_workloads(manifests):
        pod = deployment["spec"]["template"]
        assert container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"] == 8
        assert pod["spec"]["terminationGracePeriodSeconds"] == 45
        assert pod["metadata"]["annotations"]["proxy.istio.io/config"] == (
            "terminationDrainDuration: 28s"
        )
    route = only(manifests, "VirtualService", "-app")["spec"]["http"][0]
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "20s", "retryOn": "reset,502"}


def test_retries_can_be_turned_off(render: Render) -> None:
    manifests = render({"resilience": {"retries": {"attempts": 0}}})
    for service in of_kind(manifests, "VirtualService"):
        assert all(route["retries"] == {"attempts": 0} for route in service["spec"]["http"])


def test_a_proxy_config_of_the_pods_replaces_the_chart_drain(render: Render) -> None:
    own = "terminationDrainDuration: 40s\nholdApplicationUntilProxyStarts: true"
    manifests = render({"frontend": {"podAnnotations": {"proxy.istio.io/config": own}}})
    frontend = only(manifests, "Deployment", "-frontend")["spec"]["template"]["metadata"]
    assert frontend["annotations"] == {"proxy.istio.io/config": own}
    # The model-service pods keep the chart's drain.
    for deployment in of_kind(manifests, "Deployment"):
        if deployment["metadata"]["name"].endswith(("-stable", "-canary")):
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["proxy.istio.io/config"] == "terminationDrainDuration: 15s"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"resilience": {"drain": {"terminationGracePeriodSeconds": 15}}},
            "resilience.drain.terminationGracePeriodSeconds must be longer than "
            "resilience.drain.preStopSeconds + resilience.retries.perTryTimeoutSeconds "
            "(the longest request), 15s; got 15s",
        ),
        (
            {"frontend": {"readTimeoutSeconds": 10}},
            "frontend.readTimeoutSeconds (10) must be shorter than "
            "resilience.retries.perTryTimeoutSeconds (10)",
        ),
    ],
    ids=["grace-too-short", "frontend-outlasts-a-try"],
)
def test_an_inconsistent_drain_fails_the_render(
    chart: Any, helm: ModuleType, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="rel", namespace="shop")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"resilience": {"retries": {"retryOn": ["reset", "404"]}}}, "retryOn"),
        ({"resilience": {"retries": {"retryOn": ["reset", "reset"]}}}, "retryOn"),
        ({"resilience": {"retries": {"retryOn": []}}}, "retryOn"),
        ({"resilience": {"retries": {"attempts": -1}}}, "attempts"),
        ({"resilience": {"drain": {"preStopSeconds": 0}}}, "preStopSeconds"),
        ({"resilience": {"drain": {"preStop": 5}}}, "preStop"),
        ({"resilience": {"outlierDetection": {"minHealthPercent": 101}}}, "minHealthPercent"),
        ({"resilience": {"timeouts": {}}}, "timeouts"),
    ],
    ids=["code", "repeated", "empty", "attempts", "pause", "unknown", "percent", "unknown-block"],
)
def test_the_schema_rejects_bad_policy_values(
    chart: Any, helm: ModuleType, values: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(caught.value)


def test_the_values_library_reads_the_same_defaults() -> None:
    """The typed defaults (used when a values file has no `resilience`) are the chart's."""
    from restaurant_sentiment.values import Resilience

    chart_block = yaml.safe_load((CHART / "values.yaml").read_text())["resilience"]
    assert Resilience().model_dump(by_alias=True) == chart_block
    assert Resilience.model_validate(chart_block) == Resilience()
