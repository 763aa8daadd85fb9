"""The rendered chart: Kubernetes schemas, workloads, Istio routing and monitoring objects."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from restaurant_sentiment.values.names import ASSIGNMENT_HEADER
from tests.helm import engine
from tests.helm.conftest import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    RELEASE,
    Manifest,
    Render,
    app_workloads,
    ci_values,
    default_values,
    of_kind,
    only,
)

ISTIO_API = "networking.istio.io/v1"
MONITORING_API = "monitoring.coreos.com/v1"
FULLNAME = f"{RELEASE}-restaurant-sentiment"
MODEL_HOST = f"{FULLNAME}-model-service"
GATEWAY = f"{FULLNAME}-gateway"


def builtin(manifests: list[Manifest]) -> list[Manifest]:
    return [
        m
        for m in manifests
        if "." not in m["apiVersion"].split("/")[0] or "k8s.io" in m["apiVersion"]
    ]


def clean(manifest: Manifest) -> Manifest:
    return {k: v for k, v in manifest.items() if k != "__template__"}


def pods_of(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment's template and every bare Pod."""
    pods = [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in of_kind(manifests, "Deployment")
    ]
    pods += [(p["metadata"]["name"], p["spec"]) for p in of_kind(manifests, "Pod")]
    return pods


VALUE_SETS = [pytest.param({}, id="defaults")] + [
    pytest.param(ci_values(path), id=path.name) for path in CI_VALUES
]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_builtin_kinds_validate_strictly(render: Render, values: dict[str, Any]) -> None:
    manifests = builtin(render(values))
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "Pod"} <= kinds
    for manifest in manifests:
        kubernetes_validate.validate(clean(manifest), "1.30", strict=True)


def test_strict_validation_catches_a_misspelt_field(default_manifests: list[Manifest]) -> None:
    deployment = clean(only(default_manifests, "Deployment", "-frontend"))
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30", strict=True)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_object_has_the_standard_labels(render: Render, values: dict[str, Any]) -> None:
    for manifest in render(values):
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "restaurant-sentiment"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "restaurant-sentiment-0.1.0"


