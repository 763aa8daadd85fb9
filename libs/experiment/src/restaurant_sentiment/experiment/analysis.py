"""The decision rule: per-version accuracy, the difference, P(canary better), and the verdict."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from restaurant_sentiment.experiment import stats
from restaurant_sentiment.experiment.config import ExperimentConfig, Thresholds
from restaurant_sentiment.experiment.sources import Observation


class Decision(StrEnum):
    """What to do with the treatment version."""

    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"
    CONTINUE = "CONTINUE"


class IntervalOut(BaseModel):
    """A confidence interval as reported."""

    low: float
    high: float


class VersionReport(BaseModel):
    """One version's traffic and feedback with its accuracy estimate.

    `traffic_share` is this version's share of the assignments made under the current split
    (what the weights randomise); `predictions` and feedback count diners' single reviews.
    """

    name: str
    role: str
    configured_weight: float
    assignments: int
    traffic_share: float | None
    predictions: int
    feedback: int
    correct: int
    incorrect: int
    accuracy: float | None
    # None without feedback: there is no interval to give.
    accuracy_interval: IntervalOut | None


class DifferenceReport(BaseModel):
    """Treatment minus control accuracy, with Newcombe's hybrid score interval."""

    estimate: float | None
    # None until both versions have feedback; `missing` then says which lack it.
    interval: IntervalOut | None
    missing: str | None = None
    method: str = "Newcombe hybrid score (method 10) from Wilson intervals"


class BayesReport(BaseModel):
    """Posterior comparison under uniform Beta(1, 1) priors."""

    probability_treatment_better: float
    expected_loss_choosing_treatment: float
    method: str = "Beta(1+correct, 1+incorrect) posteriors, integrated by adaptive quadrature"


class SampleRatioReport(BaseModel):
    """Chi-square test of the assignments under the current split against its weights."""

    statistic: float | None
    p_value: float | None
    mismatch: bool
    unit: str = "assignments of new clients under the current split"
    split: str | None = None


class Analysis(BaseModel):
    """Everything the decision rests on, in one JSON-ready object."""

    source: str
    source_description: str
    control: str
    treatment: str
    versions: list[VersionReport]
    difference: DifferenceReport
    bayes: BayesReport
    sample_ratio: SampleRatioReport
    thresholds: Thresholds
    decision: Decision
    reason: str


def _version_report(
    name: str, role: str, observation: Observation, config: ExperimentConfig, total: int
) -> VersionReport:
    counts = observation.for_version(name)
    level = config.thresholds.confidence_level
    interval = None
    if counts.feedback:
        wilson = stats.wilson_interval(counts.correct, counts.feedback, level)
        interval = IntervalOut(low=wilson.low, high=wilson.high)
    return VersionReport(
        name=name,
        role=role,
        configured_weight=config.weights[name],
        assignments=counts.assignments,
        traffic_share=counts.assignments / total if total else None,
        predictions=counts.predictions,
        feedback=counts.feedback,
        correct=counts.correct,
        incorrect=counts.incorrect,
        accuracy=counts.correct / counts.feedback if counts.feedback else None,
        accuracy_interval=interval,
    )


def _sample_ratio(observation: Observation, config: ExperimentConfig) -> SampleRatioReport:
    observed = {name: observation.for_version(name).assignments for name in config.weights}
    if sum(observed.values()) == 0:
        return SampleRatioReport(statistic=None, p_value=None, mismatch=False, split=config.split)
    test = stats.sample_ratio_test(observed, config.weights)
    return SampleRatioReport(
        statistic=test.statistic,
        p_value=test.p_value,
        mismatch=test.p_value < config.thresholds.srm_p_value,
        split=config.split,
    )


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def points(value: float) -> str:
    """A difference of accuracies in percentage points, signed: "+3.2"."""
    return f"{100 * value:+.1f}"


def points_interval(interval: IntervalOut) -> str:
    """An interval of differences in percentage points: "[+0.7, +11.1] points"."""
    return f"[{points(interval.low)}, {points(interval.high)}] points"


