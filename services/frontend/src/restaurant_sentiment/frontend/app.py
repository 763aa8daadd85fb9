"""The frontend application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException

from restaurant_sentiment.asgi import HttpMetrics, configure_access_log, metrics_endpoint
from restaurant_sentiment.frontend.client import ModelServiceClient
from restaurant_sentiment.frontend.config import Settings, get_settings
from restaurant_sentiment.frontend.routes import experiment, health, pages
from restaurant_sentiment.frontend.transport import AiohttpTransport
from restaurant_sentiment.frontend.web import (
    STATIC_DIR,
    BodyLimit,
    SecurityHeaders,
    StaticAssets,
    build_templates,
)
from restaurant_sentiment.values import ConfigError, names

log = logging.getLogger("restaurant_sentiment.frontend")


class ConfiguredWeights(Collector):
    """The weights the values file holds at scrape time, for the SampleRatioMismatch alert.

    Read at each scrape, so a promotion, a rollback or a new split shows without a restart.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The configured weights and the split in force, as the values file holds them now."""
        gauge = GaugeMetricFamily(
            names.CONFIGURED_WEIGHT,
            "Configured share of new traffic of each model version, in percent.",
            labels=[names.VERSION_LABEL],
        )
        split = GaugeMetricFamily(
            names.CONFIGURED_SPLIT,
            "The split in force, as the gateway names it on new assignments (always 1).",
            labels=[names.SPLIT_LABEL],
        )
        try:
            values = self.settings.live_values.current()
        except ConfigError as exc:
            # No series rather than stale ones; the /experiment page shows the same error.
            log.error("%s", exc)
        else:
            for name, weight in values.weights.items():
                gauge.add_metric([name], weight)
            split.add_metric([values.split], 1)
        yield gauge
        yield split


def create_app(
    settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app; `transport` lets tests put a fake model-service behind the real client."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
        )
        # One pool for the whole process, on aiohttp; tests put a fake transport there instead.
        model_transport = transport or AiohttpTransport(settings.model_service_connections)
        async with (
            model_transport,
            # The experiment page reads Prometheus or each version's /metrics by absolute URL.
            httpx.AsyncClient(timeout=timeout, transport=transport) as metrics_http,
        ):
            app.state.model_service = ModelServiceClient(
                model_transport, settings.model_service_url, timeout, settings.version_cookie
            )
            app.state.metrics_http = metrics_http
            yield
            del app.state.model_service, app.state.metrics_http

    app = FastAPI(
        title="Restaurant sentiment frontend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.templates = build_templates(settings)
    # Restaurant pages by slug (bounded by the catalogue), unless templates may change.
    app.state.page_cache = None if settings.reload_templates else {}
    for router in (pages.router, experiment.router, health.router):
        app.include_router(router)
    app.mount("/static", StaticAssets(directory=STATIC_DIR), name="static")

    # A registry per app, so several apps in one process never register a metric twice.
    registry = CollectorRegistry()
    registry.register(ConfiguredWeights(settings))
    app.add_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
    configure_access_log(settings.access_log)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        context: dict[str, Any] = {"status": exc.status_code, "detail": exc.detail}
        response: HTMLResponse = app.state.templates.TemplateResponse(
            request, "error.html", context, status_code=exc.status_code, headers=exc.headers
        )
        return response

    app.add_middleware(HttpMetrics, routes=lambda: app.routes, registry=registry)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app


def __getattr__(name: str) -> Any:
    """Build `app` on first use, so `python -m frontend` applies its flags before settings load."""
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)
