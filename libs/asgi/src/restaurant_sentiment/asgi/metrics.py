"""HTTP metrics and access log as one plain-ASGI middleware, cheap on every request.

The series are prometheus-fastapi-instrumentator's defaults, with the same names, labels and
meaning, because the chart's dashboards and alert rules read them:

- `http_requests_total` (method, status as `2xx`..., handler)
- `http_request_size_bytes` and `http_response_size_bytes` (handler): Content-Length summaries
- `http_request_duration_highr_seconds` (no labels) and `http_request_duration_seconds`
  (method, handler)

`handler` is the route's path template (`/restaurants/{slug}`), `none` for a path no route
serves, so label values stay bounded. What the instrumentator redoes on every request (finding
the route among all routes, building request and response objects, an asyncio.gather) is done
here once per distinct method and path, and the labelled series are kept at hand.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Summary,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10,
    30, 60,
)  # fmt: skip
LOWR_BUCKETS = (0.1, 0.5, 1)
UNTEMPLATED = "none"
# Distinct (method, path) pairs whose handler is remembered; others are looked up each time.
ROUTE_CACHE = 4096
# Labelled series kept at hand; methods are the clients' to choose, so this is bounded too.
MAX_SERIES = 1024
CONTENT_LENGTH = b"content-length"
ACCESS_LOG = logging.getLogger("restaurant_sentiment.access")
# The children of one (method, status class, handler): total, request size, response size, latency.
Series = tuple[Counter, Summary, Summary, Histogram]


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The path template of the route that serves scope, or None (a 405 names its route)."""
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            if isinstance(route, Mount) and route.routes:
                inner = route_template(route.routes, {**scope, **child})
                return None if inner is None else route.path + inner
            return str(getattr(route, "path", "")) or None
        if match == Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", "")) or None
    return partial


class HttpMetrics:
    """Counts and times every HTTP request; one access-log line each when INFO is enabled."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Callable[[], Sequence[BaseRoute]],
        registry: CollectorRegistry,
        latency_buckets: Sequence[float] = LOWR_BUCKETS,
        excluded: Sequence[str] = ("/metrics", "/static"),
        access_log: logging.Logger = ACCESS_LOG,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self._excluded = [re.compile(pattern) for pattern in excluded]
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            registry=registry,
        )
        self.in_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. Only value of header is respected. "
            "Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.out_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. Only value of header is "
            "respected. Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate "
            "percentile calculations. ",
            buckets=HIGHR_BUCKETS,
            registry=registry,
        )
        self.lowr = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important. ",
            ("method", "handler"),
            buckets=latency_buckets,
            registry=registry,
        )
        self._series: dict[tuple[str, str, str], Series] = {}

        @lru_cache(maxsize=ROUTE_CACHE)
        def handler_of(method: str, path: str) -> str | None:
            """The handler label, None for an excluded handler."""
            scope: Scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            template = route_template(routes(), scope)
            if template is None:
                return UNTEMPLATED
            if any(pattern.search(template) for pattern in self._excluded):
                return None
            return template

        self.handler_of = handler_of

    def series(
        self, method: str, status: str, handler: str
    ) -> tuple[Counter, Summary, Summary, Histogram]:
        """The labelled children of one (method, status class, handler)."""
        key = (method, status, handler)
        found = self._series.get(key)
        if found is None:
            found = (
                self.total.labels(method, status, handler),
                self.in_size.labels(handler),
                self.out_size.labels(handler),
                self.lowr.labels(method, handler),
            )
            if len(self._series) < MAX_SERIES:
                self._series[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500
        sent = 0

        async def send_status(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == CONTENT_LENGTH:
                        sent = int(value) if value.isdigit() else 0
                        break
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            duration = time.perf_counter() - started
            handler = self.handler_of(method, scope["path"])
            if handler is not None:
                received = 0
                for name, value in scope["headers"]:
                    if name == CONTENT_LENGTH:
                        received = int(value) if value.isdigit() else 0
                        break
                total, in_size, out_size, lowr = self.series(method, f"{status // 100}xx", handler)
                total.inc()
                in_size.observe(received)
                out_size.observe(sent)
                self.highr.observe(duration)
                lowr.observe(duration)
            if self.access_log.isEnabledFor(logging.INFO):
                self.access_log.info(
                    "%s %s %d %.1fms", method, scope["path"], status, duration * 1000
                )


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Response]:
    """A route endpoint answering the registry in Prometheus's text format."""

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), headers={"content-type": CONTENT_TYPE_LATEST})

    return metrics


def configure_access_log(enabled: bool) -> None:
    """Write one line per request to stderr when enabled; nothing (and no formatting) when not."""
    ACCESS_LOG.propagate = False
    ACCESS_LOG.setLevel(logging.INFO if enabled else logging.WARNING)
    if enabled and not ACCESS_LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        ACCESS_LOG.addHandler(handler)
