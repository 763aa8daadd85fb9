"""Settings of the model-service, read from MODEL_SERVICE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RESTAURANTS = ["Gourmet Haven", "Sizzle & Spice", "Café Serendipity", "Sea Breeze Grill"]
OTHER_RESTAURANT = "other"


class Settings(BaseSettings):
    """Everything the model-service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MODEL_SERVICE_", protected_namespaces=())

    model_version: str = Field(
        "stable",
        pattern=r"^[a-z][a-z0-9-]{0,30}$",
        description="Model version to serve: the folder <model_dir>/<model_version>.",
    )
    model_dir: Path = Field(Path("ml-model"), description="Folder holding one folder per version.")
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    restaurants: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RESTAURANTS),
        description="Restaurant names used as metric labels; others are counted as 'other'.",
    )
    feedback_secret: SecretStr | None = Field(
        None, description="Key that signs prediction ids; a random one per start when unset."
    )
    require_prediction_id: bool = Field(
        False, description="Reject feedback without a predictionId."
    )
    prediction_id_max_age: int = Field(
        7 * 24 * 3600, ge=60, description="Seconds an id stays valid."
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)

    @field_validator("restaurants")
    @classmethod
    def _bounded_catalogue(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if not names or any(not name or len(name) > 100 for name in names):
            raise ValueError("must be a non-empty JSON list of names of 1 to 100 characters")
        if len(names) > 50:
            raise ValueError("at most 50 restaurants, since each name becomes a metric label")
        if OTHER_RESTAURANT in names:
            raise ValueError(f"'{OTHER_RESTAURANT}' is reserved for restaurants not in the list")
        return names

    @field_validator("feedback_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters long")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
