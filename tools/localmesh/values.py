"""The traffic keys of the Helm chart's values file, validated with messages naming the value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VALUES = ROOT / "deploy" / "helm" / "restaurant-sentiment" / "values.yaml"

# A version name is a folder, a pod label and a cookie value: keep it to DNS-label characters.
VERSION_NAME = r"^[a-z][a-z0-9-]{0,30}$"
# Cookie-name characters that need no escaping in a regex or a header value.
COOKIE_NAME = r"^[A-Za-z0-9_-]{1,64}$"
HOST_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"

Port = Annotated[int, Field(ge=1, le=65535)]


class ConfigError(Exception):
    """A configuration problem, with a message that names the setting."""


class _Model(BaseModel):
    # The chart has many more keys (images, resources, monitoring): only traffic keys matter.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True, strict=True
    )


class Hosts(_Model):
    """Host names of the app and of the model-service API at the gateway."""

    app: str = Field(pattern=HOST_NAME)
    service: str = Field(pattern=HOST_NAME)


class Version(_Model):
    """One model version served at once."""

    name: str = Field(pattern=VERSION_NAME)
    weight: int = Field(ge=0, le=100)


class Cookie(_Model):
    """The sticky cookie that keeps a user on one version."""

    name: str = Field(pattern=COOKIE_NAME)
    max_age: int = Field(ge=1)


class ModelService(_Model):
    """The model-service keys: container port, versions with weights, sticky cookie."""

    port: Port
    versions: list[Version] = Field(min_length=1)
    cookie: Cookie

    @field_validator("versions")
    @classmethod
    def _weights_sum_to_100(cls, versions: list[Version]) -> list[Version]:
        names = [v.name for v in versions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"version names must be unique, repeated: {', '.join(duplicates)}")
        total = sum(v.weight for v in versions)
        if total != 100:
            shares = ", ".join(f"{v.name}={v.weight}" for v in versions)
            raise ValueError(f"weights must sum to 100, got {total} ({shares})")
        return versions


class RateLimit(_Model):
    """The per-client rate limit of the app homepage."""

    enabled: bool
    path: str = Field(pattern=r"^/[A-Za-z0-9._~/-]*$")
    requests: int = Field(ge=1)
    interval_seconds: int = Field(ge=1)
    max_clients: int = Field(ge=1)


class Gateway(_Model):
    """The ingress gateway keys the Envoy routes depend on."""

    port: Port = 80


class Values(_Model):
    """The traffic keys of values.yaml."""

    hosts: Hosts
    model_service: ModelService
    rate_limit: RateLimit
    gateway: Gateway = Gateway()

    @property
    def version_names(self) -> list[str]:
        return [v.name for v in self.model_service.versions]


def describe_errors(error: ValidationError, prefix: str = "") -> str:
    """Render pydantic errors as `dotted.path[i]: message (got value)` lines."""
    lines = []
    for item in error.errors():
        path = prefix
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        detail = item["msg"]
        if item["type"] != "missing":
            detail += f" (got {item['input']!r})"
        lines.append(f"{path or 'values'}: {detail}")
    return "\n".join(lines)


def parse_values(raw: Any, source: str = "values") -> Values:
    """Validate a values mapping; raise ConfigError naming each bad value."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of values, got {type(raw).__name__}")
    try:
        return Values.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid values in {source}:\n{describe_errors(exc)}") from None


def load_values(path: Path = DEFAULT_VALUES) -> Values:
    """Read and validate the chart's values file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the values file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the values file {path} is not valid YAML: {exc}") from None
    return parse_values(raw, str(path))


def check_model_folders(values: Values, model_dir: Path) -> None:
    """Fail unless every version has its trained model folder `<model_dir>/<name>`."""
    for index, version in enumerate(values.model_service.versions):
        folder = model_dir / version.name
        if not folder.is_dir():
            raise ConfigError(
                f"modelService.versions[{index}].name: unknown version {version.name!r}: "
                f"no model folder {folder} (train it with `make models`)"
            )
