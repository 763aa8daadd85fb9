"""Request and response models of the model-service API.

Every model forbids properties it does not define (`additionalProperties: false` in the OpenAPI
document), so a misspelt field is refused with a 422 naming it instead of being ignored. The
trained model's metadata on /version is `metadata.ModelMetadata`, the very schema training
writes metadata.json with, so the two cannot drift. The examples are real answers of the service.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator
from pydantic.json_schema import JsonDict

from restaurant_sentiment.model_service.metadata import METADATA_EXAMPLE, ModelMetadata

MAX_REVIEW_CHARS = 5000
MAX_BATCH = 1000
MAX_NAME_CHARS = 200
MAX_PREDICTION_ID_CHARS = 512
# "Contains a character that is not whitespace", spelt out so that the schema's pattern (an
# ECMA-262 regular expression for clients) and the server (Python) agree on what whitespace is:
# Python's str.isspace() set plus the byte order mark that ECMA-262's \s also counts.
NOT_BLANK = r"[^\t-\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NOT_BLANK = re.compile(NOT_BLANK)
SHA256 = r"^[0-9a-f]{64}$"

PREDICTION_ID_EXAMPLE = "canary.1.6b1023aa.f6796dacedb7b7a30.cbcd2de7feacdf53f38e8865f4a74250"
PREDICTION_EXAMPLE: JsonDict = {
    "review": "This excellent.",
    "prediction": 1,
    "restaurantName": "Gourmet Haven",
    "modelVersion": "canary",
    "predictionId": PREDICTION_ID_EXAMPLE,
    "confidence": 0.9022609255343352,
}


def _whole_number(value: Any) -> Any:
    """1.0 is the integer 1 in JSON Schema: accept floats without a fraction, nothing looser."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# 0 or 1. Strict (no "1" or true), but a JSON number with a zero fraction is the same integer.
Label = Annotated[int, Field(strict=True, ge=0, le=1), BeforeValidator(_whole_number)]


class ReviewIn(BaseModel):
    """A review to classify."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"restaurantName": "Gourmet Haven", "review": "This excellent."}]
        },
    )

    # The schema's pattern documents what _not_blank enforces with a clearer message.
    review: str = Field(
        min_length=1,
        max_length=MAX_REVIEW_CHARS,
        description="The review text; not only whitespace.",
        examples=["The pasta was divine."],
        json_schema_extra={"pattern": NOT_BLANK},
    )
    restaurantName: str = Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="The restaurant reviewed; names outside the catalogue are counted as other.",
        examples=["Gourmet Haven"],
        json_schema_extra={"pattern": NOT_BLANK},
    )

    @field_validator("review", "restaurantName")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not _NOT_BLANK.search(value):
            raise ValueError("must not be empty or only whitespace")
        return value


class Prediction(BaseModel):
    """The verdict on one review: 1 positive, 0 negative."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PREDICTION_EXAMPLE]})

    review: str = Field(description="The review, as sent.")
    prediction: int = Field(ge=0, le=1, description="1 positive, 0 negative.")
    restaurantName: str = Field(description="The restaurant, as sent.")
    modelVersion: str = Field(description="The model version that scored the review.")
    predictionId: str = Field(description="Signed id to send back with the feedback.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the predicted class.")


class BatchIn(BaseModel):
    """Up to 1,000 reviews scored in one pass."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reviews": [
                        {"restaurantName": "Gourmet Haven", "review": "Lovely fish."},
                        {"restaurantName": "Gourmet Haven", "review": "Cold and bland."},
                    ]
                }
            ]
        },
    )

    reviews: list[ReviewIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(BaseModel):
    """The verdicts, in the order of the reviews."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "predictions": [
                        {
                            "review": "Lovely fish.",
                            "prediction": 1,
                            "restaurantName": "Gourmet Haven",
                            "modelVersion": "canary",
                            "predictionId": (
                                "canary.1.6b1023aa.0acadd9284acdb8f0.373c10d338ec674781cb5694ae0b02a2"
                            ),
                            "confidence": 0.8464702870009932,
                        },
                        {
                            "review": "Cold and bland.",
                            "prediction": 0,
                            "restaurantName": "Gourmet Haven",
                            "modelVersion": "canary",
                            "predictionId": (
                                "canary.0.6b1023aa.0acadd9284acdb8f1.9a17429b6578fda71cbf8e387f260a7f"
                            ),
                            "confidence": 0.9713876014589072,
                        },
                    ],
                    "modelVersion": "canary",
                }
            ]
        },
    )

    predictions: list[Prediction]
    modelVersion: str = Field(description="The model version that scored the reviews.")


