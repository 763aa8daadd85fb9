"""Users' feedback on predictions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from restaurant_sentiment.model_service.prediction_ids import PredictionIdError
from restaurant_sentiment.model_service.routes.deps import (
    MetricsDep,
    ModelDep,
    PredictionIdsDep,
    SettingsDep,
)
from restaurant_sentiment.model_service.schemas import ErrorOut, FeedbackIn, FeedbackOut

router = APIRouter(tags=["feedback"])


@router.post(
    "/model-accuracy",
    response_model=FeedbackOut,
    summary="Record whether a prediction was right",
    responses={400: {"model": ErrorOut}, 409: {"model": ErrorOut}, 413: {"model": ErrorOut}},
)
async def model_accuracy(
    body: FeedbackIn,
    model: ModelDep,
    metrics: MetricsDep,
    ids: PredictionIdsDep,
    settings: SettingsDep,
) -> FeedbackOut:
    """Count the feedback for the version that made the prediction and return its accuracy."""
    version = model.version
    if body.predictionId is not None:
        try:
            ref = ids.verify(body.predictionId)
            if ref.prediction != body.prediction:
                raise HTTPException(400, "prediction does not match the predictionId")
            ids.claim(ref)
        except PredictionIdError as exc:
            status = 409 if "already" in str(exc) else 400
            raise HTTPException(status, str(exc)) from exc
        version = ref.version
        if ref.batch:
            # Feedback on API batch predictions never enters the diners' accuracy.
            metrics.record_batch_feedback(version, body.accurate)
            return FeedbackOut(
                model_accuracy=metrics.accuracy_of(version), restaurantName=body.restaurantName
            )
    elif settings.require_prediction_id:
        raise HTTPException(400, "predictionId is required")
    accuracy = metrics.record_feedback(version, body.restaurantName, body.prediction, body.accurate)
    return FeedbackOut(model_accuracy=accuracy, restaurantName=body.restaurantName)
