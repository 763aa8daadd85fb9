"""Typed models of the chart values that services and tools read (everything else is ignored)."""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from restaurant_sentiment.values.names import (
    COOKIE_NAME,
    HOST_NAME,
    MAX_RESTAURANTS,
    OTHER_RESTAURANT,
    VERSION_NAME,
)

Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    # The chart has many more keys (images, resources, monitoring): only the shared ones matter.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True, strict=True
    )


# Pages ask for slugs on every request; the names are few.
@lru_cache(maxsize=1024)
def slugify(name: str) -> str:
    """A restaurant name as its URL slug ("Café Serendipity" -> "cafe-serendipity")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


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
    """The ingress gateway keys the routes depend on."""

    port: Port = 80


class Restaurant(_Model):
    """One restaurant of the catalogue."""

    name: str = Field(min_length=1, max_length=100)
    tagline: str = Field(default="", max_length=200)

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if name != name.strip() or not slugify(name):
            raise ValueError("must not start or end with spaces and needs a letter or digit")
        if name == OTHER_RESTAURANT:
            raise ValueError(f"{OTHER_RESTAURANT!r} is the label of restaurants not listed")
        return name

    @computed_field  # type: ignore[prop-decorator]
    @property
    def slug(self) -> str:
        """The restaurant's URL name."""
        return slugify(self.name)


class Thresholds(_Model):
    """The decision rule's thresholds, under `experiment:`."""

    # Thresholds are read from YAML and JSON alike, where 200 and 200.0 mean the same; a
    # misspelt threshold must not pass silently as a default.
    model_config = ConfigDict(strict=False, extra="forbid")

    min_feedback_per_version: int = Field(ge=1)
    confidence_level: float = Field(gt=0.5, lt=1.0)
    promote_probability: float = Field(gt=0.5, lt=1.0)
    rollback_probability: float = Field(gt=0.0, lt=0.5)
    srm_p_value: float = Field(gt=0.0, lt=1.0)


class Rollout(_Model):
    """The progressive rollout's steps and guards, under `rollout:` (`make rollout` reads them).

    Every key has a default, so values files written before the rollout existed stay valid.
    """

    # Read from YAML and JSON alike (5 and 5.0); a misspelt key must not pass as a default.
    model_config = ConfigDict(strict=False, extra="forbid")

    # The version that keeps the rest of the traffic, and the one that is rolled out.
    control: str = Field(default="stable", pattern=VERSION_NAME)
    treatment: str = Field(default="canary", pattern=VERSION_NAME)
    # The treatment's share at each step, in percent, rising; 100 (the end) may be left out.
    steps: list[int] = Field(default=[10, 30, 50, 100], min_length=1, max_length=20)
    # Feedback events each version needs at a step, counted from the step's start.
    min_feedback_per_step: int = Field(default=50, ge=1)
    # Advance on CONTINUE only when P(treatment better) is at least this.
    no_harm_probability: float = Field(default=0.5, ge=0.0, le=1.0)
    # Roll back when more than this share of the treatment's requests at a step end in a 5xx.
    max_error_rate: float = Field(default=0.05, ge=0.0, lt=1.0)
    # ... judged once the treatment has answered at least this many requests at the step.
    min_requests_for_error_rate: int = Field(default=20, ge=1)
    # Seconds between two readings of the counts.
    poll_seconds: float = Field(default=10.0, gt=0.0, le=3600.0)
    # Seconds a step may take to reach a verdict; then the rollout rolls back.
    step_timeout_seconds: float = Field(default=3600.0, gt=0.0)

    @field_validator("steps")
    @classmethod
    def _rising_percentages(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= step <= 100 for step in steps):
            raise ValueError(f"each step is a percentage from 1 to 100, got {steps}")
        if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
            raise ValueError(f"the steps must rise, got {steps}")
        return steps

    @model_validator(mode="after")
    def _two_versions(self) -> Rollout:
        if self.control == self.treatment:
            raise ValueError(f"control and treatment are both {self.control!r}")
        return self

    @property
    def analysed_steps(self) -> list[int]:
        """The steps at which the treatment is judged: all below 100 (100 is the end)."""
        return [step for step in self.steps if step < 100]


# The retry conditions both Istio's `retries.retryOn` and Envoy's `retry_on` take, or an HTTP
# status code of the 5xx family (Istio passes codes to Envoy's `retriable_status_codes`).
RETRY_ON = (
    r"^(reset|reset-before-request|connect-failure|refused-stream|gateway-error|5xx"
    r"|retriable-4xx|envoy-ratelimited|5[0-9][0-9])$"
)