class FeedbackIn(BaseModel):
    """A user's word on whether a prediction was right."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "restaurantName": "Gourmet Haven",
                    "accurate": True,
                    "prediction": 1,
                    "predictionId": PREDICTION_ID_EXAMPLE,
                },
                {"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 1},
            ]
        },
    )

    restaurantName: str = Field(min_length=1, max_length=MAX_NAME_CHARS, examples=["Gourmet Haven"])
    accurate: StrictBool = Field(description="Whether the prediction was right.", examples=[True])
    prediction: Label = Field(description="The prediction the feedback is about.", examples=[1])
    predictionId: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PREDICTION_ID_CHARS,
        description="The predictionId of the answer: the feedback then counts once, for the "
        "version that made the prediction.",
        examples=[PREDICTION_ID_EXAMPLE],
    )


class FeedbackOut(BaseModel):
    """The accuracy, after this feedback, of the version that made the prediction."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"model-accuracy": 1.0, "restaurantName": "Gourmet Haven"}]
        },
    )

    model_accuracy: float = Field(alias="model-accuracy", ge=0.0, le=1.0)
    restaurantName: str


class VersionCounts(BaseModel):
    """What one model version has counted, across its processes and their restarts."""

    model_config = ConfigDict(extra="forbid")

    predictions: int = Field(ge=0, description="Diners' single-review predictions.")
    correct: int = Field(ge=0, description="Diners' feedback saying the prediction was right.")
    incorrect: int = Field(ge=0, description="Diners' feedback saying it was wrong.")
    batchCorrect: int = Field(ge=0, description="Feedback on /predict/batch predictions: right.")
    batchIncorrect: int = Field(ge=0, description="Feedback on /predict/batch predictions: wrong.")
    assignments: dict[str, int] = Field(
        description="New clients the gateway assigned to this version, by split "
        "(e.g. stable=70,canary=30).",
    )


class ExperimentCounts(BaseModel):
    """Every version's counts from the shared feedback store."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store": "sqlite:///var/lib/restaurant-sentiment/feedback.sqlite3",
                    "versions": {
                        "canary": {
                            "predictions": 120, "correct": 40, "incorrect": 4,
                            "batchCorrect": 0, "batchIncorrect": 0,
                            "assignments": {"stable=70,canary=30": 31},
                        }
                    },
                }
            ]
        },
    )  # fmt: skip

    store: str = Field(description="The feedback store read (without its password).")
    versions: dict[str, VersionCounts]


class Health(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "ok"}]})

    status: str = Field(description="ok (alive), ready (model loaded) or loading.")


class VersionInfo(BaseModel):
    """What this instance serves."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"serviceVersion": "0.1.0", "modelVersion": "canary", "model": METADATA_EXAMPLE}
            ]
        },
    )

    serviceVersion: str = Field(description="The model-service's own version.")
    modelVersion: str = Field(description="The model version served.")
    model: ModelMetadata | None = Field(
        description="The model's metadata.json, the schema training writes it with; null when "
        "the model folder has none."
    )


# -- Errors ----------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """An error with a fixed, specific message."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"detail": "predictionId is not valid"}]}
    )

    detail: str


class FieldError(BaseModel):
    """One reason a request was refused: where, what kind of error, and in words."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "value_error",
                    "loc": ["body", "review"],
                    "msg": "Value error, must not be empty or only whitespace",
                    "input": " ",
                }
            ]
        },
    )

    type: str = Field(description="pydantic's error type, e.g. missing, string_too_long.")
    loc: list[str | int] = Field(description="Where: ['body', field, ...].")
    msg: str
    input: Any = Field(None, description="The value refused, when there is one.")


class ValidationErrorOut(BaseModel):
    """The request does not match the operation's schema."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "restaurantName"],
                            "msg": "Field required",
                            "input": {"review": "This excellent."},
                        }
                    ]
                }
            ]
        },
    )

    detail: list[FieldError]
