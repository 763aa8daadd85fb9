"""Envoy bootstrap that behaves like the chart's Istio resources, generated from values.yaml."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from restaurant_sentiment.tools.paths import CHART
from restaurant_sentiment.values import RateLimit, Values
from restaurant_sentiment.values.names import ASSIGNMENT_HEADER

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit"
LOCAL_RATELIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
ROUTER = "envoy.filters.http.router"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
DOWNSTREAM_CONNECTIONS_TYPE = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
    "DownstreamConnectionsConfig"
)
MAX_CONNECTIONS = 10000
FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
# What Istio sets on every retry policy it programs (pilot's route/retry package).
HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5

# The homepage's 429 page, with its own styles (Envoy serves it, not the frontend). The chart's
# EnvoyFilter reads the same file and fills in the same ${requests}, ${interval} and ${wait};
# a drift test compares the two. No `%` in it: Envoy reads the body through a format string.
TOO_MANY_REQUESTS_PAGE = CHART / "files" / "too-many-requests.html"
ACCESS_LOG_FORMAT = (
    '%REQ(:AUTHORITY)% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" %RESPONSE_CODE% '
    "%RESPONSE_FLAGS% -> %UPSTREAM_CLUSTER% %DURATION%ms client=%DOWNSTREAM_REMOTE_ADDRESS%\n"
)


@dataclass(frozen=True)
class Address:
    """A host and port Envoy connects to or listens on."""

    host: str
    port: int

    def socket_address(self) -> dict[str, Any]:
        return {"socket_address": {"address": self.host, "port_value": self.port}}


@dataclass(frozen=True)
class Upstreams:
    """Where each model-service version and the frontend listen."""

    model_services: dict[str, Address]
    frontend: Address


@dataclass(frozen=True)
class Listen:
    """Addresses of the gateway, the mesh listener, the admin port and an optional stats port."""

    gateway: Address
    mesh: Address
    admin: Address
    # A listener that proxies only /stats/prometheus, as Istio's port 15090 does, so a scraper
    # in another container never reaches the admin API itself.
    stats: Address | None = None
    access_log: bool = field(default=False)
    # A listener with one stable path per version's /metrics (`/<version>/metrics`), routed like
    # any request, so the readers of `make up` keep their address while processes are replaced.
    metrics: Address | None = None


def local_upstreams(model_service_ports: dict[str, int], frontend_port: int) -> Upstreams:
    """Upstreams of `make up`: every process on loopback."""
    return Upstreams(
        {name: Address("127.0.0.1", port) for name, port in model_service_ports.items()},
        Address("127.0.0.1", frontend_port),
    )


def compose_upstreams(values: Values, frontend_port: int = 8083) -> Upstreams:
    """Upstreams of a compose setup: one service per version, named like the Deployments."""
    port = values.model_service.port
    return Upstreams(
        {name: Address(f"model-service-{name}", port) for name in values.version_names},
        Address("frontend", frontend_port),
    )


def cluster_name(version: str) -> str:
    return f"model-service-{version}"


def cookie_regex(values: Values, version: str) -> str:
    """The anchored cookie match: `=canary` must not match `=canary-old` or `xmodel-...=canary`."""
    return rf"(.*;)?\s*{values.model_service.cookie.name}={version}\s*(;.*)?"


def set_cookie(values: Values, version: str) -> str:
    cookie = values.model_service.cookie
    return f"{cookie.name}={version}; Path=/; Max-Age={cookie.max_age}"


# --- The EnvoyFilter patch values: the chart's template renders exactly these blocks. ---


def ratelimit_http_filter() -> dict[str, Any]:
    """HTTP_FILTER INSERT_BEFORE router: inert until a route enables it."""
    return {
        "name": LOCAL_RATELIMIT,
        "typed_config": {"@type": LOCAL_RATELIMIT_TYPE, "stat_prefix": "http_local_rate_limiter"},
    }


def retry_after_seconds(limit: RateLimit) -> int:
    """Seconds until a refused client has a token again, rounded up.

    Envoy's token bucket refills continuously, one token every interval/requests seconds
    (3 s at 20 per 60 s); a client is refused below one token, so this long always suffices.
    """
    return -(-limit.interval_seconds // limit.requests)


def too_many_requests_page(limit: RateLimit) -> str:
    """The 429 page for this limit, as the chart's template renders it."""
    wait = retry_after_seconds(limit)
    return Template(TOO_MANY_REQUESTS_PAGE.read_text(encoding="utf-8")).substitute(
        requests=limit.requests,
        interval=limit.interval_seconds,
        wait=f"{wait} second" if wait == 1 else f"{wait} seconds",
    )


