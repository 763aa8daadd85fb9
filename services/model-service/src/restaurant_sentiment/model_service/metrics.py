"""The experiment metrics: assignments, predictions and feedback per model version.

What each counts, and why, is in docs/experiment-plan.md: the sample-ratio test counts
assignments (the unit the split randomises), accuracy counts diners' feedback on single
predictions, and batch calls are counted apart.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from restaurant_sentiment.values import names
from restaurant_sentiment.values.names import OTHER_RESTAURANT

LABELS = (names.VERSION_LABEL, names.RESTAURANT_LABEL)
SPLIT = re.compile(names.SPLIT)
# A new split comes with each change of weights: a handful per release, never unbounded.
MAX_SPLITS = 32
HEADER = names.ASSIGNMENT_HEADER.encode("latin-1")
log = logging.getLogger("restaurant_sentiment.model_service")


class ExperimentMetrics:
    """Counters the canary analysis reads; label values are bounded by the catalogue."""

    def __init__(self, registry: CollectorRegistry, version: str, restaurants: list[str]) -> None:
        self.version = version
        self.restaurants = frozenset(restaurants)

        def counter(exposed: str, doc: str) -> Counter:
            return Counter(names.counter_base(exposed), doc, LABELS, registry=registry)

        self.predictions = counter(names.PREDICTIONS, "Reviews classified.")
        self.positive = counter(names.POSITIVE_PREDICTIONS, "Reviews classified as positive.")
        self.negative = counter(names.NEGATIVE_PREDICTIONS, "Reviews classified as negative.")
        self.true_pos = counter(names.TRUE_POSITIVES, "Positive predictions users confirmed.")
        self.true_neg = counter(names.TRUE_NEGATIVES, "Negative predictions users confirmed.")
        self.false_pos = counter(names.FALSE_POSITIVES, "Positive predictions users rejected.")
        self.false_neg = counter(names.FALSE_NEGATIVES, "Negative predictions users rejected.")
        self.accuracy = Gauge(
            names.ACCURACY,
            "Share of feedback saying the prediction was right (this process only).",
            LABELS,
            registry=registry,
        )
        # (version, restaurant) -> [correct, total]; the gauge and the API answer come from it.
        self._feedback: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        # Every series exists from the start, so rate() and dashboards work before any event.
        for restaurant in (*restaurants, OTHER_RESTAURANT):
            for metric in (
                self.predictions, self.positive, self.negative, self.true_pos,
                self.true_neg, self.false_pos, self.false_neg, self.accuracy,
            ):  # fmt: skip
                metric.labels(version, restaurant)
        self.assignments = Counter(
            names.counter_base(names.ASSIGNMENTS),
            "Clients the weighted route assigned to this version, by the split in force.",
            (names.VERSION_LABEL, names.SPLIT_LABEL),
            registry=registry,
        )
        self.batch_predictions = counter(
            names.BATCH_PREDICTIONS, "Reviews classified by /predict/batch (API traffic)."
        )
        self.batch_feedback = Counter(
            names.counter_base(names.BATCH_FEEDBACK),
            "Feedback on predictions of /predict/batch, by outcome (correct or incorrect).",
            (names.VERSION_LABEL, names.OUTCOME_LABEL),
            registry=registry,
        )
        for outcome in ("correct", "incorrect"):
            self.batch_feedback.labels(version, outcome)
        self._splits: dict[str, object] = {}
        # The prediction counters are on the hot path: keep their labelled series at hand.
        self._prediction_series = {
            r: tuple(m.labels(version, r) for m in (self.predictions, self.positive, self.negative))
            for r in (*restaurants, OTHER_RESTAURANT)
        }

    def label(self, restaurant: str) -> str:
        """The metric label for a restaurant name: itself if catalogued, else 'other'."""
        return restaurant if restaurant in self.restaurants else OTHER_RESTAURANT

    def record_predictions(self, restaurant: str, positives: int, negatives: int) -> None:
        """Count classified reviews for one restaurant."""
        total, positive, negative = self._prediction_series[self.label(restaurant)]
        total.inc(positives + negatives)
        if positives:
            positive.inc(positives)
        if negatives:
            negative.inc(negatives)

    def record_batch(self, restaurant: str, reviews: int) -> None:
        """Count reviews classified in one batch call for one restaurant."""
        self.batch_predictions.labels(self.version, self.label(restaurant)).inc(reviews)

    def record_assignment(self, split: str) -> bool:
        """Count a client the weighted route assigned to this version; False if not valid.

        The split must be well formed and one of a bounded number of splits, so a header cannot
        add label values at will. A split that gives this version no share is still counted:
        it is the evidence of a broken assignment the sample-ratio test exists to catch.
        """
        series = self._splits.get(split)
        if series is None:
            if SPLIT.match(split) is None or len(self._splits) >= MAX_SPLITS:
                log.warning("ignored an assignment header for split %r", split[:200])
                return False
            series = self._splits[split] = self.assignments.labels(self.version, split)
        series.inc()  # type: ignore[attr-defined]
        return True

    def record_batch_feedback(self, version: str, accurate: bool) -> None:
        """Count feedback on a batch prediction: never part of the diners' accuracy."""
        self.batch_feedback.labels(version, "correct" if accurate else "incorrect").inc()

    def record_feedback(
        self, version: str, restaurant: str, prediction: int, accurate: bool
    ) -> float:
        """Count one feedback for the version that made the prediction; return its accuracy."""
        label = self.label(restaurant)
        if prediction == 1:
            outcome = self.true_pos if accurate else self.false_pos
        else:
            outcome = self.true_neg if accurate else self.false_neg
        outcome.labels(version, label).inc()
        tally = self._feedback[(version, label)]
        tally[0] += int(accurate)
        tally[1] += 1
        self.accuracy.labels(version, label).set(tally[0] / tally[1])
        return self.accuracy_of(version)

    def accuracy_of(self, version: str) -> float:
        """This process's share of diners' feedback saying version was right (0 before any)."""
        correct = total = 0
        for (v, _), (c, t) in self._feedback.items():
            if v == version:
                correct, total = correct + c, total + t
        return correct / total if total else 0.0


class AssignmentCounter:
    """Counts the requests the weighted route assigned here (plain ASGI: one header scan)."""

    def __init__(self, app: ASGIApp, metrics: ExperimentMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == HEADER:
                    self.metrics.record_assignment(value.decode("latin-1"))
                    break
        await self.app(scope, receive, send)
