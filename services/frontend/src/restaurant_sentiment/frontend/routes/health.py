"""Liveness probe and the service version."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["health"])
PACKAGE = "restaurant-sentiment-frontend"


class Health(BaseModel):
    """The liveness answer."""

    status: str


class ServiceVersion(BaseModel):
    """The version of the installed project, as the model-service reports it too."""

    model_config = ConfigDict(populate_by_name=True)

    service_version: str = Field(alias="serviceVersion", examples=["0.1.0"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and serving requests."""
    return Health(status="ok")


@router.get("/version", response_model=ServiceVersion)
async def service_version() -> ServiceVersion:
    """The project version this frontend was built from."""
    return ServiceVersion(service_version=version(PACKAGE))
