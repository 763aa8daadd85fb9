"""Per-version prediction and feedback counts: from Prometheus, from a model-service's
/experiment/counts (the shared feedback store) or from the services' /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

from restaurant_sentiment.values import names

PREDICTIONS = names.PREDICTIONS
CORRECT = names.CORRECT_FEEDBACK
INCORRECT = names.INCORRECT_FEEDBACK
ASSIGNMENTS = names.ASSIGNMENTS
COUNTERS = (PREDICTIONS, *CORRECT, *INCORRECT)
VERSION_LABEL = names.VERSION_LABEL
SPLIT_PATTERN = re.compile(names.SPLIT)
# Prometheus range durations such as 30m, 12h, 7d or 1h30m.
_WINDOW = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class SourceError(RuntimeError):
    """The counts could not be read: the source is unreachable or answered nonsense."""


class VersionCounts(BaseModel):
    """What one model version has seen: assignments, predictions, feedback by outcome.

    `assignments` are the new clients the weighted route gave this version under the current
    split; `predictions` and feedback count diners' single reviews (batch calls are apart).
    """

    assignments: int = Field(default=0, ge=0)
    predictions: int = Field(default=0, ge=0)
    correct: int = Field(default=0, ge=0)
    incorrect: int = Field(default=0, ge=0)

    @property
    def feedback(self) -> int:
        """Feedback events received, correct and incorrect."""
        return self.correct + self.incorrect


class Observation(BaseModel):
    """Counts per version and where they came from."""

    source: Literal["prometheus", "metrics", "store"]
    description: str
    counts: dict[str, VersionCounts]
    # The split whose assignments were counted (None: assignments were not asked for).
    split: str | None = None

    def for_version(self, name: str) -> VersionCounts:
        """The counts of one version, zero when it has reported nothing yet."""
        return self.counts.get(name, VersionCounts())


def validate_window(window: str) -> str:
    """Return window if it is a Prometheus duration, else raise ValueError naming it."""
    if not _WINDOW.match(window):
        raise ValueError(f"window {window!r} is not a Prometheus duration such as 30m, 12h or 7d")
    return window


def _counts_from_totals(totals: dict[tuple[str, str], float]) -> dict[str, VersionCounts]:
    versions = sorted({version for version, _ in totals})

    def total(version: str, names: Iterable[str]) -> int:
        # increase() extrapolates to the window's edges, so Prometheus answers fractions.
        return round(sum(totals.get((version, name), 0.0) for name in names))

    return {
        v: VersionCounts(
            assignments=total(v, [ASSIGNMENTS]),
            predictions=total(v, [PREDICTIONS]),
            correct=total(v, CORRECT),
            incorrect=total(v, INCORRECT),
        )
        for v in versions
    }


def _check_split(split: str | None) -> str | None:
    if split is not None and not SPLIT_PATTERN.match(split):
        raise SourceError(f"{split!r} is not a split such as stable=70,canary=30")
    return split


def parse_metrics(text: str, split: str | None = None) -> dict[tuple[str, str], float]:
    """Sum the experiment counters of one /metrics exposition by (model_version, counter).

    Assignments count only under `split`: the ones made under other weights were drawn with
    other probabilities and cannot be tested against these.
    """
    totals: dict[tuple[str, str], float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise SourceError(f"not a Prometheus exposition: {exc}") from None
    for family in families:
        for sample in family.samples:
            # The parser strips _total from counter families but keeps it on sample names.
            if VERSION_LABEL not in sample.labels:
                continue
            if sample.name == ASSIGNMENTS:
                if split is None or sample.labels.get(names.SPLIT_LABEL) != split:
                    continue
            elif sample.name not in COUNTERS:
                continue
            if not math.isfinite(sample.value) or sample.value < 0:
                raise SourceError(f"{sample.name} has the impossible value {sample.value}")
            key = (sample.labels[VERSION_LABEL], sample.name)
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


async def _get(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    try:
        response = await client.get(url, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException:
        raise SourceError(f"{url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if response.status_code != 200:
        raise SourceError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
    return response


async def from_metrics(
    urls: Sequence[str], client: httpx.AsyncClient | None = None, split: str | None = None
) -> Observation:
    """Read the counters straight from each model-service's /metrics and add them up."""
    _check_split(split)
    if not urls:
        raise SourceError("no /metrics URL given")
    async with _client(client) as http:
        responses = await asyncio.gather(*(_get(http, url) for url in urls))
    totals: dict[tuple[str, str], float] = {}
    for url, response in zip(urls, responses, strict=True):
        try:
            parsed = parse_metrics(response.text, split)
        except SourceError as exc:
            raise SourceError(f"{url}: {exc}") from None
        for key, value in parsed.items():
            totals[key] = totals.get(key, 0.0) + value
    return Observation(
        source="metrics",
        description=f"{', '.join(urls)} (counters since each process started)",
        counts=_counts_from_totals(totals),
        split=split,
    )


