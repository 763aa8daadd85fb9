"""Autoscaling, disruption budgets, scheduling, identity, images and network policies of the
workloads, rendered by the real Helm engine (kubernetes-validate checks every rendering strictly
in test_render.py and test_capabilities.py)."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest

from tests.helm.conftest import CHART, Manifest, Render, app_workloads, ci_values, of_kind, only

FULLNAME = "rel-restaurant-sentiment"
MODEL = f"{FULLNAME}-model-service"
AUTOSCALING = ci_values(CHART / "ci" / "autoscaling-values.yaml")
SCHEDULING = ci_values(CHART / "ci" / "scheduling-values.yaml")
DIGEST = "sha256:" + "1" * 64


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in app_workloads(manifests)}


def pod_spec(deployment: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Manifest) -> dict[str, Any]:
    (only_container,) = pod_spec(deployment)["containers"]
    return dict(only_container)


# --- Autoscaling -------------------------------------------------------------------------------


def test_no_autoscaler_by_default(default_manifests: list[Manifest]) -> None:
    assert of_kind(default_manifests, "HorizontalPodAutoscaler") == []
    for deployment in of_kind(default_manifests, "Deployment"):
        assert deployment["spec"]["replicas"] == 1


def test_autoscaling_gives_each_workload_an_autoscaler_and_drops_fixed_replicas(
    render: Render,
) -> None:
    manifests = render(AUTOSCALING)
    by_name = deployments(manifests)
    autoscalers = {h["metadata"]["name"]: h for h in of_kind(manifests, "HorizontalPodAutoscaler")}
    # The parked version (replicas 0) keeps its 0 and gets no autoscaler.
    assert sorted(autoscalers) == sorted(
        [f"{FULLNAME}-frontend", f"{MODEL}-stable", f"{MODEL}-canary"]
    )
    assert by_name[f"{MODEL}-retired"]["spec"]["replicas"] == 0
    for name, autoscaler in autoscalers.items():
        deployment = by_name[name]
        assert "replicas" not in deployment["spec"], name
        spec = autoscaler["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        names = {m["containerResource"]["container"] for m in spec["metrics"]}
        assert names == {container(deployment)["name"]}, "the app container, not the sidecar"
        # Utilization is relative to requests, so each measured resource must be requested.
        requests = container(deployment)["resources"]["requests"]
        assert {m["containerResource"]["name"] for m in spec["metrics"]} <= set(requests)


def test_autoscaler_settings_come_from_the_values(render: Render) -> None:
    manifests = render(AUTOSCALING)
    model = only(manifests, "HorizontalPodAutoscaler", "-model-service-canary")["spec"]
    assert (model["minReplicas"], model["maxReplicas"]) == (2, 8)
    targets = {
        m["containerResource"]["name"]: m["containerResource"]["target"] for m in model["metrics"]
    }
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 75},
        "memory": {"type": "Utilization", "averageUtilization": 90},
    }
    assert model["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    frontend = only(manifests, "HorizontalPodAutoscaler", "-frontend")["spec"]
    assert (frontend["minReplicas"], frontend["maxReplicas"]) == (2, 6)
    # A target of 0 is off: the frontend scales on CPU only.
    assert [m["containerResource"]["name"] for m in frontend["metrics"]] == ["cpu"]
    assert "behavior" not in frontend


@pytest.mark.parametrize(
    ("autoscaling", "message"),
    [
        (
            {"minReplicas": 6, "maxReplicas": 3},
            "autoscaling.minReplicas (6) is above maxReplicas (3)",
        ),
        (
            {"targetCPUUtilizationPercentage": 0, "targetMemoryUtilizationPercentage": 0},
            "autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
        ),
    ],
)
def test_inconsistent_autoscaling_fails_the_render(
    chart: Any, helm: ModuleType, autoscaling: dict[str, Any], message: str
) -> None:
    values = {"modelService": {"autoscaling": {"enabled": True, **autoscaling}}}
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="rel", namespace="shop")
    assert f"model-service: {message}" in str(caught.value)


# --- Disruption budgets ------------------------------------------------------------------------


def allowed_disruptions(max_unavailable: int | str, replicas: int) -> int:
    """What the disruption controller allows with every pod healthy (percentages round up)."""
    if isinstance(max_unavailable, str):
        return math.ceil(replicas * int(max_unavailable.rstrip("%")) / 100)
    return max_unavailable


@pytest.mark.parametrize("values", [{}, AUTOSCALING], ids=["fixed", "autoscaled"])
def test_budgets_never_block_a_drain_at_any_replica_count(
    render: Render, values: dict[str, Any]
) -> None:
    manifests = render(values)
    budgets = of_kind(manifests, "PodDisruptionBudget")
    assert budgets
    by_name = deployments(manifests)
    autoscalers = {
        h["metadata"]["name"]: h["spec"] for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    for budget in budgets:
        spec = budget["spec"]
        name = budget["metadata"]["name"]
        # minAvailable would block every drain of a one-replica workload.
        assert "minAvailable" not in spec, name
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name
        scaling = autoscalers.get(name)
        fixed = by_name[name]["spec"].get("replicas", 1)
        counts = range(scaling["minReplicas"], scaling["maxReplicas"] + 1) if scaling else [fixed]
        for replicas in counts:
            if replicas == 0:
                continue
            allowed = allowed_disruptions(spec["maxUnavailable"], replicas)
            assert allowed >= 1, (name, replicas)
            # More than one replica: a drain never takes them all at once.
            assert replicas == 1 or allowed < replicas, (name, replicas)


# --- Scheduling --------------------------------------------------------------------------------


def test_default_soft_anti_affinity_spreads_each_version_over_nodes(
    default_manifests: list[Manifest],
) -> None:
    for name, deployment in deployments(default_manifests).items():
        affinity = pod_spec(deployment)["affinity"]["podAntiAffinity"]
        (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        # Exactly the workload's own pods: a version's replicas repel each other, not the other
        # version's.
        assert selector == deployment["spec"]["selector"]["matchLabels"], name
        spec = pod_spec(deployment)
        assert not {"nodeSelector", "tolerations", "topologySpreadConstraints"} & set(spec)


def test_scheduling_values_reach_the_pods(render: Render) -> None:
    by_name = deployments(render(SCHEDULING))
    frontend = pod_spec(by_name[f"{FULLNAME}-frontend"])
    assert frontend["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert frontend["tolerations"] == SCHEDULING["frontend"]["tolerations"]
    # An affinity given replaces the preset.
    assert frontend["affinity"] == SCHEDULING["frontend"]["affinity"]
    (spread,) = frontend["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert (
        spread["labelSelector"]["matchLabels"]
        == (by_name[f"{FULLNAME}-frontend"]["spec"]["selector"]["matchLabels"])
    )
    for version in ("stable", "canary"):
        deployment = by_name[f"{MODEL}-{version}"]
        spec = pod_spec(deployment)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["version"] == version
        assert spec["nodeSelector"] == {"node.example.test/pool": "cpu-optimised"}
        (hard,) = spec["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert hard["labelSelector"]["matchLabels"] == selector
        assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == selector


def test_preset_off_and_explicit_label_selectors_are_kept(render: Render) -> None:
    own = {"matchLabels": {"tier": "web"}}
    values = {
        "frontend": {
            "podAntiAffinityPreset": "",
            "topologySpreadConstraints": [
                {
                    "maxSkew": 2,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": own,
                }
            ],
        }
    }
    spec = pod_spec(only(render(values), "Deployment", "-frontend"))
    assert "affinity" not in spec
    assert spec["topologySpreadConstraints"][0]["labelSelector"] == own


def test_pod_labels_and_annotations_never_override_the_chart_labels(render: Render) -> None:
    by_name = deployments(render(SCHEDULING))
    frontend = by_name[f"{FULLNAME}-frontend"]["spec"]["template"]["metadata"]
    assert frontend["labels"]["team"] == "web"
    assert frontend["labels"]["app"] == "frontend"  # not podLabels' "something-else"
    # podAnnotations, next to the chart's proxy drain (test_drain.py).
    assert frontend["annotations"]["sidecar.istio.io/proxyCPU"] == "50m"
    assert set(frontend["annotations"]) == {"sidecar.istio.io/proxyCPU", "proxy.istio.io/config"}
    stable = by_name[f"{MODEL}-stable"]["spec"]["template"]["metadata"]
    assert stable["labels"]["team"] == "ml"
    assert (stable["labels"]["app"], stable["labels"]["version"]) == ("model-service", "stable")


# --- Identity ----------------------------------------------------------------------------------


def test_service_accounts_take_names_and_annotations(render: Render) -> None:
    manifests = render(SCHEDULING)
    accounts = {a["metadata"]["name"]: a for a in of_kind(manifests, "ServiceAccount")}
    assert set(accounts) == {"storefront", "sentiment-model"}
    assert accounts["storefront"]["metadata"]["annotations"] == {
        "owner": "shop",
        "iam.example.test/role": "storefront",
    }
    assert accounts["sentiment-model"]["metadata"]["annotations"] == {"owner": "shop"}
    by_name = deployments(manifests)
    assert pod_spec(by_name[f"{FULLNAME}-frontend"])["serviceAccountName"] == "storefront"
    for version in ("stable", "canary"):
        assert pod_spec(by_name[f"{MODEL}-{version}"])["serviceAccountName"] == "sentiment-model"
    # The model-service admits the frontend by the identity its pods really run as.
    policy = only(manifests, "AuthorizationPolicy", "-model-service")
    principals = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert "cluster.local/ns/shop/sa/storefront" in principals


def test_existing_service_accounts_are_used_not_created(render: Render) -> None:
    values = {
        "serviceAccount": {"create": False},
        "frontend": {"serviceAccount": {"name": "web"}},
    }
    manifests = render(values)
    assert of_kind(manifests, "ServiceAccount") == []
    assert pod_spec(only(manifests, "Deployment", "-frontend"))["serviceAccountName"] == "web"


# --- Images ------------------------------------------------------------------------------------


def test_one_image_convention_for_every_workload(render: Render) -> None:
    by_name = deployments(render(SCHEDULING))
    prefix = "registry.example.test/shop/restaurant-sentiment"
    expected = {
        f"{FULLNAME}-frontend": f"{prefix}-frontend:0.1.0@{DIGEST}",
        # An empty tag is the chart's appVersion.
        f"{MODEL}-stable": f"{prefix}-model-service:0.1.0@sha256:{'2' * 64}",
        f"{MODEL}-canary": f"{prefix}-model-service:0.2.0@sha256:{'3' * 64}",
    }
    for name, image in expected.items():
        assert container(by_name[name])["image"] == image
        # A digest cannot change under the node's cached copy.
        assert container(by_name[name])["imagePullPolicy"] == "IfNotPresent"
        assert pod_spec(by_name[name])["imagePullSecrets"] == [{"name": "registry-pull"}]


def test_tags_are_pulled_always_unless_the_policy_is_set(render: Render) -> None:
    for deployment in of_kind(render(), "Deployment"):
        assert "@" not in container(deployment)["image"]
        assert container(deployment)["imagePullPolicy"] == "Always"
    for deployment in of_kind(render({"image": {"pullPolicy": "IfNotPresent"}}), "Deployment"):
        assert container(deployment)["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    "values",
    [
        {"frontend": {"digest": "sha256:short"}},
        {"frontend": {"digest": "md5:" + "1" * 32}},
        {"modelService": {"autoscaling": {"enabled": True, "minReplica": 1}}},
        {"modelService": {"podAntiAffinityPreset": "strict"}},
        {"frontend": {"podLabels": {"team": 3}}},
        {"frontend": {"tolerations": [{"key": "a", "operator": "Sometimes"}]}},
        {"frontend": {"topologySpreadConstraints": [{"maxSkew": 1}]}},
        {"frontend": {"serviceAccount": {"name": "Not_A_Name"}}},
        {"networkPolicy": {"enabled": True, "extraIngres": []}},
    ],
    ids=[
        "digest-short",
        "digest-algorithm",
        "autoscaling-typo",
        "preset",
        "pod-label-type",
        "toleration-operator",
        "spread-incomplete",
        "service-account-name",
        "network-policy-typo",
    ],
)
def test_schema_rejects_bad_workload_options(chart: Any, values: dict[str, Any]) -> None:
    helm = pytest.importorskip("helm_python")
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


# --- Network policies --------------------------------------------------------------------------


def selects(policy: Manifest, labels: dict[str, str]) -> bool:
    return bool(policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items())


def test_every_pod_is_selected_by_a_network_policy(default_manifests: list[Manifest]) -> None:
    policies = of_kind(default_manifests, "NetworkPolicy")
    pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(default_manifests, "Deployment")
    ]
    pods += [p["metadata"]["labels"] for p in of_kind(default_manifests, "Pod")]
    for labels in pods:
        assert [p for p in policies if selects(p, labels)], labels


def test_network_policies_admit_exactly_the_callers(default_manifests: list[Manifest]) -> None:
    def rules(suffix: str) -> list[dict[str, Any]]:
        policy = only(default_manifests, "NetworkPolicy", suffix)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        found: list[dict[str, Any]] = policy["spec"].get("ingress", [])
        return found

    gateway = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
        "podSelector": {"matchLabels": {"istio": "ingressgateway"}},
    }
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    frontend, model = rules("-frontend"), rules("-model-service")
    assert frontend[0] == {"from": [gateway], "ports": [{"port": 8083, "protocol": "TCP"}]}
    callers = model[0]["from"]
    assert gateway in callers
    assert {
        c["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for c in callers
        if "namespaceSelector" not in c
    } == {"frontend", "test"}
    assert model[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    for policy_rules, port in ((frontend, 8083), (model, 8080)):
        assert policy_rules[1] == {
            "from": [prometheus],
            "ports": [{"port": port, "protocol": "TCP"}, {"port": 15090, "protocol": "TCP"}],
        }
    # The helm test pod only calls out.
    assert rules("-test") == []


def test_extra_ingress_rules_are_appended(render: Render) -> None:
    manifests = render(SCHEDULING)
    extra = SCHEDULING["networkPolicy"]["extraIngress"][0]
    for suffix in ("-frontend", "-model-service"):
        assert only(manifests, "NetworkPolicy", suffix)["spec"]["ingress"][-1] == extra


def test_network_policies_can_be_switched_off(render: Render) -> None:
    assert of_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []
