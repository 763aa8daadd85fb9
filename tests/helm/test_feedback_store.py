"""The chart's feedback store: every model-service pod of every version shares one Redis, the
chart's own (locked down: non-root, read-only, only model-service pods admitted) or the user's,
with its password from a Secret and never in the values or the repository."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from restaurant_sentiment.values import Values
from tests.helm.conftest import NAMESPACE, RELEASE, Manifest, Render, of_kind, only

CONTAINER = "model-service"


def env_of(deployment: Manifest) -> dict[str, Any]:
    [container] = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == CONTAINER
    ]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def model_services(manifests: list[Manifest]) -> list[Manifest]:
    return [
        m
        for m in of_kind(manifests, "Deployment")
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == "model-service"
    ]


def test_by_default_every_model_service_pod_shares_the_charts_redis(
    default_manifests: list[Manifest],
) -> None:
    service = only(default_manifests, "Service", "-redis")
    assert service["metadata"]["name"] == f"{RELEASE}-restaurant-sentiment-redis"
    [port] = service["spec"]["ports"]
    url = f"redis://{service['metadata']['name']}:{port['port']}/0"
    secret = only(default_manifests, "Secret", "-feedback-store")
    assert set(secret["data"]) == {"redis-password"}
    assert len(secret["data"]["redis-password"]) == 64  # 48 random characters, base64
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployments = model_services(default_manifests)
    assert {d["metadata"]["labels"]["version"] for d in deployments} == {"stable", "canary"}
    for deployment in deployments:
        env = env_of(deployment)
        assert env["MODEL_SERVICE_FEEDBACK_STORE"] == url
        assert env["MODEL_SERVICE_FEEDBACK_STORE_PASSWORD"] == {
            "secretKeyRef": {"name": secret["metadata"]["name"], "key": "redis-password"}
        }


def test_the_charts_redis_is_locked_down(default_manifests: list[Manifest]) -> None:
    redis = only(default_manifests, "Deployment", "-redis")
    assert redis["spec"]["replicas"] == 1
    assert redis["spec"]["strategy"] == {"type": "Recreate"}
    pod = redis["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["memory"]
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    [password] = container["env"]
    assert password["valueFrom"]["secretKeyRef"]["name"].endswith("-feedback-store")

    # Only model-service pods of this release may connect, on the Redis port only.
    policy = only(default_manifests, "NetworkPolicy", "-redis")
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    assert source["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "restaurant-sentiment",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "model-service",
    }
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "feedback-store"
    )
    allow = only(default_manifests, "AuthorizationPolicy", "-redis")
    [mesh_rule] = allow["spec"]["rules"]
    assert mesh_rule["from"][0]["source"]["principals"] == [
        f"cluster.local/ns/{NAMESPACE}/sa/{RELEASE}-restaurant-sentiment-model-service"
    ]


def volume_of(manifests: list[Manifest]) -> dict[str, Any]:
    redis = only(manifests, "Deployment", "-redis")
    [data] = [v for v in redis["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
    return data  # type: ignore[no-any-return]


def claims_of(manifests: list[Manifest]) -> list[Manifest]:
    return of_kind(manifests, "PersistentVolumeClaim")


def test_the_redis_keeps_its_claims_on_a_volume_that_outlives_the_pod(
    default_manifests: list[Manifest], render: Render
) -> None:
    # By default: a claim of the chart's own, kept when the release is uninstalled.
    [claim] = claims_of(default_manifests)
    assert claim["metadata"]["name"] == f"{RELEASE}-restaurant-sentiment-redis-data"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    assert volume_of(default_manifests) == {
        "name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}
    }  # fmt: skip

    sized = render(
        {"feedbackStore": {"redis": {"persistence": {"size": "5Gi", "storageClassName": "ssd"}}}}
    )
    [claim] = claims_of(sized)
    assert claim["spec"]["storageClassName"] == "ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"

    # One's own claim instead: the chart makes none.
    own = render({"feedbackStore": {"redis": {"existingClaim": "shop-redis-data"}}})
    assert claims_of(own) == []
    assert volume_of(own)["persistentVolumeClaim"] == {"claimName": "shop-redis-data"}

    # Without persistence: an emptyDir, lost when the pod moves.
    passing = render({"feedbackStore": {"redis": {"persistence": {"enabled": False}}}})
    assert claims_of(passing) == []
    assert "emptyDir" in volume_of(passing)


def test_a_redis_of_ones_own_with_a_password_from_an_existing_secret(render: Render) -> None:
    manifests = render(
        {
            "feedbackStore": {
                "url": "redis://redis.data.svc:6380/2",
                "existingSecret": "shop-redis",
                "secretKey": "password",
                "redis": {"deploy": False},
            }
        }
    )
    assert not [m for m in manifests if m["metadata"]["name"].endswith(("-redis", "-store"))]
    for deployment in model_services(manifests):
        env = env_of(deployment)
        assert env["MODEL_SERVICE_FEEDBACK_STORE"] == "redis://redis.data.svc:6380/2"
        assert env["MODEL_SERVICE_FEEDBACK_STORE_PASSWORD"] == {
            "secretKeyRef": {"name": "shop-redis", "key": "password"}
        }


def test_without_a_store_each_pod_remembers_alone(render: Render) -> None:
    manifests = render({"feedbackStore": {"redis": {"deploy": False}}})
    for deployment in model_services(manifests):
        env = env_of(deployment)
        assert env["MODEL_SERVICE_FEEDBACK_STORE"] == "memory"
        assert "MODEL_SERVICE_FEEDBACK_STORE_PASSWORD" not in env


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"url": "redis://r:6379/0"}, "set either url"),
        ({"url": "http://redis:6379", "redis": {"deploy": False}}, "url"),
        ({"url": "redis://:secret@redis:6379/0", "redis": {"deploy": False}}, "url"),
        ({"redis": {"deploy": True, "maxMemory": "lots"}}, "maxMemory"),
        ({"redis": {"persistence": {"size": "a lot"}}}, "size"),
        ({"password": "hunter2"}, "password"),
    ],
)
def test_a_bad_store_is_refused_when_rendering(
    chart: Any, store: dict[str, Any], message: str
) -> None:
    from tests.helm import engine

    with pytest.raises(Exception, match=message):
        chart.validate_schema(chart.merge_values({"feedbackStore": store}))
        engine.render(chart, {"feedbackStore": store}, name=RELEASE, namespace=NAMESPACE)


def test_the_values_model_reads_the_store_and_refuses_two_redis() -> None:
    from restaurant_sentiment.values import load_values
    from tests.support import CHART_VALUES

    values = load_values(CHART_VALUES)
    assert values.feedback_store.redis.deploy is True and values.feedback_store.shared
    raw = values.model_dump(by_alias=True, exclude={"restaurants": {"__all__": {"slug"}}})
    raw["feedbackStore"] = {"url": "redis://r:6379/0", "redis": {"deploy": True}}
    with pytest.raises(ValidationError, match="set either url"):
        Values.model_validate(raw)
