"""The experiment page: per-version accuracy with intervals, P(canary better), the decision."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from restaurant_sentiment.experiment.analysis import Analysis, analyse
from restaurant_sentiment.experiment.config import ConfigError, ExperimentConfig, config_from_values
from restaurant_sentiment.experiment.sources import SourceError, collect
from restaurant_sentiment.frontend.config import Settings
from restaurant_sentiment.frontend.deps import MetricsHttpDep, SettingsDep, TemplatesDep
from restaurant_sentiment.frontend.routes.pages import is_htmx
from restaurant_sentiment.values import Values

router = APIRouter(tags=["experiment"])

# Without Prometheus or /metrics URLs: the shared feedback store's counts, via the model-service.
COUNTS_PATH = "/experiment/counts"

# SVG geometry of the accuracy chart, in user units. Narrow, so that its type stays readable on
# a phone; each row's name and accuracy sit left of the plot, so no label ends past its edge.
CHART_WIDTH = 400
LABEL_WIDTH = 92
PLOT_WIDTH = 280
ROW_HEIGHT = 56
BAR_HEIGHT = 26
AXIS_HEIGHT = 28
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


class ExperimentUnavailable(Exception):
    """The analysis cannot be made now; the message says why, for a person."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def experiment_config(settings: Settings) -> tuple[Values, ExperimentConfig]:
    """The values and the experiment's thresholds and weights as the values file holds them now."""
    try:
        values = settings.live_values.current()
        return values, config_from_values(values)
    except ConfigError as exc:
        raise ExperimentUnavailable(f"The experiment is not configured: {exc}") from None


def counts_request(settings: Settings, values: Values) -> tuple[str, dict[str, str]]:
    """The model-service's /experiment/counts, and the cookie that pins the request to the
    version with the most weight: through the mesh a request without one would be a new
    diner's, assigned by the weighted split and counted as an assignment."""
    pinned = max(values.model_service.versions, key=lambda v: v.weight).name
    url = settings.model_service_url.rstrip("/") + COUNTS_PATH
    return url, {"cookie": f"{values.model_service.cookie.name}={pinned}"}


async def current_analysis(settings: Settings, http: httpx.AsyncClient) -> Analysis:
    """Collect the counts and apply the decision rule of docs/experiment-plan.md."""
    values, config = experiment_config(settings)
    counts_url, counts_headers = counts_request(settings, values)
    try:
        observation = await collect(
            settings.prometheus_url,
            settings.experiment_metrics_urls,
            settings.window,
            http,
            split=config.split,
            counts_url=counts_url,
            counts_headers=counts_headers,
        )
    except SourceError as exc:
        raise ExperimentUnavailable(f"The metrics cannot be read right now ({exc}).") from None
    # The quadrature takes milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(analyse, observation, config)


@dataclass(frozen=True)
class Bar:
    """One version's row of the accuracy chart."""

    name: str
    role: str
    label_y: float
    value_y: float
    bar_y: float
    bar_width: float
    whisker_y: float
    whisker_low: float
    whisker_high: float
    accuracy: float | None
    low: float
    high: float
    has_interval: bool


def _x(value: float) -> float:
    return round(LABEL_WIDTH + PLOT_WIDTH * min(1.0, max(0.0, value)), 1)


def chart(analysis: Analysis) -> dict[str, Any]:
    """Coordinates of the server-rendered SVG: bars for accuracy, whiskers for the interval."""
    bars = []
    for index, version in enumerate(analysis.versions):
        top = index * ROW_HEIGHT + 12
        accuracy = version.accuracy
        interval = version.accuracy_interval
        # Without feedback there is no interval: the row shows no whisker.
        low, high = (interval.low, interval.high) if interval else (0.0, 0.0)
        bars.append(
            Bar(
                name=version.name,
                role=version.role,
                label_y=top + 10,
                value_y=top + 28,
                bar_y=top,
                bar_width=round(_x(accuracy or 0.0) - LABEL_WIDTH, 1),
                whisker_y=top + BAR_HEIGHT / 2,
                whisker_low=_x(low),
                whisker_high=_x(high),
                accuracy=accuracy,
                low=low,
                high=high,
                has_interval=interval is not None,
            )
        )
    plot_bottom = len(bars) * ROW_HEIGHT + 8
    return {
        "width": CHART_WIDTH,
        "height": plot_bottom + AXIS_HEIGHT,
        "plot_left": LABEL_WIDTH,
        "plot_bottom": plot_bottom,
        "bar_height": BAR_HEIGHT,
        "ticks": [(_x(t), f"{100 * t:.0f}%") for t in TICKS],
        "bars": bars,
    }


def _render(
    request: Request, templates: Jinja2Templates, context: dict[str, Any], status: int
) -> HTMLResponse:
    name = "_experiment.html" if is_htmx(request) else "experiment.html"
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status)
    return response


@router.get("/experiment", response_class=HTMLResponse)
async def experiment_page(
    request: Request, templates: TemplatesDep, settings: SettingsDep, http: MetricsHttpDep
) -> HTMLResponse:
    """The experiment at a glance; htmx polls it and swaps in the fragment."""
    try:
        analysis = await current_analysis(settings, http)
    except ExperimentUnavailable as exc:
        context: dict[str, Any] = {"analysis": None, "unavailable": exc.message}
        return _render(request, templates, context, exc.status)
    context = {"analysis": analysis, "chart": chart(analysis), "unavailable": None}
    return _render(request, templates, context, 200)


# Field names, not aliases: the same object as `python -m experiment decide --json` prints.
@router.get("/experiment.json", response_model=Analysis, response_model_by_alias=False)
async def experiment_json(settings: SettingsDep, http: MetricsHttpDep) -> Analysis:
    """The analysis as `python -m experiment decide --json` prints it."""
    try:
        return await current_analysis(settings, http)
    except ExperimentUnavailable as exc:
        raise HTTPException(exc.status, exc.message) from None
