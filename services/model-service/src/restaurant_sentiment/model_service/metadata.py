"""``metadata.json`` of a model version: one schema that training writes and loading reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]
# A file in the version folder itself: no path separators.
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]


class _Strict(BaseModel):
    # Unknown fields are refused: a metadata.json from another schema fails loudly at load.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingData(_Strict):
    """The labelled file the version was trained and evaluated on."""

    file: str
    sha256: Sha256
    reviews: Count
    trained_on: Count = Field(description="Reviews of the training split the model was fitted on")


class HeldOut(_Strict):
    """Quality on the stratified held-out split, which the served model never saw."""

    fraction: Fraction
    reviews: Count
    accuracy: Fraction
    precision: Fraction
    recall: Fraction
    confusion_matrix: list[list[Count]] = Field(description="[[TN, FP], [FN, TP]]")
    ece: Fraction = Field(
        description="Expected calibration error of the served confidence: 10 equal-width bins "
        "of the verdict's probability"
    )


class CrossValidation(_Strict):
    """Stratified k-fold cross-validated accuracy on the whole training file."""

    folds: Annotated[int, Field(ge=2)]
    accuracy_mean: Fraction
    accuracy_std: Annotated[float, Field(ge=0.0)]
    fold_accuracy: list[Fraction]


class Calibration(_Strict):
    """How the confidence is calibrated (the ``c3_Calibration.pkl`` artefact)."""

    method: Literal["platt_slope", "binned"]
    description: str
    fitted_on: str
    uncalibrated_ece: Fraction = Field(
        description="Held-out ECE of the model's own sigmoid(log-odds), before calibration"
    )


class EvaluationSet(_Strict):
    """Quality on a labelled file the model was never trained on."""

    file: str
    sha256: Sha256
    reviews: Count
    accuracy: Fraction
    ece: Fraction


# A real metadata.json (the canary's), the example of /version's `model` in the API docs; a test
# holds it to this schema.
METADATA_EXAMPLE: JsonDict = json.loads(
    (Path(__file__).parent / "metadata_example.json").read_text(encoding="utf-8")
)


class ModelMetadata(_Strict):
    """Everything recorded about a trained model version (its metadata.json)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [METADATA_EXAMPLE]}
    )

    version: str
    description: str
    vectorizer: str
    classifier: str
    data: TrainingData
    artefacts: dict[FileName, Sha256] = Field(description="sha256 of each artefact file, by name")
    held_out: HeldOut
    cross_validation: CrossValidation
    calibration: Calibration | None = None
    proxy_set: EvaluationSet | None = Field(
        default=None,
        description="The plain-review set that stands in for real reviews, when it was given",
    )
    libraries: dict[str, str]
