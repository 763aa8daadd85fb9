"""Settings of the frontend, read from the environment (prefix FRONTEND_) and CLI flags."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from restaurant_sentiment.experiment.sources import validate_window
from restaurant_sentiment.values import ConfigError, Restaurant, Values, ValuesFile

ENV_PREFIX = "FRONTEND_"
MODEL_SERVICE_URL_ENV = "MODEL_SERVICE_URL"
PROMETHEUS_URL_ENV = "FRONTEND_PROMETHEUS_URL"
URL_PATTERN = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?$")


def _check_url(value: str) -> str:
    if not URL_PATTERN.match(value):
        raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8080")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Frontend settings; bad values stop the start with a message naming the setting."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, populate_by_name=True, extra="ignore", frozen=True
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(default=8083, ge=1, le=65535, description="Port to listen on.")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    access_log: bool = Field(
        default=False,
        description="One line per request (method, path, status, milliseconds) on stderr.",
    )
    model_service_url: str = Field(
        default="http://127.0.0.1:8080",
        # The original app's variable name, read without the prefix.
        validation_alias=AliasChoices(MODEL_SERVICE_URL_ENV, "model_service_url"),
        description="Base URL of the model-service (or of the mesh in front of it).",
    )
    connect_timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds to connect.")
    read_timeout: float = Field(
        default=5.0, gt=0, le=120, description="Seconds to wait for an answer."
    )
    reload_templates: bool = Field(
        default=False,
        description="Check template files for edits on each render (development only).",
    )
    model_service_connections: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Keep-alive connections to the model-service at most (one pool per process).",
    )
    values_file: Path = Field(
        description="The chart's values (mounted in the cluster and compose): the restaurant "
        "catalogue, the sticky cookie, the versions with their weights and the experiment's "
        "thresholds. Read again when it changes, so new weights show without a restart.",
    )

    prometheus_url: str | None = Field(
        default=None,
        # The experiment CLI's variable is read too, so one setting serves both.
        validation_alias=AliasChoices(PROMETHEUS_URL_ENV, "PROMETHEUS_URL", "prometheus_url"),
        description="Prometheus HTTP API the /experiment page reads; unset: the /metrics URLs, "
        "else the model-service's /experiment/counts.",
    )
    experiment_metrics_urls: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Each model version's /metrics URL (JSON list), read without Prometheus; "
        "unset: the model-service's /experiment/counts.",
    )
    experiment_window: str = Field(
        default="7d", description="Prometheus range the experiment counts over, or 'all'."
    )

    _values_file: ValuesFile | None = PrivateAttr(default=None)

    @field_validator("model_service_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        return _check_url(value) if value else None

    @field_validator("experiment_metrics_urls")
    @classmethod
    def _metrics_urls(cls, values: list[str]) -> list[str]:
        return [_check_url(value) for value in values]

    @field_validator("experiment_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value.lower() in {"all", ""}:
            return "all"
        return validate_window(value)

    @model_validator(mode="after")
    def _read_values(self) -> Settings:
        try:
            self._values_file = ValuesFile(self.values_file)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def live_values(self) -> ValuesFile:
        """The values file, read again whenever it changes."""
        assert self._values_file is not None
        return self._values_file

    @property
    def values(self) -> Values:
        """The values as they were at start (catalogue and cookie do not change at run time)."""
        assert self._values_file is not None
        return self._values_file.start

    @property
    def window(self) -> str | None:
        """The Prometheus window, None for the raw counters."""
        return None if self.experiment_window == "all" else self.experiment_window

    @property
    def catalogue(self) -> list[Restaurant]:
        """The restaurants, in display order."""
        return self.values.restaurants

    @property
    def version_cookie(self) -> str:
        """Name of the sticky model-version cookie to relay."""
        return self.values.model_service.cookie.name


def setting_name(field: str) -> str:
    """The environment variable that configures a settings field."""
    if field == "model_service_url":
        return MODEL_SERVICE_URL_ENV
    if field == "prometheus_url":
        return PROMETHEUS_URL_ENV
    return ENV_PREFIX + field.upper()


def describe_error(error: ValidationError | SettingsError) -> str:
    """A one-line-per-setting explanation of invalid settings."""
    if isinstance(error, SettingsError):
        # pydantic-settings names the field in its message when a value is not valid JSON.
        match = re.search(r'field "(\w+)"', str(error))
        name = setting_name(match.group(1)) if match else "a setting"
        return f'invalid setting {name}: not valid JSON (expected a list such as ["A", "B"])'
    lines = []
    for item in error.errors():
        # A check of the whole configuration is the values file's.
        field = str(item["loc"][0]) if item["loc"] else "values_file"
        name = setting_name(field) if field in Settings.model_fields else field
        lines.append(f"invalid setting {name}: {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()  # type: ignore[call-arg]
