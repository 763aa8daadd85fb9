"""Dependencies shared by the routes: the settings, templates and clients built by the app.

All async: FastAPI runs a plain `def` dependency in a worker thread, on every request.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from restaurant_sentiment.frontend.client import ModelServiceClient
from restaurant_sentiment.frontend.config import Settings
from restaurant_sentiment.values import Restaurant


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_templates(request: Request) -> Jinja2Templates:
    """The app's templates."""
    templates: Jinja2Templates = request.app.state.templates
    return templates


async def get_client(request: Request) -> ModelServiceClient:
    """The model-service client opened in the lifespan."""
    client: ModelServiceClient = request.app.state.model_service
    return client


async def get_metrics_http(request: Request) -> httpx.AsyncClient:
    """The client that reads Prometheus or the services' /metrics, opened in the lifespan."""
    client: httpx.AsyncClient = request.app.state.metrics_http
    return client


async def get_restaurant(
    slug: str, settings: Annotated[Settings, Depends(get_settings)]
) -> Restaurant:
    """The restaurant named in the path, or 404."""
    for restaurant in settings.catalogue:
        if restaurant.slug == slug:
            return restaurant
    raise HTTPException(404, "We do not know that restaurant.")


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
ClientDep = Annotated[ModelServiceClient, Depends(get_client)]
MetricsHttpDep = Annotated[httpx.AsyncClient, Depends(get_metrics_http)]
RestaurantDep = Annotated[Restaurant, Depends(get_restaurant)]
