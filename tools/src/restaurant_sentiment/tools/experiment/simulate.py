"""Traffic simulator: labelled held-out reviews sent through the gateway as distinct clients."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from restaurant_sentiment.model_service.corpus import CorpusError, load_corpus


class SimulationError(RuntimeError):
    """The simulation could not run: bad corpus, unreachable gateway, or too many failures."""


@dataclass(frozen=True)
class LabelledReview:
    """A review with its true sentiment (1 liked, 0 not)."""

    text: str
    label: int


def load_reviews(path: str | Path) -> list[LabelledReview]:
    """Read a `Review<TAB>Liked` corpus in file order with the training's own reader."""
    try:
        corpus = load_corpus(Path(path))
    except CorpusError as exc:
        raise SimulationError(str(exc)) from None
    return [
        LabelledReview(text, label)
        for text, label in zip(corpus.reviews, corpus.labels, strict=True)
    ]


def held_out(reviews: Sequence[LabelledReview]) -> list[LabelledReview]:
    """The stratified 20% the training never sees, from the training's own split function."""
    # Imported here: training code brings in scikit-learn, which `decide` does not need.
    from restaurant_sentiment.model_service.train import held_out_split

    texts = [r.text for r in reviews]
    labels = [r.label for r in reviews]
    try:
        _, test_texts, _, test_labels = held_out_split(texts, labels)
    except ValueError as exc:
        raise SimulationError(f"cannot hold out a stratified 20% of the corpus: {exc}") from None
    return [LabelledReview(t, int(y)) for t, y in zip(test_texts, test_labels, strict=True)]


class VersionTally(BaseModel):
    """Predictions one version made for the simulator, and how many were right."""

    predictions: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        """Share of correct predictions, None before the first."""
        return self.correct / self.predictions if self.predictions else None


class SimulationReport(BaseModel):
    """What the simulator sent and what came back."""

    requested: int
    clients: int
    predictions: int = 0
    feedback: int = 0
    errors: int = 0
    error_examples: list[str] = Field(default_factory=list)
    sticky_violations: int = 0
    clients_per_version: dict[str, int] = Field(default_factory=dict)
    versions: dict[str, VersionTally] = Field(default_factory=dict)
    # API traffic mixed in: single calls without a cookie (no feedback), one batch call.
    api_calls_per_version: dict[str, int] = Field(default_factory=dict)
    batch_reviews: int = 0
    batch_version: str | None = None
    timed_out: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Job:
    review: LabelledReview
    restaurant: str


class _Run:
    """Shared state of one simulation: the report, the error budget and the progress hook."""

    def __init__(
        self, report: SimulationReport, max_errors: int, progress: Callable[[int], None] | None
    ) -> None:
        self.report = report
        self.max_errors = max_errors
        self.progress = progress

    def fail(self, what: str) -> None:
        self.report.errors += 1
        if len(self.report.error_examples) < 5:
            self.report.error_examples.append(what)
        if self.report.errors > self.max_errors:
            raise SimulationError(
                f"stopped after {self.report.errors} failed requests; first: "
                f"{self.report.error_examples[0]}"
            )

    def advance(self) -> None:
        if self.progress is not None:
            self.progress(1)


async def _post(client: httpx.AsyncClient, path: str, body: Mapping[str, object]) -> dict | str:
    """POST JSON; the parsed body on 200, else a short description of the failure."""
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        return f"{path}: {type(exc).__name__} {exc}".strip()
    if response.status_code != 200:
        return f"{path}: HTTP {response.status_code} {response.text[:120]}"
    try:
        data = response.json()
    except ValueError:
        return f"{path}: the answer is not JSON"
    return data if isinstance(data, dict) else f"{path}: the answer is not a JSON object"


async def _client_session(
    client: httpx.AsyncClient, jobs: Sequence[_Job], run: _Run, slots: asyncio.Semaphore
) -> None:
    """One simulated user: predictions and feedback in order, always with its own cookies."""
    version_seen: str | None = None
    for job in jobs:
        async with slots:
            version_seen = await _one_review(client, job, run, version_seen)


async def _one_review(
    client: httpx.AsyncClient, job: _Job, run: _Run, version_seen: str | None
) -> str | None:
    """Predict one review, post feedback on it, and return the version this client is on."""
    try:
        return await _predict_and_feed_back(client, job, run, version_seen)
    finally:
        run.advance()


async def _predict_and_feed_back(
    client: httpx.AsyncClient, job: _Job, run: _Run, version_seen: str | None
) -> str | None:
    answer = await _post(
        client, "/predict", {"review": job.review.text, "restaurantName": job.restaurant}
    )
    if isinstance(answer, str):
        run.fail(answer)
        return version_seen
    prediction, version = answer.get("prediction"), answer.get("modelVersion")
    if prediction not in (0, 1) or not isinstance(version, str):
        run.fail(f"/predict: unexpected answer {str(answer)[:120]}")
        return version_seen
    report = run.report
    report.predictions += 1
    if version_seen is None:
        version_seen = version
        report.clients_per_version[version] = report.clients_per_version.get(version, 0) + 1
    elif version != version_seen:
        report.sticky_violations += 1
    tally = report.versions.setdefault(version, VersionTally())
    tally.predictions += 1
    accurate = prediction == job.review.label
    tally.correct += int(accurate)
    feedback: dict[str, object] = {
        "restaurantName": job.restaurant,
        "accurate": accurate,
        "prediction": prediction,
    }
    if isinstance(answer.get("predictionId"), str):
        feedback["predictionId"] = answer["predictionId"]
    result = await _post(client, "/model-accuracy", feedback)
    if isinstance(result, str):
        run.fail(result)
    else:
        report.feedback += 1
    return version_seen


