"""Interval estimates, the Bayesian comparison and the sample-ratio test behind a decision.

Closed forms in plain Python (the standard library's NormalDist, lgamma and erfc): the frontend
that shows the experiment carries no numerical stack. The tests check every function against
SciPy, published examples and simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist


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
    z = NormalDist().inv_cdf(0.5 + confidence_level / 2)
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return Interval(max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


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


def _p_second_above(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(X_b > X_a) for X_a ~ Beta(alpha_a, beta_a), X_b ~ Beta(alpha_b, beta_b), integer
    parameters: Evan Miller's exact sum, its terms in logarithms so that none underflows early.

    The sum runs over alpha_b terms; by symmetry, P(X_b > X_a) = 1 - P(X_a > X_b) lets the
    shorter of the two sums be taken.
    """
    if alpha_a < alpha_b:
        return 1.0 - _p_second_above(alpha_b, beta_b, alpha_a, beta_a)
    log_beta = math.lgamma
    # Term i = B(alpha_a + i, beta_a + beta_b) / ((beta_b + i) B(1 + i, beta_b) B(alpha_a, beta_a))
    log_term = (
        log_beta(alpha_a) + log_beta(beta_a + beta_b) - log_beta(alpha_a + beta_a + beta_b)
        - math.log(beta_b)
        - (log_beta(1) + log_beta(beta_b) - log_beta(1 + beta_b))
        - (log_beta(alpha_a) + log_beta(beta_a) - log_beta(alpha_a + beta_a))
    )  # fmt: skip
    terms = []
    for i in range(alpha_b):
        terms.append(math.exp(log_term))
        # The ratio of term i + 1 to term i, from B(x + 1, y) = B(x, y) x / (x + y).
        log_term += (
            math.log((alpha_a + i) / (alpha_a + beta_a + beta_b + i))
            + math.log((beta_b + i) / (beta_b + i + 1))
            + math.log((1 + i + beta_b) / (1 + i))
        )
    return min(1.0, max(0.0, math.fsum(terms)))


def bayes_compare(
    successes_a: int, failures_a: int, successes_b: int, failures_b: int
) -> BayesComparison:
    """P(p_a > p_b) and the expected loss E[max(p_b - p_a, 0)] of choosing a.

    Each rate gets the posterior Beta(1 + successes, 1 + failures). Both quantities are exact
    sums (no Monte Carlo noise, no quadrature): the loss is
    E[p_b; p_b > p_a] - E[p_a; p_b > p_a] = mean_b P(X_b+ > X_a) - mean_a P(X_b > X_a+), where
    X+ is the posterior with one more success.
    """
    for value in (successes_a, failures_a, successes_b, failures_b):
        if value < 0:
            raise ValueError(f"counts must not be negative, got {value}")
    alpha_a, beta_a = 1 + successes_a, 1 + failures_a
    alpha_b, beta_b = 1 + successes_b, 1 + failures_b
    b_above = _p_second_above(alpha_a, beta_a, alpha_b, beta_b)
    mean_a = alpha_a / (alpha_a + beta_a)
    mean_b = alpha_b / (alpha_b + beta_b)
    loss = mean_b * _p_second_above(alpha_a, beta_a, alpha_b + 1, beta_b) - mean_a * (
        _p_second_above(alpha_a + 1, beta_a, alpha_b, beta_b)
    )
    return BayesComparison(
        probability_better=min(1.0, max(0.0, 1.0 - b_above)), expected_loss=max(0.0, loss)
    )


def _chi_square_survival(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X chi-square with `degrees` degrees of freedom.

    The regularised upper incomplete gamma Q(k/2, x/2): its series for small x, Legendre's
    continued fraction (modified Lentz) otherwise, as in Numerical Recipes' gammq.
    """
    if statistic <= 0:
        return 1.0
    a, x = degrees / 2, statistic / 2
    if degrees == 1:
        return math.erfc(math.sqrt(x))
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-16:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return min(1.0, math.exp(log_prefix) * h)


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
    live_total = sum(observed[n] for n in live)
    live_weight = sum(weights[n] for n in live)
    expected = {n: live_total * weights[n] / live_weight for n in live}
    statistic = sum((observed[n] - expected[n]) ** 2 / expected[n] for n in live)
    return SampleRatioTest(
        statistic=statistic, p_value=_chi_square_survival(statistic, len(live) - 1)
    )