def homepage_route_patch(values: Values) -> dict[str, Any]:
    """HTTP_ROUTE MERGE on the `homepage` route: a token bucket per client address."""
    limit = values.rate_limit
    bucket = {
        "max_tokens": limit.requests,
        "tokens_per_fill": limit.requests,
        "fill_interval": f"{limit.interval_seconds}s",
    }
    return {
        "typed_per_filter_config": {
            LOCAL_RATELIMIT: {
                "@type": LOCAL_RATELIMIT_TYPE,
                "stat_prefix": "homepage_rate_limiter",
                "token_bucket": bucket,
                "filter_enabled": _percent("homepage_rate_limit_enabled"),
                "filter_enforced": _percent("homepage_rate_limit_enforced"),
                "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
                "rate_limits": [{"actions": [{"remote_address": {}}]}],
                "descriptors": [
                    {"entries": [{"key": "remote_address", "value": ""}], "token_bucket": bucket}
                ],
                # An LRU of client buckets; its default (20) would let the 21st client evict others.
                "max_dynamic_descriptors": limit.max_clients,
                # Otherwise every client also drains the default bucket and the limit is global.
                "always_consume_default_token_bucket": False,
                # Added to refused answers only: when to come back.
                "response_headers_to_add": [
                    {
                        "header": {
                            "key": "retry-after",
                            "value": str(retry_after_seconds(limit)),
                        },
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ],
            }
        }
    }


def local_reply_patch(values: Values) -> dict[str, Any]:
    """NETWORK_FILTER MERGE on the connection manager: a friendly HTML page for local 429s."""
    page = too_many_requests_page(values.rate_limit)
    return {
        "typed_config": {
            "@type": HCM_TYPE,
            "local_reply_config": {
                "mappers": [
                    {
                        "filter": {
                            "status_code_filter": {
                                "comparison": {
                                    "op": "EQ",
                                    "value": {
                                        "default_value": 429,
                                        "runtime_key": "homepage_rate_limit_status",
                                    },
                                }
                            }
                        },
                        "body": {"inline_string": page},
                        "body_format_override": {
                            "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                            "content_type": "text/html; charset=utf-8",
                        },
                    }
                ]
            },
        }
    }


def _percent(runtime_key: str) -> dict[str, Any]:
    return {
        "runtime_key": runtime_key,
        "default_value": {"numerator": 100, "denominator": "HUNDRED"},
    }


# --- The drain and retry policy (values `resilience`), as Istio programs it from the chart. ---


def retry_policy(values: Values) -> dict[str, Any] | None:
    """A route's retries, as Istio translates a VirtualService's `retries`; None when off.

    Status codes in retryOn become `retriable_status_codes`; each retry prefers a host not yet
    tried (`previous_hosts`), so a request cut off by a stopping process goes to another one.
    """
    retries = values.resilience.retries
    if retries.attempts == 0:
        return None
    conditions = retries.conditions
    if retries.status_codes:
        conditions = [*conditions, "retriable-status-codes"]
    policy: dict[str, Any] = {
        "retry_on": ",".join(conditions),
        "num_retries": retries.attempts,
        "per_try_timeout": f"{retries.per_try_timeout_seconds}s",
        "retry_host_predicate": [
            {"name": PREVIOUS_HOSTS, "typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}
        ],
        "host_selection_retry_max_attempts": HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    }
    if retries.status_codes:
        policy["retriable_status_codes"] = retries.status_codes
    return policy


def outlier_detection(values: Values) -> dict[str, Any]:
    """A cluster's outlier detection, as Istio translates a DestinationRule's outlierDetection
    (with splitExternalLocalOriginErrors): local failures eject, success-rate ejection is off."""
    detection = values.resilience.outlier_detection
    return {
        "enforcing_success_rate": 0,
        "consecutive_5xx": detection.consecutive_5xx_errors,
        "enforcing_consecutive_5xx": 100 if detection.consecutive_5xx_errors > 0 else 0,
        "interval": f"{detection.interval_seconds}s",
        "base_ejection_time": f"{detection.base_ejection_seconds}s",
        "max_ejection_percent": detection.max_ejection_percent,
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": detection.consecutive_local_origin_failures,
        "enforcing_consecutive_local_origin_failure": 100,
        "enforcing_local_origin_success_rate": 0,
    }


def circuit_breakers(values: Values) -> dict[str, Any]:
    """The retry circuit breaker (Istio: connectionPool.http.maxRetries)."""
    return {"thresholds": [{"max_retries": values.resilience.retries.max_concurrent}]}


def common_lb_config(values: Values) -> dict[str, Any]:
    """The panic threshold (Istio: outlierDetection.minHealthPercent).

    Hosts that are draining or ejected get no traffic while at least this share of the pool is
    healthy; below it Envoy uses every host, so a pool of one is never left with none.
    """
    return {
        "healthy_panic_threshold": {
            "value": float(values.resilience.outlier_detection.min_health_percent)
        }
    }


def _route_action(values: Values, action: dict[str, Any]) -> dict[str, Any]:
    policy = retry_policy(values)
    return {**action, "retry_policy": policy} if policy is not None else action


# --- Routes, mirroring the chart's VirtualServices. ---


def model_service_routes(values: Values) -> list[dict[str, Any]]:
    """Cookie routes per live version, then the weighted route that sets the cookie.

    A version at weight 0 is retired (promoted away from or rolled back): it has no cookie route,
    so a client still pinned to it falls through to the weighted route and is pinned anew.
    """
    routes: list[dict[str, Any]] = [
        {
            "name": f"cookie-{v.name}",
            "match": {
                "prefix": "/",
                "headers": [
                    {
                        "name": "cookie",
                        "string_match": {"safe_regex": {"regex": cookie_regex(values, v.name)}},
                    }
                ],
            },
            "route": _route_action(values, {"cluster": cluster_name(v.name)}),
            # A pinned client is no new assignment, whatever it sends (Istio: request.remove).
            "request_headers_to_remove": [ASSIGNMENT_HEADER],
        }
        for v in values.model_service.versions
        if v.weight > 0
    ]
    weighted = [
        {
            "name": cluster_name(v.name),
            "weight": v.weight,
            # Tells the version that this request assigned a new client, under which split
            # (Istio `headers.request.set`: replaces whatever the client sent).
            "request_headers_to_add": [
                {
                    "header": {"key": ASSIGNMENT_HEADER, "value": values.split},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
            "response_headers_to_add": [
                {
                    "header": {"key": "set-cookie", "value": set_cookie(values, v.name)},
                    # Istio's `headers.response.add`: keeps a Set-Cookie of the service itself.
                    "append_action": "APPEND_IF_EXISTS_OR_ADD",
                }
            ],
        }
        for v in values.model_service.versions
    ]
    routes.append(
        {
            "name": "weighted",
            "match": {"prefix": "/"},
            "route": _route_action(values, {"weighted_clusters": {"clusters": weighted}}),
        }
    )
    return routes


def app_routes(values: Values) -> list[dict[str, Any]]:
    """The homepage route (rate limited when enabled), then everything else to the frontend."""
    homepage: dict[str, Any] = {
        "name": "homepage",
        "match": {"path": values.rate_limit.path},
        "route": _route_action(values, {"cluster": "frontend"}),
    }
    if values.rate_limit.enabled:
        homepage |= homepage_route_patch(values)
    app = {
        "name": "app",
        "match": {"prefix": "/"},
        "route": _route_action(values, {"cluster": "frontend"}),
    }
    return [homepage, app]


def _connection_manager(
    stat_prefix: str, route_config: dict[str, Any], values: Values, listen: Listen, gateway: bool
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        # The client is the peer of the connection, as at an ingress gateway whose Service keeps
        # the source address (externalTrafficPolicy: Local) and trusts no X-Forwarded-For hop.
        "use_remote_address": True,
        "xff_num_trusted_hops": 0,
        "strip_any_host_port": True,
        "route_config": route_config,
        "http_filters": [],
    }
    if gateway and values.rate_limit.enabled:
        config["http_filters"].append(ratelimit_http_filter())
        config["local_reply_config"] = local_reply_patch(values)["typed_config"][
            "local_reply_config"
        ]
    config["http_filters"].append({"name": ROUTER, "typed_config": {"@type": ROUTER_TYPE}})
    if listen.access_log:
        config["access_log"] = [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": FILE_ACCESS_LOG_TYPE,
                    "path": "/dev/stdout",
                    "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
                },
            }
        ]
    return {"name": HCM, "typed_config": config}


def _listener(name: str, address: Address, hcm: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "address": address.socket_address(),
        "filter_chains": [{"filters": [hcm]}],
    }


def _cluster(name: str, address: Address, values: Values | None = None) -> dict[str, Any]:
    """A cluster of one address; with values, a service's (the DestinationRule's policy)."""
    try:
        ipaddress.ip_address(address.host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": name,
        "type": discovery,
        "connect_timeout": "2s",
        "load_assignment": load_assignment(name, [Endpoint(address)]),
    }
    if values is not None:
        cluster |= {
            "circuit_breakers": circuit_breakers(values),
            "outlier_detection": outlier_detection(values),
            "common_lb_config": common_lb_config(values),
        }
    return cluster


@dataclass(frozen=True)
class Endpoint:
    """One process behind a cluster; a draining one gets no new requests."""

    address: Address
    draining: bool = False


def load_assignment(cluster: str, endpoints: list[Endpoint]) -> dict[str, Any]:
    """A cluster's endpoints (a ClusterLoadAssignment)."""
    lb_endpoints: list[dict[str, Any]] = []
    for endpoint in endpoints:
        item: dict[str, Any] = {"endpoint": {"address": endpoint.address.socket_address()}}
        if endpoint.draining:
            item["health_status"] = "DRAINING"
        lb_endpoints.append(item)
    return {"cluster_name": cluster, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def service_clusters(values: Values) -> list[str]:
    """The clusters of the services `make restart` replaces: every version and the frontend."""
    return [*(cluster_name(n) for n in values.version_names), "frontend"]


def metrics_path(version: str) -> str:
    """A version's /metrics on the metrics listener."""
    return f"/{version}/metrics"


def _metrics_listener(values: Values, address: Address) -> dict[str, Any]:
    """`/<version>/metrics` -> that version's /metrics, whichever of its processes serves now."""
    routes = [
        {
            "match": {"path": metrics_path(name)},
            "route": _route_action(
                values, {"cluster": cluster_name(name), "prefix_rewrite": "/metrics"}
            ),
        }
        for name in values.version_names
    ]
    route_config = {
        "name": "metrics",
        "virtual_hosts": [{"name": "metrics", "domains": ["*"], "routes": routes}],
    }
    hcm = {
        "name": HCM,
        "typed_config": {
            "@type": HCM_TYPE,
            "stat_prefix": "metrics",
            "route_config": route_config,
            "http_filters": [{"name": ROUTER, "typed_config": {"@type": ROUTER_TYPE}}],
        },
    }
    return _listener("metrics", address, hcm)


def build_bootstrap(values: Values, upstreams: Upstreams, listen: Listen) -> dict[str, Any]:
    """The whole Envoy bootstrap: gateway listener, mesh listener, clusters, admin."""
    missing = [name for name in values.version_names if name not in upstreams.model_services]
    if missing:
        raise ValueError(f"no upstream address for model version(s): {', '.join(missing)}")
    service_routes = model_service_routes(values)
    gateway_routes = {
        "name": "gateway",
        "virtual_hosts": [
            {"name": f"{values.hosts.app}:{values.gateway.port}", "domains": [values.hosts.app],
             "routes": app_routes(values)},
            {"name": f"{values.hosts.service}:{values.gateway.port}",
             "domains": [values.hosts.service], "routes": service_routes},
        ],
    }  # fmt: skip
    mesh_routes = {
        "name": "mesh",
        "virtual_hosts": [{"name": "model-service", "domains": ["*"], "routes": service_routes}],
    }
    listeners = [
        _listener(
            "gateway",
            listen.gateway,
            _connection_manager("gateway", gateway_routes, values, listen, gateway=True),
        ),
        _listener(
            "mesh",
            listen.mesh,
            _connection_manager("mesh", mesh_routes, values, listen, gateway=False),
        ),
    ]
    clusters = [
        _cluster(cluster_name(n), upstreams.model_services[n], values) for n in values.version_names
    ]
    clusters.append(_cluster("frontend", upstreams.frontend, values))
    if listen.metrics is not None:
        listeners.append(_metrics_listener(values, listen.metrics))
    if listen.stats is not None:
        stats_routes = {
            "name": "stats",
            "virtual_hosts": [
                {
                    "name": "stats",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"path": "/stats/prometheus"}, "route": {"cluster": "admin"}}
                    ],
                }
            ],
        }
        stats_hcm = {
            "name": HCM,
            "typed_config": {
                "@type": HCM_TYPE,
                "stat_prefix": "stats",
                "route_config": stats_routes,
                "http_filters": [{"name": ROUTER, "typed_config": {"@type": ROUTER_TYPE}}],
            },
        }
        listeners.append(_listener("stats", listen.stats, stats_hcm))
        clusters.append(_cluster("admin", listen.admin))
    return {
        "admin": {"address": listen.admin.socket_address()},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # A bound on open client connections, so a flood cannot exhaust file descriptors.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": DOWNSTREAM_CONNECTIONS_TYPE,
                        "max_active_downstream_connections": MAX_CONNECTIONS,
                    },
                }
            ]
        },
    }


