"""The chart's security objects: mTLS, who may call what, identities, the feedback key, budgets."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest

from tests.helm.conftest import (
    CHART,
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
from tests.support import model_service, redis_server

FULLNAME = f"{RELEASE}-restaurant-sentiment"
EXISTING = ci_values(CHART / "ci" / "existing-secret-values.yaml")
THREE = ci_values(CHART / "ci" / "three-versions-values.yaml")


# --- Istio authorization, evaluated as Istio evaluates ALLOW policies --------------------------


@dataclass(frozen=True)
class Call:
    """One request as the callee's sidecar sees it; principal None is a plain-text caller."""

    principal: str | None
    method: str
    path: str
    port: int


def _matches(patterns: list[str], value: str) -> bool:
    # Istio string matching: exact, "prefix*", "*suffix" or "*".
    return any(
        p == value
        or (p.endswith("*") and value.startswith(p[:-1]))
        or (p.startswith("*") and value.endswith(p[1:]))
        for p in patterns
    )


def _source_matches(source: dict[str, Any], call: Call) -> bool:
    if "principals" in source:
        return call.principal is not None and _matches(source["principals"], call.principal)
    assert set(source) <= {"principals"}, f"unsupported source fields {source}"
    return True


def _operation_matches(operation: dict[str, Any], call: Call) -> bool:
    assert set(operation) <= {"ports", "methods", "paths", "notPaths"}, operation
    if "ports" in operation and str(call.port) not in operation["ports"]:
        return False
    if "methods" in operation and call.method not in operation["methods"]:
        return False
    if "paths" in operation and not _matches(operation["paths"], call.path):
        return False
    return not ("notPaths" in operation and _matches(operation["notPaths"], call.path))


def _rule_matches(rule: dict[str, Any], call: Call) -> bool:
    sources = [f["source"] for f in rule.get("from", [])]
    operations = [t["operation"] for t in rule.get("to", [])]
    if sources and not any(_source_matches(s, call) for s in sources):
        return False
    return not operations or any(_operation_matches(o, call) for o in operations)


def allowed(manifests: list[Manifest], pod_labels: dict[str, str], call: Call) -> bool:
    """Istio's decision for a call to a pod of this namespace, from the rendered policies."""
    applying = []
    for policy in of_kind(manifests, "AuthorizationPolicy"):
        assert policy["metadata"].get("namespace") in (None, NAMESPACE)
        spec = policy["spec"]
        assert spec.get("action", "ALLOW") == "ALLOW", "only ALLOW policies are modelled"
        selector = spec.get("selector", {}).get("matchLabels", {})
        if selector.items() <= pod_labels.items():
            applying.append(spec)
    if not applying:
        return True
    return any(_rule_matches(rule, call) for spec in applying for rule in spec.get("rules", []))


