"""Settings of the model-service, read from MODEL_SERVICE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from restaurant_sentiment.model_service.feedback_store import check_url
from restaurant_sentiment.values import ConfigError, Values, load_values
from restaurant_sentiment.values.names import VERSION_NAME

ENV_PREFIX = "MODEL_SERVICE_"


class Settings(BaseSettings):
    """Everything the model-service can be configured with."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, protected_namespaces=())

    model_version: str = Field(
        "stable",
        pattern=VERSION_NAME,
        description="Model version to serve: the folder <model_dir>/<model_version>.",
    )
    model_dir: Path = Field(Path("ml-model"), description="Folder holding one folder per version.")
    values_file: Path = Field(
        description="The chart's values (mounted in the cluster and compose): the restaurant "
        "catalogue that bounds the metric labels."
    )
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = Field(
        default=False,
        description="One line per request (method, path, status, milliseconds) on stderr.",
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
    feedback_store: str = Field(
        "memory",
        description="Where claimed prediction ids and the experiment's tallies live, shared by "
        "every process that serves feedback: memory (this process only), sqlite:///PATH (the "
        "processes of one machine) or redis://[:PASSWORD@]HOST[:PORT][/DB] (a cluster).",
    )
    feedback_store_password: SecretStr | None = Field(
        None, description="Password of the Redis feedback store, when not in its URL."
    )

    _values: Values | None = PrivateAttr(default=None)

    @field_validator("feedback_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters long")
        return value

    @field_validator("feedback_store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return check_url(value)

    @model_validator(mode="after")
    def _read_values(self) -> Settings:
        try:
            self._values = load_values(self.values_file)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def values(self) -> Values:
        """The chart values the file held at start."""
        assert self._values is not None
        return self._values


def setting_name(field: str) -> str:
    """The environment variable that sets a field."""
    return ENV_PREFIX + field.upper()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()  # type: ignore[call-arg]
