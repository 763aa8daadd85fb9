"""What a rollout step decides on: the experiment's counts and the gateway's 5xx, since a mark.

Locally the counts come from the model-services' /metrics (or Prometheus when given) and the 5xx
from the Envoy gateway's admin stats; a step's figures are the difference between a reading at
the step's start and now. With Prometheus (Kubernetes) every figure is an `increase()` over the
time since the step began, and the 5xx are Istio's `istio_requests_total`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from restaurant_sentiment.experiment.sources import COUNTERS as EXPERIMENT_COUNTERS
from restaurant_sentiment.experiment.sources import (
    DEFAULT_TIMEOUT,
    Observation,
    SourceError,
    from_metrics,
    from_prometheus,
    prometheus_query,
)
from restaurant_sentiment.tools.localmesh.gateway import cluster_name
from restaurant_sentiment.tools.rollout.policy import ErrorCounts, subtract, subtract_errors
from restaurant_sentiment.values import ConfigError, names

# Envoy's per-cluster counters: 5xx responses (its own 503s when the upstream cannot be reached
# included) and requests completed, answered or not.
ENVOY_ERRORS = "upstream_rq_5xx"
ENVOY_COMPLETED = "upstream_rq_completed"
ISTIO_REQUESTS = "istio_requests_total"
# Kubernetes namespaces are DNS labels: safe to put between quotes in PromQL.
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ISTIO_VERSION_LABEL = "destination_version"
ISTIO_APP = "model-service"
# The placeholder of the time since a step began, in a printed plan.
ELAPSED = "<elapsed>"


@dataclass(frozen=True)
class Mark:
    """Where a step began: the time, and the counters then (when they are read directly)."""

    started: float
    observation: Observation | None = None
    errors: dict[str, ErrorCounts] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class Reading:
    """A step's counts so far."""

    observation: Observation
    errors: dict[str, ErrorCounts]
    elapsed: float


def window(seconds: float) -> str:
    """A Prometheus range covering seconds (at least one second)."""
    return f"{max(1, math.ceil(seconds))}s"


class Signals(ABC):
    """A source of a step's figures."""

    @abstractmethod
    async def mark(self, split: str) -> Mark:
        """Note where a step under this split begins."""

    @abstractmethod
    async def read(self, mark: Mark, split: str) -> Reading:
        """The figures since mark."""

    @abstractmethod
    def describe(self) -> list[str]:
        """Where the figures come from, one line each."""


def parse_envoy_stats(body: object) -> dict[str, ErrorCounts]:
    """Per version, the requests and 5xx of its cluster from Envoy's `/stats?format=json`."""
    if not isinstance(body, dict) or not isinstance(body.get("stats"), list):
        raise SourceError("Envoy's /stats did not answer with a list of stats")
    pattern = re.compile(
        rf"^cluster\.{re.escape(cluster_name(''))}(?P<version>[a-z][a-z0-9-]*)\."
        rf"(?P<stat>{ENVOY_ERRORS}|{ENVOY_COMPLETED})$"
    )
    found: dict[str, dict[str, int]] = {}
    for stat in body["stats"]:
        if not isinstance(stat, dict):
            continue
        match = pattern.match(str(stat.get("name", "")))
        value = stat.get("value")
        if match is None or not isinstance(value, int) or value < 0:
            continue
        found.setdefault(match["version"], {})[match["stat"]] = value
    # Envoy creates a response-code counter on first use: a missing one is zero.
    return {
        version: ErrorCounts(
            requests=stats.get(ENVOY_COMPLETED, 0), errors=stats.get(ENVOY_ERRORS, 0)
        )
        for version, stats in found.items()
    }


async def envoy_errors(client: httpx.AsyncClient, admin_port: int) -> dict[str, ErrorCounts]:
    """The gateway's counts per model version, from its admin port on loopback."""
    url = f"http://127.0.0.1:{admin_port}/stats"
    prefix = re.escape(cluster_name(""))
    params = {
        "format": "json",
        "filter": rf"^cluster\.{prefix}[^.]+\.({ENVOY_ERRORS}|{ENVOY_COMPLETED})$",
    }
    try:
        response = await client.get(url, params=params)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot read the gateway's stats at {url}: {exc}") from None
    except ValueError:
        raise SourceError(f"{url} did not answer with JSON") from None
    return parse_envoy_stats(body)


