"""Users' feedback on predictions."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError

from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.feedback_store import StoreUnavailable, outcome
from restaurant_sentiment.model_service.prediction_ids import PredictionIdError
from restaurant_sentiment.model_service.routes.deps import (
    FeedbackStoreDep,
    MetricsDep,
    ModelDep,
    PredictionIdsDep,
    SettingsDep,
)
from restaurant_sentiment.model_service.schemas import FeedbackIn, FeedbackOut

router = APIRouter(tags=["feedback"])
REPLAYED = "feedback for this predictionId was already recorded"
CONTRADICTED = "prediction does not match the predictionId"
STORE_DOWN = (
    "the feedback store cannot be reached, so this feedback was not recorded: "
    "please send it again later"
)
log = logging.getLogger("restaurant_sentiment.model_service")


@router.post(
    "/model-accuracy",
    response_model=FeedbackOut,
    operation_id=openapi.SUBMIT_FEEDBACK,
    summary="Record whether a prediction was right",
    responses={
        403: openapi.error(
            "The predictionId was not issued by this service (forged or altered), or has expired.",
            forged="predictionId is not valid",
            expired="predictionId has expired",
        ),
        409: openapi.error(
            "The feedback conflicts with the prediction the id records: feedback on it was "
            "already counted, or `prediction` is not the one the id was issued for.",
            replayed=REPLAYED,
            contradicted=CONTRADICTED,
        ),
        413: openapi.TOO_LARGE,
        422: openapi.INVALID,
        503: openapi.error(
            "The model is not loaded yet, or the feedback store cannot be reached: the "
            "feedback was not recorded and may be sent again.",
            loading="model is not loaded yet",
            store_unavailable=STORE_DOWN,
        ),
    },
)
async def model_accuracy(
    body: FeedbackIn,
    model: ModelDep,
    metrics: MetricsDep,
    ids: PredictionIdsDep,
    store: FeedbackStoreDep,
    settings: SettingsDep,
) -> FeedbackOut:
    """Count the feedback for the version that made the prediction and return its accuracy.

    With a predictionId the feedback counts once, for the version that issued the id, whichever
    replica or version receives it; without one (unless the service requires ids) it counts for
    the version answering. Feedback on a prediction of /predict/batch (API traffic) is counted
    apart and leaves the accuracy as it is. Nothing is counted while the feedback store cannot
    be reached (503).
    """
    version = model.version
    if body.predictionId is not None:
        try:
            ref = ids.verify(body.predictionId)
        except PredictionIdError as exc:
            raise HTTPException(403, str(exc)) from exc
        if ref.prediction != body.prediction:
            raise HTTPException(409, CONTRADICTED)
        version = ref.version
        counter = outcome(body.accurate, ref.batch)
        try:
            claimed = await store.claim(
                ref.nonce, version, counter, ref.issued_at + settings.prediction_id_max_age
            )
        except StoreUnavailable as exc:
            log.warning("feedback refused: %s", exc)
            raise HTTPException(503, STORE_DOWN) from None
        if not claimed:
            raise HTTPException(409, REPLAYED)
        if ref.batch:
            # Feedback on API batch predictions never enters the diners' accuracy.
            metrics.record_batch_feedback(version, body.accurate)
            return FeedbackOut(
                model_accuracy=metrics.accuracy_of(version), restaurantName=body.restaurantName
            )
    elif settings.require_prediction_id:
        # The OpenAPI document then lists predictionId as required: refused like any missing field.
        missing = {"type": "missing", "loc": ("body", "predictionId"), "msg": "Field required"}
        raise RequestValidationError([{**missing, "input": body.model_dump(exclude_unset=True)}])
    else:
        try:
            await store.add({(version, outcome(body.accurate, batch=False)): 1})
        except StoreUnavailable as exc:
            log.warning("feedback refused: %s", exc)
            raise HTTPException(503, STORE_DOWN) from None
    accuracy = metrics.record_feedback(version, body.restaurantName, body.prediction, body.accurate)
    return FeedbackOut(model_accuracy=accuracy, restaurantName=body.restaurantName)
