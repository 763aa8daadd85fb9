"""Fixtures: the frontend in process, with a scripted fake model-service behind its client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from restaurant_sentiment.frontend.app import create_app
from restaurant_sentiment.frontend.config import Settings
from tests.support import CHART_VALUES, ROOT, in_ci

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeModelService:
    """A scripted model-service: records requests, answers like the real API unless told not to."""

    prediction: int = 1
    version: str = "canary"
    accuracy: float = 0.875
    set_cookie: list[str] = field(default_factory=list)
    override: Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            return self.override(request)
        body = json.loads(request.content) if request.content else {}
        headers = [("set-cookie", value) for value in self.set_cookie]
        if request.url.path == "/predict":
            answer: dict[str, Any] = {
                "review": body["review"],
                "prediction": self.prediction,
                "restaurantName": body["restaurantName"],
                "modelVersion": self.version,
                "predictionId": f"pred-{len(self.requests)}",
                "confidence": 0.93,
            }
        elif request.url.path == "/model-accuracy":
            answer = {"model-accuracy": self.accuracy, "restaurantName": body["restaurantName"]}
        else:
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=answer, headers=headers)

    def json(self, index: int = -1) -> dict[str, Any]:
        """The JSON body of a recorded request."""
        body: dict[str, Any] = json.loads(self.requests[index].content)
        return body


@pytest.fixture
def upstream() -> FakeModelService:
    return FakeModelService()


@asynccontextmanager
async def frontend_client(
    transport: httpx.AsyncBaseTransport | None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The frontend app in process (lifespan entered), with an httpx client talking to it."""
    settings.setdefault("values_file", CHART_VALUES)
    app = create_app(Settings(**settings), transport=transport)
    async with app.router.lifespan_context(app):
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://app.test") as client:
            yield client


@pytest.fixture
async def client(upstream: FakeModelService) -> AsyncIterator[httpx.AsyncClient]:
    async with frontend_client(httpx.MockTransport(upstream)) as http:
        yield http


HTMX = {"hx-request": "true"}
HTML = {"accept": "text/html"}


def require_models() -> None:
    """Skip (fail under CI) when the trained models are missing: `make models` makes them."""
    if (ROOT / "ml-model" / "stable" / "metadata.json").is_file():
        return
    message = "ml-model/stable is not trained (run `make models`)"
    if in_ci():
        pytest.fail(f"{message}; CI must train it first")
    pytest.skip(message)
