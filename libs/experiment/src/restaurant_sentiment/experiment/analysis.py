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
    """One version's traffic and feedback with its accuracy estimate."""

    name: str
    role: str
    configured_weight: float
    predictions: int
    traffic_share: float | None
    feedback: int
    correct: int
    incorrect: int
    accuracy: float | None
    accuracy_interval: IntervalOut


class DifferenceReport(BaseModel):
    """Treatment minus control accuracy, with Newcombe's hybrid score interval."""

    estimate: float | None
    interval: IntervalOut
    method: str = "Newcombe hybrid score (method 10) from Wilson intervals"


class BayesReport(BaseModel):
    """Posterior comparison under uniform Beta(1, 1) priors."""

    probability_treatment_better: float
    expected_loss_choosing_treatment: float
    method: str = "Beta(1+correct, 1+incorrect) posteriors, integrated by adaptive quadrature"


class SampleRatioReport(BaseModel):
    """Chi-square test of the realised prediction split against the configured weights."""

    statistic: float | None
    p_value: float | None
    mismatch: bool


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
    interval = stats.wilson_interval(counts.correct, counts.feedback, level)
    return VersionReport(
        name=name,
        role=role,
        configured_weight=config.weights[name],
        predictions=counts.predictions,
        traffic_share=counts.predictions / total if total else None,
        feedback=counts.feedback,
        correct=counts.correct,
        incorrect=counts.incorrect,
        accuracy=counts.correct / counts.feedback if counts.feedback else None,
        accuracy_interval=IntervalOut(low=interval.low, high=interval.high),
    )


def _sample_ratio(observation: Observation, config: ExperimentConfig) -> SampleRatioReport:
    observed = {name: observation.for_version(name).predictions for name in config.weights}
    if sum(observed.values()) == 0:
        return SampleRatioReport(statistic=None, p_value=None, mismatch=False)
    test = stats.sample_ratio_test(observed, config.weights)
    return SampleRatioReport(
        statistic=test.statistic,
        p_value=test.p_value,
        mismatch=test.p_value < config.thresholds.srm_p_value,
    )


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


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
            f"{v.name} {_percent(v.traffic_share or 0.0)} (configured {v.configured_weight:g}%)"
            for v in (control, treatment)
        )
        return (
            Decision.CONTINUE,
            f"sample-ratio mismatch (p = {sample_ratio.p_value:.2g} < {thresholds.srm_p_value:g}): "
            f"{shares}; the assignment is broken, so the comparison cannot be trusted",
        )
    p_better = bayes.probability_treatment_better
    low, high = difference.interval.low, difference.interval.high
    level = _percent(thresholds.confidence_level)
    if p_better >= thresholds.promote_probability and low > 0:
        return (
            Decision.PROMOTE,
            f"{treatment.name} is better: P({treatment.name} better) = {p_better:.3f} >= "
            f"{thresholds.promote_probability:g} and the {level} interval of the difference "
            f"[{low:+.3f}, {high:+.3f}] lies above zero",
        )
    if p_better <= thresholds.rollback_probability:
        return (
            Decision.ROLLBACK,
            f"{treatment.name} is worse: P({treatment.name} better) = {p_better:.3f} <= "
            f"{thresholds.rollback_probability:g} (difference interval [{low:+.3f}, {high:+.3f}])",
        )
    if low <= 0 <= high:
        return (
            Decision.CONTINUE,
            f"the {level} interval of the difference [{low:+.3f}, {high:+.3f}] still spans zero "
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
    total = sum(observation.for_version(name).predictions for name in config.weights)
    control = _version_report(config.control, "control", observation, config, total)
    treatment = _version_report(config.treatment, "treatment", observation, config, total)
    interval = stats.newcombe_interval(
        treatment.correct,
        treatment.feedback,
        control.correct,
        control.feedback,
        thresholds.confidence_level,
    )
    estimate = (
        treatment.accuracy - control.accuracy
        if treatment.accuracy is not None and control.accuracy is not None
        else None
    )
    difference = DifferenceReport(
        estimate=estimate, interval=IntervalOut(low=interval.low, high=interval.high)
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
