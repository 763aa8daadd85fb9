"""The frontend application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, Gauge
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontend.client import ModelServiceClient
from frontend.config import Settings, get_settings
from frontend.routes import experiment, health, pages
from frontend.web import STATIC_DIR, BodyLimit, SecurityHeaders, StaticAssets, build_templates


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
        async with (
            httpx.AsyncClient(
                base_url=settings.model_service_url, timeout=timeout, transport=transport
            ) as http,
            # The experiment page reads Prometheus or each version's /metrics by absolute URL.
            httpx.AsyncClient(timeout=timeout, transport=transport) as metrics_http,
        ):
            app.state.model_service = ModelServiceClient(http, settings.version_cookie)
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
    for router in (pages.router, experiment.router, health.router):
        # Copied rather than include_router(): FastAPI wraps included routers in objects without
        # a `path`, which prometheus-fastapi-instrumentator 7.x reads to label every request.
        app.router.routes.extend(router.routes)
    app.mount("/static", StaticAssets(directory=STATIC_DIR), name="static")

    # A registry per app, so several apps in one process never register a metric twice.
    registry = CollectorRegistry()
    # The configured weights, so Prometheus can compare the realised split with them (the
    # SampleRatioMismatch alert); the values reach the frontend as FRONTEND_EXPERIMENT_CONFIG.
    configured = Gauge(
        "model_version_configured_weight",
        "Configured share of new traffic of each model version, in percent.",
        ["model_version"],
        registry=registry,
    )
    try:
        for name, weight in experiment.experiment_config(settings).weights.items():
            configured.labels(model_version=name).set(weight)
    except experiment.ExperimentUnavailable:
        pass  # the /experiment page explains it
    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/static"]).instrument(
        app
    ).expose(app, include_in_schema=False)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        context: dict[str, Any] = {"status": exc.status_code, "detail": exc.detail}
        response: HTMLResponse = app.state.templates.TemplateResponse(
            request, "error.html", context, status_code=exc.status_code, headers=exc.headers
        )
        return response

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
