"""The rollout loop: set a step's split, read its figures, judge them, advance or roll back."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from restaurant_sentiment.experiment.analysis import Analysis, analyse, points
from restaurant_sentiment.experiment.sources import SourceError
from restaurant_sentiment.tools.localmesh import traffic
from restaurant_sentiment.tools.paths import ROOT
from restaurant_sentiment.tools.rollout.policy import (
    Action,
    ErrorCounts,
    Verdict,
    judge,
    rollback_weights,
    srm_trusted,
    step_config,
    step_weights,
)
from restaurant_sentiment.tools.rollout.signals import Mark, Reading, Signals
from restaurant_sentiment.values import ConfigError, Rollout, Values

# Exit statuses of `make rollout`.
REACHED_FULL = 0
ROLLED_BACK = 1
INTERRUPTED = 130


class RolloutError(RuntimeError):
    """The rollout cannot go on: the weights could not be set."""


class Target(ABC):
    """Where the weights are set."""

    @abstractmethod
    def apply(self, weights: dict[str, int]) -> None:
        """Give new clients these weights; RolloutError when that fails."""

    @abstractmethod
    def describe(self) -> str:
        """What is changed, for the log."""


class LocalGateway(Target):
    """The running `make up`: its Envoy routes rewritten in place, as `make split` does."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway_port = gateway_port

    def apply(self, weights: dict[str, int]) -> None:
        try:
            traffic.apply_local_weights(weights, self.gateway_port)
        except ConfigError as exc:
            raise RolloutError(str(exc)) from None

    def describe(self) -> str:
        return f"the `make up` gateway on port {self.gateway_port}"


class HelmRelease(Target):
    """A release in a cluster: `helm upgrade --reuse-values` with the step's weights."""

    def __init__(self, helm: str, values: Path, release: str, namespace: str) -> None:
        self.helm = helm
        self.values = values
        self.release = release
        self.namespace = namespace

    def command(self, weights: dict[str, int]) -> list[str]:
        return traffic.helm_command(self.values, weights, self.release, self.namespace)

    def apply(self, weights: dict[str, int]) -> None:
        command = self.command(weights)
        print(f"+ {traffic.format_command(command)}", flush=True)
        result = subprocess.run([self.helm, *command[1:]], check=False)
        if result.returncode != 0:
            raise RolloutError(f"helm upgrade failed with exit status {result.returncode}")

    def describe(self) -> str:
        return f"the Helm release {self.release} in namespace {self.namespace}"


def default_log_path() -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return ROOT / ".run" / "rollouts" / f"rollout-{stamp}.jsonl"


class StepLog:
    """One line per reading and decision on the terminal, and the same as JSON lines in a file."""

    def __init__(self, path: Path, out: TextIO = sys.stdout) -> None:
        self.path = path
        self.out = out
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--log: cannot write {path}: {exc.strerror}") from None

    def record(self, event: str, line: str, **fields: Any) -> None:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        entry = _finite({"time": now, "event": event, **fields, "message": line})
        self._file.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        print(line, file=self.out, flush=True)

    def close(self) -> None:
        self._file.close()


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN (a chi-square statistic can be infinite): null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def describe_weights(weights: dict[str, int]) -> str:
    return ", ".join(f"{name} {weight}%" for name, weight in weights.items())