class LocalSignals(Signals):
    """The running `make up`: each service's /metrics (or Prometheus) and Envoy's admin stats."""

    def __init__(
        self, metrics_urls: Sequence[str], admin_port: int, prometheus_url: str | None = None
    ) -> None:
        self.metrics_urls = list(metrics_urls)
        self.admin_port = admin_port
        self.prometheus_url = prometheus_url

    async def _counts(self, http: httpx.AsyncClient, split: str) -> Observation:
        return await from_metrics(self.metrics_urls, http, split)

    async def mark(self, split: str) -> Mark:
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, trust_env=False) as http:
            errors = await envoy_errors(http, self.admin_port)
            observation = None if self.prometheus_url else await self._counts(http, split)
        return Mark(time.monotonic(), observation, errors)

    async def read(self, mark: Mark, split: str) -> Reading:
        elapsed = mark.elapsed()
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, trust_env=False) as http:
            errors_now = await envoy_errors(http, self.admin_port)
            if self.prometheus_url:
                observation = await from_prometheus(
                    self.prometheus_url, window(elapsed), http, split
                )
            else:
                now = await self._counts(http, split)
                assert mark.observation is not None
                observation = subtract(now, mark.observation)
        return Reading(observation, subtract_errors(errors_now, mark.errors), elapsed)

    def describe(self) -> list[str]:
        counts = (
            f"experiment counts: Prometheus at {self.prometheus_url}, increase() since the "
            "step began"
            if self.prometheus_url
            else f"experiment counts: {', '.join(self.metrics_urls)}, minus their values when "
            "the step began"
        )
        return [
            counts,
            f"5xx: the gateway's admin stats http://127.0.0.1:{self.admin_port}/stats "
            f"(cluster.{cluster_name('<version>')}.{ENVOY_ERRORS} / {ENVOY_COMPLETED})",
        ]


def istio_queries(namespace: str, span: str) -> dict[str, str]:
    """PromQL for each version's requests and 5xx over span, as Istio's sidecars report them.

    `reporter="source"` counts each request once, at the caller (the ingress gateway or the
    frontend's sidecar), so the 503s a caller makes up when no canary pod answers are counted.
    """
    if not NAMESPACE.match(namespace):
        raise ConfigError(f"NAMESPACE: {namespace!r} is not a Kubernetes namespace name")
    selector = (
        f'reporter="source",destination_workload_namespace="{namespace}",'
        f'destination_app="{ISTIO_APP}"'
    )
    total = f"sum by ({ISTIO_VERSION_LABEL}) (increase({ISTIO_REQUESTS}{{{selector}}}[{span}]))"
    errors = (
        f"sum by ({ISTIO_VERSION_LABEL}) "
        f'(increase({ISTIO_REQUESTS}{{{selector},response_code=~"5.."}}[{span}]))'
    )
    return {"requests": total, "errors": errors}


def experiment_queries(split: str, span: str) -> list[str]:
    """The experiment's PromQL for one step (its assignments counted under the step's split)."""
    return [prometheus_query(counter, span) for counter in EXPERIMENT_COUNTERS] + [
        prometheus_query(names.ASSIGNMENTS, span, split)
    ]


async def _vector(http: httpx.AsyncClient, base: str, query: str, label: str) -> dict[str, float]:
    url = f"{base.rstrip('/')}/api/v1/query"
    try:
        response = await http.get(url, params={"query": query})
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    try:
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise SourceError(f"Prometheus rejected {query!r}: {body.get('error', body)}")
        rows = {
            item["metric"].get(label, ""): float(item["value"][1])
            for item in body["data"]["result"]
        }
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise SourceError(f"{url} did not answer like the Prometheus HTTP API") from None
    return {k: max(0.0, v) for k, v in rows.items() if k and math.isfinite(v)}


class PrometheusSignals(Signals):
    """A cluster: every figure an increase() over the time since the step began."""

    def __init__(self, url: str, namespace: str) -> None:
        istio_queries(namespace, "1s")  # checks the namespace now, not at the first reading
        self.url = url
        self.namespace = namespace

    async def mark(self, split: str) -> Mark:
        return Mark(time.monotonic())

    async def read(self, mark: Mark, split: str) -> Reading:
        elapsed = mark.elapsed()
        span = window(elapsed)
        queries = istio_queries(self.namespace, span)
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as http:
            observation, requests, errors = await asyncio.gather(
                from_prometheus(self.url, span, http, split),
                _vector(http, self.url, queries["requests"], ISTIO_VERSION_LABEL),
                _vector(http, self.url, queries["errors"], ISTIO_VERSION_LABEL),
            )
        # increase() extrapolates to the window's edges: round to whole requests.
        by_version = {
            version: ErrorCounts(
                requests=round(requests.get(version, 0.0)), errors=round(errors.get(version, 0.0))
            )
            for version in sorted(set(requests) | set(errors))
        }
        return Reading(observation, by_version, elapsed)

    def describe(self) -> list[str]:
        return [
            f"experiment counts and 5xx: Prometheus at {self.url}, increase() over the time "
            "since the step began",
        ]
