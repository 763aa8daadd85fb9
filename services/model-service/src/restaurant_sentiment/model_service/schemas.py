"""Request and response models of the model-service API.

Every model forbids properties it does not define (`additionalProperties: false` in the OpenAPI
document), so a misspelt field is refused with a 422 naming it instead of being ignored. The one
exception is the trained model's metadata (ModelInfo), which training may extend.
The examples are real answers of the service.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator
from pydantic.json_schema import JsonDict

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
MODEL_INFO_EXAMPLE: JsonDict = {
    "version": "canary",
    "description": "TF-IDF word 1–2-grams with negation marking + logistic regression",
    "vectorizer": "TfidfVectorizer",
    "classifier": "LogisticRegression",
    "data": {
        "file": "restaurant_reviews.tsv",
        "sha256": "d82aba64fea8a47aef2c56833c9f9ddb0845677b7bcc54357011b43f85d677de",
        "reviews": 2794,
        "trained_on": 2235,
    },
    "artefacts": {
        "c1_BoW_Sentiment_Model.pkl": (
            "b0bcd5ec60759511ccb177766835a9b8a0cf7f6a53234465ff7446fd92fb45be"
        ),
        "c2_Classifier_Sentiment_Model": (
            "0923f766bc1585aaef11bcba0a88eec663678ac7eae2df3690e9ef2388c12ae2"
        ),
    },
    "held_out": {
        "fraction": 0.2,
        "accuracy": 0.8729874776386404,
        "precision": 0.8692579505300353,
        "recall": 0.8785714285714286,
        "confusion_matrix": [[242, 37], [34, 246]],
    },
    "cross_validation": {
        "folds": 5,
        "accuracy_mean": 0.8919095158404986,
        "accuracy_std": 0.013666075646543764,
        "fold_accuracy": [
            0.8694096601073346,
            0.9069767441860465,
            0.8908765652951699,
            0.9051878354203936,
            0.8870967741935484,
        ],
    },
    "libraries": {"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6", "joblib": "1.6.0"},
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


class Health(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "ok"}]})

    status: str = Field(description="ok (alive), ready (model loaded) or loading.")


# -- The trained model's metadata: what training writes to ml-model/<version>/metadata.json ------
# Training may add fields: each object below keeps properties it does not name (they reach the
# client as they are), while the ones named here are typed.


class TrainingData(BaseModel):
    """The corpus the model was trained and evaluated on."""

    model_config = ConfigDict(extra="allow")

    file: str = Field(description="The corpus file name.")
    sha256: str = Field(pattern=SHA256, description="The corpus file's SHA-256.")
    reviews: int = Field(ge=0, description="Labelled reviews in the corpus.")
    trained_on: int = Field(ge=0, description="Reviews the served model was fitted on.")


class HeldOutEvaluation(BaseModel):
    """Scores on the held-out reviews, which the served model never saw."""

    model_config = ConfigDict(extra="allow")

    fraction: float = Field(gt=0.0, lt=1.0, description="Share of the corpus held out.")
    accuracy: float = Field(ge=0.0, le=1.0)
    precision: float = Field(ge=0.0, le=1.0)
    recall: float = Field(ge=0.0, le=1.0)
    confusion_matrix: list[list[int]] = Field(description="[[TN, FP], [FN, TP]]")


class CrossValidation(BaseModel):
    """Stratified k-fold cross-validation of the same recipe."""

    model_config = ConfigDict(extra="allow")

    folds: int = Field(ge=2)
    accuracy_mean: float = Field(ge=0.0, le=1.0)
    accuracy_std: float = Field(ge=0.0)
    fold_accuracy: list[float] = Field(description="Accuracy on each fold, in order.")


class ModelInfo(BaseModel):
    """A trained model version: how it was made and how well it scored (its metadata.json)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [MODEL_INFO_EXAMPLE]})

    version: str = Field(description="The model version, as trained.")
    description: str | None = Field(None, description="The recipe, in words.")
    vectorizer: str = Field(description="The vectoriser's class.")
    classifier: str = Field(description="The classifier's class.")
    data: TrainingData
    artefacts: dict[str, Annotated[str, Field(pattern=SHA256)]] = Field(
        description="SHA-256 of each artefact file, by file name; checked when the model loads."
    )
    held_out: HeldOutEvaluation
    cross_validation: CrossValidation
    libraries: dict[str, str] = Field(description="Versions of Python and the libraries used.")


class VersionInfo(BaseModel):
    """What this instance serves."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"serviceVersion": "0.1.0", "modelVersion": "canary", "model": MODEL_INFO_EXAMPLE}
            ]
        },
    )

    serviceVersion: str = Field(description="The model-service's own version.")
    modelVersion: str = Field(description="The model version served.")
    model: ModelInfo | None = Field(
        description="The model's metadata.json; null when the model folder has none, or one "
        "that does not match this schema (the service logs why)."
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
