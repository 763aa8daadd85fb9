"""The experiment's thresholds and traffic weights, read from the Helm chart's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_VALUES = (
    Path(__file__).resolve().parents[2] / "deploy" / "helm" / "restaurant-sentiment" / "values.yaml"
)


class ConfigError(ValueError):
    """The values file is missing, unreadable or holds an invalid setting."""


class Thresholds(BaseModel):
    """The decision rule's thresholds, named as under `experiment:` in values.yaml."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    min_feedback_per_version: int = Field(ge=1, alias="minFeedbackPerVersion")
    confidence_level: float = Field(gt=0.5, lt=1.0, alias="confidenceLevel")
    promote_probability: float = Field(gt=0.5, lt=1.0, alias="promoteProbability")
    rollback_probability: float = Field(gt=0.0, lt=0.5, alias="rollbackProbability")
    srm_p_value: float = Field(gt=0.0, lt=1.0, alias="srmPValue")


class ExperimentConfig(BaseModel):
    """Thresholds, the configured weight of each version, and which two versions compete."""

    model_config = ConfigDict(frozen=True)

    thresholds: Thresholds
    weights: dict[str, float]
    control: str = "stable"
    treatment: str = "canary"

    @model_validator(mode="after")
    def _versions_known(self) -> ExperimentConfig:
        for role, name in (("control", self.control), ("treatment", self.treatment)):
            if name not in self.weights:
                raise ValueError(
                    f"{role} version {name!r} is not in modelService.versions "
                    f"({', '.join(self.weights) or 'none'})"
                )
        if self.control == self.treatment:
            raise ValueError(f"control and treatment are both {self.control!r}")
        return self


def _version_weights(values: dict[str, Any]) -> dict[str, float]:
    versions = (values.get("modelService") or {}).get("versions")
    if not isinstance(versions, list) or not versions:
        raise ConfigError("modelService.versions must be a non-empty list")
    weights: dict[str, float] = {}
    for index, entry in enumerate(versions):
        where = f"modelService.versions[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}.name must be a string")
        weight = entry.get("weight")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 <= weight <= 100
        ):
            raise ConfigError(f"{where}.weight must be a number from 0 to 100, got {weight!r}")
        if entry["name"] in weights:
            raise ConfigError(f"{where}.name {entry['name']!r} appears twice")
        weights[entry["name"]] = float(weight)
    if abs(sum(weights.values()) - 100.0) > 1e-9:
        raise ConfigError(
            f"modelService.versions weights must sum to 100, got {sum(weights.values())}"
        )
    return weights


def config_from_values(
    values: dict[str, Any], control: str = "stable", treatment: str = "canary"
) -> ExperimentConfig:
    """Build the experiment configuration from already-parsed chart values."""
    if not isinstance(values, dict):
        raise ConfigError("the values file must hold a mapping at its top level")
    raw = values.get("experiment")
    if not isinstance(raw, dict):
        raise ConfigError("experiment must be a mapping of thresholds")
    try:
        thresholds = Thresholds.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"experiment.{field}: {first['msg']}") from None
    try:
        return ExperimentConfig(
            thresholds=thresholds,
            weights=_version_weights(values),
            control=control,
            treatment=treatment,
        )
    except ValidationError as exc:
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def load_config(
    path: str | Path | None = None, control: str = "stable", treatment: str = "canary"
) -> ExperimentConfig:
    """Read the experiment configuration from a Helm values file (the chart's by default)."""
    path = Path(path) if path is not None else DEFAULT_VALUES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read values file {path}: {exc.strerror or exc}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"values file {path} is not valid YAML: {exc}") from None
    try:
        return config_from_values(values, control=control, treatment=treatment)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