def figures(reading: Reading, analysis: Analysis, errors: ErrorCounts) -> dict[str, Any]:
    """A reading's figures as JSON-ready fields of the log."""
    interval = analysis.difference.interval
    return {
        "elapsed_seconds": round(reading.elapsed, 1),
        "versions": {
            v.name: {
                "assignments": v.assignments,
                "predictions": v.predictions,
                "feedback": v.feedback,
                "correct": v.correct,
                "accuracy": v.accuracy,
            }
            for v in analysis.versions
        },
        "probability_treatment_better": _p_better(analysis),
        "difference_points": {
            "estimate": 100 * analysis.difference.estimate,
            "low": 100 * interval.low,
            "high": 100 * interval.high,
        }
        if interval is not None and analysis.difference.estimate is not None
        else None,
        "treatment_errors": {
            "requests": errors.requests,
            "errors": errors.errors,
            "rate": errors.rate,
        },
        "gateway": {
            name: {"requests": e.requests, "errors": e.errors} for name, e in reading.errors.items()
        },
        "sample_ratio": {
            "p_value": analysis.sample_ratio.p_value,
            "mismatch": analysis.sample_ratio.mismatch,
            "trusted": srm_trusted(analysis),
        },
        "decision": analysis.decision.value,
        "decision_reason": analysis.reason,
    }


def _p_better(analysis: Analysis) -> float | None:
    """P(treatment better), or None while a version has no feedback (it would be the prior)."""
    if any(v.feedback == 0 for v in analysis.versions[:2]):
        return None
    return analysis.bayes.probability_treatment_better


def poll_line(
    label: str, reading: Reading, analysis: Analysis, errors: ErrorCounts, verdict: Verdict
) -> str:
    """One terminal line: the figures a reading decided on, and the verdict."""
    versions = analysis.versions[:2]
    assigned = " ".join(f"{v.name} {v.assignments}" for v in versions)
    feedback = " ".join(f"{v.name} {v.feedback}" for v in versions)
    treatment = analysis.treatment
    interval = analysis.difference.interval
    difference = (
        f"diff {points(analysis.difference.estimate or 0.0)} "
        f"[{points(interval.low)}, {points(interval.high)}] pts"
        if interval is not None
        else "diff n/a"
    )
    srm = analysis.sample_ratio.p_value
    p_better = _p_better(analysis)
    return (
        f"{label} t={reading.elapsed:.0f}s | assigned {assigned} | feedback {feedback} | "
        f"P({treatment} better) {'n/a' if p_better is None else f'{p_better:.3f}'} | "
        f"{difference} | "
        f"{treatment} 5xx {errors.describe()} | SRM p {'n/a' if srm is None else f'{srm:.3g}'} | "
        f"{verdict.action.value}: {verdict.reason}"
    )


