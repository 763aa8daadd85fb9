"""Settings of the frontend, read from the environment (prefix FRONTEND_) and CLI flags."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from experiment.config import ConfigError as ExperimentConfigError
from experiment.config import config_from_values
from experiment.sources import validate_window

DEFAULT_RESTAURANTS = ["Gourmet Haven", "Sizzle & Spice", "Café Serendipity", "Sea Breeze Grill"]
COOKIE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
ENV_PREFIX = "FRONTEND_"
MODEL_SERVICE_URL_ENV = "MODEL_SERVICE_URL"
PROMETHEUS_URL_ENV = "FRONTEND_PROMETHEUS_URL"
URL_PATTERN = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?$")


def _check_url(value: str) -> str:
    if not URL_PATTERN.match(value):
        raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8080")
    return value.rstrip("/")


def slugify(name: str) -> str:
    """Turn a restaurant name into its URL slug ("Café Serendipity" -> "cafe-serendipity")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


class Restaurant(BaseModel):
    """One restaurant of the catalogue, as the pages show it."""

    name: str
    slug: str


class Settings(BaseSettings):
    """Frontend settings; bad values stop the start with a message naming the setting."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, populate_by_name=True, extra="ignore", frozen=True
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(default=8083, ge=1, le=65535, description="Port to listen on.")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
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
    version_cookie: str = Field(
        default="model-service-version",
        description="Name of the sticky model-version cookie to relay.",
    )
    restaurants: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RESTAURANTS),
        min_length=1,
        max_length=50,
        description="Restaurant names shown in the picker (JSON list).",
    )

    prometheus_url: str | None = Field(
        default=None,
        # The experiment CLI's variable is read too, so one setting serves both.
        validation_alias=AliasChoices(PROMETHEUS_URL_ENV, "PROMETHEUS_URL", "prometheus_url"),
        description="Prometheus HTTP API the /experiment page reads; unset: the /metrics URLs.",
    )
    experiment_metrics_urls: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Each model version's /metrics URL (JSON list), read without Prometheus.",
    )
    experiment_window: str = Field(
        default="7d", description="Prometheus range the experiment counts over, or 'all'."
    )
    experiment_config: dict[str, Any] | None = Field(
        default=None,
        description="The `experiment` and `modelService.versions` values as JSON; unset: the "
        "chart's values.yaml in the source tree.",
    )

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

    @field_validator("experiment_config")
    @classmethod
    def _experiment_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                config_from_values(value)
            except ExperimentConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def window(self) -> str | None:
        """The Prometheus window, None for the raw counters."""
        return None if self.experiment_window == "all" else self.experiment_window

    @field_validator("version_cookie")
    @classmethod
    def _cookie_name(cls, value: str) -> str:
        if not COOKIE_NAME_PATTERN.match(value):
            raise ValueError("must be a cookie name (letters, digits, '-', '_', at most 64)")
        return value

    @field_validator("restaurants")
    @classmethod
    def _catalogue(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in names:
            slug = slugify(name)
            if not name.strip() or len(name) > 100 or not slug:
                raise ValueError(f"restaurant name {name!r} must have 1 to 100 characters")
            if slug in seen:
                raise ValueError(f"two restaurants share the URL name {slug!r}")
            seen.add(slug)
        return names

    @property
    def catalogue(self) -> list[Restaurant]:
        """The restaurants with their URL slugs, in display order."""
        return [Restaurant(name=name, slug=slugify(name)) for name in self.restaurants]


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
        if name == "FRONTEND_EXPERIMENT_CONFIG":
            expected = 'an object such as {"experiment": {...}, "modelService": {...}}'
        else:
            expected = 'a list such as ["A", "B"]'
        return f"invalid setting {name}: not valid JSON (expected {expected})"
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "settings"
        name = setting_name(field) if field in Settings.model_fields else field
        lines.append(f"invalid setting {name}: {item['msg']}")
    return "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()
