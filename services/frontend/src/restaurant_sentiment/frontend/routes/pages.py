"""The pages: restaurant picker, restaurant page, review and feedback posts.

Without JavaScript a post answers with the whole page (no redirect): the verdict then shows the
review and how sure the model is, as the htmx fragment does, while the review text stays out of
URLs, browser history and access logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from restaurant_sentiment.frontend.client import (
    PREDICTION_ID,
    VERSION_VALUE,
    ModelServiceError,
    ModelServiceRejected,
    VersionCookie,
)
from restaurant_sentiment.frontend.config import Settings
from restaurant_sentiment.frontend.deps import ClientDep, RestaurantDep, SettingsDep, TemplatesDep

router = APIRouter(tags=["pages"])

GOOD = "We are glad to hear you had a good experience."
BAD = "We are sorry to hear you had a bad experience."
EMPTY_REVIEW = "Please write a few words about your visit first."
# The model-service's answer to feedback on a prediction that already has its feedback counted.
ALREADY_RECORDED = "feedback for this predictionId was already recorded"
BAD_FEEDBACK = "This feedback could not be read. Please submit your review again."
# The longest review the model-service scores; a longer one carried by the feedback form is a
# forgery and is not shown.
MAX_REVIEW_CHARS = 5000


@dataclass(frozen=True)
class Band:
    """How sure the model is, in words: for a calibrated confidence of at least `floor`."""

    floor: float
    key: str
    words: str


# The model-service's confidence is the calibrated probability that the verdict is right, so
# "very sure" means about nine verdicts in ten or more are right. Highest band first.
CONFIDENCE_BANDS = (
    Band(0.90, "very-sure", "very sure"),
    Band(0.75, "fairly-sure", "fairly sure"),
    Band(0.60, "not-very-sure", "not very sure"),
    Band(0.0, "unsure", "unsure"),
)


def confidence_band(confidence: float | None) -> Band | None:
    """The words for a confidence in [0, 1]; None when there is no usable number."""
    if confidence is None or not 0.0 <= confidence <= 1.0:
        return None
    return next(band for band in CONFIDENCE_BANDS if confidence >= band.floor)


def is_htmx(request: Request) -> bool:
    """True when htmx sent the request, so only a fragment is wanted."""
    return request.headers.get("hx-request") == "true"


def sticky_version(request: Request, settings: Settings) -> str | None:
    """The browser's model-version cookie, when it is a well-formed version name."""
    value = request.cookies.get(settings.version_cookie)
    return value if value is not None and VERSION_VALUE.match(value) else None


def relay_cookies(response: Response, cookies: list[VersionCookie], settings: Settings) -> None:
    """Pass the model-service's sticky-version cookie on to the browser."""
    for cookie in cookies:
        response.set_cookie(
            settings.version_cookie,
            cookie.value,
            max_age=cookie.max_age,
            path="/",
            httponly=True,
            samesite="lax",
        )


def verdict(prediction: int) -> str:
    """The sentence shown for a prediction."""
    return GOOD if prediction == 1 else BAD


def verdict_view(
    prediction: int,
    model_version: str,
    prediction_id: str,
    confidence: float | None,
    review: str | None,
) -> dict[str, Any]:
    """Template context of a verdict, the same for the htmx fragment and the whole page."""
    return {
        "prediction": prediction,
        "verdict": verdict(prediction),
        "model_version": model_version,
        "prediction_id": prediction_id,
        "confidence": confidence,
        "band": confidence_band(confidence),
        "review": review,
        "feedback": None,
    }


