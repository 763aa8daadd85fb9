"""Capability guards: Istio and Prometheus Operator objects render only where the cluster serves
their APIs, and NOTES.txt says what was left out and why."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm import engine
from tests.helm.conftest import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    RELEASE,
    Render,
    ci_values,
    manifests_of,
    of_kind,
    only,
)

VALUE_SETS = [pytest.param({}, id="defaults")] + [
    pytest.param(ci_values(path), id=path.name) for path in CI_VALUES
]
ISTIO_KINDS = {"Gateway", "VirtualService", "DestinationRule", "EnvoyFilter"}
ISTIO_KINDS |= {"PeerAuthentication", "AuthorizationPolicy"}
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_a_plain_cluster_gets_only_builtin_kinds(render: Render, values: dict[str, Any]) -> None:
    """With no extra API versions every object is a Kubernetes kind that validates strictly."""
    manifests = render(values, api_versions=())
    assert {"Deployment", "Service"} <= {m["kind"] for m in manifests}
    for manifest in manifests:
        group = manifest["apiVersion"].split("/")[0]
        assert "." not in group or group.endswith(".k8s.io"), manifest["kind"]
        clean = {k: v for k, v in manifest.items() if k != "__template__"}
        kubernetes_validate.validate(clean, "1.30", strict=True)


def oldest_kubernetes() -> str:
    """The minimum Kubernetes version Chart.yaml states, e.g. "1.30"."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)\.\d+(-0)?", constraint)
    assert found, constraint
    return f"{found[1]}.{found[2]}"


@pytest.mark.parametrize("values", VALUE_SETS)
def test_the_oldest_stated_kubernetes_accepts_every_builtin_object(
    chart: Any, values: dict[str, Any]
) -> None:
    version = oldest_kubernetes()
    # The preStop `sleep` action is beta and on by default from 1.30.
    assert version == "1.30"
    rendered = engine.render(
        chart, values, name=RELEASE, namespace=NAMESPACE, kube_version=f"v{version}.0"
    )
    manifests = manifests_of(rendered)
    for manifest in manifests:
        if "." in manifest["apiVersion"].split("/")[0]:
            continue  # custom resources: test_custom_resources.py
        clean = {k: v for k, v in manifest.items() if k != "__template__"}
        kubernetes_validate.validate(clean, version, strict=True)


def test_notes_name_what_a_plain_cluster_skipped(notes: Callable[..., str]) -> None:
    text = notes(api_versions=())
    assert "Skipped: the cluster does not serve the API of these objects" in text
    assert "--api-versions" in text
    for line in (
        "  - Gateway, VirtualServices, DestinationRules (networking.istio.io/v1, Istio 1.22+)",
        "  - EnvoyFilter of the homepage rate limit (networking.istio.io/v1alpha3, Istio 1.26+)",
        "  - PeerAuthentication, AuthorizationPolicies (security.istio.io/v1, Istio 1.22+)",
        "  - ServiceMonitor, PodMonitor, PrometheusRule (monitoring.coreos.com/v1, "
        "the Prometheus Operator)",
    ):
        assert line in text.splitlines()
    # Without the ingress gateway's rate limit the homepage promise is not made.
    assert "requests per" not in text


def test_notes_skip_nothing_on_a_cluster_with_istio_and_the_operator(
    notes: Callable[..., str],
) -> None:
    text = notes()
    assert "Skipped" not in text
    assert "allows 20 requests per 60 s per client" in text


def test_istio_without_the_operator(render: Render, notes: Callable[..., str]) -> None:
    manifests = render(api_versions=engine.ISTIO_APIS)
    kinds = {m["kind"] for m in manifests}
    assert kinds >= ISTIO_KINDS
    assert not kinds & OPERATOR_KINDS
    text = notes(api_versions=engine.ISTIO_APIS)
    skipped = [line for line in text.splitlines() if line.startswith("  - ")]
    assert [line for line in skipped if "coreos" in line or "istio.io" in line] == [
        "  - ServiceMonitor, PodMonitor, PrometheusRule (monitoring.coreos.com/v1, "
        "the Prometheus Operator)"
    ]


def test_the_operator_without_istio(render: Render) -> None:
    manifests = render(api_versions=engine.OPERATOR_APIS)
    kinds = {m["kind"] for m in manifests}
    assert kinds >= OPERATOR_KINDS
    assert not kinds & ISTIO_KINDS
    # No mesh certificates without Istio: Prometheus scrapes plain HTTP.
    (endpoint,) = only(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert "tlsConfig" not in endpoint and "scheme" not in endpoint


def test_each_guard_follows_its_own_api(render: Render) -> None:
    """The EnvoyFilter needs v1alpha3, the policies security.istio.io/v1."""
    only_networking = {m["kind"] for m in render(api_versions=("networking.istio.io/v1",))}
    assert {"Gateway", "VirtualService", "DestinationRule"} <= only_networking
    assert not only_networking & {"EnvoyFilter", "PeerAuthentication", "AuthorizationPolicy"}
    security = {m["kind"] for m in render(api_versions=("security.istio.io/v1",))}
    assert {"PeerAuthentication", "AuthorizationPolicy"} <= security
    assert not security & {"Gateway", "VirtualService", "EnvoyFilter"}


def test_without_istio_helm_test_calls_the_service_directly(render: Render) -> None:
    """No gateway and no mTLS: the test pod reaches the model-service Service itself."""
    pod = only(render(api_versions=()), "Pod")
    script = " ".join(pod["spec"]["containers"][0]["command"])
    assert "http://rel-restaurant-sentiment-model-service:8080/predict" in script
    assert "istio-ingressgateway" not in script


def test_switched_off_monitors_are_not_reported_as_skipped(notes: Callable[..., str]) -> None:
    off = {name: {"enabled": False} for name in ("serviceMonitor", "prometheusRule")}
    text = notes({"monitoring": off}, api_versions=engine.ISTIO_APIS)
    assert "  - PodMonitor (monitoring.coreos.com/v1, the Prometheus Operator)" in text
    assert "ServiceMonitor" not in text and "PrometheusRule" not in text


def test_disabled_features_render_nothing_even_when_served(render: Render) -> None:
    values = {
        "meshSecurity": {"enabled": False},
        "rateLimit": {"enabled": False},
        "monitoring": {
            name: {"enabled": False}
            for name in ("serviceMonitor", "prometheusRule", "gatewayPodMonitor")
        },
    }
    kinds = {m["kind"] for m in render(values)}
    assert not kinds & (OPERATOR_KINDS | {"EnvoyFilter", "PeerAuthentication"})
    assert of_kind(render(values), "AuthorizationPolicy") == []