# --- Routes served from files (RDS over the filesystem), so weights change without a restart. ---

ROUTE_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
# The listeners whose routes can change at run time; the stats listener keeps its inline routes.
DYNAMIC_LISTENERS = ("gateway", "mesh")


def route_file(routes_dir: Path, listener: str) -> Path:
    """The file Envoy watches for one listener's route configuration."""
    return routes_dir / f"{listener}-routes.yaml"


def _hcm_config(listener: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return config


def route_configs(bootstrap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each dynamic listener's inline route configuration, by listener name."""
    return {
        listener["name"]: _hcm_config(listener)["route_config"]
        for listener in bootstrap["static_resources"]["listeners"]
        if listener["name"] in DYNAMIC_LISTENERS
    }


def route_discovery(route_config: dict[str, Any], version: str) -> dict[str, Any]:
    """A route file's content: a discovery response holding one route configuration."""
    return {"version_info": version, "resources": [{"@type": ROUTE_CONFIG_TYPE, **route_config}]}


def with_file_routes(bootstrap: dict[str, Any], routes_dir: Path) -> dict[str, Any]:
    """The bootstrap with the gateway and mesh routes read from watched files instead of inline.

    Envoy re-reads a route file when another file is moved onto it and swaps the routes
    atomically: connections and requests in flight are not touched.
    """
    dynamic = copy.deepcopy(bootstrap)
    for listener in dynamic["static_resources"]["listeners"]:
        if listener["name"] not in DYNAMIC_LISTENERS:
            continue
        config = _hcm_config(listener)
        name = config.pop("route_config")["name"]
        config["rds"] = {
            "route_config_name": name,
            "config_source": {
                "resource_api_version": "V3",
                "path_config_source": {"path": str(route_file(routes_dir, listener["name"]))},
            },
        }
    # Dynamic resources need a node identity, even when they come from files.
    return {"node": {"id": "localmesh", "cluster": "localmesh"}, **dynamic}


def write_route_files(bootstrap: dict[str, Any], routes_dir: Path) -> str:
    """Write each listener's routes atomically: a temporary file, then a rename onto the target.

    Returns the routes' version, derived from their content: Envoy ignores a route update equal
    to what it serves and keeps reporting that one's version, so a move that changes nothing
    (a rollback after a rollback) must find the version it would write already served.
    """
    configs = route_configs(bootstrap)
    digest = hashlib.sha256(json.dumps(configs, sort_keys=True).encode()).hexdigest()
    version = digest[:12]
    routes_dir.mkdir(parents=True, exist_ok=True)
    for listener, route_config in configs.items():
        target = route_file(routes_dir, listener)
        temporary = target.with_name(f".{target.name}.tmp")
        text = yaml.safe_dump(route_discovery(route_config, version), sort_keys=False)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    return version


# --- Endpoints served from files (EDS over the filesystem), so processes can be replaced. ---

ENDPOINTS_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def endpoint_file(directory: Path, cluster: str) -> Path:
    """The file Envoy watches for one cluster's endpoints."""
    return directory / f"{cluster}-endpoints.yaml"


def with_file_endpoints(
    bootstrap: dict[str, Any], directory: Path, clusters: list[str]
) -> dict[str, Any]:
    """The bootstrap with these clusters' endpoints read from watched files (type EDS).

    Envoy re-reads an endpoint file when another file is moved onto it: a new process joins the
    pool, and a process marked DRAINING gets no new requests while it finishes the ones it has.
    """
    dynamic = copy.deepcopy(bootstrap)
    for cluster in dynamic["static_resources"]["clusters"]:
        if cluster["name"] not in clusters:
            continue
        del cluster["load_assignment"]
        cluster["type"] = "EDS"
        cluster["eds_cluster_config"] = {
            "service_name": cluster["name"],
            "eds_config": {
                "resource_api_version": "V3",
                "path_config_source": {"path": str(endpoint_file(directory, cluster["name"]))},
            },
        }
    return {"node": {"id": "localmesh", "cluster": "localmesh"}, **dynamic}


def write_endpoint_file(
    directory: Path, cluster: str, endpoints: list[Endpoint], version: str
) -> None:
    """Write one cluster's endpoints atomically: a temporary file, then a rename onto it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = endpoint_file(directory, cluster)
    temporary = target.with_name(f".{target.name}.tmp")
    document = {
        "version_info": version,
        "resources": [{"@type": ENDPOINTS_TYPE, **load_assignment(cluster, endpoints)}],
    }
    temporary.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    os.replace(temporary, target)


def write_endpoint_files(
    bootstrap: dict[str, Any], directory: Path, clusters: list[str], version: str
) -> None:
    """Write the endpoint file of each of these clusters from the bootstrap's static addresses."""
    for cluster in bootstrap["static_resources"]["clusters"]:
        if cluster["name"] not in clusters:
            continue
        endpoints = [
            Endpoint(Address(raw["address"], raw["port_value"]))
            for group in cluster["load_assignment"]["endpoints"]
            for raw in (e["endpoint"]["address"]["socket_address"] for e in group["lb_endpoints"])
        ]
        write_endpoint_file(directory, cluster["name"], endpoints, version)
