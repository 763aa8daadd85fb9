from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from model_service.app import create_app
from model_service.config import Settings
from tests.conftest import MODEL_DIR

SECRET = "test-secret-for-signing-ids"


def settings(**overrides: Any) -> Settings:
    return Settings(model_dir=MODEL_DIR, feedback_secret=SECRET, **overrides)


@asynccontextmanager
async def serve(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, with its lifespan entered, behind an httpx client."""
    app = create_app(settings(**overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve() as c:
        yield c


@pytest.fixture
def make_client() -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    return serve
