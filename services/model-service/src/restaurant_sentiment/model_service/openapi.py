"""The OpenAPI document: what it says about the service, and the answers each operation gives.

Clients are generated from this document (docs/openapi/model-service.json holds a copy), so the
operation ids are part of the API: renaming one renames a function in every generated client.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel

from restaurant_sentiment.model_service.schemas import ErrorOut, ValidationErrorOut

Responses = dict[int | str, dict[str, Any]]

DESCRIPTION = """\
Classifies restaurant reviews as positive (1) or negative (0) and takes users' feedback on
whether a prediction was right. Each prediction carries a signed `predictionId`: feedback that
sends it back counts once, for the model version that made the prediction.

Two model versions run side by side behind the gateway; the `model-service-version` cookie
(`stable` or `canary`) keeps a client on one of them. Request bodies may carry only the
properties their schema defines, and every refusal is a 4xx with a specific message.
"""
CONTACT = {"name": "restaurant-sentiment maintainers"}
LICENSE = {"name": "MIT", "identifier": "MIT"}
# Relative to the document: the instance that serves /openapi.json also serves the API.
SERVERS = [{"url": "/", "description": "The instance serving this document"}]
TAGS = [
    {
        "name": "predictions",
        "description": "Classify reviews: 1 positive, 0 negative, with the model's confidence "
        "and a signed predictionId for the feedback.",
    },
    {
        "name": "feedback",
        "description": "Whether a prediction was right; it moves the accuracy of the version "
        "that made it, which the stable/canary experiment compares.",
    },
    {
        "name": "experiment",
        "description": "The counts the stable/canary experiment is decided on, as every "
        "process of every version has handed them to the shared feedback store.",
    },
    {"name": "service", "description": "Liveness, readiness and what this instance serves."},
]
# Operation ids: the function names of generated clients.
PREDICT = "predict"
PREDICT_BATCH = "predictBatch"
SUBMIT_FEEDBACK = "submitFeedback"
GET_VERSION = "getVersion"
GET_EXPERIMENT_COUNTS = "getExperimentCounts"
HEALTHZ = "healthz"
READYZ = "readyz"


def error(description: str, **examples: str) -> dict[str, Any]:
    """A documented error answer with an ErrorOut body; examples are `name=detail`."""
    content = {
        "application/json": {
            "examples": {
                name.replace("_", " "): {"value": {"detail": detail}}
                for name, detail in examples.items()
            }
        }
    }
    return {"model": ErrorOut, "description": description, "content": content}


TOO_LARGE = error(
    "The body is larger than the limit (64 KiB by default; a batch may carry 1,000 full reviews).",
    too_large="request body is larger than 65536 bytes",
)
INVALID = {
    "model": ValidationErrorOut,
    "description": "The body does not match the operation's schema: each error names the field "
    "(`loc`) and says what is wrong (`msg`).",
}
NOT_LOADED = error("The model is not loaded yet.", loading="model is not loaded yet")


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    body: type[BaseModel],
    answer: type[BaseModel],
    responses: Responses,
) -> dict[str, Any]:
    """The OpenAPI operation of a plain Starlette route, which FastAPI does not document."""

    def content(model: type[BaseModel], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        media = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        media.update((extra or {}).get("application/json", {}))
        return {"application/json": media}

    documented = {
        str(status): {
            "description": item["description"],
            "content": content(item["model"], item.get("content")),
        }
        for status, item in responses.items()
    }
    return {
        "tags": [tag],
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": content(body)},
        "responses": {
            "200": {"description": "Successful Response", "content": content(answer)},
            **documented,
        },
    }


def install(
    app: FastAPI,
    paths: dict[str, Any],
    inputs: list[type[BaseModel]],
    outputs: list[type[BaseModel]],
    require_prediction_id: bool,
) -> None:
    """Add hand-written operations, and the models they name, to FastAPI's document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema["paths"] = {**copy.deepcopy(paths), **schema["paths"]}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            modes: list[tuple[Literal["validation", "serialization"], list[type[BaseModel]]]]
            modes = [("validation", inputs), ("serialization", outputs)]
            for mode, models in modes:
                for model in models:
                    js = model.model_json_schema(
                        ref_template="#/components/schemas/{model}", mode=mode
                    )
                    components.update(js.pop("$defs", {}))
                    components[model.__name__] = js
            if require_prediction_id:
                feedback = components["FeedbackIn"]
                feedback["required"].append("predictionId")
                prediction_id = feedback["properties"]["predictionId"]
                string = next(s for s in prediction_id.pop("anyOf") if s["type"] == "string")
                prediction_id.pop("default", None)
                prediction_id.update(string)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
