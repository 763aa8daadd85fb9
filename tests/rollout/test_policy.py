"""The rollout's rule: each step's weights, its own counts, and the verdict on them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from restaurant_sentiment.experiment import Observation, VersionCounts, analyse
from restaurant_sentiment.tools.rollout.policy import (
    Action,
    ErrorCounts,
    judge,
    rollback_weights,
    rollout_of,
    step_config,
    step_weights,
    subtract,
    subtract_errors,
)
from restaurant_sentiment.tools.rollout.signals import parse_envoy_stats
from restaurant_sentiment.values import ConfigError, Rollout, Values, load_values, parse_values
from tests.support import CHART, CHART_VALUES

RAW: dict[str, Any] = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))
VALUES = load_values(CHART_VALUES)
# Small numbers, as in the tests on the real stack.
ROLLOUT = Rollout(steps=[20, 50], min_feedback_per_step=40, max_error_rate=0.05)


def with_rollout(**rollout: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    raw["rollout"] = rollout
    return raw


def test_the_chart_values_configure_a_rollout_ending_at_100() -> None:
    rollout = rollout_of(VALUES)
    assert (rollout.control, rollout.treatment) == ("stable", "canary")
    assert rollout.steps[-1] == 100
    assert rollout.analysed_steps == [s for s in rollout.steps if s < 100]
    assert all(a < b for a, b in zip(rollout.steps, rollout.steps[1:], strict=False))


def test_values_without_a_rollout_block_get_the_defaults() -> None:
    raw = copy.deepcopy(RAW)
    del raw["rollout"]
    assert parse_values(raw).rollout == Rollout()


def test_the_last_step_need_not_be_listed() -> None:
    assert Rollout(steps=[20, 50]).analysed_steps == [20, 50]
    assert Rollout(steps=[20, 50, 100]).analysed_steps == [20, 50]


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"steps": [50, 20]}, "rollout.steps: Value error, the steps must rise"),
        ({"steps": [20, 20]}, "rollout.steps: Value error, the steps must rise"),
        ({"steps": [0, 50]}, "rollout.steps: Value error, each step is a percentage"),
        ({"steps": [50, 120]}, "rollout.steps: Value error, each step is a percentage"),
        ({"steps": []}, "rollout.steps: List should have at least 1 item"),
        ({"minFeedbackPerStep": 0}, "rollout.minFeedbackPerStep"),
        ({"maxErrorRate": 1.5}, "rollout.maxErrorRate"),
        ({"noHarmProbability": 2}, "rollout.noHarmProbability"),
        ({"pollSeconds": 0}, "rollout.pollSeconds"),
        ({"stepTimeoutSeconds": -1}, "rollout.stepTimeoutSeconds"),
        ({"treatment": "Canary!"}, "rollout.treatment"),
        ({"control": "canary"}, "control and treatment are both 'canary'"),
        ({"steps": [10], "stepz": [20]}, "rollout.stepz: Extra inputs are not permitted"),
    ],
)
def test_bad_rollout_settings_are_named(rollout: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_values(with_rollout(**rollout))
    assert message in str(caught.value)


def test_a_version_the_values_do_not_serve_is_named() -> None:
    values = parse_values(with_rollout(treatment="canary-b"))
    with pytest.raises(ConfigError, match=r"rollout.treatment: unknown version 'canary-b'"):
        rollout_of(values)


def test_promoting_keeps_the_rollout_settings() -> None:
    values = parse_values(with_rollout(steps=[5, 25], minFeedbackPerStep=7, pollSeconds=1.5))
    moved = values.with_weights({"stable": 0, "canary": 100})
    assert moved.rollout == values.rollout
    assert moved.weights == {"stable": 0, "canary": 100}


def three_versions() -> Values:
    raw = yaml.safe_load((CHART / "ci" / "three-versions-values.yaml").read_text())
    merged = copy.deepcopy(RAW)
    merged["modelService"]["versions"] = raw["modelService"]["versions"]
    return parse_values(merged)


def test_a_step_gives_the_treatment_its_share_the_control_the_rest_others_none() -> None:
    values = three_versions()
    names = values.version_names
    assert len(names) == 3
    assert step_weights(values, ROLLOUT, 20) == {
        name: {"stable": 80, "canary": 20}.get(name, 0) for name in names
    }
    assert step_weights(values, ROLLOUT, 100)["canary"] == 100
    assert rollback_weights(values, ROLLOUT)["stable"] == 100
    for percent in (20, 50, 100, 0):
        weights = step_weights(values, ROLLOUT, percent)
        assert sum(weights.values()) == 100
        # The values accept them: the split is one a gateway can serve.
        assert values.with_weights(weights).weights == weights


def counts(**versions: tuple[int, int, int]) -> Observation:
    """(assignments, correct, incorrect) per version."""
    return Observation(
        source="metrics",
        description="test",
        counts={
            name: VersionCounts(assignments=a, predictions=c + i, correct=c, incorrect=i)
            for name, (a, c, i) in versions.items()
        },
        split="stable=80,canary=20",
    )


def test_a_steps_counts_are_those_since_its_start() -> None:
    start = counts(stable=(100, 60, 20), canary=(30, 20, 4))
    now = counts(stable=(180, 120, 35), canary=(50, 41, 5))
    step = subtract(now, start)
    assert step.for_version("stable") == VersionCounts(
        assignments=80, predictions=75, correct=60, incorrect=15
    )
    assert step.for_version("canary") == VersionCounts(
        assignments=20, predictions=22, correct=21, incorrect=1
    )


def test_a_restarted_counter_counts_from_zero() -> None:
    start = counts(stable=(100, 60, 20), canary=(30, 20, 4))
    restarted = counts(stable=(120, 70, 25), canary=(3, 2, 1))
    assert subtract(restarted, start).for_version("canary") == VersionCounts(
        assignments=3, predictions=3, correct=2, incorrect=1
    )
    errors = subtract_errors(
        {"canary": ErrorCounts(requests=5, errors=1)},
        {"canary": ErrorCounts(requests=50, errors=0), "stable": ErrorCounts(requests=9)},
    )
    assert errors == {
        "canary": ErrorCounts(requests=5, errors=1),
        "stable": ErrorCounts(requests=0, errors=0),
    }


def test_envoy_stats_give_each_versions_requests_and_5xx() -> None:
    body = {
        "stats": [
            {"name": "cluster.model-service-canary.upstream_rq_5xx", "value": 7},
            {"name": "cluster.model-service-canary.upstream_rq_completed", "value": 40},
            # Envoy creates a response-code counter on first use: none means zero.
            {"name": "cluster.model-service-stable.upstream_rq_completed", "value": 90},
            {"name": "cluster.frontend.upstream_rq_completed", "value": 300},
            {"name": "cluster.model-service-canary.upstream_rq_503", "value": 7},
        ]
    }
    assert parse_envoy_stats(body) == {
        "canary": ErrorCounts(requests=40, errors=7),
        "stable": ErrorCounts(requests=90, errors=0),
    }


def verdict_on(
    stable: tuple[int, int, int],
    canary: tuple[int, int, int],
    errors: ErrorCounts | None = None,
    weights: dict[str, int] | None = None,
) -> tuple[Action, str]:
    weights = weights or {"stable": 80, "canary": 20}
    split = VALUES.with_weights(weights).split
    analysis = analyse(
        counts(stable=stable, canary=canary), step_config(VALUES, ROLLOUT, weights, split)
    )
    verdict = judge(analysis, errors or ErrorCounts(), ROLLOUT)
    return verdict.action, verdict.reason


CASES = [
    # (stable, canary) as (assignments, correct, incorrect) -> action, words of the reason
    pytest.param((0, 0, 0), (0, 0, 0), Action.WAIT, "waiting for 40 feedback", id="nothing-yet"),
    pytest.param(
        (160, 130, 30), (40, 30, 9), Action.WAIT, "(canary 39)", id="canary-one-short"
    ),
    pytest.param(
        (160, 125, 35), (40, 39, 1), Action.ADVANCE, "canary is better", id="promote-advances"
    ),
    pytest.param(
        (160, 125, 35), (40, 33, 7), Action.ADVANCE, "no sign of harm: P(canary better) = 0.",
        id="no-harm-advances",
    ),
    pytest.param(
        (160, 140, 20), (40, 33, 7), Action.WAIT, "waiting for more feedback",
        id="maybe-worse-waits",
    ),
    pytest.param(
        (160, 150, 10), (40, 26, 14), Action.ROLLBACK, "canary is worse", id="worse-rolls-back"
    ),
    pytest.param(
        # 80/20 configured, 50/50 realised over 400 clients: the split is broken.
        (200, 150, 50), (200, 170, 30), Action.ROLLBACK, "sample-ratio mismatch",
        id="srm-rolls-back",
    ),
    pytest.param(
        # The same shares over 6 clients: too few for the chi-square test to mean anything.
        (3, 0, 0), (3, 0, 0), Action.WAIT, "waiting for 40 feedback", id="srm-too-few",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("stable", "canary", "action", "words"), CASES)
def test_the_verdict_on_a_step(
    stable: tuple[int, int, int], canary: tuple[int, int, int], action: Action, words: str
) -> None:
    got, reason = verdict_on(stable, canary)
    assert got is action, reason
    assert words in reason


def test_a_5xx_rate_above_the_limit_rolls_back_before_any_feedback() -> None:
    action, reason = verdict_on((10, 0, 0), (3, 0, 0), ErrorCounts(requests=20, errors=2))
    assert action is Action.ROLLBACK
    assert "canary answered 2 of 20 requests at this step with a 5xx (10.0% > 5%)" in reason


def test_the_5xx_rate_is_judged_only_on_enough_requests() -> None:
    action, _ = verdict_on((10, 0, 0), (3, 0, 0), ErrorCounts(requests=19, errors=19))
    assert action is Action.WAIT
    # At the limit is no harm; above it is.
    action, _ = verdict_on((160, 125, 35), (40, 33, 7), ErrorCounts(requests=100, errors=5))
    assert action is Action.ADVANCE
