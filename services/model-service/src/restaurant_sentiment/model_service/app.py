"""The model-service application: create_app() builds it, `app` is what uvicorn serves."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from restaurant_sentiment.asgi import HttpMetrics, configure_access_log, metrics_endpoint
from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.config import Settings, get_settings
from restaurant_sentiment.model_service.feedback_store import (
    ASSIGNMENTS,
    PREDICTIONS,
    CountsFlusher,
    open_store,
)
from restaurant_sentiment.model_service.limits import BodySizeLimit
from restaurant_sentiment.model_service.metrics import AssignmentCounter, ExperimentMetrics
from restaurant_sentiment.model_service.model import SentimentModel
from restaurant_sentiment.model_service.prediction_ids import PredictionIds
from restaurant_sentiment.model_service.routes import experiment, feedback, health, predict
from restaurant_sentiment.model_service.schemas import (
    MAX_BATCH,
    MAX_REVIEW_CHARS,
    BatchIn,
    BatchOut,
    ErrorOut,
    Prediction,
    ReviewIn,
    ValidationErrorOut,
)
from restaurant_sentiment.values import names

log = logging.getLogger("model_service")
STATIC = Path(__file__).parent / "static"
SWAGGER = "/static/swagger-ui-5.35.0"
DISTRIBUTION = "restaurant-sentiment-model-service"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def service_version() -> str:
    """The project version, as installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0.0.0"


def process_counts(metrics: ExperimentMetrics) -> dict[tuple[str, str], int]:
    """This process's assignments (by split) and predictions, as the store tallies them."""
    counts: dict[tuple[str, str], int] = {}
    for family in metrics.assignments.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (metrics.version, ASSIGNMENTS + sample.labels[names.SPLIT_LABEL])
                counts[key] = int(sample.value)
    predictions = 0
    for family in metrics.predictions.collect():
        predictions += sum(int(s.value) for s in family.samples if s.name.endswith("_total"))
    counts[(metrics.version, PREDICTIONS)] = predictions
    return counts


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
        if app.state.model is None:
            app.state.model = SentimentModel.load(settings.model_dir, settings.model_version)
        # Everything built so far (modules, the model's tables) lives as long as the process:
        # keeping it out of the garbage collector's scans cut batch scoring time by about 20%.
        gc.freeze()
        store = app.state.feedback_store
        flusher = CountsFlusher(store, partial(process_counts, app.state.metrics))
        flusher.start()
        try:
            yield
        finally:
            # After the last request: the counts this process gained go to the store first.
            await flusher.stop()
            await store.close()
            app.state.model = None

    app = FastAPI(
        title="Restaurant sentiment model-service",
        version=service_version(),
        summary="Classifies restaurant reviews as positive (1) or negative (0) and takes feedback.",
        description=openapi.DESCRIPTION,
        contact=openapi.CONTACT,
        license_info=openapi.LICENSE,
        servers=openapi.SERVERS,
        openapi_tags=openapi.TAGS,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model = model
    registry = CollectorRegistry()
    app.state.metrics = ExperimentMetrics(
        registry, settings.model_version, settings.values.restaurant_names
    )
    secret = (
        settings.feedback_secret.get_secret_value()
        if settings.feedback_secret
        else secrets.token_urlsafe(32)
    )
    app.state.prediction_ids = PredictionIds(secret, settings.prediction_id_max_age)
    password = settings.feedback_store_password
    app.state.feedback_store = open_store(
        settings.feedback_store, password.get_secret_value() if password else None
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 to bodies it cannot decode; that is malformed input like any other.
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            error = {"type": "json_invalid", "loc": ["body"], "msg": "body is not valid UTF-8 JSON"}
            return JSONResponse({"detail": [error]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # The documented shape (ValidationErrorOut): type, loc, msg and the input refused.
        fields = ("type", "loc", "msg", "input")
        errors = [{key: error[key] for key in fields if key in error} for error in exc.errors()]
        return JSONResponse(jsonable_encoder({"detail": errors}), status_code=422)

    app.router.routes.extend(predict.ROUTES)
    app.include_router(feedback.router)
    app.include_router(experiment.router)
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

    openapi.install(
        app,
        predict.OPENAPI,
        inputs=[ReviewIn, BatchIn],
        outputs=[Prediction, BatchOut, ErrorOut, ValidationErrorOut],
        require_prediction_id=settings.require_prediction_id,
    )
    app.add_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
    configure_access_log(settings.access_log)
    # A full batch (1,000 reviews of up to 5,000 characters) needs more room than one review.
    batch_limit = max(settings.max_body_bytes, MAX_BATCH * (MAX_REVIEW_CHARS * 4 + 512))
    app.add_middleware(AssignmentCounter, metrics=app.state.metrics)
    # Millisecond buckets, so the dashboard's latency p95 can resolve a fast prediction.
    app.add_middleware(
        HttpMetrics,
        routes=lambda: app.routes,
        registry=registry,
        latency_buckets=LATENCY_BUCKETS,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        per_path={"/predict/batch": batch_limit},
    )
    return app


def __getattr__(name: str) -> Any:
    """Build `app` (for `uvicorn restaurant_sentiment.model_service.app:app`) on first use."""
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)