def carried_confidence(value: str) -> float | None:
    """The confidence the feedback form carries back, if it is a number in [0, 1]."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def error_view(exc: ModelServiceError) -> dict[str, Any]:
    """Template context of an error from the model-service."""
    return {
        "title": exc.title,
        "message": exc.message,
        "status": exc.status,
        "rejected": isinstance(exc, ModelServiceRejected),
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, templates: TemplatesDep) -> HTMLResponse:
    """The introduction and the restaurant picker."""
    response: HTMLResponse = templates.TemplateResponse(request, "index.html", {})
    return response


@router.get("/restaurants/{slug}", response_class=HTMLResponse)
async def restaurant_page(
    request: Request, restaurant: RestaurantDep, templates: TemplatesDep
) -> HTMLResponse:
    """A restaurant's page with the review form.

    The page is the same for every diner until the catalogue or the templates change, neither
    of which happens while the process runs (unless templates are reloaded): rendered once.
    """
    cache: dict[str, bytes] | None = request.app.state.page_cache
    page = cache.get(restaurant.slug) if cache is not None else None
    if page is None:
        context = {"restaurant": restaurant, "result": None, "review": ""}
        rendered = templates.TemplateResponse(request, "restaurant.html", context)
        page = bytes(rendered.body)
        if cache is not None:
            cache[restaurant.slug] = page
    return HTMLResponse(page)


@router.post("/restaurants/{slug}/reviews", response_class=HTMLResponse)
async def submit_review(
    request: Request,
    restaurant: RestaurantDep,
    templates: TemplatesDep,
    client: ClientDep,
    settings: SettingsDep,
    review: Annotated[str, Form()] = "",
) -> Response:
    """Score a review: the verdict fragment for htmx, the page with the verdict otherwise."""
    htmx = is_htmx(request)
    context: dict[str, Any] = {"restaurant": restaurant, "review": review, "result": None}
    if not review.strip():
        context["error"] = {
            "title": "Please check your review",
            "message": EMPTY_REVIEW,
            "status": 422,
            "rejected": True,
        }
        return render(request, templates, htmx, "_result.html", "restaurant.html", context, 422)
    try:
        reply = await client.predict(review, restaurant.name, sticky_version(request, settings))
    except ModelServiceError as exc:
        context["error"] = error_view(exc)
        template = "_result.html"
        return render(request, templates, htmx, template, "restaurant.html", context, exc.status)
    prediction = reply.body
    context["result"] = verdict_view(
        prediction.prediction,
        prediction.model_version,
        prediction.prediction_id,
        prediction.confidence,
        review,
    )
    response = render(request, templates, htmx, "_result.html", "restaurant.html", context, 200)
    relay_cookies(response, reply.cookies, settings)
    return response


@router.post("/restaurants/{slug}/feedback", response_class=HTMLResponse)
async def submit_feedback(
    request: Request,
    restaurant: RestaurantDep,
    templates: TemplatesDep,
    client: ClientDep,
    settings: SettingsDep,
    prediction_id: Annotated[str, Form(alias="predictionId")] = "",
    prediction: Annotated[str, Form()] = "",
    model_version: Annotated[str, Form(alias="modelVersion")] = "",
    accurate: Annotated[str, Form()] = "",
    review: Annotated[str, Form()] = "",
    confidence: Annotated[str, Form()] = "",
) -> Response:
    """Send "accurate" / "not accurate" and thank the diner.

    The form carries the review and the confidence back, so that the page without JavaScript
    shows the whole verdict again; they are only shown, never sent anywhere.
    """
    htmx = is_htmx(request)
    valid = (
        prediction in {"0", "1"}
        and accurate in {"true", "false"}
        and PREDICTION_ID.match(prediction_id) is not None
        and VERSION_VALUE.match(model_version) is not None
    )
    if not valid:
        context: dict[str, Any] = {"restaurant": restaurant, "review": "", "result": None}
        context["error"] = {
            "title": "Please check your feedback",
            "message": BAD_FEEDBACK,
            "status": 422,
            "rejected": True,
        }
        return render(request, templates, htmx, "_result.html", "restaurant.html", context, 422)
    shown_review = review if review.strip() and len(review) <= MAX_REVIEW_CHARS else None
    result = verdict_view(
        int(prediction),
        model_version,
        prediction_id,
        carried_confidence(confidence),
        shown_review,
    )
    context = {"restaurant": restaurant, "review": shown_review or "", "result": result}
    try:
        reply = await client.feedback(
            restaurant.name,
            int(prediction),
            accurate == "true",
            prediction_id,
            sticky_version(request, settings),
        )
    except ModelServiceError as exc:
        if exc.status == 409 and exc.message == ALREADY_RECORDED:
            # A second click, a resent form or a retry: the first one counted, so thank them.
            result["feedback"] = {"accurate": accurate == "true", "already": True}
            return render(
                request, templates, htmx, "_feedback.html", "restaurant.html", context, 200
            )
        result["feedback_error"] = error_view(exc)
        if isinstance(exc, ModelServiceRejected):
            result["feedback_error"]["title"] = "We could not record your feedback"
        return render(
            request, templates, htmx, "_feedback.html", "restaurant.html", context, exc.status
        )
    # The running accuracy in the answer means nothing to a diner: the page thanks them instead.
    result["feedback"] = {"accurate": accurate == "true"}
    response = render(request, templates, htmx, "_feedback.html", "restaurant.html", context, 200)
    relay_cookies(response, reply.cookies, settings)
    return response


# After the posts: a 405's Allow header names the methods of the first route with the path, and
# that must stay POST, the method the forms use.
@router.get("/restaurants/{slug}/reviews", include_in_schema=False)
@router.get("/restaurants/{slug}/feedback", include_in_schema=False)
async def back_to_restaurant(restaurant: RestaurantDep) -> RedirectResponse:
    """A bookmarked or revisited post address leads back to the restaurant's page."""
    return RedirectResponse(f"/restaurants/{restaurant.slug}", status_code=303)


def render(
    request: Request,
    templates: Jinja2Templates,
    htmx: bool,
    fragment: str,
    page: str,
    context: dict[str, Any],
    status: int,
) -> HTMLResponse:
    """The fragment for htmx, the whole page otherwise (errors are shown, not redirected)."""
    name = fragment if htmx else page
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status)
    return response
