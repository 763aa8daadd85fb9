"""The pages: restaurant picker, restaurant page, review and feedback posts."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

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
BAD_FEEDBACK = "This feedback could not be read. Please submit your review again."


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


def error_view(exc: ModelServiceError) -> dict[str, Any]:
    """Template context of an error from the model-service."""
    return {
        "title": exc.title,
        "message": exc.message,
        "status": exc.status,
        "rejected": isinstance(exc, ModelServiceRejected),
    }


def result_from_query(request: Request) -> dict[str, Any] | None:
    """The verdict carried by a post/redirect/get URL, if it is well formed."""
    query = request.query_params
    prediction, version, prediction_id = (
        query.get("prediction"),
        query.get("version"),
        query.get("id"),
    )
    if prediction not in {"0", "1"} or not version or not prediction_id:
        return None
    if not VERSION_VALUE.match(version) or not PREDICTION_ID.match(prediction_id):
        return None
    result: dict[str, Any] = {
        "prediction": int(prediction),
        "verdict": verdict(int(prediction)),
        "model_version": version,
        "prediction_id": prediction_id,
        "confidence": None,
        "review": None,
        "feedback": None,
    }
    feedback = query.get("feedback")
    try:
        accuracy = float(query.get("accuracy", ""))
    except ValueError:
        accuracy = -1.0
    if feedback in {"accurate", "inaccurate"} and 0.0 <= accuracy <= 1.0:
        result["feedback"] = {"accurate": feedback == "accurate", "accuracy": accuracy}
    return result


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, templates: TemplatesDep) -> HTMLResponse:
    """The introduction and the restaurant picker."""
    response: HTMLResponse = templates.TemplateResponse(request, "index.html", {})
    return response


@router.get("/restaurants/{slug}", response_class=HTMLResponse)
async def restaurant_page(
    request: Request, restaurant: RestaurantDep, templates: TemplatesDep
) -> HTMLResponse:
    """A restaurant's page with the review form (and a verdict after a no-JavaScript post)."""
    context = {"restaurant": restaurant, "result": result_from_query(request), "review": ""}
    response: HTMLResponse = templates.TemplateResponse(request, "restaurant.html", context)
    return response


@router.post("/restaurants/{slug}/reviews", response_class=HTMLResponse)
async def submit_review(
    request: Request,
    restaurant: RestaurantDep,
    templates: TemplatesDep,
    client: ClientDep,
    settings: SettingsDep,
    review: Annotated[str, Form()] = "",
) -> Response:
    """Score a review: a verdict fragment for htmx, a redirect to the verdict otherwise."""
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
    response: Response
    if htmx:
        context["result"] = {
            "prediction": prediction.prediction,
            "verdict": verdict(prediction.prediction),
            "model_version": prediction.model_version,
            "prediction_id": prediction.prediction_id,
            "confidence": prediction.confidence,
            "review": review,
            "feedback": None,
        }
        response = templates.TemplateResponse(request, "_result.html", context)
    else:
        query = {
            "prediction": prediction.prediction,
            "version": prediction.model_version,
            "id": prediction.prediction_id,
        }
        url = f"/restaurants/{restaurant.slug}?{urlencode(query)}#result"
        response = RedirectResponse(url, status_code=303)
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
) -> Response:
    """Send "accurate" / "not accurate" and show the model's current accuracy."""
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
    result: dict[str, Any] = {
        "prediction": int(prediction),
        "verdict": verdict(int(prediction)),
        "model_version": model_version,
        "prediction_id": prediction_id,
        "confidence": None,
        "review": None,
        "feedback": None,
    }
    context = {"restaurant": restaurant, "review": "", "result": result}
    try:
        reply = await client.feedback(
            restaurant.name,
            int(prediction),
            accurate == "true",
            prediction_id,
            sticky_version(request, settings),
        )
    except ModelServiceError as exc:
        result["feedback_error"] = error_view(exc)
        if isinstance(exc, ModelServiceRejected):
            result["feedback_error"]["title"] = "We could not record your feedback"
        return render(
            request, templates, htmx, "_feedback.html", "restaurant.html", context, exc.status
        )
    result["feedback"] = {"accurate": accurate == "true", "accuracy": reply.body.accuracy}
    response: Response
    if htmx:
        response = templates.TemplateResponse(request, "_feedback.html", context)
    else:
        query = {
            "prediction": prediction,
            "version": model_version,
            "id": prediction_id,
            "feedback": "accurate" if accurate == "true" else "inaccurate",
            "accuracy": f"{reply.body.accuracy:.6g}",
        }
        url = f"/restaurants/{restaurant.slug}?{urlencode(query)}#result"
        response = RedirectResponse(url, status_code=303)
    relay_cookies(response, reply.cookies, settings)
    return response


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
