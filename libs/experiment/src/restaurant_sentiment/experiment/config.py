"""The experiment's thresholds and traffic weights, taken from the typed chart values."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from restaurant_sentiment.values import ConfigError, Thresholds, Values, load_values

__all__ = ["ConfigError", "ExperimentConfig", "Thresholds", "config_from_values", "load_config"]


class ExperimentConfig(BaseModel):
    """Thresholds, the configured weight of each version, and which two versions compete."""

    model_config = ConfigDict(frozen=True)

    thresholds: Thresholds
    weights: dict[str, float]
    control: str = "stable"
    treatment: str = "canary"
    # The split in force ("stable=70,canary=30"): the sample-ratio test counts the assignments
    # made under it, since those were drawn with these weights.
    split: str = ""

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


def config_from_values(
    values: Values, control: str = "stable", treatment: str = "canary"
) -> ExperimentConfig:
    """The experiment of these values, comparing treatment with control; ConfigError if unknown."""
    try:
        return ExperimentConfig(
            thresholds=values.experiment,
            weights={name: float(weight) for name, weight in values.weights.items()},
            control=control,
            treatment=treatment,
            split=values.split,
        )
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        message = errors()[0]["msg"] if callable(errors) else str(exc)
        raise ConfigError(message.removeprefix("Value error, ")) from None


def load_config(path: Path, control: str = "stable", treatment: str = "canary") -> ExperimentConfig:
    """Read the experiment configuration from a values file."""
    values = load_values(path)
    try:
        return config_from_values(values, control=control, treatment=treatment)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
