"""The model-service application: create_app() builds it, `app` is what uvicorn serves."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from model_service.config import Settings, get_settings
from model_service.limits import BodySizeLimit
from model_service.metrics import ExperimentMetrics
from model_service.model import SentimentModel
from model_service.prediction_ids import PredictionIds
from model_service.routes import feedback, health, predict

log = logging.getLogger("model_service")
STATIC = Path(__file__).parent / "static"
SWAGGER = "/static/swagger-ui-5.35.0"


def service_version() -> str:
    """The project version, as installed."""
    try:
        return version("restaurant-sentiment")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None, model: SentimentModel | None = None) -> FastAPI:
    """Build the app; the model is loaded in the lifespan unless one is given."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.feedback_secret is None:
            log.warning(
                "MODEL_SERVICE_FEEDBACK_SECRET is not set: prediction ids are signed with a random "
                "key that other instances cannot verify"
            )
        app.state.model = model or SentimentModel.load(settings.model_dir, settings.model_version)
        yield
        app.state.model = None

    app = FastAPI(
        title="Restaurant sentiment model-service",
        version=service_version(),
        summary="Classifies restaurant reviews as positive (1) or negative (0) and takes feedback.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model = None
    registry = CollectorRegistry()
    app.state.metrics = ExperimentMetrics(registry, settings.model_version, settings.restaurants)
    secret = (
        settings.feedback_secret.get_secret_value()
        if settings.feedback_secret
        else secrets.token_urlsafe(32)
    )
    app.state.prediction_ids = PredictionIds(secret, settings.prediction_id_max_age)

    app.include_router(predict.router)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/apidocs", include_in_schema=False)
    async def apidocs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )

    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/static"]).instrument(
        app
    ).expose(app, include_in_schema=False)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


app = create_app()
