"""The experiment metrics: prediction and feedback counters per model version and restaurant."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge

from restaurant_sentiment.values import names
from restaurant_sentiment.values.names import OTHER_RESTAURANT

LABELS = (names.VERSION_LABEL, names.RESTAURANT_LABEL)


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
        correct = total = 0
        for (v, _), (c, t) in self._feedback.items():
            if v == version:
                correct, total = correct + c, total + t
        return correct / total
