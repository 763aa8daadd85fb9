"""Liveness, readiness and version."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.routes.deps import ModelDep
from restaurant_sentiment.model_service.schemas import Health, VersionInfo

log = logging.getLogger("model_service")
router = APIRouter(tags=["service"])
_OK = Health(status="ok")
READY = {"content": {"application/json": {"example": {"status": "ready"}}}}
LOADING = {
    "model": Health,
    "description": "The model is still loading.",
    "content": {"application/json": {"example": {"status": "loading"}}},
}


@router.get(
    "/healthz", response_model=Health, operation_id=openapi.HEALTHZ, summary="The process is alive"
)
async def healthz() -> Health:
    """Answer ok while the process serves HTTP, whether or not the model is loaded."""
    return _OK


@router.get(
    "/readyz",
    response_model=Health,
    operation_id=openapi.READYZ,
    summary="The model is loaded",
    responses={200: READY, 503: LOADING},
)
async def readyz(request: Request) -> Health | JSONResponse:
    """Answer ready once the model is loaded and predictions can be served, 503 before."""
    if request.app.state.model is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return Health(status="ready")


@router.get(
    "/version",
    response_model=VersionInfo,
    operation_id=openapi.GET_VERSION,
    summary="Service and model versions",
    responses={503: openapi.NOT_LOADED},
)
async def version_info(request: Request, model: ModelDep) -> VersionInfo:
    """The service's version, the model version served and that model's training metadata."""
    return VersionInfo(
        serviceVersion=request.app.version,
        modelVersion=model.version,
        model=model.info,
    )
