"""Envoy bootstrap that behaves like the chart's Istio resources, generated from values.yaml."""

from __future__ import annotations

import copy
import ipaddress
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
            "route": {"cluster": cluster_name(v.name)},
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
            "route": {"weighted_clusters": {"clusters": weighted}},
        }
    )
    return routes


def app_routes(values: Values) -> list[dict[str, Any]]:
    """The homepage route (rate limited when enabled), then everything else to the frontend."""
    homepage: dict[str, Any] = {
        "name": "homepage",
        "match": {"path": values.rate_limit.path},
        "route": {"cluster": "frontend"},
    }
    if values.rate_limit.enabled:
        homepage |= homepage_route_patch(values)
    return [homepage, {"name": "app", "match": {"prefix": "/"}, "route": {"cluster": "frontend"}}]


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


def _cluster(name: str, address: Address) -> dict[str, Any]:
    try:
        ipaddress.ip_address(address.host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"
    return {
        "name": name,
        "type": discovery,
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address.socket_address()}}]}],
        },
    }


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
        _cluster(cluster_name(n), upstreams.model_services[n]) for n in values.version_names
    ]
    clusters.append(_cluster("frontend", upstreams.frontend))
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


def write_route_files(bootstrap: dict[str, Any], routes_dir: Path, version: str) -> None:
    """Write each listener's routes atomically: a temporary file, then a rename onto the target."""
    routes_dir.mkdir(parents=True, exist_ok=True)
    for listener, route_config in route_configs(bootstrap).items():
        target = route_file(routes_dir, listener)
        temporary = target.with_name(f".{target.name}.tmp")
        text = yaml.safe_dump(route_discovery(route_config, version), sort_keys=False)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
