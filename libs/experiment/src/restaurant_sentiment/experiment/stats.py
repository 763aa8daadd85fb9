"""Interval estimates, the Bayesian comparison and the sample-ratio test behind a decision."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import integrate, stats


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether value lies inside the interval, bounds included."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class BayesComparison:
    """Posterior comparison of two success rates under uniform Beta(1, 1) priors."""

    probability_better: float
    expected_loss: float


@dataclass(frozen=True)
class SampleRatioTest:
    """Pearson's chi-square test of observed counts against configured shares."""

    statistic: float
    p_value: float


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def _check_level(confidence_level: float) -> None:
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(
            f"confidence level must lie strictly between 0 and 1, got {confidence_level}"
        )


def wilson_interval(successes: int, trials: int, confidence_level: float = 0.95) -> Interval:
    """Wilson score interval of a proportion; (0, 1) when there are no trials."""
    _check_counts(successes, trials)
    _check_level(confidence_level)
    if trials == 0:
        return Interval(0.0, 1.0)
    ci = stats.binomtest(successes, trials).proportion_ci(
        confidence_level=confidence_level, method="wilson"
    )
    return Interval(float(ci.low), float(ci.high))


def newcombe_interval(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    confidence_level: float = 0.95,
) -> Interval:
    """Newcombe's hybrid score interval (his method 10) for the difference p_a - p_b."""
    a = wilson_interval(successes_a, trials_a, confidence_level)
    b = wilson_interval(successes_b, trials_b, confidence_level)
    # With no trials the point estimate is undefined; 1/2 keeps the bounds at the Wilson limits.
    p_a = successes_a / trials_a if trials_a else 0.5
    p_b = successes_b / trials_b if trials_b else 0.5
    low = (p_a - p_b) - math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    high = (p_a - p_b) + math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def bayes_compare(
    successes_a: int, failures_a: int, successes_b: int, failures_b: int
) -> BayesComparison:
    """P(p_a > p_b) and the expected loss E[max(p_b - p_a, 0)] of choosing a.

    Each rate gets the posterior Beta(1 + successes, 1 + failures). Both quantities are
    one-dimensional integrals over p_b's density, computed with adaptive quadrature, so the
    result is deterministic (no Monte Carlo noise).
    """
    for value in (successes_a, failures_a, successes_b, failures_b):
        if value < 0:
            raise ValueError(f"counts must not be negative, got {value}")
    post_a = stats.beta(1 + successes_a, 1 + failures_a)
    post_b = stats.beta(1 + successes_b, 1 + failures_b)
    # Posterior of a shifted by one success: E[p_a; p_a < x] = mean_a * F_{a+1}(x).
    shifted_a = stats.beta(2 + successes_a, 1 + failures_a)
    mean_a = float(post_a.mean())
    # Integrate only where p_b has mass: narrow posteriors defeat quadrature over all of [0, 1].
    low = float(post_b.ppf(1e-12))
    high = float(post_b.ppf(1.0 - 1e-12))
    mode_b = successes_b / max(1, successes_b + failures_b)

    def better(x: float) -> float:
        return float(post_b.pdf(x) * post_a.sf(x))

    def loss(x: float) -> float:
        # E[(x - p_a)^+] = x F_a(x) - E[p_a; p_a < x]
        shortfall = x * post_a.cdf(x) - mean_a * shifted_a.cdf(x)
        return float(post_b.pdf(x) * max(0.0, shortfall))

    points = [min(max(mode_b, low), high)]
    probability, _ = integrate.quad(better, low, high, points=points, limit=200)
    expected_loss, _ = integrate.quad(loss, low, high, points=points, limit=200)
    return BayesComparison(
        probability_better=min(1.0, max(0.0, float(probability))),
        expected_loss=max(0.0, float(expected_loss)),
    )


def sample_ratio_test(observed: Mapping[str, int], weights: Mapping[str, float]) -> SampleRatioTest:
    """Chi-square goodness of fit of observed counts per version to the configured weights."""
    if set(observed) != set(weights):
        raise ValueError(f"versions differ: observed {sorted(observed)}, weights {sorted(weights)}")
    total = sum(observed.values())
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        raise ValueError("a sample-ratio test needs at least one observation and a positive weight")
    names = sorted(observed)
    # A version configured at weight 0 that still receives traffic is a mismatch by definition.
    if any(weights[n] == 0 and observed[n] > 0 for n in names):
        return SampleRatioTest(statistic=math.inf, p_value=0.0)
    live = [n for n in names if weights[n] > 0]
    if len(live) < 2:
        return SampleRatioTest(statistic=0.0, p_value=1.0)
    counts = [observed[n] for n in live]
    expected = [total * weights[n] / weight_sum for n in live]
    result = stats.chisquare(counts, expected)
    return SampleRatioTest(statistic=float(result.statistic), p_value=float(result.pvalue))
