"""Classifying reviews."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter

from model_service.routes.deps import MetricsDep, ModelDep, PredictionIdsDep
from model_service.schemas import BatchIn, BatchOut, ErrorOut, Prediction, ReviewIn

router = APIRouter(tags=["predict"], responses={413: {"model": ErrorOut}})


@router.post("/predict", response_model=Prediction, summary="Classify one review")
async def predict(
    body: ReviewIn, model: ModelDep, metrics: MetricsDep, ids: PredictionIdsDep
) -> Prediction:
    """Return 1 for a positive review and 0 for a negative one."""
    scored = model.predict(body.review)
    metrics.record_predictions(body.restaurantName, scored.prediction, 1 - scored.prediction)
    return Prediction(
        review=body.review,
        prediction=scored.prediction,  # type: ignore[arg-type]
        restaurantName=body.restaurantName,
        modelVersion=model.version,
        predictionId=ids.issue(model.version, scored.prediction),
        confidence=scored.confidence,
    )


@router.post("/predict/batch", response_model=BatchOut, summary="Classify up to 1,000 reviews")
async def predict_batch(
    body: BatchIn, model: ModelDep, metrics: MetricsDep, ids: PredictionIdsDep
) -> BatchOut:
    """Score all reviews in one vectorised pass; the answers keep the request's order."""
    scored = model.predict_batch([item.review for item in body.reviews])
    tally: Counter[tuple[str, int]] = Counter(
        (item.restaurantName, s.prediction) for item, s in zip(body.reviews, scored, strict=True)
    )
    for restaurant in {name for name, _ in tally}:
        metrics.record_predictions(restaurant, tally[(restaurant, 1)], tally[(restaurant, 0)])
    return BatchOut(
        predictions=[
            Prediction(
                review=item.review,
                prediction=s.prediction,  # type: ignore[arg-type]
                restaurantName=item.restaurantName,
                modelVersion=model.version,
                predictionId=ids.issue(model.version, s.prediction),
                confidence=s.confidence,
            )
            for item, s in zip(body.reviews, scored, strict=True)
        ],
        modelVersion=model.version,
    )