class Runner:
    """One rollout: the steps of `rollout:`, each judged on its own figures."""

    def __init__(
        self,
        values: Values,
        rollout: Rollout,
        target: Target,
        signals: Signals,
        log: StepLog,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.values = values
        self.rollout = rollout
        self.target = target
        self.signals = signals
        self.log = log
        self.sleep = sleep
        self.clock = clock
        # The treatment has some traffic from the first step until the end or a rollback.
        self.exposed = False
        self.finished = False

    def _apply(self, weights: dict[str, int]) -> str:
        self.target.apply(weights)
        return self.values.with_weights(weights).split

    async def run(self) -> int:
        """Step through the rollout; REACHED_FULL or ROLLED_BACK."""
        steps = self.rollout.analysed_steps
        rollout = self.rollout
        self.log.record(
            "start",
            f"rollout of {rollout.treatment} against {rollout.control} on "
            f"{self.target.describe()}: steps {' -> '.join(f'{s}%' for s in steps)} -> 100%, "
            f"each judged on {rollout.min_feedback_per_step} feedback events per version "
            f"(log: {self.log.path})",
            settings=rollout.model_dump(mode="json", by_alias=True),
            target=self.target.describe(),
            sources=self.signals.describe(),
        )
        for number, percent in enumerate(steps, start=1):
            verdict = await self._step(number, len(steps), percent)
            if verdict.action is Action.ROLLBACK:
                await self._roll_back(verdict.reason)
                return ROLLED_BACK
        full = step_weights(self.values, rollout, 100)
        await asyncio.to_thread(self._apply, full)
        self.finished = True
        self.log.record(
            "complete",
            f"rollout complete: {describe_weights(full)}. This lasts until `make up` restarts or "
            "the release is upgraded from values.yaml: set the weights there to keep it.",
            weights=full,
        )
        return REACHED_FULL

    async def _step(self, number: int, count: int, percent: int) -> Verdict:
        rollout = self.rollout
        weights = step_weights(self.values, rollout, percent)
        self.exposed = True
        split = await asyncio.to_thread(self._apply, weights)
        started = self.clock()
        mark = await self._mark(split, started)
        if isinstance(mark, str):
            return Verdict(Action.ROLLBACK, self._timed_out(mark))
        label = f"step {number}/{count} {rollout.treatment} {percent}%"
        self.log.record(
            "step",
            f"{label}: weights set ({describe_weights(weights)}); its figures count from now",
            step=number,
            steps=count,
            percent=percent,
            weights=weights,
            split=split,
        )
        config = step_config(self.values, rollout, weights, split)
        while True:
            await self.sleep(rollout.poll_seconds)
            try:
                reading = await self.signals.read(mark, split)
            except SourceError as exc:
                elapsed = self.clock() - started
                reason = f"the figures cannot be read: {exc}"
                out_of_time = elapsed >= rollout.step_timeout_seconds
                self.log.record(
                    "poll",
                    f"{label} t={elapsed:.0f}s | {reason}",
                    step=number,
                    percent=percent,
                    elapsed_seconds=round(elapsed, 1),
                    action=(Action.ROLLBACK if out_of_time else Action.WAIT).value,
                    reason=reason,
                )
                if out_of_time:
                    return Verdict(Action.ROLLBACK, self._timed_out(reason))
                continue
            analysis = analyse(reading.observation, config)
            errors = reading.errors.get(rollout.treatment, ErrorCounts())
            verdict = judge(analysis, errors, rollout)
            out_of_time = self.clock() - started >= rollout.step_timeout_seconds
            if verdict.action is Action.WAIT and out_of_time:
                verdict = Verdict(Action.ROLLBACK, self._timed_out(verdict.reason))
            self.log.record(
                "poll",
                poll_line(label, reading, analysis, errors, verdict),
                step=number,
                percent=percent,
                weights=weights,
                split=split,
                **figures(reading, analysis, errors),
                action=verdict.action.value,
                reason=verdict.reason,
            )
            if verdict.action is not Action.WAIT:
                return verdict

    def _timed_out(self, last: str) -> str:
        return (
            f"no verdict within the step's {self.rollout.step_timeout_seconds:g} s "
            f"(stepTimeoutSeconds), rolling back to be safe; last: {last}"
        )

    async def _mark(self, split: str, started: float) -> Mark | str:
        """The step's start, or why it could not be read within the step's time."""
        while True:
            try:
                return await self.signals.mark(split)
            except SourceError as exc:
                reason = f"the figures cannot be read at the step's start: {exc}"
                self.log.record("poll", reason, action=Action.WAIT.value, reason=reason)
                if self.clock() - started >= self.rollout.step_timeout_seconds:
                    return reason
                await self.sleep(self.rollout.poll_seconds)

    async def _roll_back(self, reason: str) -> None:
        weights = rollback_weights(self.values, self.rollout)
        await asyncio.to_thread(self._apply, weights)
        self.finished = True
        self.log.record(
            "rollback",
            f"ROLLED BACK: {describe_weights(weights)}; new clients, and clients pinned to "
            f"{self.rollout.treatment}, now go to {self.rollout.control}. Reason: {reason}",
            weights=weights,
            reason=reason,
        )

    def abort(self, why: str) -> None:
        """Roll back at once (Ctrl-C, an error) unless the rollout is over or never started."""
        if self.finished or not self.exposed:
            return
        weights = rollback_weights(self.values, self.rollout)
        self._apply(weights)
        self.finished = True
        self.log.record(
            "rollback",
            f"ROLLED BACK: {describe_weights(weights)} ({why})",
            weights=weights,
            reason=why,
        )
