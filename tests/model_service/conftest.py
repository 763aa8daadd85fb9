from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.model_service.model import SentimentModel
from tests.support import CHART_VALUES, MODEL_DIR

SECRET = "test-secret-for-signing-ids"
Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def settings(**overrides: Any) -> Settings:
    return Settings(
        model_dir=MODEL_DIR, values_file=CHART_VALUES, feedback_secret=SECRET, **overrides
    )


@pytest.fixture
def make_client(loaded_models: dict[str, SentimentModel]) -> Serve:
    """Build the app in process with the session's loaded model, lifespan entered."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        service_settings = settings(**overrides)
        model = loaded_models.get(service_settings.model_version)
        app = create_app(service_settings, model=model)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
                yield client

    return serve


@pytest.fixture
async def client(make_client: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c