def test_one_model_service_deployment_per_version(render: Render) -> None:
    values = ci_values(CHART / "ci" / "three-versions-values.yaml")
    deployments = {
        d["metadata"]["name"]: d
        for d in of_kind(render(values), "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "model-service"
    }
    versions = values["modelService"]["versions"]
    assert sorted(deployments) == sorted(f"{MODEL_HOST}-{v['name']}" for v in versions)
    for version in versions:
        deployment = deployments[f"{MODEL_HOST}-{version['name']}"]
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["replicas"] == version["replicas"]
        assert pod["metadata"]["labels"]["app"] == "model-service"
        assert pod["metadata"]["labels"]["version"] == version["name"]
        (container,) = pod["spec"]["containers"]
        assert container["image"].endswith(f"-model-service:{version['image']}")
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MODEL_SERVICE_MODEL_VERSION"] == version["name"]


def test_selectors_use_name_instance_and_component_only(default_manifests: list[Manifest]) -> None:
    allowed = {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    }
    for deployment in of_kind(default_manifests, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        extra = set(selector) - allowed
        # A model-service Deployment serves one model version for life, so `version` may select.
        assert extra <= {"version"}, deployment["metadata"]["name"]
        assert "app.kubernetes.io/version" not in selector
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items()
    for service in of_kind(default_manifests, "Service"):
        assert set(service["spec"]["selector"]) == allowed


def test_services_select_exactly_their_pods(default_manifests: list[Manifest]) -> None:
    deployments = of_kind(default_manifests, "Deployment")
    for service in of_kind(default_manifests, "Service"):
        if service["metadata"]["name"] == f"{FULLNAME}-redis":
            continue  # the feedback store: tests/helm/test_feedback_store.py
        selector = service["spec"]["selector"].items()
        selected = {
            d["metadata"]["name"]
            for d in deployments
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        }
        if service["metadata"]["name"] == MODEL_HOST:
            assert selected == {f"{MODEL_HOST}-stable", f"{MODEL_HOST}-canary"}
        else:
            assert selected == {f"{FULLNAME}-frontend"}
        # Ports named for Istio's protocol detection, pointing at the named container port.
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_frontend_calls_the_model_service_inside_the_mesh(
    default_manifests: list[Manifest],
) -> None:
    deployment = only(default_manifests, "Deployment", "-frontend")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = only(default_manifests, "Service", "-model-service")
    port = service["spec"]["ports"][0]["port"]
    assert env["MODEL_SERVICE_URL"] == f"http://{service['metadata']['name']}:{port}"
    assert env["FRONTEND_PORT"] == str(container["ports"][0]["containerPort"])


def test_probes_and_resources(default_manifests: list[Manifest]) -> None:
    for deployment in app_workloads(default_manifests):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        readiness = container["readinessProbe"]["httpGet"]
        assert readiness["port"] == "http"
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        assert readiness["path"] == ("/readyz" if component == "model-service" else "/healthz")
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_pod_is_locked_down(render: Render, values: dict[str, Any]) -> None:
    pods = pods_of(render(values))
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name


# --- Istio -------------------------------------------------------------------------------------


def expected_retries(values: dict[str, Any]) -> dict[str, Any]:
    """Every route's retries, from values `resilience.retries` (docs/kubernetes.md)."""
    retries = values["resilience"]["retries"]
    return {
        "attempts": retries["attempts"],
        "perTryTimeout": f"{retries['perTryTimeoutSeconds']}s",
        "retryOn": ",".join(retries["retryOn"]),
    }


def expected_model_routes(values: dict[str, Any], host: str) -> list[dict[str, Any]]:
    """The model-service VirtualService routes the local gateway mirrors (docs/design.md)."""
    service = values["modelService"]
    cookie, port = service["cookie"], {"number": service["port"]}
    split = ",".join(f"{v['name']}={v['weight']}" for v in service["versions"])
    routes: list[dict[str, Any]] = [
        {
            "name": f"cookie-{v['name']}",
            "match": [
                {
                    "headers": {
                        "cookie": {"regex": rf"(.*;)?\s*{cookie['name']}={v['name']}\s*(;.*)?"}
                    }
                }
            ],
            # A pinned client is no new assignment, whatever it sends.
            "headers": {"request": {"remove": [ASSIGNMENT_HEADER]}},
            "route": [{"destination": {"host": host, "subset": v["name"], "port": port}}],
            "retries": expected_retries(values),
        }
        # A retired version (weight 0) keeps no cookie route: its pinned users move on.
        for v in service["versions"]
        if v["weight"] > 0
    ]
    weighted = [
        {
            "destination": {"host": host, "subset": v["name"], "port": port},
            "weight": v["weight"],
            "headers": {
                "request": {"set": {ASSIGNMENT_HEADER: split}},
                "response": {
                    "add": {
                        "set-cookie": (
                            f"{cookie['name']}={v['name']}; Path=/; Max-Age={cookie['maxAge']}"
                        )
                    }
                },
            },
        }
        for v in service["versions"]
    ]
    return [*routes, {"name": "weighted", "retries": expected_retries(values), "route": weighted}]


def merged(values: dict[str, Any]) -> dict[str, Any]:
    base = default_values()
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("values", VALUE_SETS)
def test_model_service_virtualservice_matches_the_decided_routes(
    render: Render, values: dict[str, Any]
) -> None:
    manifests = render(values)
    full = merged(values)
    host = only(manifests, "Service", "-model-service")["metadata"]["name"]
    gateway = only(manifests, "Gateway")["metadata"]["name"]
    vs = only(manifests, "VirtualService", "-model-service")
    assert vs["apiVersion"] == ISTIO_API
    assert vs["spec"]["hosts"] == [full["hosts"]["service"], host]
    assert vs["spec"]["gateways"] == [gateway, "mesh"]
    assert vs["spec"]["http"] == expected_model_routes(full, host)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_weights_equal_the_values(render: Render, values: dict[str, Any]) -> None:
    vs = only(render(values), "VirtualService", "-model-service")
    weighted = vs["spec"]["http"][-1]["route"]
    versions = merged(values)["modelService"]["versions"]
    assert {r["destination"]["subset"]: r["weight"] for r in weighted} == {
        v["name"]: v["weight"] for v in versions
    }
    assert sum(r["weight"] for r in weighted) == 100


@pytest.mark.parametrize("values", VALUE_SETS)
def test_subsets_match_the_pod_labels(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    service = only(manifests, "Service", "-model-service")
    rule = only(manifests, "DestinationRule", "-model-service")
    assert rule["apiVersion"] == ISTIO_API
    assert rule["spec"]["host"] == service["metadata"]["name"]
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(manifests, "Deployment")]
    routed = {
        r["destination"]["subset"]
        for route in only(manifests, "VirtualService", "-model-service")["spec"]["http"]
        for r in route["route"]
    }
    subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
    assert routed == set(subsets)
    for name, labels in subsets.items():
        # The pods of a subset are those that carry its labels and the Service's selector.
        wanted = {**labels, **service["spec"]["selector"]}.items()
        matching = [p for p in pods if wanted <= p.items()]
        assert len(matching) == 1, (name, matching)
        assert matching[0]["version"] == name


COOKIE_CASES = [
    ("model-service-version=canary", "canary"),
    ("model-service-version=stable", "stable"),
    ("theme=dark; model-service-version=canary", "canary"),
    ("model-service-version=canary; theme=dark", "canary"),
    ("a=1;model-service-version=stable ;b=2", "stable"),
    ("model-service-version=canary-old", None),
    ("xmodel-service-version=canary", None),
    ("model-service-version=canaryx; other=stable", None),
    ("other=model-service-version=canary", None),
    ("", None),
]


@pytest.mark.parametrize(("cookie", "version"), COOKIE_CASES)
def test_cookie_regexes_are_anchored(
    default_manifests: list[Manifest], cookie: str, version: str | None
) -> None:
    vs = only(default_manifests, "VirtualService", "-model-service")
    # Envoy matches safe_regex (RE2) against the whole header value, as fullmatch does here.
    chosen = [
        route["route"][0]["destination"]["subset"]
        for route in vs["spec"]["http"]
        if "match" in route
        and re.fullmatch(route["match"][0]["headers"]["cookie"]["regex"], cookie)
    ]
    assert chosen == ([version] if version else [])


def test_set_cookie_has_path_and_max_age(render: Render) -> None:
    values = ci_values(CHART / "ci" / "three-versions-values.yaml")
    vs = only(render(values), "VirtualService", "-model-service")
    for route in vs["spec"]["http"][-1]["route"]:
        cookie = route["headers"]["response"]["add"]["set-cookie"]
        parts = [p.strip() for p in cookie.split(";")]
        assert parts[0] == f"ms-version={route['destination']['subset']}"
        assert "Path=/" in parts
        assert "Max-Age=3600" in parts


@pytest.mark.parametrize("values", VALUE_SETS)
def test_gateway_and_app_virtualservice_serve_the_configured_hosts(
    render: Render, values: dict[str, Any]
) -> None:
    manifests = render(values)
    full = merged(values)
    gateway = only(manifests, "Gateway")
    assert gateway["apiVersion"] == ISTIO_API
    assert gateway["spec"]["selector"] == full["gateway"]["selector"]
    (server,) = gateway["spec"]["servers"]
    assert server["port"]["number"] == full["gateway"]["port"]
    assert server["hosts"] == [full["hosts"]["app"], full["hosts"]["service"]]
    app = only(manifests, "VirtualService", "-app")
    frontend = only(manifests, "Service", "-frontend")
    destination = {
        "host": frontend["metadata"]["name"],
        "port": {"number": frontend["spec"]["ports"][0]["port"]},
    }
    assert app["spec"]["hosts"] == [full["hosts"]["app"]]
    assert app["spec"]["gateways"] == [gateway["metadata"]["name"]]
    assert app["spec"]["http"] == [
        {
            "name": "homepage",
            "match": [{"uri": {"exact": full["rateLimit"]["path"]}}],
            "retries": expected_retries(full),
            "route": [{"destination": destination}],
        },
        {"name": "app", "retries": expected_retries(full), "route": [{"destination": destination}]},
    ]


def test_configured_hosts_reach_every_istio_object(render: Render) -> None:
    manifests = render(ci_values(CHART / "ci" / "plain-cluster-values.yaml"))
    text = yaml.safe_dump_all(manifests)
    assert "localhost" not in text
    assert (
        only(manifests, "VirtualService", "-model-service")["spec"]["hosts"][0]
        == "api.reviews.example.test"
    )


# --- helm test, NOTES, monitoring ---------------------------------------------------------------


def test_helm_test_hook_posts_to_predict_through_the_gateway(
    default_manifests: list[Manifest],
) -> None:
    # The test pod has no sidecar: under STRICT mTLS it may only come in as users do.
    pod = only(default_manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(pod["spec"]["containers"][0]["command"])
    assert "http://istio-ingressgateway.istio-system.svc:80/predict" in script
    assert "-H 'Host: service.localhost'" in script
    assert '"restaurantName"' in script and '"review"' in script
    assert "curl -fsS" in script  # -f: an HTTP error fails the test


def test_notes_list_the_urls(notes: Callable[..., str]) -> None:
    text_of_notes = notes()
    for text in (
        "http://app.localhost/",
        "http://service.localhost/apidocs",
        "minikube tunnel",
        "model-service-version=stable",
        f"helm test {RELEASE} -n {NAMESPACE}",
    ):
        assert text in text_of_notes


def test_prometheus_rule_embeds_the_rules_file(default_manifests: list[Manifest]) -> None:
    rule = only(default_manifests, "PrometheusRule")
    assert rule["apiVersion"] == MONITORING_API
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    source = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == source


def test_service_monitor_scrapes_both_services(default_manifests: list[Manifest]) -> None:
    monitor = only(default_manifests, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    excluded = {
        (e["key"], value)
        for e in monitor["spec"]["selector"].get("matchExpressions", [])
        if e["operator"] == "NotIn"
        for value in e["values"]
    }
    scraped = {
        s["metadata"]["name"]
        for s in of_kind(default_manifests, "Service")
        if selector <= s["metadata"]["labels"].items()
        and not excluded & s["metadata"]["labels"].items()
    }
    assert scraped == {MODEL_HOST, f"{FULLNAME}-frontend"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert {k: endpoint[k] for k in ("port", "path", "interval")} == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
    }
    assert monitor["spec"]["podTargetLabels"] == ["version"]


def test_gateway_pod_monitor_scrapes_the_envoy_stats(default_manifests: list[Manifest]) -> None:
    monitor = only(default_manifests, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"istio": "ingressgateway"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["istio-system"]}
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == "/stats/prometheus"


def test_dashboard_configmap_is_imported_into_the_custom_folder(
    default_manifests: list[Manifest],
) -> None:
    config_map = only(default_manifests, "ConfigMap", "-dashboards")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "custom"
    dashboard = json.loads(config_map["data"]["restaurant-metrics.json"])
    source = json.loads((CHART / "dashboards" / "restaurant-metrics.json").read_text())
    assert dashboard == source
    assert dashboard["title"] == "Restaurant Metrics"


def test_monitoring_objects_can_be_switched_off(render: Render) -> None:
    manifests = render(ci_values(CHART / "ci" / "plain-cluster-values.yaml"))
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    configmaps = [m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"]
    assert not [name for name in configmaps if name.endswith("-dashboards")]
    assert {"Gateway", "VirtualService", "DestinationRule"} <= kinds


def test_rendered_manifests_pass_yamllint(chart: Any) -> None:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(
        "{extends: default, rules: {line-length: disable, document-start: disable,"
        " indentation: {indent-sequences: whatever}}}"
    )
    rendered = engine.render(chart, {}, name=RELEASE, namespace=NAMESPACE)
    problems = [
        f"{template}:{problem.line}: {problem.message}"
        for template, text in rendered.items()
        if not template.endswith("NOTES.txt") and text.strip()
        for problem in linter.run(text.strip() + "\n", config)
    ]
    assert problems == []


def frontend_env(manifests: list[Manifest]) -> dict[str, str]:
    pod = only(manifests, "Deployment", "-frontend")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_every_workload_reads_the_shared_values_from_one_configmap(render: Render) -> None:
    """The frontend and each model version mount the chart's values; the library reads them."""
    from restaurant_sentiment.experiment.config import config_from_values
    from restaurant_sentiment.values import parse_values

    manifests = render({"modelService": {"versions": [
        {"name": "stable", "image": "0.1.0", "weight": 90, "replicas": 1},
        {"name": "canary", "image": "0.1.0", "weight": 10, "replicas": 1},
    ]}})  # fmt: skip
    [configmap] = [
        m
        for m in manifests
        if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-values")
    ]
    values = parse_values(json.loads(configmap["data"]["values.json"]), "the ConfigMap")
    assert values.weights == {"stable": 90, "canary": 10}
    assert values.restaurant_names == [r["name"] for r in default_values()["restaurants"]]
    expected = default_values()["experiment"]["minFeedbackPerVersion"]
    assert config_from_values(values).thresholds.min_feedback_per_version == expected
    deployments = app_workloads(manifests)
    assert len(deployments) == 3
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        [setting] = [name for name in env if name.endswith("_VALUES_FILE")]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "values")
        assert env[setting] == mount["mountPath"] + "/values.json"
        assert "subPath" not in mount, "a subPath mount never sees an upgrade's new weights"
        volume = next(v for v in pod["volumes"] if v["name"] == "values")
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]


def test_frontend_experiment_page_reads_prometheus_when_given(render: Render) -> None:
    env = frontend_env(render())
    assert "FRONTEND_PROMETHEUS_URL" not in env
    url = "http://kube-prometheus-stack-prometheus.monitoring:9090"
    env = frontend_env(render({"frontend": {"prometheusUrl": url}}))
    assert env["FRONTEND_PROMETHEUS_URL"] == url