async def _api_calls(
    client: httpx.AsyncClient,
    jobs: Sequence[_Job],
    batch: Sequence[_Job],
    run: _Run,
    slots: asyncio.Semaphore,
) -> None:
    """API traffic: cookieless /predict calls and one /predict/batch call, with no feedback.

    Each cookieless call is a new assignment; the batch is one assignment for many reviews.
    Neither may disturb the sample-ratio test or the diners' accuracy.
    """
    report = run.report
    if batch:
        async with slots:
            client.cookies.clear()
            body = {"reviews": [{"review": j.review.text, "restaurantName": j.restaurant}
                                for j in batch]}  # fmt: skip
            answer = await _post(client, "/predict/batch", body)
            if isinstance(answer, str):
                run.fail(answer)
            else:
                report.batch_reviews = len(answer.get("predictions", []))
                report.batch_version = answer.get("modelVersion")
    for job in jobs:
        async with slots:
            client.cookies.clear()
            answer = await _post(
                client, "/predict", {"review": job.review.text, "restaurantName": job.restaurant}
            )
            if isinstance(answer, str):
                run.fail(answer)
                continue
            version = str(answer.get("modelVersion"))
            report.api_calls_per_version[version] = report.api_calls_per_version.get(version, 0) + 1


async def simulate(
    gateway: str,
    reviews: Sequence[LabelledReview],
    *,
    restaurants: Sequence[str],
    host_header: str | None = None,
    clients: int = 1000,
    total: int = 1000,
    time_limit: float = 300.0,
    request_timeout: float = 10.0,
    max_errors: int = 20,
    seed: int = 7,
    concurrency: int = 16,
    api_calls: int = 0,
    batch: int = 0,
    progress: Callable[[int], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SimulationReport:
    """Send `total` reviews as `clients` users, each with its own cookie jar, plus feedback.

    `api_calls` cookieless /predict calls and one /predict/batch call of `batch` reviews are
    mixed in as API traffic would be.
    """
    if clients < 1 or total < 1 or concurrency < 1:
        raise SimulationError("clients, reviews and concurrency must all be at least 1")
    if api_calls < 0 or not 0 <= batch <= 1000:
        raise SimulationError("api calls must be 0 or more, a batch 0 to 1,000 reviews")
    if not reviews:
        raise SimulationError("no reviews to send")
    if not restaurants:
        raise SimulationError("no restaurants to review")
    rng = random.Random(seed)
    pool = list(reviews)
    jobs: list[_Job] = []
    while len(jobs) < total:
        rng.shuffle(pool)
        jobs += [_Job(r, rng.choice(restaurants)) for r in pool[: total - len(jobs)]]
    extra = [_Job(rng.choice(pool), rng.choice(restaurants)) for _ in range(api_calls + batch)]
    clients = min(clients, total)
    report = SimulationReport(requested=total, clients=clients)
    run = _Run(report, max_errors, progress)
    headers = {"Host": host_header} if host_header else {}
    # Clients share one connection pool but each keeps its own cookie jar, like real browsers
    # behind one proxy; a pool per client would also cost an SSL context each.
    shared = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=concurrency + 1)
    )
    sessions = [
        httpx.AsyncClient(
            base_url=gateway,
            headers=headers,
            timeout=httpx.Timeout(request_timeout),
            transport=shared,
        )
        for _ in range(clients)
    ]
    slots = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    try:
        await _preflight(sessions[0], gateway)
        async with asyncio.timeout(time_limit), asyncio.TaskGroup() as group:
            for i, session in enumerate(sessions):
                group.create_task(_client_session(session, jobs[i::clients], run, slots))
            if extra:
                api = httpx.AsyncClient(
                    base_url=gateway,
                    headers=headers,
                    timeout=httpx.Timeout(request_timeout * 3),
                    transport=shared,
                )
                group.create_task(_api_calls(api, extra[batch:], extra[:batch], run, slots))
    except TimeoutError:
        report.timed_out = True
    except ExceptionGroup as failures:
        # A task group wraps the first failure; the error budget's message is the one to show.
        budget = failures.subgroup(SimulationError)
        if budget is None:
            raise
        raise budget.exceptions[0] from None
    finally:
        if transport is None:
            await shared.aclose()
        report.seconds = time.monotonic() - started
    return report


async def _preflight(client: httpx.AsyncClient, gateway: str) -> None:
    """Fail fast with one clear message when nothing answers at the gateway."""
    try:
        await client.get("/healthz")
    except httpx.HTTPError as exc:
        raise SimulationError(
            f"cannot reach the gateway at {gateway}: {exc or type(exc).__name__}"
        ) from None
    # The health check went through the weighted route; start the user without that cookie.
    client.cookies.clear()