def pod_of(manifests: list[Manifest], suffix: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Labels and spec of the pods of the Deployment whose name ends with suffix."""
    template = only(manifests, "Deployment", suffix)["spec"]["template"]
    return template["metadata"]["labels"], template["spec"]


def principal_of(manifests: list[Manifest], suffix: str, namespace: str = NAMESPACE) -> str:
    """The SPIFFE principal the pods of a Deployment get from their ServiceAccount."""
    _, spec = pod_of(manifests, suffix)
    return f"cluster.local/ns/{namespace}/sa/{spec['serviceAccountName']}"


GATEWAY = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
PROMETHEUS = "cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus"
STRANGER = f"cluster.local/ns/{NAMESPACE}/sa/default"

# (caller, target deployment, method, path, allowed)
MATRIX = [
    ("gateway", "-frontend", "GET", "/", True),
    ("gateway", "-frontend", "POST", "/restaurants/gourmet-haven/reviews", True),
    ("gateway", "-frontend", "GET", "/static/app.css", True),
    ("gateway", "-frontend", "GET", "/metrics", False),
    ("prometheus", "-frontend", "GET", "/metrics", True),
    ("prometheus", "-frontend", "GET", "/", False),
    ("frontend", "-frontend", "GET", "/", False),
    ("stranger", "-frontend", "GET", "/", False),
    ("plaintext", "-frontend", "GET", "/", False),
    ("gateway", "-model-service-stable", "POST", "/predict", True),
    ("gateway", "-model-service-canary", "POST", "/model-accuracy", True),
    ("gateway", "-model-service-stable", "POST", "/predict/batch", True),
    ("frontend", "-model-service-stable", "POST", "/predict", True),
    ("frontend", "-model-service-canary", "POST", "/model-accuracy", True),
    ("gateway", "-model-service-stable", "GET", "/apidocs", True),
    ("gateway", "-model-service-stable", "GET", "/openapi.json", True),
    ("gateway", "-model-service-stable", "GET", "/static/swagger-ui-5.35.0/swagger-ui.css", True),
    ("gateway", "-model-service-canary", "GET", "/version", True),
    ("gateway", "-model-service-stable", "GET", "/metrics", False),
    ("gateway", "-model-service-stable", "DELETE", "/predict", False),
    # The experiment's counts: the frontend's page and the public API, nobody else.
    ("frontend", "-model-service-stable", "GET", "/experiment/counts", True),
    ("gateway", "-model-service-canary", "GET", "/experiment/counts", True),
    ("frontend", "-model-service-stable", "POST", "/experiment/counts", False),
    ("stranger", "-model-service-stable", "GET", "/experiment/counts", False),
    ("frontend", "-model-service-stable", "GET", "/metrics", False),
    ("frontend", "-model-service-stable", "GET", "/apidocs", False),
    ("prometheus", "-model-service-stable", "GET", "/metrics", True),
    ("prometheus", "-model-service-canary", "GET", "/metrics", True),
    ("prometheus", "-model-service-stable", "POST", "/predict", False),
    ("stranger", "-model-service-stable", "POST", "/predict", False),
    ("stranger", "-model-service-stable", "GET", "/metrics", False),
    ("plaintext", "-model-service-stable", "POST", "/predict", False),
    ("plaintext", "-model-service-stable", "GET", "/metrics", False),
    # The feedback store's Redis: the model-service pods only.
    ("model-service", "-redis", "POST", "/", True),
    ("frontend", "-redis", "POST", "/", False),
    ("gateway", "-redis", "POST", "/", False),
    ("prometheus", "-redis", "GET", "/metrics", False),
    ("stranger", "-redis", "POST", "/", False),
    ("plaintext", "-redis", "POST", "/", False),
]


@pytest.mark.parametrize(("caller", "target", "method", "path", "expected"), MATRIX)
def test_who_may_call_what(
    default_manifests: list[Manifest],
    caller: str,
    target: str,
    method: str,
    path: str,
    expected: bool,
) -> None:
    principals = {
        "gateway": GATEWAY,
        "prometheus": PROMETHEUS,
        "frontend": principal_of(default_manifests, "-frontend"),
        "model-service": principal_of(default_manifests, "-model-service-stable"),
        "stranger": STRANGER,
        "plaintext": None,
    }
    labels, spec = pod_of(default_manifests, target)
    port = spec["containers"][0]["ports"][0]["containerPort"]
    call = Call(principals[caller], method, path, port)
    assert allowed(default_manifests, labels, call) is expected


def test_another_port_of_an_allowed_pod_is_closed(default_manifests: list[Manifest]) -> None:
    labels, _ = pod_of(default_manifests, "-model-service-stable")
    assert not allowed(default_manifests, labels, Call(GATEWAY, "POST", "/predict", 9999))


def test_other_workloads_of_the_namespace_are_closed(default_manifests: list[Manifest]) -> None:
    other_pod = {"app": "something-else"}
    assert not allowed(default_manifests, other_pod, Call(GATEWAY, "GET", "/", 80))


def test_the_evaluator_opens_everything_without_policies(render: Render) -> None:
    # Guards the evaluator itself: without the policies every call goes through.
    manifests = render({"meshSecurity": {"enabled": False}})
    assert not of_kind(manifests, "AuthorizationPolicy")
    assert not of_kind(manifests, "PeerAuthentication")
    labels, _ = pod_of(manifests, "-model-service-stable")
    assert allowed(manifests, labels, Call(None, "GET", "/metrics", 8080))


def test_mtls_is_strict_for_the_whole_namespace(default_manifests: list[Manifest]) -> None:
    peer = only(default_manifests, "PeerAuthentication")
    assert peer["apiVersion"] == "security.istio.io/v1"
    assert peer["metadata"].get("namespace") in (None, NAMESPACE)
    assert "selector" not in peer["spec"]
    assert peer["spec"]["mtls"] == {"mode": "STRICT"}


def test_principals_follow_the_values(render: Render) -> None:
    manifests = render(EXISTING)
    policy = only(manifests, "AuthorizationPolicy", "-model-service")
    principals = {
        p for rule in policy["spec"]["rules"] for p in rule["from"][0]["source"]["principals"]
    }
    _, frontend = pod_of(manifests, "-frontend")
    assert principals == {
        "prod.example.test/ns/ingress/sa/public-gateway",
        f"prod.example.test/ns/{NAMESPACE}/sa/{frontend['serviceAccountName']}",
        "prod.example.test/ns/observability/sa/prometheus-k8s",
    }


def test_policy_ports_are_the_container_ports(render: Render) -> None:
    manifests = render({"frontend": {"port": 9000}, "modelService": {"port": 9100}})
    for suffix, port in (("-frontend", "9000"), ("-model-service", "9100")):
        policy = only(manifests, "AuthorizationPolicy", suffix)
        ports = {
            p for r in policy["spec"]["rules"] for t in r["to"] for p in t["operation"]["ports"]
        }
        assert ports == {port}


@pytest.mark.parametrize("values", [{}, THREE, EXISTING], ids=["defaults", "three", "existing"])
def test_policies_select_exactly_their_workloads(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    deployments = of_kind(manifests, "Deployment")
    for component in ("frontend", "model-service"):
        policy = only(manifests, "AuthorizationPolicy", f"-{component}")
        selector = policy["spec"]["selector"]["matchLabels"].items()
        selected = {
            d["metadata"]["name"]
            for d in deployments
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        }
        expected = {
            d["metadata"]["name"]
            for d in deployments
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == component
        }
        assert selected == expected and expected


@pytest.mark.parametrize("values", [{}, THREE], ids=["defaults", "three"])
def test_each_workload_runs_as_its_own_service_account(
    render: Render, values: dict[str, Any]
) -> None:
    manifests = render(values)
    accounts = {a["metadata"]["name"]: a for a in of_kind(manifests, "ServiceAccount")}
    used: dict[str, set[str]] = {}
    for deployment in app_workloads(manifests):
        spec = deployment["spec"]["template"]["spec"]
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        assert spec["serviceAccountName"] in accounts
        used.setdefault(component, set()).add(spec["serviceAccountName"])
    # One identity per workload kind: every model version shares the model-service's.
    assert {k: len(v) for k, v in used.items()} == {"frontend": 1, "model-service": 1}
    assert used["frontend"] != used["model-service"]
    for account in accounts.values():
        assert account["automountServiceAccountToken"] is False


def test_prometheus_scrapes_with_its_istio_certificate_under_strict(render: Render) -> None:
    (endpoint,) = only(render(), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["certFile"] == "/etc/prom-certs/cert-chain.pem"
    assert endpoint["tlsConfig"]["keyFile"] == "/etc/prom-certs/key.pem"
    for values in (
        {"meshSecurity": {"enabled": False}},
        {"meshSecurity": {"mtlsMode": "PERMISSIVE"}},
    ):
        (plain,) = only(render(values), "ServiceMonitor")["spec"]["endpoints"]
        assert "tlsConfig" not in plain and "scheme" not in plain


def test_notes_do_not_advertise_metrics_through_the_gateway(notes: Callable[..., str]) -> None:
    text = notes()
    assert "/metrics" not in text.replace("may read /metrics", "")
    assert PROMETHEUS in text


# --- Pod disruption budgets and resources ------------------------------------------------------


@pytest.mark.parametrize("values", [{}, THREE, EXISTING], ids=["defaults", "three", "existing"])
def test_one_disruption_budget_per_workload(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    # The feedback store's single Redis is replaced with Recreate: a budget would block drains.
    deployments = app_workloads(manifests)
    budgets = of_kind(manifests, "PodDisruptionBudget")
    assert len(budgets) == len(deployments)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"].items()
        covered = [
            d["metadata"]["name"]
            for d in deployments
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert covered == [budget["metadata"]["name"]]
        assert "minAvailable" not in budget["spec"]
        expected = (values.get("podDisruptionBudget") or {}).get("maxUnavailable", 1)
        assert budget["spec"]["maxUnavailable"] == expected


QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Mi|Gi|Ki)?$")
UNITS = {None: 1.0, "m": 0.001, "Ki": 1024.0, "Mi": 1024.0**2, "Gi": 1024.0**3}


def quantity(value: str | int) -> float:
    match = QUANTITY.match(str(value))
    assert match, value
    return float(match[1]) * UNITS[match[2]]


def test_every_container_has_requests_and_limits(default_manifests: list[Manifest]) -> None:
    for deployment in of_kind(default_manifests, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, (deployment["metadata"]["name"], resource)


@pytest.mark.parametrize("component", ["frontend", "modelService"])
@pytest.mark.parametrize("block", ["requests", "limits"])
def test_schema_requires_cpu_and_memory_requests_and_limits(component: str, block: str) -> None:
    # On the schema itself: an override cannot reliably delete a default key through the engine.
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = default_values()
    jsonschema.validate(values, schema)
    del values[component]["resources"][block]["cpu"]
    with pytest.raises(jsonschema.ValidationError, match="'cpu' is a required property"):
        jsonschema.validate(values, schema)


# --- The key that signs prediction ids ---------------------------------------------------------


def model_env(manifests: list[Manifest]) -> dict[str, list[dict[str, Any]]]:
    """Deployment name -> env of its model-service container."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["env"]
        for d in of_kind(manifests, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "model-service"
    }


def env_entry(env: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (entry,) = [e for e in env if e["name"] == name]
    return entry


def signing_key(manifests: list[Manifest]) -> str:
    secret = only(manifests, "Secret", "-feedback")
    return base64.b64decode(secret["data"]["feedback-secret"]).decode()


@pytest.mark.parametrize("values", [{}, THREE], ids=["defaults", "three"])
def test_every_model_pod_reads_the_one_generated_key(
    render: Render, values: dict[str, Any]
) -> None:
    manifests = render(values)
    secret = only(manifests, "Secret", "-feedback")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    envs = model_env(manifests)
    assert len(envs) == len(values.get("modelService", {}).get("versions", [1, 2]))
    for env in envs.values():
        reference = env_entry(env, "MODEL_SERVICE_FEEDBACK_SECRET")
        assert "value" not in reference
        assert reference["valueFrom"]["secretKeyRef"] == {
            "name": secret["metadata"]["name"],
            "key": "feedback-secret",
        }
        assert env_entry(env, "MODEL_SERVICE_REQUIRE_PREDICTION_ID")["value"] == "true"


def test_the_generated_key_is_random_and_strong(render: Render) -> None:
    first, second = signing_key(render()), signing_key(render())
    assert re.fullmatch(r"[A-Za-z0-9]{48}", first)
    assert first != second
    # The key is in the Secret only, never in a plain env value, ConfigMap or annotation.
    manifests = render()
    others = [m for m in manifests if m["kind"] != "Secret"]
    assert signing_key(manifests) not in repr(others)


def test_the_key_is_kept_across_upgrades(chart: Any) -> None:
    # Offline, `lookup` finds nothing; in a cluster it returns the Secret already there, and
    # the template reuses its value instead of drawing a new one.
    template = (CHART / "templates" / "feedback-secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert "index $current.data $key" in template


def test_an_existing_secret_is_used_and_none_is_created(render: Render) -> None:
    manifests = render(EXISTING)
    assert [s["metadata"]["name"] for s in of_kind(manifests, "Secret")] == [
        f"{FULLNAME}-feedback-store"  # the Redis password, a Secret of its own
    ]
    for env in model_env(manifests).values():
        reference = env_entry(env, "MODEL_SERVICE_FEEDBACK_SECRET")["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "sentiment-feedback-key", "key": "key"}


def test_the_requirement_can_be_relaxed(render: Render) -> None:
    manifests = render({"feedback": {"requirePredictionId": False}})
    for env in model_env(manifests).values():
        assert env_entry(env, "MODEL_SERVICE_REQUIRE_PREDICTION_ID")["value"] == "false"


@pytest.mark.slow
def test_real_services_configured_as_rendered_share_trust_in_feedback(render: Render) -> None:
    """Two versions started with the rendered env: ids verify across them, bare feedback fails."""
    manifests = render()
    key = signing_key(manifests)
    secrets = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
        for s in of_kind(manifests, "Secret")
    }
    env = {}
    for entry in model_env(manifests)[f"{FULLNAME}-model-service-stable"]:
        if entry["name"].startswith("MODEL_SERVICE_FEEDBACK") or "REQUIRE" in entry["name"]:
            reference = entry.get("valueFrom", {}).get("secretKeyRef")
            value = secrets[reference["name"]][reference["key"]] if reference else entry["value"]
            env[entry["name"]] = value
    assert env["MODEL_SERVICE_FEEDBACK_SECRET"] == key
    # The chart's Redis, as a local redis-server with the generated password.
    password = env["MODEL_SERVICE_FEEDBACK_STORE_PASSWORD"]
    store = urlsplit(env["MODEL_SERVICE_FEEDBACK_STORE"])
    assert store.hostname == f"{FULLNAME}-redis" and store.port == 6379
    review = {"review": "Lovely food and kind staff.", "restaurantName": "Gourmet Haven"}
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(redis_server("--requirepass", password))
        env["MODEL_SERVICE_FEEDBACK_STORE"] = f"{local}"
        stable = stack.enter_context(model_service("stable", **env))
        canary = stack.enter_context(model_service("canary", **env))
        issued = httpx.post(f"{stable}/predict", json=review, timeout=10).json()
        feedback = {
            "restaurantName": "Gourmet Haven",
            "accurate": True,
            "prediction": issued["prediction"],
        }
        bare = httpx.post(f"{canary}/model-accuracy", json=feedback, timeout=10)
        assert bare.status_code == 422, bare.text
        assert bare.json()["detail"][0]["loc"] == ["body", "predictionId"]
        signed = {**feedback, "predictionId": issued["predictionId"]}
        accepted = httpx.post(f"{canary}/model-accuracy", json=signed, timeout=10)
        assert accepted.status_code == 200, accepted.text
        metrics = httpx.get(f"{canary}/metrics", timeout=10).text
        outcome = "true_pos" if issued["prediction"] == 1 else "true_neg"
        # Counted once, for the version that made the prediction.
        assert (
            f'{outcome}_predictions_total{{model_version="stable",restaurant="Gourmet Haven"}} 1.0'
            in metrics
        )
        # A replay to the other version's process is refused too: they share the store.
        for instance in (canary, stable):
            again = httpx.post(f"{instance}/model-accuracy", json=signed, timeout=10)
            assert again.status_code == 409, again.text
