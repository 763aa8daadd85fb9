"""Request and response models of the model-service API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

MAX_REVIEW_CHARS = 5000
MAX_BATCH = 1000
NOT_BLANK = r"\S"


class ReviewIn(BaseModel):
    """A review to classify."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"restaurantName": "Gourmet Haven", "review": "This excellent."}]
        }
    )

    # The schema's pattern documents what _not_blank enforces with a clearer message.
    review: str = Field(
        min_length=1,
        max_length=MAX_REVIEW_CHARS,
        examples=["The pasta was divine."],
        json_schema_extra={"pattern": NOT_BLANK},
    )
    restaurantName: str = Field(
        min_length=1,
        max_length=200,
        examples=["Gourmet Haven"],
        json_schema_extra={"pattern": NOT_BLANK},
    )

    @field_validator("review", "restaurantName")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value


class Prediction(BaseModel):
    """The verdict on one review: 1 positive, 0 negative."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "review": "This excellent.",
                    "prediction": 1,
                    "restaurantName": "Gourmet Haven",
                    "modelVersion": "canary",
                    "predictionId": "eyJ2IjoiY2FuYXJ5IiwicCI6MSwibiI6IjNmMmEifQ.Z0w1Qg.sig",
                    "confidence": 0.93,
                }
            ]
        }
    )

    review: str
    prediction: int = Field(ge=0, le=1)
    restaurantName: str
    modelVersion: str
    predictionId: str = Field(description="Signed id to send back with the feedback.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the predicted class.")


class BatchIn(BaseModel):
    """Up to 1,000 reviews scored in one pass."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reviews": [
                        {"restaurantName": "Gourmet Haven", "review": "Lovely fish."},
                        {"restaurantName": "Gourmet Haven", "review": "Cold and bland."},
                    ]
                }
            ]
        }
    )

    reviews: list[ReviewIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(BaseModel):
    """The verdicts, in the order of the reviews."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"predictions": [], "modelVersion": "stable"}]}
    )

    predictions: list[Prediction]
    modelVersion: str


class FeedbackIn(BaseModel):
    """A user's word on whether a prediction was right."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 1}]
        }
    )

    restaurantName: str = Field(min_length=1, max_length=200, examples=["Gourmet Haven"])
    accurate: StrictBool = Field(examples=[True])
    prediction: StrictInt = Field(ge=0, le=1, examples=[1])
    predictionId: str | None = Field(None, min_length=1, max_length=512)


class FeedbackOut(BaseModel):
    """The serving version's accuracy after this feedback."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"model-accuracy": 0.87, "restaurantName": "Gourmet Haven"}]
        },
    )

    model_accuracy: float = Field(alias="model-accuracy", ge=0.0, le=1.0)
    restaurantName: str


class Health(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class VersionInfo(BaseModel):
    """What this instance serves."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{"serviceVersion": "0.1.0", "modelVersion": "stable", "model": {}}]
        },
    )

    serviceVersion: str
    modelVersion: str
    model: dict[str, object]


class ErrorOut(BaseModel):
    """An error with a fixed, specific message."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "predictionId is not valid"}]}
    )

    detail: str
