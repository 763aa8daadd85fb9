"""The model-service client: predictions, feedback, and the sticky version cookie."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from restaurant_sentiment.values.names import VERSION_NAME

# A model version as the chart names it; anything else is never sent upstream.
VERSION_VALUE = re.compile(VERSION_NAME)
PREDICTION_ID = re.compile(r"^[A-Za-z0-9_.:=-]{1,512}$")
MAX_COOKIE_AGE = 365 * 24 * 3600
MAX_MESSAGE_CHARS = 300

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Prediction(BaseModel):
    """The model-service's answer to POST /predict."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    prediction: int = Field(ge=0, le=1)
    model_version: str = Field(alias="modelVersion", pattern=VERSION_VALUE.pattern)
    prediction_id: str = Field(alias="predictionId", pattern=PREDICTION_ID.pattern)
    confidence: float | None = Field(default=None, ge=0, le=1)


class Accuracy(BaseModel):
    """The model-service's answer to POST /model-accuracy."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    accuracy: float = Field(alias="model-accuracy", ge=0, le=1)


@dataclass(frozen=True)
class VersionCookie:
    """A sticky version cookie that the model-service (or its gateway) asked to set."""

    value: str
    max_age: int | None = None


class ModelServiceError(Exception):
    """The model-service could not give an answer; `status` is what the frontend answers."""

    status = 502
    title = "The sentiment service had a problem"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelServiceUnavailable(ModelServiceError):
    """Nobody answered at the model-service address."""

    status = 503
    title = "The sentiment service is not reachable"


class ModelServiceTimeout(ModelServiceError):
    """The model-service did not answer within the timeout."""

    status = 504
    title = "The sentiment service is taking too long"


class ModelServiceRejected(ModelServiceError):
    """The model-service refused the input (a 4xx); the message is for the user."""

    title = "Please check your review"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Reply(Generic[T]):
    """A parsed answer plus the version cookie to relay to the browser, if any."""

    body: T
    cookies: list[VersionCookie] = field(default_factory=list)


class ModelServiceClient:
    """Calls the model-service through one shared httpx transport (one pool per process).

    The requests go straight to the transport: httpx's client layer (URL merging, cookie jar,
    auth and redirect handling) cost more CPU per call than the connection pool itself, and none
    of it applies here. The URLs are parsed once; the timeouts travel with each request as with
    `httpx.AsyncClient`. Nothing is kept between calls: each diner's cookie is their own.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        timeout: httpx.Timeout,
        cookie_name: str,
    ) -> None:
        self.transport = transport
        self.cookie_name = cookie_name
        self._urls = {path: httpx.URL(base_url + path) for path in ("/predict", "/model-accuracy")}
        self._extensions = {"timeout": timeout.as_dict()}

    async def predict(self, review: str, restaurant: str, version: str | None) -> Reply[Prediction]:
        """Score one review; `version` is the browser's sticky cookie value."""
        payload = {"review": review, "restaurantName": restaurant}
        response = await self._post("/predict", payload, version)
        return Reply(_parse(Prediction, response), self._version_cookies(response))

    async def feedback(
        self,
        restaurant: str,
        prediction: int,
        accurate: bool,
        prediction_id: str,
        version: str | None,
    ) -> Reply[Accuracy]:
        """Send whether a prediction was accurate; returns the model's current accuracy."""
        payload = {
            "restaurantName": restaurant,
            "accurate": accurate,
            "prediction": prediction,
            "predictionId": prediction_id,
        }
        response = await self._post("/model-accuracy", payload, version)
        return Reply(_parse(Accuracy, response), self._version_cookies(response))

    async def _post(
        self, path: str, payload: dict[str, Any], version: str | None
    ) -> httpx.Response:
        headers = [("content-type", "application/json")]
        if version is not None and VERSION_VALUE.match(version):
            headers.append(("cookie", f"{self.cookie_name}={version}"))
        request = httpx.Request(
            "POST",
            self._urls[path],
            headers=headers,
            content=to_json(payload),
            extensions=self._extensions,
        )
        try:
            response = await self.transport.handle_async_request(request)
            await response.aread()
        except httpx.TimeoutException as exc:
            raise ModelServiceTimeout("It did not answer in time. Please try again.") from exc
        except httpx.TransportError as exc:
            raise ModelServiceUnavailable(
                "It cannot be reached right now. Please try again in a moment."
            ) from exc
        if response.status_code >= 500:
            raise ModelServiceError(
                f"It answered with an error ({response.status_code}). Please try again later."
            )
        if response.status_code >= 400:
            raise ModelServiceRejected(_detail(response), response.status_code)
        if response.status_code != 200:
            raise ModelServiceError(f"It gave an unexpected answer ({response.status_code}).")
        return response

    def _version_cookies(self, response: httpx.Response) -> list[VersionCookie]:
        """The sticky cookies in the answer, validated; every other cookie is dropped."""
        found = []
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            morsel = jar.get(self.cookie_name)
            if morsel is None or not VERSION_VALUE.match(morsel.value):
                continue
            max_age = None
            if str(morsel["max-age"]).isdigit():
                max_age = min(int(morsel["max-age"]), MAX_COOKIE_AGE)
            found.append(VersionCookie(morsel.value, max_age))
        return found


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ModelServiceError("It gave an answer that could not be read.") from exc


def _detail(response: httpx.Response) -> str:
    """The user-facing message of a 4xx: FastAPI's `detail`, a string or a list of errors."""
    fallback = f"The review was not accepted ({response.status_code})."
    if response.status_code == 413:
        return "The review is too long."
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return fallback
    if isinstance(detail, list):
        messages = [str(item.get("msg")) for item in detail if isinstance(item, dict)]
        detail = "; ".join(m for m in messages if m and m != "None")
    if not isinstance(detail, str) or not detail.strip():
        return fallback
    detail = detail.strip()
    return detail if len(detail) <= MAX_MESSAGE_CHARS else detail[: MAX_MESSAGE_CHARS - 1] + "…"