class Retries(_Model):
    """How the gateway and the mesh retry a request that failed on the way to a pod."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=2, ge=0, le=10)
    per_try_timeout_seconds: int = Field(default=10, ge=1, le=300)
    retry_on: list[Annotated[str, Field(pattern=RETRY_ON)]] = Field(
        default_factory=lambda: ["reset", "connect-failure", "refused-stream", "503"],
        min_length=1,
    )
    # Retries in flight at once to one service: Envoy's default of 3 overflows while pods churn.
    max_concurrent: int = Field(default=1024, ge=1)

    @field_validator("retry_on")
    @classmethod
    def _distinct(cls, conditions: list[str]) -> list[str]:
        repeated = sorted({c for c in conditions if conditions.count(c) > 1})
        if repeated:
            raise ValueError(f"conditions must not repeat: {', '.join(repeated)}")
        return conditions

    @property
    def status_codes(self) -> list[int]:
        """The HTTP status codes that are retried."""
        return [int(c) for c in self.retry_on if c.isdigit()]

    @property
    def conditions(self) -> list[str]:
        """The named retry conditions, without the status codes."""
        return [c for c in self.retry_on if not c.isdigit()]


class OutlierDetection(_Model):
    """Passive health checking: a pod that fails to answer is taken out of the pool a while."""

    model_config = ConfigDict(extra="forbid")

    consecutive_local_origin_failures: int = Field(default=3, ge=1)
    consecutive_5xx_errors: int = Field(default=0, ge=0, alias="consecutive5xxErrors")
    interval_seconds: int = Field(default=5, ge=1)
    base_ejection_seconds: int = Field(default=15, ge=1)
    max_ejection_percent: int = Field(default=50, ge=1, le=100)
    min_health_percent: int = Field(default=50, ge=0, le=100)


class Drain(_Model):
    """How a stopping pod (or a replaced local process) finishes what it has."""

    model_config = ConfigDict(extra="forbid")

    pre_stop_seconds: int = Field(default=5, ge=1, le=300)
    termination_grace_period_seconds: int = Field(default=30, ge=1, le=3600)


class Resilience(_Model):
    """One drain and retry policy for the ingress gateway, the mesh and `make up`'s Envoy."""

    model_config = ConfigDict(extra="forbid")

    retries: Retries = Retries()
    outlier_detection: OutlierDetection = OutlierDetection()
    drain: Drain = Drain()

    @model_validator(mode="after")
    def _grace_covers_the_drain(self) -> Resilience:
        needed = self.drain.pre_stop_seconds + self.retries.per_try_timeout_seconds
        if self.drain.termination_grace_period_seconds <= needed:
            raise ValueError(
                "drain.terminationGracePeriodSeconds must be longer than drain.preStopSeconds + "
                f"retries.perTryTimeoutSeconds (the longest request), {needed}s; got "
                f"{self.drain.termination_grace_period_seconds}s"
            )
        return self

    @property
    def proxy_drain_seconds(self) -> int:
        """How long a stopping pod's proxy keeps serving: the pause, then the longest request."""
        return self.drain.pre_stop_seconds + self.retries.per_try_timeout_seconds


REDIS_URL = r"^rediss?://[^\s:@/]+(:[0-9]{1,5})?(/[0-9]{1,2})?$"


class StoreRedis(_Model):
    """The Redis the chart deploys for the feedback store."""

    deploy: bool = True
    port: Port = 6379


class FeedbackStore(_Model):
    """Where every model-service pod claims prediction ids and tallies the experiment."""

    url: str = Field(default="", pattern=r"^$|" + REDIS_URL.removeprefix("^"))
    existing_secret: str = ""
    secret_key: str = Field(default="redis-password", min_length=1)
    redis: StoreRedis = StoreRedis()

    @model_validator(mode="after")
    def _one_redis(self) -> FeedbackStore:
        if self.url and self.redis.deploy:
            raise ValueError(
                "set either url (a Redis of yours) or redis.deploy (the chart's Redis), not both"
            )
        return self

    @property
    def shared(self) -> bool:
        """Whether every pod uses one store (else each remembers only its own claims)."""
        return bool(self.url) or self.redis.deploy


class Values(_Model):
    """The keys of values.yaml that more than one component reads."""

    hosts: Hosts
    model_service: ModelService
    rate_limit: RateLimit
    gateway: Gateway = Gateway()
    restaurants: list[Restaurant] = Field(min_length=1, max_length=MAX_RESTAURANTS)
    experiment: Thresholds
    rollout: Rollout = Rollout()

    resilience: Resilience = Resilience()
    feedback_store: FeedbackStore = FeedbackStore()

    @field_validator("restaurants")
    @classmethod
    def _distinct(cls, restaurants: list[Restaurant]) -> list[Restaurant]:
        slugs = [r.slug for r in restaurants]
        repeated = sorted({s for s in slugs if slugs.count(s) > 1})
        if repeated:
            raise ValueError(f"two restaurants share the URL name {', '.join(repeated)}")
        return restaurants

    @property
    def version_names(self) -> list[str]:
        """The names of the versions served, in order."""
        return [v.name for v in self.model_service.versions]

    @property
    def weights(self) -> dict[str, int]:
        """Each version's share of new traffic, in percent."""
        return {v.name: v.weight for v in self.model_service.versions}

    @property
    def split(self) -> str:
        """The weights in force as one label value, e.g. "stable=70,canary=30"."""
        return ",".join(f"{v.name}={v.weight}" for v in self.model_service.versions)

    @property
    def restaurant_names(self) -> list[str]:
        """The catalogue's names, in display order."""
        return [r.name for r in self.restaurants]

    def with_weights(self, weights: dict[str, int]) -> Values:
        """The same values with each version's weight replaced (validated again)."""
        versions = [
            {"name": v.name, "weight": weights.get(v.name, v.weight)}
            for v in self.model_service.versions
        ]
        raw = self.model_dump(by_alias=True, exclude={"restaurants": {"__all__": {"slug"}}})
        raw["modelService"]["versions"] = versions
        return type(self).model_validate(raw)
