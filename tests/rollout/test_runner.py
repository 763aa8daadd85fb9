"""The rollout loop's sequence of weights, on figures given step by step.

The figures here are written out (the real stack's are read in test_local_stack.py), and the
clock moves only when the loop sleeps, so a one-hour step budget runs out at once.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from restaurant_sentiment.experiment import Observation, SourceError, VersionCounts
from restaurant_sentiment.tools.rollout.policy import ErrorCounts
from restaurant_sentiment.tools.rollout.run import (
    REACHED_FULL,
    ROLLED_BACK,
    Runner,
    StepLog,
    Target,
)
from restaurant_sentiment.tools.rollout.signals import Mark, Reading, Signals
from restaurant_sentiment.values import Rollout, load_values
from tests.support import CHART_VALUES

VALUES = load_values(CHART_VALUES)
ROLLOUT = Rollout(steps=[20, 50], min_feedback_per_step=40, poll_seconds=5, step_timeout_seconds=60)
Step = tuple[dict[str, tuple[int, int]], ErrorCounts] | Exception


class Weights(Target):
    """Keeps every split it is given, in order."""

    def __init__(self) -> None:
        self.applied: list[dict[str, int]] = []

    def apply(self, weights: dict[str, int]) -> None:
        self.applied.append(dict(weights))

    def describe(self) -> str:
        return "a list"


class Script(Signals):
    """Readings given in advance: per version (correct, incorrect), and the treatment's 5xx.

    Assignments follow the split of the step exactly, so the sample-ratio test never objects.
    """

    def __init__(self, readings: list[Step]) -> None:
        self.readings: Iterator[Step] = iter(readings)

    async def mark(self, split: str) -> Mark:
        return Mark(0.0)

    async def read(self, mark: Mark, split: str) -> Reading:
        step = next(self.readings)
        if isinstance(step, Exception):
            raise step
        feedback, errors = step
        shares = {part.split("=")[0]: int(part.split("=")[1]) for part in split.split(",")}
        counts = {
            name: VersionCounts(
                assignments=shares[name] * 10, predictions=c + i, correct=c, incorrect=i
            )
            for name, (c, i) in feedback.items()
        }
        observation = Observation(source="metrics", description="script", counts=counts)
        return Reading(observation, {"canary": errors}, 0.0)

    def describe(self) -> list[str]:
        return ["a script"]


def run(readings: list[Step], tmp_path: Path) -> tuple[int, list[dict[str, int]], list[dict]]:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    target = Weights()
    log = StepLog(tmp_path / "rollout.jsonl", io.StringIO())
    runner = Runner(VALUES, ROLLOUT, target, Script(readings), log, sleep, lambda: clock[0])
    status = asyncio.run(runner.run())
    log.close()
    lines = (tmp_path / "rollout.jsonl").read_text().splitlines()
    return status, target.applied, [json.loads(line) for line in lines]


OK = ErrorCounts(requests=100, errors=0)
SHORT = ({"stable": (20, 5), "canary": (5, 1)}, OK)
BETTER = ({"stable": (125, 35), "canary": (38, 2)}, OK)
WORSE = ({"stable": (150, 10), "canary": (26, 14)}, OK)
UNSURE = ({"stable": (140, 20), "canary": (33, 7)}, OK)
FAILING = ({"stable": (20, 5), "canary": (0, 0)}, ErrorCounts(requests=30, errors=30))


def test_a_better_treatment_goes_through_every_step_to_100(tmp_path: Path) -> None:
    status, applied, log = run([SHORT, BETTER, SHORT, SHORT, BETTER], tmp_path)
    assert status == REACHED_FULL
    assert applied == [
        {"stable": 80, "canary": 20},
        {"stable": 50, "canary": 50},
        {"stable": 0, "canary": 100},
    ]
    assert [e["event"] for e in log] == [
        "start", "step", "poll", "poll", "step", "poll", "poll", "poll", "complete",
    ]  # fmt: skip
    decisive = [e for e in log if e.get("action") == "ADVANCE"]
    assert [e["step"] for e in decisive] == [1, 2]
    for entry in decisive:
        assert entry["versions"]["canary"]["feedback"] >= 40
        assert entry["probability_treatment_better"] >= 0.5
        assert entry["treatment_errors"] == {"requests": 100, "errors": 0, "rate": 0.0}


def test_a_worse_treatment_is_rolled_back_at_the_step_that_shows_it(tmp_path: Path) -> None:
    status, applied, log = run([SHORT, BETTER, SHORT, WORSE], tmp_path)
    assert status == ROLLED_BACK
    assert applied[-1] == {"stable": 100, "canary": 0}
    assert applied[:-1] == [{"stable": 80, "canary": 20}, {"stable": 50, "canary": 50}]
    assert log[-1]["event"] == "rollback"
    assert "canary is worse" in log[-1]["reason"]


def test_a_failing_treatment_is_rolled_back_without_waiting_for_feedback(tmp_path: Path) -> None:
    status, applied, log = run([FAILING], tmp_path)
    assert status == ROLLED_BACK
    assert applied == [{"stable": 80, "canary": 20}, {"stable": 100, "canary": 0}]
    assert "with a 5xx (100.0% > 5%)" in log[-1]["reason"]


def test_a_step_without_a_verdict_in_its_time_is_rolled_back(tmp_path: Path) -> None:
    # 60 s at 5 s a reading: the twelfth reading is the last, still unsure.
    status, applied, log = run([UNSURE] * 12, tmp_path)
    assert status == ROLLED_BACK
    assert applied[-1] == {"stable": 100, "canary": 0}
    polls = [e for e in log if e["event"] == "poll"]
    assert len(polls) == 12
    assert [p["action"] for p in polls] == ["WAIT"] * 11 + ["ROLLBACK"]
    assert "no verdict within the step's 60 s (stepTimeoutSeconds)" in log[-1]["reason"]
    assert "waiting for more feedback" in log[-1]["reason"]


def test_unreadable_figures_wait_and_then_roll_back(tmp_path: Path) -> None:
    broken = SourceError("http://127.0.0.1:1/metrics did not answer in time")
    status, applied, log = run([broken] * 12, tmp_path)
    assert status == ROLLED_BACK
    assert applied[-1] == {"stable": 100, "canary": 0}
    assert "the figures cannot be read: http://127.0.0.1:1/metrics" in log[-1]["reason"]


def test_a_reading_that_recovers_goes_on(tmp_path: Path) -> None:
    broken = SourceError("a moment's hiccup")
    status, _, _ = run([broken, BETTER, broken, BETTER], tmp_path)
    assert status == REACHED_FULL


@pytest.mark.parametrize("readings", [[SHORT, BETTER, BETTER], [WORSE]])
def test_every_log_line_is_json_with_a_message(readings: list[Step], tmp_path: Path) -> None:
    _, _, log = run(readings, tmp_path)
    assert all(entry["message"] and entry["time"] for entry in log)
