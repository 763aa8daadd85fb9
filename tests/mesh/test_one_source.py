"""The local gateway, the committed compose config and the chart's Istio resources agree."""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.tools.localmesh.__main__ import render_compose
from restaurant_sentiment.tools.localmesh.settings import UpSettings
from restaurant_sentiment.tools.localmesh.up import envoy_binary, plan
from restaurant_sentiment.values import Values, parse_values
from restaurant_sentiment.values.names import ASSIGNMENT_HEADER
from tests.mesh.conftest import loopback_listen
from tests.support import ROOT, in_ci

CHART = ROOT / "deploy" / "helm" / "restaurant-sentiment"
COMPOSE_ENVOY = ROOT / "deploy" / "istio" / "envoy.yaml"


def render_chart(overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the chart with the real Helm engine; return every manifest."""
    try:
        import helm_python as helm
    except ImportError:
        if in_ci():
            raise
        pytest.skip("helm-python-sdk has no wheel for this platform")
    from tests.helm import engine

    # A cluster with Istio and the Prometheus Operator: the chart renders their objects only then.
    with helm.Chart.load(str(CHART)) as chart:
        rendered = engine.render(chart, overrides or {}, name="rel", namespace="shop")
    docs = []
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    return docs


def only(docs: list[dict[str, Any]], kind: str, name_suffix: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, found {len(found)}"
    return found[0]


def validate(bootstrap: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(bootstrap))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_compose_config_matches_the_values(values: Values) -> None:
    assert COMPOSE_ENVOY.read_text() == render_compose(values), (
        "deploy/istio/envoy.yaml drifted from values.yaml: run "
        "`python -m restaurant_sentiment.tools.localmesh render-envoy --upstreams compose "
        "--out deploy/istio/envoy.yaml`"
    )


@pytest.mark.slow
def test_generated_configs_pass_envoy_validate(values: Values, tmp_path: Path) -> None:
    upstreams = gateway.local_upstreams({"stable": 1, "canary": 2}, 3)
    validate(gateway.build_bootstrap(values, upstreams, loopback_listen(True)), tmp_path / "l.yaml")
    validate(yaml.safe_load(COMPOSE_ENVOY.read_text()), tmp_path / "c.yaml")
    # What `make up` runs: routes and endpoints from watched files, the metrics listener.
    settings = UpSettings(model_service_ports={"stable": 1, "canary": 2}, frontend_port=3)
    services = plan(values, settings, tmp_path, tmp_path, None, tmp_path / "run", 4)
    envoy_config = yaml.safe_load((tmp_path / "envoy.yaml").read_text())
    clusters = {c["name"]: c for c in envoy_config["static_resources"]["clusters"]}
    assert {clusters[name]["type"] for name in gateway.service_clusters(values)} == {"EDS"}
    assert [s.name for s in services if s.cluster] == [
        "model-service-stable", "model-service-canary", "frontend"
    ]  # fmt: skip
    validate(envoy_config, tmp_path / "up.yaml")


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    return render_chart()


@pytest.fixture(scope="module")
def envoyfilter(chart_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(chart_docs, "EnvoyFilter", "-homepage-ratelimit")


def _patch(envoyfilter: dict[str, Any], apply_to: str) -> dict[str, Any]:
    patches = [p for p in envoyfilter["spec"]["configPatches"] if p["applyTo"] == apply_to]
    assert len(patches) == 1
    return patches[0]


def test_envoyfilter_blocks_are_the_local_gateway_blocks(
    values: Values, envoyfilter: dict[str, Any]
) -> None:
    http_filter = _patch(envoyfilter, "HTTP_FILTER")
    assert http_filter["patch"]["operation"] == "INSERT_BEFORE"
    assert http_filter["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == (
        gateway.ROUTER
    )
    assert http_filter["patch"]["value"] == gateway.ratelimit_http_filter()

    route = _patch(envoyfilter, "HTTP_ROUTE")
    assert route["patch"]["operation"] == "MERGE"
    assert route["match"]["routeConfiguration"]["vhost"] == {
        "name": f"{values.hosts.app}:{values.gateway.port}",
        "route": {"name": "homepage"},
    }
    assert route["patch"]["value"] == gateway.homepage_route_patch(values)

    reply = _patch(envoyfilter, "NETWORK_FILTER")
    assert reply["patch"]["operation"] == "MERGE"
    assert reply["patch"]["value"] == gateway.local_reply_patch(values)
    chart_gateway = yaml.safe_load((CHART / "values.yaml").read_text())["gateway"]
    assert envoyfilter["spec"]["workloadSelector"]["labels"] == chart_gateway["selector"]
    # A workloadSelector reaches only pods of the EnvoyFilter's own namespace.
    assert envoyfilter["metadata"]["namespace"] == (chart_gateway.get("namespace") or "shop")


@pytest.mark.parametrize(
    ("requests", "interval", "wait"),
    [(5, 10, "2 seconds"), (7, 10, "2 seconds"), (60, 60, "1 second"), (1, 90, "90 seconds")],
)
def test_envoyfilter_follows_changed_values(requests: int, interval: int, wait: str) -> None:
    """Retry-After is the refill time of one token, rounded up, in Helm as in Python."""
    overrides = {"rateLimit": {"requests": requests, "intervalSeconds": interval, "maxClients": 50}}
    docs = render_chart(overrides)
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    raw["rateLimit"] |= overrides["rateLimit"]
    changed = parse_values(raw)
    envoyfilter = only(docs, "EnvoyFilter", "-homepage-ratelimit")
    route = _patch(envoyfilter, "HTTP_ROUTE")["patch"]["value"]
    assert route == gateway.homepage_route_patch(changed)
    [header] = route["typed_per_filter_config"][gateway.LOCAL_RATELIMIT]["response_headers_to_add"]
    assert header["header"] == {"key": "retry-after", "value": wait.split()[0]}
    reply = _patch(envoyfilter, "NETWORK_FILTER")["patch"]["value"]
    assert reply == gateway.local_reply_patch(changed)
    page = reply["typed_config"]["local_reply_config"]["mappers"][0]["body"]["inline_string"]
    assert f"more than {requests} times in {interval} seconds" in page
    assert f'Please wait <span class="wait">{wait}</span>, then try again.' in page


def test_envoyfilter_is_left_out_without_a_rate_limit() -> None:
    assert not [
        d for d in render_chart({"rateLimit": {"enabled": False}}) if d["kind"] == "EnvoyFilter"
    ]


def test_the_429_page_is_filled_in_completely_and_safe_for_envoy(values: Values) -> None:
    source = gateway.TOO_MANY_REQUESTS_PAGE.read_text(encoding="utf-8")
    assert "%" not in source, "Envoy would read % in the body as a format directive"
    assert {"${requests}", "${interval}", "${wait}"} <= set(re.findall(r"\$\{\w+\}", source))
    page = gateway.too_many_requests_page(values.rate_limit)
    assert "$" not in page


@pytest.mark.slow
def test_envoyfilter_blocks_run_in_an_envoy_bootstrap(
    envoyfilter: dict[str, Any], values: Values, tmp_path: Path
) -> None:
    """The rendered patch values, placed where Istio puts them, pass `envoy --mode validate`."""
    upstreams = gateway.local_upstreams({"stable": 1, "canary": 2}, 3)
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    raw["rateLimit"]["enabled"] = False
    bootstrap = gateway.build_bootstrap(parse_values(raw), upstreams, loopback_listen())
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    config = hcm["typed_config"]
    config["http_filters"].insert(
        0, copy.deepcopy(_patch(envoyfilter, "HTTP_FILTER")["patch"]["value"])
    )
    reply = _patch(envoyfilter, "NETWORK_FILTER")["patch"]["value"]["typed_config"]
    config["local_reply_config"] = reply["local_reply_config"]
    homepage = next(
        r for r in _gateway_routes(bootstrap, values.hosts.app) if r["name"] == "homepage"
    )
    assert "typed_per_filter_config" not in homepage
    homepage |= _patch(envoyfilter, "HTTP_ROUTE")["patch"]["value"]
    validate(bootstrap, tmp_path / "istio-blocks.yaml")
    # With the blocks merged in, it is the very configuration the local gateway runs.
    assert bootstrap == gateway.build_bootstrap(values, upstreams, _listen_of(bootstrap))


def _listen_of(bootstrap: dict[str, Any]) -> gateway.Listen:
    def address(raw: dict[str, Any]) -> gateway.Address:
        socket = raw["socket_address"]
        return gateway.Address(socket["address"], socket["port_value"])

    listeners = {item["name"]: item for item in bootstrap["static_resources"]["listeners"]}
    return gateway.Listen(
        gateway=address(listeners["gateway"]["address"]),
        mesh=address(listeners["mesh"]["address"]),
        admin=address(bootstrap["admin"]["address"]),
    )


def _gateway_routes(bootstrap: dict[str, Any], domain: str) -> list[dict[str, Any]]:
    listener = bootstrap["static_resources"]["listeners"][0]
    config = listener["filter_chains"][0]["filters"][0]["typed_config"]
    vhosts = config["route_config"]["virtual_hosts"]
    return next(v["routes"] for v in vhosts if domain in v["domains"])


def _iter_routes(bootstrap: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for listener in bootstrap["static_resources"]["listeners"]:
        config = listener["filter_chains"][0]["filters"][0]["typed_config"]
        for vhost in config["route_config"]["virtual_hosts"]:
            for route in vhost["routes"]:
                yield listener["name"], route


def test_model_service_virtualservice_matches_the_gateway_routes(
    values: Values, chart_docs: list[dict[str, Any]]
) -> None:
    service = only(chart_docs, "VirtualService", "-model-service")
    spec = service["spec"]
    assert spec["hosts"][0] == values.hosts.service
    assert "mesh" in spec["gateways"]
    upstreams = gateway.local_upstreams({"stable": 1, "canary": 2}, 3)
    bootstrap = gateway.build_bootstrap(values, upstreams, loopback_listen())
    envoy_routes = _gateway_routes(bootstrap, values.hosts.service)

    # What Istio would program, derived from the VirtualService: (name, cookie regex, subset).
    istio_cookie_routes = [
        (
            r["name"],
            r["match"][0]["headers"]["cookie"]["regex"],
            r["route"][0]["destination"]["subset"],
        )
        for r in spec["http"][:-1]
    ]
    local_cookie_routes = [
        (
            r["name"],
            r["match"]["headers"][0]["string_match"]["safe_regex"]["regex"],
            r["route"]["cluster"].removeprefix("model-service-"),
        )
        for r in envoy_routes[:-1]
    ]
    assert istio_cookie_routes == local_cookie_routes
    assert [r["match"]["prefix"] for r in envoy_routes] == ["/"] * len(envoy_routes)
    # Pinned clients are no assignment: both strip the header a client might forge.
    assert [r["headers"]["request"]["remove"] for r in spec["http"][:-1]] == [
        r["request_headers_to_remove"] for r in envoy_routes[:-1]
    ]
    assert all(r["request_headers_to_remove"] == [ASSIGNMENT_HEADER] for r in envoy_routes[:-1])

    weighted_istio = spec["http"][-1]
    assert weighted_istio["name"] == envoy_routes[-1]["name"] == "weighted"
    istio_split = [
        (
            d["destination"]["subset"],
            d["weight"],
            d["headers"]["response"]["add"]["set-cookie"],
            d["headers"]["request"]["set"],
        )
        for d in weighted_istio["route"]
    ]
    local_split = [
        (
            c["name"].removeprefix("model-service-"),
            c["weight"],
            c["response_headers_to_add"][0]["header"]["value"],
            {h["header"]["key"]: h["header"]["value"] for h in c["request_headers_to_add"]},
        )
        for c in envoy_routes[-1]["route"]["weighted_clusters"]["clusters"]
    ]
    assert istio_split == local_split
    assert local_split[0][3] == {ASSIGNMENT_HEADER: values.split}
    # Istio's `set` is Envoy's OVERWRITE_IF_EXISTS_OR_ADD: a forged header is replaced.
    for cluster in envoy_routes[-1]["route"]["weighted_clusters"]["clusters"]:
        assert cluster["request_headers_to_add"][0]["append_action"] == (
            "OVERWRITE_IF_EXISTS_OR_ADD"
        )
    # Istio's `add` is Envoy's APPEND_IF_EXISTS_OR_ADD: the service's own Set-Cookie survives.
    for cluster in envoy_routes[-1]["route"]["weighted_clusters"]["clusters"]:
        assert cluster["response_headers_to_add"][0]["append_action"] == "APPEND_IF_EXISTS_OR_ADD"
    # The mesh listener (the frontend's sidecar) routes exactly like the gateway's vhost.
    mesh_routes = [route for name, route in _iter_routes(bootstrap) if name == "mesh"]
    assert mesh_routes == envoy_routes


def test_app_virtualservice_matches_the_gateway_routes(
    values: Values, chart_docs: list[dict[str, Any]]
) -> None:
    app = only(chart_docs, "VirtualService", "-app")["spec"]
    assert app["hosts"] == [values.hosts.app]
    assert [r["name"] for r in app["http"]] == ["homepage", "app"]
    assert app["http"][0]["match"] == [{"uri": {"exact": values.rate_limit.path}}]
    assert "match" not in app["http"][1]
    local = gateway.app_routes(values)
    assert [r["name"] for r in local] == ["homepage", "app"]
    assert local[0]["match"] == {"path": values.rate_limit.path}
    assert local[1]["match"] == {"prefix": "/"}
    frontends = {d["destination"]["host"] for r in app["http"] for d in r["route"]}
    assert len(frontends) == 1 and {r["route"]["cluster"] for r in local} == {"frontend"}


def test_gateway_server_hosts_match(values: Values, chart_docs: list[dict[str, Any]]) -> None:
    server = only(chart_docs, "Gateway", "")["spec"]["servers"][0]
    assert server["port"]["number"] == values.gateway.port
    assert set(server["hosts"]) == {values.hosts.app, values.hosts.service}


def test_a_version_at_weight_zero_has_no_cookie_route_in_either() -> None:
    """After a promotion, clients pinned to the retired version move to the winner in both."""
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    for entry in raw["modelService"]["versions"]:
        entry["weight"] = 100 if entry["name"] == "canary" else 0
    promoted = parse_values(raw)
    local = model_service_routes_of(promoted)
    assert [r["name"] for r in local] == ["cookie-canary", "weighted"]
    spec = only(
        render_chart({"modelService": raw["modelService"]}), "VirtualService", "-model-service"
    )
    assert [r["name"] for r in spec["spec"]["http"]] == [r["name"] for r in local]


def model_service_routes_of(values: Values) -> list[dict[str, Any]]:
    return gateway.model_service_routes(values)


# --- The drain and retry policy: values `resilience` in the chart and in the local Envoy. ---

PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
        "PreviousHostsPredicate"
    },
}


def istio_retry_policy(retries: dict[str, Any]) -> dict[str, Any] | None:
    """The Envoy retry_policy Istio programs from a VirtualService route's `retries` (pilot's
    route/retry ConvertPolicy): numbers in retryOn are retriable status codes, each retry prefers
    a host not tried yet, five host selections at most; no policy at 0 attempts."""
    if retries["attempts"] <= 0:
        return None
    parts = retries["retryOn"].split(",")
    codes = [int(part) for part in parts if part.isdigit()]
    conditions = [part for part in parts if not part.isdigit()]
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy: dict[str, Any] = {
        "retry_on": ",".join(conditions),
        "num_retries": retries["attempts"],
        "per_try_timeout": retries["perTryTimeout"],
        "retry_host_predicate": [PREVIOUS_HOSTS],
        "host_selection_retry_max_attempts": 5,
    }
    if codes:
        policy["retriable_status_codes"] = codes
    return policy


def istio_cluster_policy(traffic_policy: dict[str, Any]) -> dict[str, Any]:
    """The cluster fields Istio programs from a DestinationRule's trafficPolicy (pilot's
    applyConnectionPool and applyOutlierDetection)."""
    outlier = traffic_policy["outlierDetection"]
    five_xx = outlier["consecutive5xxErrors"]
    detection: dict[str, Any] = {
        "enforcing_success_rate": 0,
        "consecutive_5xx": five_xx,
        "enforcing_consecutive_5xx": 100 if five_xx > 0 else 0,
        "interval": outlier["interval"],
        "base_ejection_time": outlier["baseEjectionTime"],
        "max_ejection_percent": outlier["maxEjectionPercent"],
    }
    if outlier.get("splitExternalLocalOriginErrors"):
        detection["split_external_local_origin_errors"] = True
        if outlier["consecutiveLocalOriginFailures"] > 0:
            detection["consecutive_local_origin_failure"] = outlier[
                "consecutiveLocalOriginFailures"
            ]
            detection["enforcing_consecutive_local_origin_failure"] = 100
        detection["enforcing_local_origin_success_rate"] = 0
    return {
        "max_retries": traffic_policy["connectionPool"]["http"]["maxRetries"],
        "outlier_detection": detection,
        "healthy_panic_threshold": float(outlier["minHealthPercent"]),
    }


def local_cluster_policy(cluster: dict[str, Any]) -> dict[str, Any]:
    (threshold,) = cluster["circuit_breakers"]["thresholds"]
    return {
        "max_retries": threshold["max_retries"],
        "outlier_detection": cluster["outlier_detection"],
        "healthy_panic_threshold": cluster["common_lb_config"]["healthy_panic_threshold"]["value"],
    }


RESILIENCE_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "defaults": {},
    "changed": {
        "retries": {"attempts": 3, "perTryTimeoutSeconds": 12, "retryOn": ["reset", "502", "503"],
                    "maxConcurrent": 64},
        "outlierDetection": {"consecutiveLocalOriginFailures": 1, "consecutive5xxErrors": 4,
                             "intervalSeconds": 2, "baseEjectionSeconds": 30,
                             "maxEjectionPercent": 100, "minHealthPercent": 0},
        "drain": {"preStopSeconds": 3, "terminationGracePeriodSeconds": 20},
    },
    "no-retries": {"retries": {"attempts": 0}},
}  # fmt: skip


@pytest.mark.parametrize("variant", list(RESILIENCE_VARIANTS))
def test_the_chart_retries_and_ejects_as_the_local_gateway_does(variant: str) -> None:
    """Every route's retries and every service cluster's circuit breaker, outlier detection and
    panic threshold, as Istio programs them from the rendered chart, are the local Envoy's."""
    overrides = RESILIENCE_VARIANTS[variant]
    docs = render_chart({"resilience": overrides} if overrides else None)
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    for block, changes in overrides.items():
        raw["resilience"][block] |= changes
    values = parse_values(raw)
    upstreams = gateway.local_upstreams({"stable": 1, "canary": 2}, 3)
    bootstrap = gateway.build_bootstrap(values, upstreams, loopback_listen())

    # Routes: the app's by name, the model-service's on the gateway and the mesh listener.
    app = only(docs, "VirtualService", "-app")["spec"]["http"]
    model = only(docs, "VirtualService", "-model-service")["spec"]["http"]
    local = {
        (listener, route["name"]): route["route"].get("retry_policy")
        for listener, route in _iter_routes(bootstrap)
    }
    expected = {("gateway", r["name"]): istio_retry_policy(r["retries"]) for r in app + model}
    expected |= {("mesh", r["name"]): istio_retry_policy(r["retries"]) for r in model}
    assert local == expected
    if variant == "defaults":
        assert all(p and {"reset", "connect-failure"} <= set(p["retry_on"].split(",")) for p in
                   local.values())  # fmt: skip

    # Clusters: the DestinationRule of each Service the routes reach.
    rules = {d["spec"]["host"]: d["spec"]["trafficPolicy"] for d in docs
             if d["kind"] == "DestinationRule"}  # fmt: skip
    model_host = only(docs, "Service", "-model-service")["metadata"]["name"]
    frontend_host = only(docs, "Service", "-frontend")["metadata"]["name"]
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    for name in gateway.service_clusters(values):
        host = frontend_host if name == "frontend" else model_host
        assert local_cluster_policy(clusters[name]) == istio_cluster_policy(rules[host]), name