class _StoreVersion(BaseModel):
    predictions: int = Field(ge=0)
    correct: int = Field(ge=0)
    incorrect: int = Field(ge=0)
    assignments: dict[str, int]


class _StoreCounts(BaseModel):
    store: str
    versions: dict[str, _StoreVersion]


async def from_counts(
    url: str,
    client: httpx.AsyncClient | None = None,
    split: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Observation:
    """Read a model-service's /experiment/counts: the feedback store every process shares, so
    the counts of replaced processes are in, and feedback is exactly what was answered 200."""
    _check_split(split)
    async with _client(client) as http:
        response = await _get(http, url, headers=headers)
    try:
        body = _StoreCounts.model_validate_json(response.content)
    except ValueError:
        raise SourceError(f"{url} did not answer like /experiment/counts") from None
    counts = {
        version: VersionCounts(
            assignments=tally.assignments.get(split, 0) if split else 0,
            predictions=tally.predictions,
            correct=tally.correct,
            incorrect=tally.incorrect,
        )
        for version, tally in sorted(body.versions.items())
    }
    return Observation(
        source="store",
        description=f"the feedback store {body.store}, read through {url} "
        "(every process, across restarts)",
        counts=counts,
        split=split,
    )


def prometheus_query(counter: str, window: str | None, split: str | None = None) -> str:
    """The PromQL that totals one counter per version, over a window when one is given."""
    selector = counter
    if split is not None:
        # The split is checked against a pattern without quotes or backslashes.
        selector = f'{counter}{{{names.SPLIT_LABEL}="{_check_split(split)}"}}'
    if window is None:
        return f"sum by ({VERSION_LABEL}) ({selector})"
    return f"sum by ({VERSION_LABEL}) (increase({selector}[{validate_window(window)}]))"


async def _query(http: httpx.AsyncClient, base: str, query: str) -> list[tuple[str, float]]:
    url = f"{base.rstrip('/')}/api/v1/query"
    response = await _get(http, url, params={"query": query})
    try:
        body = response.json()
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise SourceError(f"Prometheus rejected {query!r}: {body.get('error', body)}")
        rows = [
            (item["metric"].get(VERSION_LABEL, ""), float(item["value"][1]))
            for item in body["data"]["result"]
        ]
    except (ValueError, KeyError, TypeError, IndexError):
        raise SourceError(f"{url} did not answer like the Prometheus HTTP API") from None
    return [(version, value) for version, value in rows if version and math.isfinite(value)]


async def from_prometheus(
    url: str,
    window: str | None = "7d",
    client: httpx.AsyncClient | None = None,
    split: str | None = None,
) -> Observation:
    """Query the Prometheus HTTP API for each counter's total (or increase over window)."""
    queries = {name: prometheus_query(name, window) for name in COUNTERS}
    if split is not None:
        queries[ASSIGNMENTS] = prometheus_query(ASSIGNMENTS, window, split)
    async with _client(client) as http:
        results = await asyncio.gather(*(_query(http, url, q) for q in queries.values()))
    totals: dict[tuple[str, str], float] = {}
    for name, rows in zip(queries, results, strict=True):
        for version, value in rows:
            totals[(version, name)] = max(0.0, value)
    span = f"increase over the last {window}" if window else "current counter values"
    return Observation(
        source="prometheus",
        description=f"Prometheus at {url} ({span})",
        counts=_counts_from_totals(totals),
        split=split,
    )


@contextlib.asynccontextmanager
async def _client(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """Use the caller's client, or open (and close) a short-lived one."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as own:
        yield own


async def collect(
    prometheus_url: str | None = None,
    metrics_urls: Sequence[str] = (),
    window: str | None = "7d",
    client: httpx.AsyncClient | None = None,
    split: str | None = None,
    counts_url: str | None = None,
    counts_headers: Mapping[str, str] | None = None,
) -> Observation:
    """Read from Prometheus when its URL is given, else from the services' /metrics when
    theirs are, else from a model-service's /experiment/counts."""
    if prometheus_url:
        return await from_prometheus(prometheus_url, window, client, split)
    if metrics_urls or not counts_url:
        return await from_metrics(metrics_urls, client, split)
    return await from_counts(counts_url, client, split, counts_headers)
