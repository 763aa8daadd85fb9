"""The rule of a progressive rollout: each step's weights, its counts, and the verdict on it.

Pure functions: the loop in `run.py` feeds them what it read and acts on what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from restaurant_sentiment.experiment.analysis import Analysis, Decision, points_interval
from restaurant_sentiment.experiment.config import ExperimentConfig
from restaurant_sentiment.experiment.sources import Observation, VersionCounts
from restaurant_sentiment.values import ConfigError, Rollout, Values

# Pearson's chi-square is trusted once every version expects at least this many assignments.
MIN_EXPECTED_ASSIGNMENTS = 5


class Action(StrEnum):
    """What the rollout does after a reading."""

    ADVANCE = "ADVANCE"
    WAIT = "WAIT"
    ROLLBACK = "ROLLBACK"


@dataclass(frozen=True)
class Verdict:
    """An action and the reason for it, with the figures it rests on."""

    action: Action
    reason: str


class ErrorCounts(BaseModel):
    """Requests a version answered through the gateway, and how many of them were 5xx."""

    requests: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0)

    @property
    def rate(self) -> float | None:
        """Share of the requests that got a 5xx; None before the first request."""
        return self.errors / self.requests if self.requests else None

    def describe(self) -> str:
        if not self.requests:
            return "no requests"
        return f"{100 * (self.rate or 0.0):.1f}% ({self.errors} of {self.requests})"


def rollout_of(values: Values) -> Rollout:
    """The values' rollout settings, checked against its versions; ConfigError naming the key."""
    rollout = values.rollout
    names = values.version_names
    for key, name in (("control", rollout.control), ("treatment", rollout.treatment)):
        if name not in names:
            raise ConfigError(
                f"rollout.{key}: unknown version {name!r}: modelService.versions has "
                f"{', '.join(names)}"
            )
    return rollout


def step_weights(values: Values, rollout: Rollout, percent: int) -> dict[str, int]:
    """The treatment at percent, the control at the rest, every other version at 0."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a step is a percentage, got {percent}")
    weights = dict.fromkeys(values.version_names, 0)
    weights[rollout.treatment] = percent
    weights[rollout.control] = 100 - percent
    return weights


def rollback_weights(values: Values, rollout: Rollout) -> dict[str, int]:
    """All new traffic back to the control."""
    return step_weights(values, rollout, 0)


def step_config(
    values: Values, rollout: Rollout, weights: dict[str, int], split: str
) -> ExperimentConfig:
    """The experiment at one step: its weights and split, the per-step feedback minimum."""
    thresholds = values.experiment.model_copy(
        update={"min_feedback_per_version": rollout.min_feedback_per_step}
    )
    return ExperimentConfig(
        thresholds=thresholds,
        weights={name: float(weight) for name, weight in weights.items()},
        control=rollout.control,
        treatment=rollout.treatment,
        split=split,
    )


def _since(now: int, start: int) -> int:
    # A counter below its start value means the process restarted and counts from zero again:
    # what it holds now happened after the restart (what came before it is lost).
    return now - start if now >= start else now


def subtract(now: Observation, start: Observation) -> Observation:
    """The counts of now that came after start (the experiment's counts of one step)."""
    counts = {}
    for name in sorted(set(now.counts) | set(start.counts)):
        a, b = now.for_version(name), start.for_version(name)
        counts[name] = VersionCounts(
            assignments=_since(a.assignments, b.assignments),
            predictions=_since(a.predictions, b.predictions),
            correct=_since(a.correct, b.correct),
            incorrect=_since(a.incorrect, b.incorrect),
        )
    return now.model_copy(update={"counts": counts})


def subtract_errors(
    now: dict[str, ErrorCounts], start: dict[str, ErrorCounts]
) -> dict[str, ErrorCounts]:
    """The gateway's counts of now that came after start, per version."""
    empty = ErrorCounts()
    return {
        name: ErrorCounts(
            requests=_since(now.get(name, empty).requests, start.get(name, empty).requests),
            errors=_since(now.get(name, empty).errors, start.get(name, empty).errors),
        )
        for name in sorted(set(now) | set(start))
    }


def srm_trusted(analysis: Analysis) -> bool:
    """Whether every version with weight expects enough assignments for the chi-square test."""
    total = sum(v.assignments for v in analysis.versions)
    shares = [v.configured_weight / 100 for v in analysis.versions if v.configured_weight > 0]
    return bool(shares) and total * min(shares) >= MIN_EXPECTED_ASSIGNMENTS


def judge(analysis: Analysis, errors: ErrorCounts, rollout: Rollout) -> Verdict:
    """The verdict on a step's counts; the first rule that applies wins.

    1. the treatment's 5xx rate above `maxErrorRate` (on enough requests): ROLLBACK
    2. a sample-ratio mismatch of the step's assignments: ROLLBACK
    3. fewer than `minFeedbackPerStep` feedback events for a version: WAIT
    4. the experiment says ROLLBACK: ROLLBACK
    5. the experiment says PROMOTE: ADVANCE
    6. CONTINUE with P(treatment better) >= `noHarmProbability`: ADVANCE
    7. otherwise: WAIT for more feedback (until the step's time runs out)
    """
    treatment = analysis.treatment
    rate = errors.rate
    if errors.requests >= rollout.min_requests_for_error_rate and (rate or 0.0) > (
        rollout.max_error_rate
    ):
        return Verdict(
            Action.ROLLBACK,
            f"{treatment} answered {errors.errors} of {errors.requests} requests at this step "
            f"with a 5xx ({100 * (rate or 0.0):.1f}% > {100 * rollout.max_error_rate:g}%)",
        )
    srm = analysis.sample_ratio
    if srm.mismatch and srm_trusted(analysis):
        shares = ", ".join(
            f"{v.name} {v.assignments} ({100 * (v.traffic_share or 0.0):.1f}%, "
            f"configured {v.configured_weight:g}%)"
            for v in analysis.versions
            if v.assignments or v.configured_weight
        )
        return Verdict(
            Action.ROLLBACK,
            f"sample-ratio mismatch of this step's assignments (p = {srm.p_value:.2g} < "
            f"{analysis.thresholds.srm_p_value:g}): {shares}; the split is not what was set",
        )
    need = rollout.min_feedback_per_step
    short = [v for v in analysis.versions[:2] if v.feedback < need]
    if short:
        counts = ", ".join(f"{v.name} {v.feedback}" for v in short)
        return Verdict(Action.WAIT, f"waiting for {need} feedback events per version ({counts})")
    p_better = analysis.bayes.probability_treatment_better
    if analysis.decision is Decision.ROLLBACK:
        return Verdict(Action.ROLLBACK, analysis.reason)
    if analysis.decision is Decision.PROMOTE:
        return Verdict(Action.ADVANCE, analysis.reason)
    spread = (
        f" (difference {points_interval(analysis.difference.interval)})"
        if analysis.difference.interval
        else ""
    )
    if p_better >= rollout.no_harm_probability:
        return Verdict(
            Action.ADVANCE,
            f"no sign of harm: P({treatment} better) = {p_better:.3f} >= "
            f"{rollout.no_harm_probability:g}{spread}",
        )
    return Verdict(
        Action.WAIT,
        f"P({treatment} better) = {p_better:.3f} < {rollout.no_harm_probability:g}{spread}: "
        "waiting for more feedback",
    )
