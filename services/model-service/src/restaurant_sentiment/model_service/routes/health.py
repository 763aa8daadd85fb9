"""Liveness, readiness and version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from restaurant_sentiment.model_service.routes.deps import ModelDep
from restaurant_sentiment.model_service.schemas import Health, VersionInfo

router = APIRouter(tags=["health"])
_OK = Health(status="ok")


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return _OK


@router.get(
    "/readyz",
    response_model=Health,
    summary="The model is loaded",
    responses={503: {"model": Health}},
)
async def readyz(request: Request) -> Health | JSONResponse:
    if request.app.state.model is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return Health(status="ready")


@router.get("/version", response_model=VersionInfo, summary="Service and model versions")
async def version_info(request: Request, model: ModelDep) -> VersionInfo:
    return VersionInfo(
        serviceVersion=request.app.version, modelVersion=model.version, model=model.metadata
    )