def decide(
    control: VersionReport,
    treatment: VersionReport,
    difference: DifferenceReport,
    bayes: BayesReport,
    sample_ratio: SampleRatioReport,
    thresholds: Thresholds,
) -> tuple[Decision, str]:
    """Apply the decision rule of docs/experiment-plan.md, first matching row wins."""
    need = thresholds.min_feedback_per_version
    short = [v for v in (control, treatment) if v.feedback < need]
    if short:
        missing = ", ".join(f"{v.name} has {v.feedback}" for v in short)
        return Decision.CONTINUE, f"minimum feedback of {need} per version not reached ({missing})"
    if sample_ratio.mismatch:
        shares = ", ".join(
            f"{v.name} {_percent(v.traffic_share or 0.0)} of {v.assignments} assignments "
            f"(configured {v.configured_weight:g}%)"
            for v in (control, treatment)
        )
        return (
            Decision.CONTINUE,
            f"sample-ratio mismatch (p = {sample_ratio.p_value:.2g} < {thresholds.srm_p_value:g}): "
            f"{shares}; the assignment is broken, so the comparison cannot be trusted",
        )
    p_better = bayes.probability_treatment_better
    assert difference.interval is not None  # both versions have feedback by now
    low, high = difference.interval.low, difference.interval.high
    spread = points_interval(difference.interval)
    level = _percent(thresholds.confidence_level)
    if p_better >= thresholds.promote_probability and low > 0:
        return (
            Decision.PROMOTE,
            f"{treatment.name} is better: P({treatment.name} better) = {p_better:.3f} >= "
            f"{thresholds.promote_probability:g} and the {level} interval of the difference "
            f"{spread} lies above zero",
        )
    if p_better <= thresholds.rollback_probability:
        return (
            Decision.ROLLBACK,
            f"{treatment.name} is worse: P({treatment.name} better) = {p_better:.3f} <= "
            f"{thresholds.rollback_probability:g} (difference interval {spread})",
        )
    if low <= 0 <= high:
        return (
            Decision.CONTINUE,
            f"the {level} interval of the difference {spread} still spans zero "
            f"(P({treatment.name} better) = {p_better:.3f})",
        )
    return (
        Decision.CONTINUE,
        f"P({treatment.name} better) = {p_better:.3f} lies between the rollback "
        f"({thresholds.rollback_probability:g}) and promote ({thresholds.promote_probability:g}) "
        "thresholds",
    )


def analyse(observation: Observation, config: ExperimentConfig) -> Analysis:
    """Compare the treatment with the control on the observed counts and decide."""
    thresholds = config.thresholds
    total = sum(observation.for_version(name).assignments for name in config.weights)
    control = _version_report(config.control, "control", observation, config, total)
    treatment = _version_report(config.treatment, "treatment", observation, config, total)
    without = [v.name for v in (control, treatment) if not v.feedback]
    if without:
        difference = DifferenceReport(
            estimate=None, interval=None, missing=f"no feedback yet for {' and '.join(without)}"
        )
    else:
        interval = stats.newcombe_interval(
            treatment.correct,
            treatment.feedback,
            control.correct,
            control.feedback,
            thresholds.confidence_level,
        )
        difference = DifferenceReport(
            estimate=(treatment.accuracy or 0.0) - (control.accuracy or 0.0),
            interval=IntervalOut(low=interval.low, high=interval.high),
        )
    comparison = stats.bayes_compare(
        treatment.correct, treatment.incorrect, control.correct, control.incorrect
    )
    bayes = BayesReport(
        probability_treatment_better=comparison.probability_better,
        expected_loss_choosing_treatment=comparison.expected_loss,
    )
    sample_ratio = _sample_ratio(observation, config)
    decision, reason = decide(control, treatment, difference, bayes, sample_ratio, thresholds)
    others = [v for v in config.weights if v not in (config.control, config.treatment)]
    versions = [control, treatment] + [
        _version_report(name, "other", observation, config, total) for name in others
    ]
    return Analysis(
        source=observation.source,
        source_description=observation.description,
        control=config.control,
        treatment=config.treatment,
        versions=versions,
        difference=difference,
        bayes=bayes,
        sample_ratio=sample_ratio,
        thresholds=thresholds,
        decision=decision,
        reason=reason,
    )
