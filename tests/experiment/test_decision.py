"""The decision table: which counts lead to PROMOTE, ROLLBACK or CONTINUE, and why."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from restaurant_sentiment.experiment import (
    Decision,
    ExperimentConfig,
    Observation,
    Thresholds,
    VersionCounts,
    analyse,
)

THRESHOLDS = Thresholds(
    minFeedbackPerVersion=200,
    confidenceLevel=0.95,
    promoteProbability=0.95,
    rollbackProbability=0.05,
    srmPValue=0.001,
)
CONFIG = ExperimentConfig(thresholds=THRESHOLDS, weights={"stable": 70.0, "canary": 30.0})


def observe(stable: tuple[int, int, int], canary: tuple[int, int, int]) -> Observation:
    """Counts as (new clients, correct, incorrect) per version; one prediction per client."""
    return Observation(
        source="metrics",
        description="test counts",
        counts={
            name: VersionCounts(assignments=a, predictions=a, correct=c, incorrect=i)
            for name, (a, c, i) in (("stable", stable), ("canary", canary))
        },
    )


CASES = [
    # (stable, canary) -> decision, words the reason must contain
    pytest.param((0, 0, 0), (0, 0, 0), Decision.CONTINUE, "minimum feedback", id="no-data"),
    pytest.param(
        (700, 560, 140), (300, 150, 30), Decision.CONTINUE, "canary has 180", id="canary-short"
    ),
    pytest.param(
        (700, 150, 40), (300, 260, 40), Decision.CONTINUE, "stable has 190", id="stable-short"
    ),
    pytest.param(
        # Far better canary, but below the minimum: still no decision.
        (700, 100, 99),
        (300, 199, 0),
        Decision.CONTINUE,
        "minimum feedback",
        id="short-but-clear",
    ),
    pytest.param(
        (700, 560, 140), (300, 270, 30), Decision.PROMOTE, "canary is better", id="canary-better"
    ),
    pytest.param(
        (700, 630, 70), (300, 220, 80), Decision.ROLLBACK, "canary is worse", id="canary-worse"
    ),
    pytest.param(
        (700, 560, 140), (300, 241, 59), Decision.CONTINUE, "spans zero", id="no-difference"
    ),
    pytest.param(
        # 50/50 traffic against 70/30 weights: the comparison cannot be trusted, even if clear.
        (500, 400, 100),
        (500, 450, 50),
        Decision.CONTINUE,
        "sample-ratio mismatch",
        id="srm",
    ),
    pytest.param(
        (5000, 400, 100), (0, 450, 50), Decision.CONTINUE, "sample-ratio mismatch", id="srm-zero"
    ),
]


@pytest.mark.parametrize(("stable", "canary", "decision", "reason"), CASES)
def test_decision_table(
    stable: tuple[int, int, int], canary: tuple[int, int, int], decision: Decision, reason: str
) -> None:
    analysis = analyse(observe(stable, canary), CONFIG)
    assert analysis.decision is decision, analysis.reason
    assert reason in analysis.reason


def test_promote_needs_the_interval_above_zero_as_well() -> None:
    # P(better) clears a lax 0.9 threshold while the 99% interval still includes zero.
    lax = THRESHOLDS.model_copy(update={"promote_probability": 0.9, "confidence_level": 0.99})
    config = CONFIG.model_copy(update={"thresholds": lax})
    analysis = analyse(observe((700, 560, 140), (300, 251, 49)), config)
    assert analysis.bayes.probability_treatment_better >= 0.9
    assert analysis.difference.interval.low < 0
    assert analysis.decision is Decision.CONTINUE
    assert "spans zero" in analysis.reason


def test_probability_between_thresholds_continues() -> None:
    strict = THRESHOLDS.model_copy(update={"promote_probability": 0.9999})
    config = CONFIG.model_copy(update={"thresholds": strict})
    analysis = analyse(observe((700, 560, 140), (300, 262, 38)), config)
    assert analysis.difference.interval.low > 0
    assert analysis.decision is Decision.CONTINUE
    assert "between the rollback" in analysis.reason


def test_minimum_feedback_comes_from_the_configuration() -> None:
    counts = observe((700, 560, 140), (300, 135, 15))
    assert analyse(counts, CONFIG).decision is Decision.CONTINUE
    lower = THRESHOLDS.model_copy(update={"min_feedback_per_version": 150})
    assert (
        analyse(counts, CONFIG.model_copy(update={"thresholds": lower})).decision
        is Decision.PROMOTE
    )


def test_analysis_reports_every_figure_as_json() -> None:
    analysis = analyse(observe((700, 560, 140), (300, 270, 30)), CONFIG)
    data = json.loads(json.dumps(analysis.model_dump(mode="json")))
    assert data["decision"] == "PROMOTE"
    stable, canary = data["versions"]
    assert (stable["name"], stable["role"], canary["name"], canary["role"]) == (
        "stable",
        "control",
        "canary",
        "treatment",
    )
    assert stable["accuracy"] == pytest.approx(0.8)
    assert canary["accuracy"] == pytest.approx(0.9)
    assert canary["traffic_share"] == pytest.approx(0.3)
    assert data["difference"]["estimate"] == pytest.approx(0.1)
    assert 0 < data["difference"]["interval"]["low"] < 0.1 < data["difference"]["interval"]["high"]
    assert data["bayes"]["probability_treatment_better"] > 0.99
    assert data["sample_ratio"]["p_value"] == pytest.approx(1.0)
    assert data["thresholds"]["min_feedback_per_version"] == 200


def test_the_split_test_counts_assignments_not_predictions() -> None:
    """A 1,000-review batch and repeat visitors add predictions, not assignments."""
    counts = observe((700, 560, 140), (300, 270, 30))
    counts.counts["stable"] = counts.counts["stable"].model_copy(update={"predictions": 5700})
    analysis = analyse(counts, CONFIG)
    assert not analysis.sample_ratio.mismatch
    assert analysis.decision is Decision.PROMOTE
    assert analysis.versions[0].traffic_share == pytest.approx(0.7)


@pytest.mark.parametrize(("stable", "canary", "decision", "words"), CASES)
def test_reasons_speak_in_percentage_points(
    stable: tuple[int, int, int], canary: tuple[int, int, int], decision: Any, words: str
) -> None:
    reason = analyse(observe(stable, canary), CONFIG).reason
    assert not re.search(r"\[[+-]0\.\d{3}", reason), reason
    if "interval" in reason:
        assert re.search(r"\[[+-]\d+\.\d, [+-]\d+\.\d\] points", reason), reason


def test_no_interval_is_invented_without_feedback() -> None:
    analysis = analyse(observe((700, 0, 0), (300, 0, 0)), CONFIG)
    assert analysis.difference.interval is None and analysis.difference.estimate is None
    assert analysis.difference.missing == "no feedback yet for stable and canary"
    assert all(v.accuracy_interval is None for v in analysis.versions)
    one_sided = analyse(observe((700, 500, 100), (300, 0, 0)), CONFIG)
    assert one_sided.difference.missing == "no feedback yet for canary"
    assert one_sided.versions[0].accuracy_interval is not None


def test_a_version_without_any_report_counts_as_zero() -> None:
    only_stable = Observation(
        source="metrics",
        description="one service",
        counts={"stable": VersionCounts(predictions=10, correct=5, incorrect=5)},
    )
    analysis = analyse(only_stable, CONFIG)
    canary = analysis.versions[1]
    assert (canary.predictions, canary.feedback, canary.accuracy) == (0, 0, None)
    assert analysis.decision is Decision.CONTINUE
