"""Classifying reviews."""

from __future__ import annotations

from collections import Counter
from typing import TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.routing import Route

from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.schemas import BatchIn, BatchOut, Prediction, ReviewIn

Body = TypeVar("Body", bound=BaseModel)
JSON = "application/json"


async def parse(request: Request, model: type[Body]) -> Body:
    """Validate the raw body in one pass (pydantic's JSON parser), with FastAPI's 422 format."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
            if isinstance(error.get("input"), bytes):  # undecodable bodies are not echoed back
                error["input"] = None
        raise RequestValidationError(errors) from None


# The hot path is two plain Starlette routes that read their body and state directly: FastAPI's
# body, dependency and response machinery cost more than the scoring itself (see `make bench`).
# Their OpenAPI operations are added by hand (OPENAPI), with the same schemas.
async def predict(request: Request) -> Response:
    """Return 1 for a positive review and 0 for a negative one."""
    body = await parse(request, ReviewIn)
    state = request.app.state
    model = state.model
    scored = model.predict(body.review)
    state.metrics.record_predictions(body.restaurantName, scored.prediction, 1 - scored.prediction)
    answer = Prediction(
        review=body.review,
        prediction=scored.prediction,
        restaurantName=body.restaurantName,
        modelVersion=model.version,
        predictionId=state.prediction_ids.issue(model.version, scored.prediction),
        confidence=scored.confidence,
    )
    return Response(answer.model_dump_json(), media_type=JSON)


async def predict_batch(request: Request) -> Response:
    """Score all reviews in one vectorised pass; the answers keep the request's order."""
    body = await parse(request, BatchIn)
    state = request.app.state
    model, ids = state.model, state.prediction_ids
    items = body.reviews
    verdicts, confidences = model.score_batch([item.review for item in items])
    names = [item.restaurantName for item in items]
    # API traffic: counted apart from the diners' predictions (docs/experiment-plan.md).
    for restaurant, count in Counter(names).items():
        state.metrics.record_batch(restaurant, count)
    tokens = ids.issue_many(model.version, verdicts)
    # Plain dicts serialised by pydantic-core: building 1,000 models first would cost more than
    # the scoring; the shape is BatchOut's, which the OpenAPI schema and its tests hold us to.
    version = model.version
    predictions = [
        {"review": item.review, "prediction": verdict, "restaurantName": name,
         "modelVersion": version, "predictionId": token, "confidence": confidence}
        for item, name, verdict, token, confidence
        in zip(items, names, verdicts, tokens, confidences, strict=True)
    ]  # fmt: skip
    return Response(to_json({"predictions": predictions, "modelVersion": version}), media_type=JSON)


ROUTES = [
    Route("/predict", predict, methods=["POST"], name="predict"),
    Route("/predict/batch", predict_batch, methods=["POST"], name="predict_batch"),
]
RESPONSES: openapi.Responses = {413: openapi.TOO_LARGE, 422: openapi.INVALID}
OPENAPI = {
    "/predict": {
        "post": openapi.operation(
            openapi.PREDICT,
            "predictions",
            "Classify one review",
            "Return 1 for a positive review and 0 for a negative one, with the probability of "
            "that class and a signed predictionId to send back with the feedback.",
            ReviewIn,
            Prediction,
            RESPONSES,
        )
    },
    "/predict/batch": {
        "post": openapi.operation(
            openapi.PREDICT_BATCH,
            "predictions",
            "Classify up to 1,000 reviews",
            "Score all reviews in one vectorised pass; the answers keep the request's order and "
            "each carries its own predictionId.",
            BatchIn,
            BatchOut,
            RESPONSES,
        )
    },
}
