"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.model_service.feedback_store import FeedbackStore
from restaurant_sentiment.model_service.metrics import ExperimentMetrics
from restaurant_sentiment.model_service.model import SentimentModel
from restaurant_sentiment.model_service.prediction_ids import PredictionIds


async def get_model(request: Request) -> SentimentModel:
    model: SentimentModel | None = request.app.state.model
    if model is None:
        raise HTTPException(status_code=503, detail="model is not loaded yet")
    return model


async def get_metrics(request: Request) -> ExperimentMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_prediction_ids(request: Request) -> PredictionIds:
    return request.app.state.prediction_ids  # type: ignore[no-any-return]


async def get_feedback_store(request: Request) -> FeedbackStore:
    return request.app.state.feedback_store  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


ModelDep = Annotated[SentimentModel, Depends(get_model)]
MetricsDep = Annotated[ExperimentMetrics, Depends(get_metrics)]
PredictionIdsDep = Annotated[PredictionIds, Depends(get_prediction_ids)]
FeedbackStoreDep = Annotated[FeedbackStore, Depends(get_feedback_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
